//! Counters the writer publishes and `/metrics` and `/healthz` read, without a lock on the
//! recording path.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// A snapshot of the historian's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistorianStats {
    /// False when no URL is configured; all other values are then zero.
    pub enabled: bool,
    /// The last write succeeded (or none was tried yet). False while InfluxDB is unreachable.
    pub up: bool,
    /// Lines held in memory: the intake channel, the batch being filled and sealed batches.
    pub queued_lines: u64,
    /// Lines waiting in spill segments on disk.
    pub spilled_lines: u64,
    pub spilled_bytes: u64,
    pub spilled_segments: u64,
    /// Lines lost: intake full or closed, spill budget exceeded, or unreadable segments.
    pub dropped_lines: u64,
    /// Lines in batches the server refused as malformed or too large (not retried).
    pub rejected_lines: u64,
    /// Lines acknowledged with a 2xx response.
    pub written_lines: u64,
    pub failed_requests: u64,
    /// Age of the oldest line not yet written (0 when everything is written).
    pub lag_seconds: f64,
    /// The most recent write failure, without secrets.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub memory_lines: AtomicU64,
    pub spilled_lines: AtomicU64,
    pub spilled_bytes: AtomicU64,
    pub spilled_segments: AtomicU64,
    pub dropped_lines: AtomicU64,
    pub rejected_lines: AtomicU64,
    pub written_lines: AtomicU64,
    pub failed_requests: AtomicU64,
    /// Unix ms of the oldest unsent line; 0 when there is none.
    pub oldest_unsent_ms: AtomicI64,
    pub down: AtomicBool,
    /// Unix ms of the last warning about dropped lines, to log at most once a minute.
    pub drop_warned_ms: AtomicI64,
    pub last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn set_error(&self, message: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message.to_owned());
        }
    }

    /// Counts lines lost before reaching the writer and warns at most once a minute.
    pub(crate) fn dropped_at_intake(&self, now_ms: i64) {
        let total = self.dropped_lines.fetch_add(1, Relaxed) + 1;
        let last = self.drop_warned_ms.load(Relaxed);
        if now_ms - last >= 60_000
            && self
                .drop_warned_ms
                .compare_exchange(last, now_ms, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_lines = total,
                "The historian queue is full or closed; dropped lines."
            );
        }
    }

    pub(crate) fn snapshot(&self, channel_lines: u64, now_ms: i64) -> HistorianStats {
        let oldest = self.oldest_unsent_ms.load(Relaxed);
        HistorianStats {
            enabled: true,
            up: !self.down.load(Relaxed),
            queued_lines: channel_lines + self.memory_lines.load(Relaxed),
            spilled_lines: self.spilled_lines.load(Relaxed),
            spilled_bytes: self.spilled_bytes.load(Relaxed),
            spilled_segments: self.spilled_segments.load(Relaxed),
            dropped_lines: self.dropped_lines.load(Relaxed),
            rejected_lines: self.rejected_lines.load(Relaxed),
            written_lines: self.written_lines.load(Relaxed),
            failed_requests: self.failed_requests.load(Relaxed),
            lag_seconds: if oldest > 0 {
                (now_ms - oldest).max(0) as f64 / 1000.0
            } else {
                0.0
            },
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}
