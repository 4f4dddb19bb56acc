//! Registered devices and the latest known state of each, as the pipeline keeps it.
//!
//! Pure: [`DeviceState::apply`] folds one report into the state. The state reflects the
//! newest device time, so a late or replayed report never rolls it back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::geofence::DeviceGeoState;
use crate::telemetry::{ConnState, DeviceId, Fix, Report, ReportBody, SealEvent, SealEventKind};

/// A device as registered by its carrier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: DeviceId,
    pub carrier: String,
    pub plate: Option<String>,
    pub registered_at: DateTime<Utc>,
}

/// A measured value with the device time it was measured at.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading<T> {
    pub value: T,
    #[serde(serialize_with = "crate::telemetry::rfc3339::serialize")]
    pub t: DateTime<Utc>,
}

/// The last state of a seal the device reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealState {
    pub seal_id: String,
    pub event: SealEventKind,
    #[serde(serialize_with = "crate::telemetry::rfc3339::serialize")]
    pub t: DateTime<Utc>,
}

/// Everything the API shows about a device, kept current by the pipeline.
///
/// The pipeline keeps one per registered device, so the parts that many devices never have
/// (a seal report) or that the pipeline does not keep (`geo`, derived for each write) are
/// boxed: a pointer while absent instead of their full size in every device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Highest `seq` seen: the duplicate window is anchored on it.
    pub max_seq: Option<u64>,
    #[serde(serialize_with = "crate::telemetry::rfc3339::serialize_option")]
    pub last_seen_at: Option<DateTime<Utc>>,
    pub position: Option<Fix>,
    pub seal: Option<Box<SealState>>,
    pub battery_pct: Option<Reading<f64>>,
    pub ext_power_v: Option<Reading<f64>>,
    pub gsm_rssi: Option<Reading<f64>>,
    pub jamming: Option<Reading<bool>>,
    pub conn: Option<Reading<ConnState>>,
    /// Country, zones and corridor position, from the geofence engine.
    #[serde(default)]
    pub geo: Option<Box<DeviceGeoState>>,
    /// The last time the device was heard, while a `signal_lost` raised for the silence
    /// after it is outstanding: kept with the state so that a restart does not raise it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: every registered device holds a state, and few are lost at any time.
    pub signal_lost_since: Option<Box<DateTime<Utc>>>,
}

/// Replaces `slot` when `candidate` is at least as new: the newest device time wins.
fn newest<T: Copy>(slot: &mut Option<Reading<T>>, value: Option<T>, t: DateTime<Utc>) {
    if let Some(value) = value {
        if slot.is_none_or(|old| old.t <= t) {
            *slot = Some(Reading { value, t });
        }
    }
}

impl DeviceState {
    pub fn apply(&mut self, report: &Report) {
        if let Some(seq) = report.seq() {
            self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        }
        if self.last_seen_at.is_none_or(|t| t < report.received_at) {
            self.last_seen_at = Some(report.received_at);
        }
        match &report.body {
            ReportBody::Fix(fix) => {
                if self.position.as_ref().is_none_or(|old| old.t <= fix.t) {
                    self.position = Some(fix.clone());
                }
            }
            ReportBody::Seal(seal) => self.apply_seal(seal),
            ReportBody::Status(s) => {
                newest(&mut self.battery_pct, s.battery_pct, s.t);
                newest(&mut self.ext_power_v, s.ext_power_v, s.t);
                newest(&mut self.gsm_rssi, s.gsm_rssi, s.t);
                newest(&mut self.jamming, s.jamming, s.t);
            }
            ReportBody::Conn { state } => newest(&mut self.conn, Some(*state), report.received_at),
        }
    }

    fn apply_seal(&mut self, seal: &SealEvent) {
        newest(&mut self.battery_pct, seal.battery_pct, seal.t);
        // A battery warning says nothing about whether the seal is closed.
        if seal.event == SealEventKind::LowBattery {
            return;
        }
        if self.seal.as_ref().is_none_or(|old| old.t <= seal.t) {
            self.seal = Some(Box::new(SealState {
                seal_id: seal.seal_id.clone(),
                event: seal.event,
                t: seal.t,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{GeoPoint, Status};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn fix(seq: u64, t: &str, lat: f64) -> Report {
        Report {
            device_id: DeviceId::parse("dev1").unwrap(),
            received_at: at("2026-11-27T10:00:00Z"),
            body: ReportBody::Fix(Fix {
                seq,
                t: at(t),
                point: GeoPoint::new(lat, 73.0).unwrap(),
                speed_kmh: Some(50.0),
                heading_deg: None,
                hdop: None,
                sats: None,
                alt_m: None,
            }),
        }
    }

    #[test]
    fn a_late_fix_does_not_roll_the_position_back() {
        let mut state = DeviceState::default();
        state.apply(&fix(2, "2026-11-27T09:00:00Z", 40.0));
        state.apply(&fix(1, "2026-11-27T08:00:00Z", 39.0));
        let position = state.position.unwrap();
        assert_eq!(position.point.lat, 40.0);
        assert_eq!(state.max_seq, Some(2));
    }

    #[test]
    fn battery_comes_from_whichever_report_is_newest() {
        let mut state = DeviceState::default();
        let status = |seq, t: &str, pct| Report {
            body: ReportBody::Status(Status {
                seq,
                t: at(t),
                battery_pct: Some(pct),
                ext_power_v: None,
                gsm_rssi: None,
                jamming: None,
            }),
            ..fix(0, "2026-11-27T08:00:00Z", 0.0)
        };
        state.apply(&status(5, "2026-11-27T09:00:00Z", 70.0));
        state.apply(&status(4, "2026-11-27T08:00:00Z", 90.0));
        assert_eq!(state.battery_pct.unwrap().value, 70.0);
    }
}
