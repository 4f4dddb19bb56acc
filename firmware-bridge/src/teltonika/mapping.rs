//! Teltonika records to wire reports.
//!
//! IO ids (Teltonika FMB parameter list): 21 GSM signal (0–5 bars), 66 external voltage
//! (mV), 67 battery voltage (mV), 113 battery level (%), 182 GNSS HDOP (×10), 239 ignition,
//! 249 jamming, 1–4 DIN1–DIN4. Ignition and battery voltage have no field in wire contract
//! v1 and are not published.

use chrono::{DateTime, Utc};

use super::avl::AvlRecord;
use crate::registry::DeviceProfile;
use crate::report::{Fix, Report, SealEvent, Status};

pub const IO_GSM_SIGNAL: u16 = 21;
pub const IO_EXTERNAL_VOLTAGE: u16 = 66;
pub const IO_BATTERY_LEVEL: u16 = 113;
pub const IO_HDOP: u16 = 182;
pub const IO_JAMMING: u16 = 249;

/// The reports of one packet, in this order: all fixes as one message (an array when there
/// are several: a packet of many records is the device's buffer), then each record's seal
/// event and status in record order.
pub fn reports(profile: &DeviceProfile, records: &[AvlRecord]) -> Vec<Report> {
    let mut fixes = Vec::new();
    let mut rest = Vec::new();
    for r in records {
        // A record with an impossible timestamp cannot be placed in time: skip it whole.
        let Some(t) = time(r) else { continue };
        let fix = fix(r, t);
        if let Some(seal) = seal_event(profile, r, t, fix.as_ref()) {
            rest.push(Report::Seal(seal));
        }
        let status = status(r, t);
        if !status.is_empty() {
            rest.push(Report::Status(status));
        }
        fixes.extend(fix);
    }
    let mut out = Vec::with_capacity(rest.len() + 1);
    if !fixes.is_empty() {
        out.push(Report::Fixes(fixes));
    }
    out.extend(rest);
    out
}

fn time(r: &AvlRecord) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(r.timestamp_ms).ok()?)
}

/// A record with no satellites carries the last known (or zero) coordinates, not a fix.
fn fix(r: &AvlRecord, t: DateTime<Utc>) -> Option<Fix> {
    let lat = f64::from(r.gps.lat_e7) / 1e7;
    let lon = f64::from(r.gps.lon_e7) / 1e7;
    if r.gps.satellites == 0 || !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    Some(Fix {
        t,
        lat,
        lon,
        speed_kmh: Some(f64::from(r.gps.speed_kmh)),
        heading_deg: r.gps.angle_deg % 360,
        hdop: u64_io(r, IO_HDOP).map(|v| v as f64 / 10.0),
        sats: Some(r.gps.satellites),
        alt_m: Some(f64::from(r.gps.altitude_m)),
    })
}

/// A seal event when the record was written because a mapped DIN changed.
fn seal_event(
    profile: &DeviceProfile,
    r: &AvlRecord,
    t: DateTime<Utc>,
    fix: Option<&Fix>,
) -> Option<SealEvent> {
    let rule = profile
        .inputs
        .iter()
        .find(|rule| u16::from(rule.din) == r.event_io)?;
    let high = u64_io(r, r.event_io)? != 0;
    let event = if high { rule.high } else { rule.low }?;
    Some(SealEvent {
        t,
        seal_id: profile.seal_id.clone(),
        event,
        battery_pct: battery_pct(r),
        position: fix.map(|f| (f.lat, f.lon)),
    })
}

fn status(r: &AvlRecord, t: DateTime<Utc>) -> Status {
    Status {
        t,
        battery_pct: battery_pct(r),
        ext_power_v: u64_io(r, IO_EXTERNAL_VOLTAGE).map(|mv| mv as f64 / 1000.0),
        gsm_rssi: u64_io(r, IO_GSM_SIGNAL).map(bars_to_dbm),
        jamming: u64_io(r, IO_JAMMING).map(|v| v != 0),
    }
}

fn battery_pct(r: &AvlRecord) -> Option<u8> {
    u64_io(r, IO_BATTERY_LEVEL).map(|v| v.min(100) as u8)
}

fn u64_io(r: &AvlRecord, id: u16) -> Option<u64> {
    r.io(id)?.as_u64()
}

/// Teltonika reports signal as 0–5 bars. The contract wants dBm: each bar is taken as the
/// lower edge of a 10 dB band starting at -113 dBm (0 bars), the GSM floor.
pub fn bars_to_dbm(bars: u64) -> i16 {
    -113 + 10 * bars.min(5) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceId;
    use crate::registry::InputRule;
    use crate::report::SealEventKind;
    use crate::teltonika::{Gps, IoElement, IoValue};

    fn profile() -> DeviceProfile {
        DeviceProfile {
            device_id: DeviceId::parse("356307042441013").unwrap(),
            seal_id: "KG-ES-000123".into(),
            inputs: vec![InputRule {
                din: 2,
                high: Some(SealEventKind::Closed),
                low: Some(SealEventKind::Opened),
            }],
            auth_code: String::new(),
        }
    }

    fn record(event_io: u16, io: Vec<(u16, IoValue)>, satellites: u8) -> AvlRecord {
        AvlRecord {
            timestamp_ms: 1_795_767_330_000,
            priority: 1,
            gps: Gps {
                lon_e7: 739_215_000,
                lat_e7: 396_810_000,
                altitude_m: 2850,
                angle_deg: 112,
                satellites,
                speed_kmh: 54,
            },
            event_io,
            io: io
                .into_iter()
                .map(|(id, value)| IoElement { id, value })
                .collect(),
        }
    }

    #[test]
    fn a_din_change_to_low_is_an_opened_event_at_the_fix() {
        let r = record(2, vec![(2, IoValue::U8(0)), (113, IoValue::U8(71))], 11);
        let reports = reports(&profile(), &[r]);
        let Report::Seal(seal) = &reports[1] else {
            panic!("{reports:?}")
        };
        assert_eq!(seal.event, SealEventKind::Opened);
        assert_eq!(seal.battery_pct, Some(71));
        assert_eq!(seal.position, Some((39.681, 73.9215)));
    }

    #[test]
    fn a_periodic_record_with_the_din_set_is_not_a_seal_event() {
        let r = record(0, vec![(2, IoValue::U8(0))], 11);
        assert!(reports(&profile(), &[r])
            .iter()
            .all(|r| !matches!(r, Report::Seal(_))));
    }

    #[test]
    fn a_record_without_satellites_gives_no_fix_but_keeps_its_status() {
        let r = record(
            0,
            vec![
                (66, IoValue::U16(27_900)),
                (249, IoValue::U8(1)),
                (21, IoValue::U8(3)),
            ],
            0,
        );
        let reports = reports(&profile(), &[r]);
        assert_eq!(reports.len(), 1);
        let Report::Status(s) = &reports[0] else {
            panic!()
        };
        assert_eq!(
            (s.ext_power_v, s.jamming, s.gsm_rssi),
            (Some(27.9), Some(true), Some(-83))
        );
    }
}
