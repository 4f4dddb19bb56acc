//! JT701 reports to wire reports, and the acknowledgement the lock waits for.
//!
//! The status word, bit by bit (Wialon's Jointech JT701D page numbers them from 1; Traccar's
//! `Jt600ProtocolDecoder` reads bits 3, 7, 11 and 14 the same way):
//!
//! | bit | meaning | seal event |
//! |---|---|---|
//! | 0 | position from cell towers, not GNSS | (no fix) |
//! | 3 | steel rope cut alarm | `rope_cut` |
//! | 5 | the report must be acknowledged | |
//! | 7 | motor lock: 1 locked, 0 unlocked | `closed` / `opened` on change |
//! | 8 | unlocking alarm | `opened` |
//! | 11 | low battery alarm | `low_battery` |
//! | 12 | back cover opened alarm (tamper) | `case_breach` |
//! | 14 | motor fault alarm | `fault` |
//!
//! Alarms raise their event on the rising edge (they stay set while the condition lasts;
//! the baseline is "all clear", so an alarm set when the lock connects is reported). The
//! lock state is a state: the first report of a connection is its baseline. Bits 1–2
//! (geofence), 4 (vibration), 6 (rope inserted), 9–10 (wrong password, unknown RFID card)
//! and 13 (cover closed) are not seal events and are not published.

use chrono::{DateTime, Utc};

use super::{Record, Report as Jt701Report};
use crate::registry::DeviceProfile;
use crate::report::{Fix, Report, SealEvent, SealEventKind, Status};

pub const STATUS_LBS: u16 = 1 << 0;
pub const STATUS_ROPE_CUT: u16 = 1 << 3;
pub const STATUS_ACK_REQUIRED: u16 = 1 << 5;
pub const STATUS_LOCKED: u16 = 1 << 7;
pub const STATUS_UNLOCK_ALARM: u16 = 1 << 8;
pub const STATUS_LOW_BATTERY: u16 = 1 << 11;
pub const STATUS_COVER_OPENED: u16 = 1 << 12;
pub const STATUS_MOTOR_FAULT: u16 = 1 << 14;

const ALARMS: [(u16, SealEventKind); 5] = [
    (STATUS_ROPE_CUT, SealEventKind::RopeCut),
    (STATUS_UNLOCK_ALARM, SealEventKind::Opened),
    (STATUS_COVER_OPENED, SealEventKind::CaseBreach),
    (STATUS_LOW_BATTERY, SealEventKind::LowBattery),
    (STATUS_MOTOR_FAULT, SealEventKind::Fault),
];
const ALARM_MASK: u16 = STATUS_ROPE_CUT
    | STATUS_UNLOCK_ALARM
    | STATUS_COVER_OPENED
    | STATUS_LOW_BATTERY
    | STATUS_MOTOR_FAULT;

const KNOT_KMH: f64 = 1.852;

/// Per-connection memory of the last status word.
#[derive(Debug, Default, Clone)]
pub struct LockWatch {
    last_alarms: u16,
    last_locked: Option<bool>,
}

impl LockWatch {
    /// The distinct seal events `status` implies, given the reports seen before it.
    pub fn observe(&mut self, status: u16) -> Vec<SealEventKind> {
        let mut events = Vec::new();
        let mut push = |e: SealEventKind| {
            if !events.contains(&e) {
                events.push(e);
            }
        };
        let rising = status & !self.last_alarms;
        for (bit, event) in ALARMS {
            if rising & bit != 0 {
                push(event);
            }
        }
        let locked = status & STATUS_LOCKED != 0;
        match (self.last_locked, locked) {
            (Some(false), true) => push(SealEventKind::Closed),
            (Some(true), false) => push(SealEventKind::Opened),
            _ => {}
        }
        self.last_alarms = status & ALARM_MASK;
        self.last_locked = Some(locked);
        events
    }
}

