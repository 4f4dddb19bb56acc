//! The part of a device's state the pipeline keeps between its reports.
//!
//! Every registered device holds one, so it is the [`DeviceState`] without what the track
//! already holds (the geofence part and an outstanding signal loss, taken from the track for
//! every write), and with the last fix's optional figures held as plain numbers and a mask
//! rather than an `Option<f64>` each (8 bytes rather than 16). The state is folded and written
//! as a [`DeviceState`], so [`DeviceState::apply`] stays the one place that says how a report
//! changes it.

use chrono::{DateTime, Utc};

use crate::device::{DeviceState, Reading, SealState};
use crate::telemetry::{Fix, GeoPoint};

pub(super) struct Kept {
    max_seq: Option<u64>,
    last_seen_at: Option<DateTime<Utc>>,
    position: Option<LastFix>,
    seal: Option<Box<SealState>>,
    battery_pct: Option<Reading<f64>>,
    ext_power_v: Option<Reading<f64>>,
    gsm_rssi: Option<Reading<f64>>,
    jamming: Option<Reading<bool>>,
    conn: Option<Reading<crate::telemetry::ConnState>>,
}

/// A [`Fix`], its optional figures present where their bit of `present` is set.
struct LastFix {
    seq: u64,
    t: DateTime<Utc>,
    point: GeoPoint,
    speed_kmh: f64,
    heading_deg: f64,
    hdop: f64,
    alt_m: f64,
    sats: u32,
    present: u8,
}

const SPEED: u8 = 1;
const HEADING: u8 = 2;
const HDOP: u8 = 4;
const ALT: u8 = 8;
const SATS: u8 = 16;

/// The value and its bit, when present.
fn held<T: Default>(value: Option<T>, bit: u8) -> (T, u8) {
    match value {
        Some(v) => (v, bit),
        None => (T::default(), 0),
    }
}

impl From<&Fix> for LastFix {
    fn from(fix: &Fix) -> Self {
        let (speed_kmh, speed) = held(fix.speed_kmh, SPEED);
        let (heading_deg, heading) = held(fix.heading_deg, HEADING);
        let (hdop, dilution) = held(fix.hdop, HDOP);
        let (alt_m, alt) = held(fix.alt_m, ALT);
        let (sats, counted) = held(fix.sats, SATS);
        Self {
            seq: fix.seq,
            t: fix.t,
            point: fix.point,
            speed_kmh,
            heading_deg,
            hdop,
            alt_m,
            sats,
            present: speed | heading | dilution | alt | counted,
        }
    }
}

impl LastFix {
    fn fix(&self) -> Fix {
        let present = |bit: u8| self.present & bit != 0;
        Fix {
            seq: self.seq,
            t: self.t,
            point: self.point,
            speed_kmh: present(SPEED).then_some(self.speed_kmh),
            heading_deg: present(HEADING).then_some(self.heading_deg),
            hdop: present(HDOP).then_some(self.hdop),
            sats: present(SATS).then_some(self.sats),
            alt_m: present(ALT).then_some(self.alt_m),
        }
    }
}

impl From<&DeviceState> for Kept {
    /// Keeps `state` without its geofence part and signal loss (see the module docs).
    fn from(state: &DeviceState) -> Self {
        Self {
            max_seq: state.max_seq,
            last_seen_at: state.last_seen_at,
            position: state.position.as_ref().map(LastFix::from),
            seal: state.seal.clone(),
            battery_pct: state.battery_pct,
            ext_power_v: state.ext_power_v,
            gsm_rssi: state.gsm_rssi,
            jamming: state.jamming,
            conn: state.conn,
        }
    }
}

impl Kept {
    /// The state kept, without the parts the track holds.
    pub(super) fn state(&self) -> DeviceState {
        DeviceState {
            max_seq: self.max_seq,
            last_seen_at: self.last_seen_at,
            position: self.position.as_ref().map(LastFix::fix),
            seal: self.seal.clone(),
            battery_pct: self.battery_pct,
            ext_power_v: self.ext_power_v,
            gsm_rssi: self.gsm_rssi,
            jamming: self.jamming,
            conn: self.conn,
            geo: None,
            signal_lost_since: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::device::SealState;
    use crate::telemetry::{ConnState, SealEventKind};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 123_456_789).unwrap_or_default()
    }

    proptest! {
        /// Whatever figures a fix has or lacks, and whatever else the state holds, the
        /// state kept reads back as it was, but for the parts the track holds.
        #[test]
        fn a_kept_state_reads_back_as_it_was(
            seq in any::<u64>(),
            secs in 0_i64..4_000_000_000,
            lat in -90.0_f64..=90.0,
            lon in -180.0_f64..=180.0,
            speed in proptest::option::of(any::<f64>()),
            heading in proptest::option::of(0.0_f64..360.0),
            hdop in proptest::option::of(any::<f64>()),
            sats in proptest::option::of(any::<u32>()),
            alt in proptest::option::of(-500.0_f64..9000.0),
            battery in proptest::option::of(0.0_f64..100.0),
            sealed in any::<bool>(),
        ) {
            let state = DeviceState {
                max_seq: Some(seq),
                last_seen_at: Some(at(secs + 1)),
                position: GeoPoint::new(lat, lon).map(|point| Fix {
                    seq,
                    t: at(secs),
                    point,
                    speed_kmh: speed,
                    heading_deg: heading,
                    hdop,
                    sats,
                    alt_m: alt,
                }),
                seal: sealed.then(|| Box::new(SealState {
                    seal_id: "LS-1".into(),
                    event: SealEventKind::Closed,
                    t: at(secs),
                })),
                battery_pct: battery.map(|value| Reading { value, t: at(secs) }),
                conn: Some(Reading { value: ConnState::Online, t: at(secs + 2) }),
                geo: None,
                signal_lost_since: Some(Box::new(at(secs))),
                ..DeviceState::default()
            };
            let back = Kept::from(&state).state();
            // Bit for bit, NaN included: the API shows what the device sent.
            let bits = |f: &Fix| [f.speed_kmh, f.heading_deg, f.hdop, f.alt_m].map(|v| v.map(f64::to_bits));
            prop_assert_eq!(back.position.as_ref().map(bits), state.position.as_ref().map(bits));
            prop_assert_eq!(back.position.as_ref().map(|f| (f.seq, f.t, f.point, f.sats)),
                state.position.as_ref().map(|f| (f.seq, f.t, f.point, f.sats)));
            let without = DeviceState { signal_lost_since: None, position: None, ..state };
            prop_assert_eq!(DeviceState { position: None, ..back }, without);
        }
    }

    #[test]
    fn a_kept_state_is_smaller_than_the_state_it_keeps() {
        assert!(size_of::<Kept>() <= 224, "{} B", size_of::<Kept>());
        assert!(size_of::<Kept>() + 48 <= size_of::<DeviceState>());
    }
}
