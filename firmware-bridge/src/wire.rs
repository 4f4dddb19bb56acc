//! Wire contract v1 (docs/wire-protocol.md): topics and JSON payloads.
//!
//! The bridge is a device as far as Caravan is concerned, so it publishes exactly what a
//! native MQTT device would: one fix object (or an array of fixes for a backlog) on `pos`,
//! seal events on `seal`, health on `status`, every message with a per-device `seq`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::device::DeviceId;
use crate::report::{Fix, Report, SealEvent, SealEventKind, Status};

/// A message ready for the queue: its topic, its JSON, and the highest `seq` it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub last_seq: u64,
}

/// How many `seq` numbers a report consumes: one per fix or event.
pub fn seq_count(report: &Report) -> u64 {
    match report {
        Report::Fixes(fixes) => fixes.len() as u64,
        Report::Seal(_) | Report::Status(_) => 1,
    }
}

/// Renders `report` with consecutive seqs starting at `first_seq`.
pub fn render(device: &DeviceId, report: &Report, first_seq: u64) -> Message {
    let (suffix, payload, last_seq) = match report {
        Report::Fixes(fixes) => {
            let wire: Vec<Pos> = (first_seq..)
                .zip(fixes)
                .map(|(seq, fix)| Pos::new(seq, fix))
                .collect();
            let last = first_seq + fixes.len().saturating_sub(1) as u64;
            let json = match wire.as_slice() {
                [one] => serde_json::to_vec(one),
                many => serde_json::to_vec(many),
            };
            ("pos", json, last)
        }
        Report::Seal(event) => (
            "seal",
            serde_json::to_vec(&Seal::new(first_seq, event)),
            first_seq,
        ),
        Report::Status(status) => (
            "status",
            serde_json::to_vec(&StatusWire::new(first_seq, status)),
            first_seq,
        ),
    };
    Message {
        topic: topic(device, suffix),
        // Serialising these plain structs cannot fail: no maps with non-string keys, and
        // non-finite floats are written as `null` by serde_json.
        payload: payload.unwrap_or_default(),
        last_seq,
    }
}

/// `caravan/v1/dev/{device_id}/{suffix}`.
pub fn topic(device: &DeviceId, suffix: &str) -> String {
    format!("caravan/v1/dev/{device}/{suffix}")
}

/// The device id of a topic this module made, for rebuilding state from the disk queue.
pub fn device_of_topic(topic: &str) -> Option<&str> {
    topic.strip_prefix("caravan/v1/dev/")?.split('/').next()
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[derive(Serialize)]
struct Pos {
    seq: u64,
    t: String,
    lat: f64,
    lon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_kmh: Option<f64>,
    heading_deg: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    hdop: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sats: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alt_m: Option<f64>,
}

impl Pos {
    fn new(seq: u64, fix: &Fix) -> Self {
        Self {
            seq,
            t: time(&fix.t),
            lat: fix.lat,
            lon: fix.lon,
            speed_kmh: fix.speed_kmh,
            heading_deg: fix.heading_deg,
            hdop: fix.hdop,
            sats: fix.sats,
            alt_m: fix.alt_m,
        }
    }
}

#[derive(Serialize)]
struct Seal<'a> {
    seq: u64,
    t: String,
    seal_id: &'a str,
    event: SealEventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_pct: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
}

impl<'a> Seal<'a> {
    fn new(seq: u64, event: &'a SealEvent) -> Self {
        Self {
            seq,
            t: time(&event.t),
            seal_id: &event.seal_id,
            event: event.event,
            battery_pct: event.battery_pct,
            lat: event.position.map(|p| p.0),
            lon: event.position.map(|p| p.1),
        }
    }
}

#[derive(Serialize)]
struct StatusWire {
    seq: u64,
    t: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_pct: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ext_power_v: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsm_rssi: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jamming: Option<bool>,
}

impl StatusWire {
    fn new(seq: u64, s: &Status) -> Self {
        Self {
            seq,
            t: time(&s.t),
            battery_pct: s.battery_pct,
            ext_power_v: s.ext_power_v,
            gsm_rssi: s.gsm_rssi,
            jamming: s.jamming,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fix(sec: u32) -> Fix {
        Fix {
            t: Utc.with_ymd_and_hms(2026, 11, 27, 8, 15, sec).unwrap(),
            lat: 39.681,
            lon: 73.9215,
            speed_kmh: Some(54.2),
            heading_deg: 112,
            hdop: Some(0.9),
            sats: Some(11),
            alt_m: Some(2850.0),
        }
    }

    #[test]
    fn a_single_fix_is_published_as_one_object_in_the_contract_shape() {
        let device = DeviceId::parse("dev-1").unwrap();
        let m = render(&device, &Report::Fixes(vec![fix(30)]), 1842);
        assert_eq!(m.topic, "caravan/v1/dev/dev-1/pos");
        assert_eq!(
            String::from_utf8(m.payload).unwrap(),
            r#"{"seq":1842,"t":"2026-11-27T08:15:30Z","lat":39.681,"lon":73.9215,"speed_kmh":54.2,"heading_deg":112,"hdop":0.9,"sats":11,"alt_m":2850.0}"#
        );
    }

    #[test]
    fn a_backlog_is_one_array_with_consecutive_seqs() {
        let device = DeviceId::parse("dev-1").unwrap();
        let m = render(&device, &Report::Fixes(vec![fix(1), fix(2), fix(3)]), 10);
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let seqs: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [10, 11, 12]);
        assert_eq!(m.last_seq, 12);
    }

    #[test]
    fn the_device_of_a_topic_is_recovered() {
        assert_eq!(device_of_topic("caravan/v1/dev/abc/seal"), Some("abc"));
        assert_eq!(device_of_topic("other/abc"), None);
    }
}