/// The reports of one JT701 message: its fixes as one message, then each record's seal
/// events, then the battery of a single record (a message of several is a backlog).
pub fn reports(
    profile: &DeviceProfile,
    report: &Jt701Report,
    watch: &mut LockWatch,
) -> Vec<Report> {
    let mut out = Vec::new();
    let fixes: Vec<Fix> = report.records.iter().filter_map(fix).collect();
    if !fixes.is_empty() {
        out.push(Report::Fixes(fixes));
    }
    let single = report.records.len() == 1;
    for r in &report.records {
        let t = time(r);
        let position = fix(r).map(|f| (f.lat, f.lon));
        for event in watch.observe(r.status) {
            out.push(Report::Seal(SealEvent {
                t,
                seal_id: profile.seal_id.clone(),
                event,
                battery_pct: battery_pct(r),
                position,
            }));
        }
        if single {
            let status = Status {
                t,
                battery_pct: battery_pct(r),
                ..Status::default()
            };
            if !status.is_empty() {
                out.push(Report::Status(status));
            }
        }
    }
    out
}

/// The acknowledgement the lock waits for when a record asks for one (status bit 5; alarm
/// and re-uploaded data), per Traccar's reading: `(P69,0,index)` from protocol version
/// 0x19, `(P35)` before.
pub fn acknowledgement(report: &Jt701Report) -> Option<Vec<u8>> {
    let wanted = report
        .records
        .iter()
        .any(|r| r.status & STATUS_ACK_REQUIRED != 0);
    if !wanted {
        return None;
    }
    Some(if report.protocol_version >= 0x19 {
        format!("(P69,0,{})", report.index).into_bytes()
    } else {
        b"(P35)".to_vec()
    })
}

fn time(r: &Record) -> DateTime<Utc> {
    r.time.and_utc()
}

fn battery_pct(r: &Record) -> Option<u8> {
    (r.battery != 0xFF).then_some(r.battery)
}

/// Degrees from `D…DMMmmmm` (degrees, then minutes with four decimals).
fn degrees(raw: u32) -> f64 {
    f64::from(raw / 1_000_000) + f64::from(raw % 1_000_000) / 10_000.0 / 60.0
}

/// A fix when the flags say valid and the position is from GNSS and on the Earth.
pub fn fix(r: &Record) -> Option<Fix> {
    if r.flags & 0x1 == 0 || r.status & STATUS_LBS != 0 {
        return None;
    }
    let lat = if r.flags & 0x2 != 0 { 1.0 } else { -1.0 } * degrees(r.lat_raw);
    let lon = if r.flags & 0x4 != 0 { 1.0 } else { -1.0 } * degrees(r.lon_raw);
    if lat.abs() > 90.0 || lon.abs() > 180.0 {
        return None;
    }
    Some(Fix {
        t: time(r),
        lat: round6(lat),
        lon: round6(lon),
        speed_kmh: Some(round1(f64::from(r.speed_knots) * KNOT_KMH)),
        heading_deg: (u16::from(r.course_half_deg) * 2) % 360,
        hdop: None,
        sats: Some(r.satellites),
        alt_m: None,
    })
}

/// Minutes with four decimals are 1/600 000 of a degree: six decimals keep them.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rope_cut_and_a_cover_opened_are_events_once_each() {
        let mut watch = LockWatch::default();
        let both = STATUS_ROPE_CUT | STATUS_COVER_OPENED | STATUS_LOCKED;
        assert_eq!(
            watch.observe(both),
            [SealEventKind::RopeCut, SealEventKind::CaseBreach]
        );
        assert!(watch.observe(both).is_empty());
    }

    #[test]
    fn locking_and_unlocking_after_the_first_report_are_closed_and_opened() {
        let mut watch = LockWatch::default();
        assert!(watch.observe(STATUS_LOCKED).is_empty(), "the baseline");
        assert_eq!(watch.observe(0), [SealEventKind::Opened]);
        assert_eq!(watch.observe(STATUS_LOCKED), [SealEventKind::Closed]);
    }

    #[test]
    fn an_unlock_alarm_while_unlocking_is_one_opened_event() {
        let mut watch = LockWatch::default();
        watch.observe(STATUS_LOCKED);
        assert_eq!(watch.observe(STATUS_UNLOCK_ALARM), [SealEventKind::Opened]);
    }
}
