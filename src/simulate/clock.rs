//! Simulated time that never runs ahead of the wall clock.
//!
//! Caravan refuses fixes more than five minutes in the future, so an accelerated run starts
//! in the past: with speedup `x` for `accelerated_s` seconds of wall time, simulated time
//! starts `(x - 1) * accelerated_s` seconds before the run and reaches the present just as
//! the accelerated phase ends; from then on it runs at the speed of the wall clock.

/// Maps wall-clock seconds since the run began to simulated unix seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimClock {
    /// Simulated unix time at the start of the run.
    pub start: i64,
    pub speedup: f64,
    /// Wall seconds the accelerated phase lasts.
    pub accelerated_s: f64,
}

/// The furthest back a run may start: the store refuses reports older than 30 days.
pub const MAX_LEAD_S: f64 = 29.0 * 86_400.0;

impl SimClock {
    /// A clock for a run starting at wall time `wall_start` (unix seconds), accelerated by
    /// `speedup` for `accelerated_s` wall seconds, and starting no earlier than `not_before`
    /// (the last device time the server already holds).
    pub fn new(wall_start: i64, speedup: f64, accelerated_s: f64, not_before: Option<i64>) -> Self {
        let speedup = if speedup.is_finite() {
            speedup.max(1.0)
        } else {
            1.0
        };
        let mut lead = ((speedup - 1.0) * accelerated_s.max(0.0)).min(MAX_LEAD_S);
        if let Some(floor) = not_before {
            lead = lead.min((wall_start - floor - 1).max(0) as f64);
        }
        let accelerated_s = if speedup > 1.0 {
            lead / (speedup - 1.0)
        } else {
            0.0
        };
        Self {
            start: wall_start - lead as i64,
            speedup,
            accelerated_s,
        }
    }

    /// Simulated unix seconds after `elapsed_s` wall seconds of the run.
    pub fn at(&self, elapsed_s: f64) -> i64 {
        let fast = elapsed_s.min(self.accelerated_s).max(0.0);
        let slow = (elapsed_s - self.accelerated_s).max(0.0);
        self.start + (fast * self.speedup + slow) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_run_reaches_the_present_and_then_keeps_pace() {
        let clock = SimClock::new(1_000_000, 60.0, 600.0, None);
        assert_eq!(clock.start, 1_000_000 - 59 * 600);
        assert_eq!(clock.at(0.0), clock.start);
        assert_eq!(clock.at(600.0), 1_000_000 + 600);
        assert_eq!(clock.at(700.0), 1_000_000 + 700);
    }

    #[test]
    fn simulated_time_is_never_ahead_of_the_wall_clock() {
        let clock = SimClock::new(1_000_000, 500.0, 3_600.0, None);
        for elapsed in [0.0, 1.0, 100.0, 3_599.0, 3_600.0, 10_000.0] {
            assert!(clock.at(elapsed) <= 1_000_000 + elapsed as i64 + 1);
        }
    }

    #[test]
    fn a_rerun_starts_after_what_the_server_already_holds() {
        let clock = SimClock::new(1_000_000, 60.0, 600.0, Some(999_000));
        assert_eq!(clock.start, 999_001);
        assert!(clock.at(10_000.0) <= 1_010_000);
    }
}
