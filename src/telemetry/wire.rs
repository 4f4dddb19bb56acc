//! Wire contract v1 payloads exactly as devices send them (docs/wire-protocol.md).
//!
//! These borrow from the payload and carry raw, unchecked values; [`super::decode`] turns
//! them into domain types. Unknown fields are ignored so vendors can add their own without a
//! contract change; a missing or mistyped known field is `malformed`.

use std::borrow::Cow;

use serde::Deserialize;

use super::report::SealEventKind;

/// `caravan/v1/dev/{id}/pos`: one fix (or an array of them, a backlog upload).
#[derive(Debug, Deserialize)]
pub struct Pos<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub t: Cow<'a, str>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub hdop: Option<f64>,
    pub sats: Option<u32>,
    pub alt_m: Option<f64>,
}

/// `caravan/v1/dev/{id}/seal`: a seal event, with the position if the seal knows it.
#[derive(Debug, Deserialize)]
pub struct Seal<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub t: Cow<'a, str>,
    #[serde(borrow)]
    pub seal_id: Cow<'a, str>,
    pub event: SealEventKind,
    pub battery_pct: Option<f64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// `caravan/v1/dev/{id}/status`: device health.
#[derive(Debug, Deserialize)]
pub struct Status<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub t: Cow<'a, str>,
    pub battery_pct: Option<f64>,
    pub ext_power_v: Option<f64>,
    pub gsm_rssi: Option<f64>,
    pub jamming: Option<bool>,
}
