//! Lines are gathered into request bodies by size and by age.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// A sealed request body: whole lines, each ending in `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    pub body: Bytes,
    pub lines: usize,
    /// Wall-clock time (Unix ms) the first line arrived, for the lag gauge.
    pub first_enqueued_ms: i64,
}

/// The batch being filled.
#[derive(Debug, Default)]
pub(crate) struct Filling {
    body: Vec<u8>,
    lines: usize,
    first_enqueued_ms: i64,
    started: Option<Instant>,
}

impl Filling {
    pub(crate) fn push(&mut self, line: &str, now: Instant, now_ms: i64) {
        if self.lines == 0 {
            self.started = Some(now);
            self.first_enqueued_ms = now_ms;
        }
        self.body.extend_from_slice(line.as_bytes());
        self.lines += 1;
    }

    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    pub(crate) fn first_enqueued_ms(&self) -> Option<i64> {
        (self.lines > 0).then_some(self.first_enqueued_ms)
    }

    /// When the batch should be sent if nothing else is waiting.
    pub(crate) fn deadline(&self, interval: Duration) -> Option<Instant> {
        self.started.map(|t| t + interval)
    }

    /// The filled batch, leaving an empty one; `None` when nothing was pushed.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.lines == 0 {
            return None;
        }
        let body = std::mem::take(&mut self.body);
        let batch = Batch {
            body: Bytes::from(body),
            lines: self.lines,
            first_enqueued_ms: self.first_enqueued_ms,
        };
        *self = Self::default();
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_lines_in_arrival_order_and_the_time_of_the_first() {
        let mut filling = Filling::default();
        let t0 = Instant::now();
        filling.push("a f=1i 1\n", t0, 1000);
        filling.push("b f=2i 2\n", t0 + Duration::from_millis(5), 1005);
        let batch = filling.take();
        assert_eq!(
            batch,
            Some(Batch {
                body: Bytes::from_static(b"a f=1i 1\nb f=2i 2\n"),
                lines: 2,
                first_enqueued_ms: 1000
            })
        );
    }

    #[test]
    fn the_deadline_runs_from_the_first_line_of_the_batch() {
        let mut filling = Filling::default();
        let t0 = Instant::now();
        assert_eq!(filling.deadline(Duration::from_secs(1)), None);
        filling.push("a f=1i 1\n", t0, 0);
        filling.push("a f=1i 2\n", t0 + Duration::from_millis(900), 0);
        assert_eq!(
            filling.deadline(Duration::from_secs(1)),
            Some(t0 + Duration::from_secs(1))
        );
    }

    #[test]
    fn taking_a_batch_starts_an_empty_one() {
        let mut filling = Filling::default();
        filling.push("a f=1i 1\n", Instant::now(), 7);
        assert!(filling.take().is_some());
        assert_eq!(
            (filling.lines(), filling.first_enqueued_ms(), filling.take()),
            (0, None, None)
        );
    }
}
