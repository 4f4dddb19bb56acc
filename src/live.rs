//! What just got committed, for live subscribers (the API's event stream).
//!
//! The committer publishes after each commit on a bounded broadcast channel; a subscriber
//! that falls behind misses items and is told to resynchronise, it never slows the
//! committer.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::device::DeviceState;
use crate::store::LoggedEvent;
use crate::telemetry::DeviceId;

#[derive(Clone, Debug)]
pub enum Live {
    /// An event-log record, with its id.
    Event { id: i64, event: Arc<LoggedEvent> },
    /// A device's new state (position, seal, geofence view).
    Device {
        device_id: DeviceId,
        state: Arc<DeviceState>,
    },
}

/// How many items a slow subscriber may fall behind before it must resynchronise.
pub const CAPACITY: usize = 4096;

pub fn channel() -> broadcast::Sender<Live> {
    broadcast::channel(CAPACITY).0
}
