//! The value limits of wire contract v1, applied before anything is queued.
//!
//! Caravan refuses a whole message when one field is out of range, and the fix in it is
//! then lost as a dead letter. Devices do send impossible values (a JT/T 808 speed of
//! 6553.5 km/h, a Teltonika altitude of −32768 m, a clock in the year 10889), so the bridge
//! checks each report against the same limits as Caravan's decoder: an optional field out
//! of range is dropped (and counted) and the rest kept; a record whose time or position is
//! unusable is refused with a reason, since without them it says nothing.

use chrono::{DateTime, Datelike, Utc};

use crate::report::{Fix, Report, SealEvent, Status};

/// Inclusive ranges, as in Caravan's decoder.
pub const SPEED_KMH: (f64, f64) = (0.0, 500.0);
pub const ALT_M: (f64, f64) = (-500.0, 9000.0);
pub const SATS_MAX: u8 = 128;
pub const HDOP: (f64, f64) = (0.0, 100.0);
pub const BATTERY_PCT_MAX: u8 = 100;
pub const EXT_POWER_V: (f64, f64) = (0.0, 100.0);
pub const GSM_RSSI: (i16, i16) = (-150, 0);

/// What the check took out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Names of the fields dropped, one entry per dropped value.
    pub dropped_fields: Vec<&'static str>,
    /// Reasons of the records refused whole: `time_out_of_range`, `position_out_of_range`.
    pub refused: Vec<&'static str>,
}

impl Findings {
    pub fn is_empty(&self) -> bool {
        self.dropped_fields.is_empty() && self.refused.is_empty()
    }
}

/// The reports with out-of-contract fields dropped and unusable records removed.
pub fn check(reports: Vec<Report>) -> (Vec<Report>, Findings) {
    let mut findings = Findings::default();
    let mut out = Vec::with_capacity(reports.len());
    for report in reports {
        match report {
            Report::Fixes(fixes) => {
                let kept: Vec<Fix> = fixes
                    .into_iter()
                    .filter_map(|f| fix(f, &mut findings))
                    .collect();
                if !kept.is_empty() {
                    out.push(Report::Fixes(kept));
                }
            }
            Report::Seal(event) => out.extend(seal(event, &mut findings).map(Report::Seal)),
            Report::Status(s) => {
                if let Some(s) = status(s, &mut findings).filter(|s| !s.is_empty()) {
                    out.push(Report::Status(s));
                }
            }
        }
    }
    (out, findings)
}

/// RFC 3339 has four-digit years; chrono would write `+10889-…` for a later one.
pub fn time_usable(t: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year())
}

pub fn position_usable(lat: f64, lon: f64) -> bool {
    (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)
}

fn fix(mut f: Fix, findings: &mut Findings) -> Option<Fix> {
    if !time_usable(&f.t) {
        findings.refused.push("time_out_of_range");
        return None;
    }
    if !position_usable(f.lat, f.lon) {
        findings.refused.push("position_out_of_range");
        return None;
    }
    keep_in(&mut f.speed_kmh, SPEED_KMH, "speed_kmh", findings);
    keep_in(&mut f.alt_m, ALT_M, "alt_m", findings);
    keep_in(&mut f.hdop, HDOP, "hdop", findings);
    if f.sats.is_some_and(|n| n > SATS_MAX) {
        f.sats = None;
        findings.dropped_fields.push("sats");
    }
    f.heading_deg %= 360;
    Some(f)
}

fn seal(mut e: SealEvent, findings: &mut Findings) -> Option<SealEvent> {
    if !time_usable(&e.t) {
        findings.refused.push("time_out_of_range");
        return None;
    }
    // The event matters more than where it happened: keep it without the position.
    if e.position
        .is_some_and(|(lat, lon)| !position_usable(lat, lon))
    {
        e.position = None;
        findings.dropped_fields.push("position");
    }
    if e.battery_pct.is_some_and(|b| b > BATTERY_PCT_MAX) {
        e.battery_pct = None;
        findings.dropped_fields.push("battery_pct");
    }
    Some(e)
}

