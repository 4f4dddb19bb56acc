//! What a device told us, in protocol-neutral form, before it gets a `seq` and becomes JSON.
//!
//! Both protocol decoders produce these; [`crate::wire`] renders them as contract v1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One position fix. Optional fields are the ones a protocol may not carry (Teltonika has
/// no HDOP unless IO 182 is enabled; JT/T 808 has no HDOP at all) or that were dropped as
/// out of the contract's range ([`crate::contract`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Fix {
    pub t: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f64>,
    pub heading_deg: u16,
    pub hdop: Option<f64>,
    pub sats: Option<u8>,
    pub alt_m: Option<f64>,
}

/// Seal events of wire contract v1 (docs/wire-protocol.md), also used in the registry's input map.
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

/// A seal or door event, with the position when the device had a fix at the time.
#[derive(Clone, Debug, PartialEq)]
pub struct SealEvent {
    pub t: DateTime<Utc>,
    pub seal_id: String,
    pub event: SealEventKind,
    pub battery_pct: Option<u8>,
    pub position: Option<(f64, f64)>,
}

/// Device health. Every field is optional because each protocol reports a different subset.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Status {
    pub t: DateTime<Utc>,
    pub battery_pct: Option<u8>,
    pub ext_power_v: Option<f64>,
    pub gsm_rssi: Option<i16>,
    pub jamming: Option<bool>,
}

impl Status {
    /// A status with no field set says nothing and is not published.
    pub fn is_empty(&self) -> bool {
        self.battery_pct.is_none()
            && self.ext_power_v.is_none()
            && self.gsm_rssi.is_none()
            && self.jamming.is_none()
    }
}

/// One MQTT message to be: several fixes travel together as one backlog array.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Fixes(Vec<Fix>),
    Seal(SealEvent),
    Status(Status),
}
