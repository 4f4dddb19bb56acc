//! Everything the bridge needs to run, built by the binary from its flags or by a test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::broker::{BrokerArgs, MqttSettings};
use crate::queue::QueueLimits;
use crate::registry::Registry;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Teltonika listener; `None` disables the protocol. Port 0 picks a free port.
    pub teltonika: Option<SocketAddr>,
    pub jt808: Option<SocketAddr>,
    /// Jointech JT701 e-locks.
    pub jt701: Option<SocketAddr>,
    /// Prometheus text on `GET /metrics`; `None` serves nothing (metrics are still logged).
    pub metrics: Option<SocketAddr>,
    pub mqtt: MqttSettings,
    pub registry: Arc<Registry>,
    /// Holds the disk queue (`queue/`).
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub queue: QueueLimits,
}

/// Protections against misbehaving or hostile devices.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Identified device connections open at once, all protocols together; a device
    /// identifying itself beyond this is refused and closed.
    pub max_connections: usize,
    /// The largest message accepted from a device, in bytes on the wire.
    pub max_frame_bytes: usize,
    /// A connection silent for this long is closed (devices reconnect when they have data).
    pub idle_timeout: Duration,
    /// A frame must arrive whole within this time of its first byte, however steadily its
    /// bytes trickle in: otherwise one byte a minute would hold a slot for days.
    pub frame_timeout: Duration,
    /// Connections that have not yet identified themselves (Teltonika IMEI handshake,
    /// JT/T 808 authentication). They do not count against `max_connections`; when there
    /// are this many, a new one evicts the oldest, so anonymous sockets can neither lock out
    /// registered trackers nor grow without bound.
    pub max_unidentified: usize,
    /// A connection not identified within this time of opening is closed.
    pub identify_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_frame_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(600),
            frame_timeout: Duration::from_secs(60),
            max_unidentified: 64,
            identify_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            budget_bytes: 1024 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
        }
    }
}
