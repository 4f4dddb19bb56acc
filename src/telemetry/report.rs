use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::device_id::DeviceId;
use super::topic::MessageKind;

/// A validated WGS 84 position: latitude in [-90, 90], longitude in [-180, 180], both finite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// `None` when either coordinate is out of range or not finite.
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        let ok = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
        ok.then_some(Self { lat, lon })
    }
}

/// One GNSS position fix as the device measured it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub seq: u64,
    /// Device time of the fix (UTC), not the time it reached us.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub t: DateTime<Utc>,
    #[serde(flatten)]
    pub point: GeoPoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hdop: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sats: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_m: Option<f64>,
}

/// What a seal reported. The breach kinds become evidence, so they are kept verbatim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealEventKind {
    Armed,
    Opened,
    Closed,
    RopeCut,
    CaseBreach,
    LowBattery,
    Fault,
}

impl SealEventKind {
    /// Events that mean the seal may no longer protect the goods.
    pub fn is_breach(self) -> bool {
        matches!(self, Self::Opened | Self::RopeCut | Self::CaseBreach)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealEvent {
    pub seq: u64,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub t: DateTime<Utc>,
    pub seal_id: String,
    pub event: SealEventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub seq: u64,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub t: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_power_v: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsm_rssi: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jamming: Option<bool>,
}

/// The broker-maintained link state (the device's retained last will).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    Online,
    Offline,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportBody {
    #[serde(rename = "pos")]
    Fix(Fix),
    Seal(SealEvent),
    Status(Status),
    Conn {
        state: ConnState,
    },
}

/// One validated fact from one device: the unit the pipeline, the engine and the store see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub device_id: DeviceId,
    /// Server time at the edge; with the device time it shows how late the data is.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub received_at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: ReportBody,
}

impl Report {
    /// The device's message counter; `conn` messages are the broker's and carry none.
    pub fn seq(&self) -> Option<u64> {
        match &self.body {
            ReportBody::Fix(f) => Some(f.seq),
            ReportBody::Seal(s) => Some(s.seq),
            ReportBody::Status(s) => Some(s.seq),
            ReportBody::Conn { .. } => None,
        }
    }

    /// Device time, or the receive time for `conn` messages, which have no device time.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match &self.body {
            ReportBody::Fix(f) => f.t,
            ReportBody::Seal(s) => s.t,
            ReportBody::Status(s) => s.t,
            ReportBody::Conn { .. } => self.received_at,
        }
    }

    pub fn kind(&self) -> MessageKind {
        match &self.body {
            ReportBody::Fix(_) => MessageKind::Pos,
            ReportBody::Seal(_) => MessageKind::Seal,
            ReportBody::Status(_) => MessageKind::Status,
            ReportBody::Conn { .. } => MessageKind::Conn,
        }
    }

    /// Where the device was, when the report says.
    pub fn point(&self) -> Option<GeoPoint> {
        match &self.body {
            ReportBody::Fix(f) => Some(f.point),
            ReportBody::Seal(s) => s.point,
            _ => None,
        }
    }
}
