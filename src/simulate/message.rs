//! What the simulated devices send, rendered in wire contract v1 (docs/wire-protocol.md).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::telemetry::{MessageKind, SealEventKind};

/// One MQTT message the fleet wants published.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: String,
    pub kind: OutgoingKind,
    /// Fixes in the message: 1 for a fix, the array length for a backlog, 0 otherwise.
    pub fixes: usize,
}

/// The message kinds the summary counts apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutgoingKind {
    Pos,
    /// A JSON array of buffered fixes, sent when coverage returns.
    Backlog,
    Seal,
    Status,
}

impl OutgoingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pos => "pos",
            Self::Backlog => "pos backlog",
            Self::Seal => "seal",
            Self::Status => "status",
        }
    }
}

/// Unix seconds as RFC 3339 UTC with whole seconds.
pub fn rfc3339(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A recorded fix, as the device keeps it until it can send it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PosPayload {
    pub seq: u64,
    pub t: String,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub heading_deg: f64,
    pub hdop: f64,
    pub sats: u32,
}

impl PosPayload {
    pub fn new(seq: u64, t: i64, lat: f64, lon: f64, speed_kmh: f64, heading_deg: f64) -> Self {
        Self {
            seq,
            t: rfc3339(t),
            lat: round(lat, 6),
            lon: round(lon, 6),
            speed_kmh: round(speed_kmh.clamp(0.0, 500.0), 1),
            heading_deg: round(heading_deg.rem_euclid(360.0), 0) % 360.0,
            hdop: 0.9,
            sats: 11,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SealPayload {
    pub seq: u64,
    pub t: String,
    pub seal_id: String,
    pub event: SealEventKind,
    pub battery_pct: f64,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusPayload {
    pub seq: u64,
    pub t: String,
    pub battery_pct: f64,
    pub ext_power_v: f64,
    pub gsm_rssi: f64,
    pub jamming: bool,
}

pub fn topic(device_id: &str, kind: MessageKind) -> String {
    format!("caravan/v1/dev/{device_id}/{}", kind.as_str())
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain structs of numbers and strings always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

impl Outgoing {
    pub fn pos(device_id: &str, fix: &PosPayload) -> Self {
        Self {
            topic: topic(device_id, MessageKind::Pos),
            payload: json(fix),
            kind: OutgoingKind::Pos,
            fixes: 1,
        }
    }

    pub fn backlog(device_id: &str, fixes: &[PosPayload]) -> Self {
        Self {
            topic: topic(device_id, MessageKind::Pos),
            payload: json(&fixes),
            kind: OutgoingKind::Backlog,
            fixes: fixes.len(),
        }
    }

    pub fn seal(device_id: &str, seal: &SealPayload) -> Self {
        Self {
            topic: topic(device_id, MessageKind::Seal),
            payload: json(seal),
            kind: OutgoingKind::Seal,
            fixes: 0,
        }
    }

    pub fn status(device_id: &str, status: &StatusPayload) -> Self {
        Self {
            topic: topic(device_id, MessageKind::Status),
            payload: json(status),
            kind: OutgoingKind::Status,
            fixes: 0,
        }
    }
}
