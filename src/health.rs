//! Liveness of the parts `GET /healthz` reports on, set by their owners.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Health {
    broker_connected: AtomicBool,
    /// Set once the pipeline has rebuilt every device's tracking state.
    tracking_ready: AtomicBool,
    store_error: Mutex<Option<String>>,
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
}

impl Health {
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

    pub fn report(&self) -> HealthReport {
        let broker = self.broker_connected.load(Ordering::Relaxed);
        let store_error = self.store_error.lock().ok().and_then(|e| e.clone());
        HealthReport {
            status: if broker && store_error.is_none() {
                "ok"
            } else {
                "degraded"
            },
            broker: if broker { "connected" } else { "disconnected" },
            store: store_error.map_or_else(|| "ok".to_owned(), |e| format!("failing: {e}")),
            historian: "off".to_owned(),
            tracking: if self.tracking_ready.load(Ordering::Relaxed) {
                "ok"
            } else {
                "restoring"
            },
        }
    }
}
