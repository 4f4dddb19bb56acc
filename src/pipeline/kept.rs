//! The part of a device's state the pipeline keeps between its reports.
//!
//! Every registered device holds one, so it is the [`DeviceState`] without what the pipeline
//! holds elsewhere (the geofence part and an outstanding signal loss, which the track holds,
//! and the highest seq, which the duplicate window holds), its fields laid out flat: the
//! presence of a reading is the presence of its time, and the last fix's optional figures are
//! plain numbers under a mask, rather than an `Option` each with its own padding. That is 184
//! bytes against the state's 272. The state is folded and written as a [`DeviceState`], so
//! [`DeviceState::apply`] stays the one place that says how a report changes it.

use chrono::{DateTime, Utc};

use crate::device::{DeviceState, Reading, SealState};
use crate::telemetry::{ConnState, Fix, GeoPoint};

pub(super) struct Kept {
    last_seen_at: Option<DateTime<Utc>>,
    /// The last fix, present when its time is.
    fix_t: Option<DateTime<Utc>>,
    fix_seq: u64,
    fix_point: GeoPoint,
    /// Speed, heading, HDOP and altitude, each present where its bit of `fix_present` is set.
    fix_figures: [f64; 4],
    fix_sats: u32,
    fix_present: u8,
    seal: Option<Box<SealState>>,
    /// Battery, external power and GSM signal, each present when its time is.
    levels: [f64; 3],
    levels_t: [Option<DateTime<Utc>>; 3],
    jamming: bool,
    jamming_t: Option<DateTime<Utc>>,
    conn: ConnState,
    conn_t: Option<DateTime<Utc>>,
}

/// Bits of `fix_present`: the four figures in their order, then the satellites.
const SATS: u8 = 1 << 4;

/// A reading's value and time; `empty` stands for the value of an absent one.
fn split<T: Copy>(reading: Option<Reading<T>>, empty: T) -> (T, Option<DateTime<Utc>>) {
    reading.map_or((empty, None), |r| (r.value, Some(r.t)))
}

fn reading<T>(value: T, t: Option<DateTime<Utc>>) -> Option<Reading<T>> {
    t.map(|t| Reading { value, t })
}

impl From<&DeviceState> for Kept {
    /// Keeps `state` without the parts held elsewhere (see the module docs).
    fn from(state: &DeviceState) -> Self {
        Self::with_seal(state, state.seal.clone())
    }
}

impl Kept {
    /// Keeps `state` in place of what was kept. The seal's state is copied only when it
    /// changed: every fold of a sealed truck's reports would otherwise copy it once more.
    pub(super) fn keep(&mut self, state: &DeviceState) {
        let seal = if self.seal == state.seal {
            self.seal.take()
        } else {
            state.seal.clone()
        };
        *self = Self::with_seal(state, seal);
    }

    /// `state` kept with `seal` for its seal's state.
    fn with_seal(state: &DeviceState, seal: Option<Box<SealState>>) -> Self {
        let fix = state.position.as_ref();
        let figures = fix.map(|f| [f.speed_kmh, f.heading_deg, f.hdop, f.alt_m]);
        let mut fix_present = 0;
        let mut fix_figures = [0.0; 4];
        for (i, figure) in figures.into_iter().flatten().enumerate() {
            if let Some(value) = figure {
                fix_figures[i] = value;
                fix_present |= 1 << i;
            }
        }
        let fix_sats = fix.and_then(|f| f.sats);
        if fix_sats.is_some() {
            fix_present |= SATS;
        }
        let levels = [state.battery_pct, state.ext_power_v, state.gsm_rssi].map(|r| split(r, 0.0));
        let (jamming, jamming_t) = split(state.jamming, false);
        let (conn, conn_t) = split(state.conn, ConnState::Offline);
        Self {
            last_seen_at: state.last_seen_at,
            fix_t: fix.map(|f| f.t),
            fix_seq: fix.map_or(0, |f| f.seq),
            fix_point: fix.map_or(GeoPoint { lat: 0.0, lon: 0.0 }, |f| f.point),
            fix_figures,
            fix_sats: fix_sats.unwrap_or(0),
            fix_present,
            seal,
            levels: levels.map(|(value, _)| value),
            levels_t: levels.map(|(_, t)| t),
            jamming,
            jamming_t,
            conn,
            conn_t,
        }
    }

    /// The state kept, with `max_seq` (the duplicate window's) and without the parts the
    /// track holds.
    pub(super) fn state(&self, max_seq: Option<u64>) -> DeviceState {
        let figure = |i: usize| (self.fix_present & 1 << i != 0).then_some(self.fix_figures[i]);
        let level = |i: usize| reading(self.levels[i], self.levels_t[i]);
        DeviceState {
            max_seq,
            last_seen_at: self.last_seen_at,
            position: self.fix_t.map(|t| Fix {
                seq: self.fix_seq,
                t,
                point: self.fix_point,
                speed_kmh: figure(0),
                heading_deg: figure(1),
                hdop: figure(2),
                sats: (self.fix_present & SATS != 0).then_some(self.fix_sats),
                alt_m: figure(3),
            }),
            seal: self.seal.clone(),
            battery_pct: level(0),
            ext_power_v: level(1),
            gsm_rssi: level(2),
            jamming: reading(self.jamming, self.jamming_t),
            conn: reading(self.conn, self.conn_t),
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
    use crate::telemetry::SealEventKind;

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
                gsm_rssi: Some(Reading { value: -71.0, t: at(secs + 3) }),
                jamming: sealed.then(|| Reading { value: true, t: at(secs + 4) }),
                conn: Some(Reading { value: ConnState::Online, t: at(secs + 2) }),
                geo: None,
                signal_lost_since: Some(Box::new(at(secs))),
                ..DeviceState::default()
            };
            let back = Kept::from(&state).state(Some(seq));
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
    fn a_seal_state_that_did_not_change_is_kept_without_a_copy() {
        let seal = |event| {
            Some(Box::new(SealState {
                seal_id: "LS-1".into(),
                event,
                t: at(0),
            }))
        };
        let state = DeviceState {
            seal: seal(SealEventKind::Closed),
            ..DeviceState::default()
        };
        let mut kept = Kept::from(&state);
        let held = kept.seal.as_deref().map(std::ptr::from_ref);
        kept.keep(&kept.state(None));
        assert_eq!(kept.seal.as_deref().map(std::ptr::from_ref), held);
        let opened = DeviceState {
            seal: seal(SealEventKind::Opened),
            ..DeviceState::default()
        };
        kept.keep(&opened);
        assert_eq!(kept.state(None).seal, opened.seal);
    }

    #[test]
    fn a_kept_state_is_smaller_than_the_state_it_keeps() {
        assert!(size_of::<Kept>() <= 184, "{} B", size_of::<Kept>());
    }
}
