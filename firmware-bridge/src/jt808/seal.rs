//! Tamper-related alarm and status bits of a location report to seal events.
//!
//! JT/T 808 alarm flags stay set while the condition lasts, so an event is raised on the
//! rising edge of a bit, not on every report. Status bits (door open, door locked) are
//! states: the first report of a connection sets the baseline and only changes raise
//! events; the alarms' baseline is "all clear", so an alarm already set when the terminal
//! connects is reported. The mapping (the standard's table of alarm and status bits):
//!
//! | bit | meaning | seal event |
//! |---|---|---|
//! | alarm 31 | illegal door opening | `opened` |
//! | alarm 17 | tamper (Traccar's `HuabaoProtocolDecoder` reads it as tampering) | `case_breach` |
//! | alarm 7 | main power undervoltage | `low_battery` |
//! | alarm 8 | main power off (cut) | `fault` |
//! | alarm 4, 5, 6 | GNSS module fault, antenna disconnected, antenna short | `fault` |
//! | status 13 set / cleared | door 1 (front) open / closed | `opened` / `closed` |
//! | status 12 set | doors locked | `armed` |

use super::location::Location;
use crate::report::SealEventKind;

const ALARM_MAP: [(u32, SealEventKind); 7] = [
    (31, SealEventKind::Opened),
    (17, SealEventKind::CaseBreach),
    (7, SealEventKind::LowBattery),
    (8, SealEventKind::Fault),
    (4, SealEventKind::Fault),
    (5, SealEventKind::Fault),
    (6, SealEventKind::Fault),
];
const STATUS_DOOR_LOCKED: u32 = 1 << 12;
const STATUS_DOOR1_OPEN: u32 = 1 << 13;

/// Per-connection memory of the last alarm and status words.
#[derive(Debug, Default, Clone)]
pub struct SealWatch {
    last_alarm: u32,
    last_status: Option<u32>,
}

impl SealWatch {
    /// The distinct seal events `loc` implies, given the reports seen before it.
    pub fn observe(&mut self, loc: &Location) -> Vec<SealEventKind> {
        let mut events = Vec::new();
        let mut push = |e: SealEventKind| {
            if !events.contains(&e) {
                events.push(e);
            }
        };
        let rising = loc.alarm & !self.last_alarm;
        for (bit, event) in ALARM_MAP {
            if rising & (1 << bit) != 0 {
                push(event);
            }
        }
        if let Some(last) = self.last_status {
            let set = loc.status & !last;
            let cleared = last & !loc.status;
            if set & STATUS_DOOR1_OPEN != 0 {
                push(SealEventKind::Opened);
            }
            if cleared & STATUS_DOOR1_OPEN != 0 {
                push(SealEventKind::Closed);
            }
            if set & STATUS_DOOR_LOCKED != 0 {
                push(SealEventKind::Armed);
            }
        }
        self.last_alarm = loc.alarm;
        self.last_status = Some(loc.status);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn loc(alarm: u32, status: u32) -> Location {
        Location {
            alarm,
            status,
            lat_e6: 0,
            lon_e6: 0,
            altitude_m: 0,
            speed_dkmh: 0,
            direction_deg: 0,
            time_gmt8: NaiveDate::from_ymd_opt(2026, 11, 27)
                .unwrap()
                .and_hms_opt(16, 0, 0)
                .unwrap(),
            extras: vec![],
            truncated_extra: None,
        }
    }

    #[test]
    fn an_illegal_door_opening_alarm_is_an_opened_event_once() {
        let mut watch = SealWatch::default();
        assert_eq!(watch.observe(&loc(1 << 31, 0)), [SealEventKind::Opened]);
        assert!(watch.observe(&loc(1 << 31, 0)).is_empty());
    }

    #[test]
    fn the_tamper_alarm_is_a_case_breach_on_its_rising_edge() {
        let mut watch = SealWatch::default();
        assert_eq!(watch.observe(&loc(1 << 17, 0)), [SealEventKind::CaseBreach]);
        assert!(watch.observe(&loc(1 << 17, 0)).is_empty());
        assert!(watch.observe(&loc(0, 0)).is_empty());
        assert_eq!(watch.observe(&loc(1 << 17, 0)), [SealEventKind::CaseBreach]);
    }

    #[test]
    fn several_fault_bits_at_once_are_one_fault_event() {
        let mut watch = SealWatch::default();
        assert_eq!(
            watch.observe(&loc((1 << 8) | (1 << 5), 0)),
            [SealEventKind::Fault]
        );
    }

    #[test]
    fn a_door_open_at_connection_is_the_baseline_and_its_closing_is_an_event() {
        let mut watch = SealWatch::default();
        assert!(watch.observe(&loc(0, STATUS_DOOR1_OPEN)).is_empty());
        assert_eq!(watch.observe(&loc(0, 0)), [SealEventKind::Closed]);
        assert_eq!(
            watch.observe(&loc(0, STATUS_DOOR1_OPEN)),
            [SealEventKind::Opened]
        );
    }
}
