//! Liveness of the parts `GET /healthz` reports on, set by their owners.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug)]
pub struct Health {
    broker_connected: AtomicBool,
    /// Set once the pipeline has rebuilt every device's tracking state.
    tracking_ready: AtomicBool,
    store_error: Mutex<Option<String>>,
    /// QoS 1 messages handed to the pipeline, and those of them committed (or refused and
    /// stored): the difference is what waits for its acknowledgement.
    received: AtomicU64,
    settled: AtomicU64,
    /// The settled count last seen to move, and when.
    progress: Mutex<(u64, Instant)>,
    /// Waiting messages and no commit for this long: intake is stalled.
    stall_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    pub status: &'static str,
    pub broker: &'static str,
    pub store: String,
    /// `off`, `ok`, or `spilling: ...` while InfluxDB is unreachable.
    pub historian: String,
    /// `restoring` until the pipeline has rebuilt every device's state, then `ok`.
    pub tracking: &'static str,
    /// `ok`, or `stalled: ...` while messages wait and nothing is committed.
    pub intake: String,
}

/// Messages wait and nothing has been committed for a while.
#[derive(Debug, PartialEq, Eq)]
pub struct Stall {
    pub waiting: u64,
    pub for_s: u64,
}

impl Health {
    pub fn new(stall_after: Duration) -> Self {
        Self {
            broker_connected: AtomicBool::new(false),
            tracking_ready: AtomicBool::new(false),
            store_error: Mutex::new(None),
            received: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            progress: Mutex::new((0, Instant::now())),
            stall_after,
        }
    }

    pub fn set_broker_connected(&self, connected: bool) {
        self.broker_connected.store(connected, Ordering::Relaxed);
    }

    pub fn set_tracking_ready(&self) {
        self.tracking_ready.store(true, Ordering::Relaxed);
    }

    pub fn set_store(&self, result: Result<(), String>) {
        if let Ok(mut slot) = self.store_error.lock() {
            *slot = result.err();
        }
    }

    /// A QoS 1 message was handed to the pipeline.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` QoS 1 messages were committed and acknowledged.
    pub fn settled(&self, n: u64) {
        self.settled.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether intake is stalled now: something waits, and the settled count has not moved
    /// for the configured time.
    pub fn stall(&self) -> Option<Stall> {
        let settled = self.settled.load(Ordering::Relaxed);
        let received = self.received.load(Ordering::Relaxed);
        let mut progress = self.progress.lock().ok()?;
        // While the pipeline restores its state, messages wait by design: that is progress.
        let restoring = !self.tracking_ready.load(Ordering::Relaxed);
        if restoring || progress.0 != settled || received <= settled {
            *progress = (settled, Instant::now());
            return None;
        }
        let still = progress.1.elapsed();
        (still >= self.stall_after).then(|| Stall {
            waiting: received - settled,
            for_s: still.as_secs(),
        })
    }

    pub fn report(&self) -> HealthReport {
        let broker = self.broker_connected.load(Ordering::Relaxed);
        let store_error = self.store_error.lock().ok().and_then(|e| e.clone());
        let stall = self.stall();
        HealthReport {
            status: if broker && store_error.is_none() && stall.is_none() {
                "ok"
            } else {
                "degraded"
            },
            broker: if broker { "connected" } else { "disconnected" },
            store: store_error.map_or_else(|| "ok".to_owned(), |e| format!("failing: {e}")),
            historian: "off".to_owned(),
            intake: stall.map_or_else(
                || "ok".to_owned(),
                |s| {
                    format!(
                        "stalled: {} messages wait, nothing committed for {} s",
                        s.waiting, s.for_s
                    )
                },
            ),
            tracking: if self.tracking_ready.load(Ordering::Relaxed) {
                "ok"
            } else {
                "restoring"
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_messages_with_no_commit_for_the_allowance_is_a_stall() {
        let health = Health::new(Duration::from_millis(50));
        health.set_broker_connected(true);
        health.set_tracking_ready();
        assert_eq!(health.stall(), None, "nothing waits");
        health.received();
        health.received();
        assert_eq!(health.stall(), None, "not for long yet");
        std::thread::sleep(Duration::from_millis(60));
        let stall = health.stall().expect("stalled");
        assert_eq!(stall.waiting, 2);
        assert_eq!(health.report().status, "degraded");
        assert!(health.report().intake.starts_with("stalled: 2 messages"));
        health.settled(1);
        assert_eq!(health.stall(), None, "a commit is progress");
        health.settled(1);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(health.stall(), None, "nothing waits any more");
        assert_eq!(health.report().status, "ok");
    }
}
