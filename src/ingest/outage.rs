//! How a broker outage is told in the log: the first failure at once, then one line a
//! minute with the count of attempts, and one line when the connection is back. The client
//! retries every second, and a line per retry buried everything else in the log.

use std::time::{Duration, Instant};

/// Between two reminders of the same outage.
pub const REMIND_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
    last_told: Option<Instant>,
    /// Failed attempts since the outage began.
    attempts: u64,
}

/// What to log now.
#[derive(Debug, PartialEq, Eq)]
pub enum Tell {
    /// The first failure of an outage.
    Began,
    /// The outage goes on: attempts so far and for how long.
    Continues {
        attempts: u64,
        for_s: u64,
    },
    Nothing,
}

impl Outage {
    pub fn failed(&mut self, now: Instant) -> Tell {
        self.attempts += 1;
        let since = *self.since.get_or_insert(now);
        match self.last_told {
            None => {
                self.last_told = Some(now);
                Tell::Began
            }
            Some(told) if now.duration_since(told) >= REMIND_EVERY => {
                self.last_told = Some(now);
                Tell::Continues {
                    attempts: self.attempts,
                    for_s: now.duration_since(since).as_secs(),
                }
            }
            Some(_) => Tell::Nothing,
        }
    }

    /// The connection is back: how long it was down, if it was.
    pub fn recovered(&mut self, now: Instant) -> Option<Duration> {
        let since = self.since.take()?;
        self.last_told = None;
        self.attempts = 0;
        Some(now.duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_of_five_minutes_at_one_retry_a_second_is_six_lines_not_three_hundred() {
        let start = Instant::now();
        let mut outage = Outage::default();
        let told: Vec<Tell> = (0..300)
            .map(|s| outage.failed(start + Duration::from_secs(s)))
            .filter(|t| *t != Tell::Nothing)
            .collect();
        assert_eq!(told.len(), 5);
        assert_eq!(told[0], Tell::Began);
        assert_eq!(
            told[1],
            Tell::Continues {
                attempts: 61,
                for_s: 60
            }
        );
        let down = outage.recovered(start + Duration::from_secs(300));
        assert_eq!(down, Some(Duration::from_secs(300)));
        assert_eq!(outage.recovered(start + Duration::from_secs(301)), None);
        assert_eq!(outage.failed(start + Duration::from_secs(400)), Tell::Began);
    }
}