fn status(mut s: Status, findings: &mut Findings) -> Option<Status> {
    if !time_usable(&s.t) {
        findings.refused.push("time_out_of_range");
        return None;
    }
    if s.battery_pct.is_some_and(|b| b > BATTERY_PCT_MAX) {
        s.battery_pct = None;
        findings.dropped_fields.push("battery_pct");
    }
    keep_in(&mut s.ext_power_v, EXT_POWER_V, "ext_power_v", findings);
    if s.gsm_rssi
        .is_some_and(|r| !(GSM_RSSI.0..=GSM_RSSI.1).contains(&r))
    {
        s.gsm_rssi = None;
        findings.dropped_fields.push("gsm_rssi");
    }
    Some(s)
}

fn keep_in(value: &mut Option<f64>, (lo, hi): (f64, f64), name: &'static str, f: &mut Findings) {
    if value.is_some_and(|v| !(lo..=hi).contains(&v)) {
        *value = None;
        f.dropped_fields.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fix() -> Fix {
        Fix {
            t: Utc.with_ymd_and_hms(2026, 11, 27, 8, 15, 30).unwrap(),
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
    fn out_of_range_fields_are_dropped_and_the_fix_kept() {
        let bad = Fix {
            speed_kmh: Some(6553.5),
            alt_m: Some(-32768.0),
            hdop: Some(100.1),
            sats: Some(200),
            ..fix()
        };
        let (out, findings) = check(vec![Report::Fixes(vec![bad])]);
        let expected = Fix {
            speed_kmh: None,
            alt_m: None,
            hdop: None,
            sats: None,
            ..fix()
        };
        assert_eq!(out, [Report::Fixes(vec![expected])]);
        assert_eq!(
            findings.dropped_fields,
            ["speed_kmh", "alt_m", "hdop", "sats"]
        );
    }

    #[test]
    fn the_limits_themselves_are_in_the_contract() {
        let edge = Fix {
            speed_kmh: Some(500.0),
            alt_m: Some(9000.0),
            hdop: Some(100.0),
            sats: Some(128),
            ..fix()
        };
        let (out, findings) = check(vec![Report::Fixes(vec![edge.clone()])]);
        assert_eq!(out, [Report::Fixes(vec![edge])]);
        assert!(findings.is_empty());
    }

    #[test]
    fn a_fix_in_a_five_digit_year_is_refused_and_the_others_kept() {
        let late = Fix {
            t: Utc.with_ymd_and_hms(10889, 8, 2, 0, 0, 0).unwrap(),
            ..fix()
        };
        let (out, findings) = check(vec![Report::Fixes(vec![late, fix()])]);
        assert_eq!(out, [Report::Fixes(vec![fix()])]);
        assert_eq!(findings.refused, ["time_out_of_range"]);
    }

    #[test]
    fn a_seal_event_keeps_its_event_without_an_impossible_position() {
        let event = SealEvent {
            t: fix().t,
            seal_id: "KG-ES-1".into(),
            event: crate::report::SealEventKind::RopeCut,
            battery_pct: Some(255),
            position: Some((91.0, 0.0)),
        };
        let (out, findings) = check(vec![Report::Seal(event.clone())]);
        let kept = SealEvent {
            battery_pct: None,
            position: None,
            ..event
        };
        assert_eq!(out, [Report::Seal(kept)]);
        assert_eq!(findings.dropped_fields, ["position", "battery_pct"]);
    }

    #[test]
    fn a_status_left_empty_by_the_check_is_not_published() {
        let s = Status {
            t: fix().t,
            gsm_rssi: Some(20),
            ..Status::default()
        };
        let (out, findings) = check(vec![Report::Status(s)]);
        assert!(out.is_empty());
        assert_eq!(findings.dropped_fields, ["gsm_rssi"]);
    }
}
