//! Per-device state: everything the engine remembers about one device between reports.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::anomaly::AnomalyState;
use super::border::BorderState;
use super::corridor::Projection;
use super::country::CountryFix;
use super::history::History;
use super::index::RoutePath;
use super::presence::ZoneState;
use super::route::RouteState;
use super::signal::SignalState;
use super::stops::StopState;
use super::zones::ZoneSet;
use crate::telemetry::DeviceId;

/// One evaluated fix as the engine saw it, kept in the device's history window so late
/// fixes can be placed between their time neighbours.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Sample {
    #[serde(with = "super::saved::exact_time")]
    pub t: DateTime<Utc>,
    pub c: Coord<f64>,
    /// Zones containing the fix (raw geometry, before hysteresis).
    pub zones: ZoneSet,
    pub country: CountryFix,
}

/// The engine's memory of one device. The pipeline owns one per device and passes it to
/// every call; nothing in it is shared, so the hot path takes no locks.
pub struct DeviceTrack {
    pub(crate) device_id: DeviceId,
    /// Newest device time evaluated, for any kind of report: older reports are late.
    pub(crate) newest_t: Option<DateTime<Utc>>,
    pub(crate) last_received_at: Option<DateTime<Utc>>,
    /// Accepted fixes in device-time order, held as their differences.
    pub(crate) history: History,
    /// The zones the device is in or on the way into or out of; most devices are in none.
    /// Boxed rather than a `Vec`: no room to spare, and 8 bytes fewer in every track.
    pub(crate) zones: Box<[ZoneState]>,
    pub(crate) border: BorderState,
    /// Boxed: only a device on a declared transit has a route, and the state of one is a
    /// hundred bytes every other device would carry empty.
    pub(crate) route: Option<Box<RouteState>>,
    /// Nearest corridor for a device without a route. Boxed: a device on a transit follows
    /// its route instead, and would carry this room empty.
    pub(crate) corridor: Option<Box<Projection>>,
    pub(crate) stop: StopState,
    pub(crate) signal: SignalState,
    pub(crate) anomaly: AnomalyState,
}

impl DeviceTrack {
    pub fn new(device_id: DeviceId) -> Self {
        Self {
            device_id,
            newest_t: None,
            last_received_at: None,
            history: History::default(),
            zones: Box::default(),
            border: BorderState::default(),
            route: None,
            corridor: None,
            stop: StopState::default(),
            signal: SignalState::default(),
            anomaly: AnomalyState::default(),
        }
    }

    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// Starts measuring distance, progress and direction against `route`; a previous
    /// route's open deviation is dropped with it.
    pub fn assign_route(&mut self, route: RoutePath) {
        self.route = Some(Box::new(RouteState::new(route)));
        // Nothing reads the nearest corridor while there is a route; it is found again,
        // from the next fix, if the route is cleared.
        self.corridor = None;
    }

    pub fn clear_route(&mut self) {
        self.route = None;
    }

    pub fn route_id(&self) -> Option<&str> {
        self.route.as_ref().map(|r| r.path.id())
    }

    /// When the device was last heard, while a `signal_lost` for its silence is outstanding.
    pub fn signal_lost_since(&self) -> Option<DateTime<Utc>> {
        self.signal.lost_since()
    }

    /// Resumes a `signal_lost` raised before a restart: it is not raised again, and the next
    /// message from the device restores the signal. Ignored when the device was heard after
    /// `since` (the loss was closed then).
    pub fn resume_signal_lost(&mut self, since: DateTime<Utc>) {
        if self.last_received_at.is_none_or(|heard| heard <= since) {
            self.signal.resume_lost(since);
        }
    }

    /// The part of a country the last fix lies in (several parts can be one country).
    pub fn country_part(&self) -> Option<u32> {
        self.last().and_then(|s| s.country.part())
    }

    pub(crate) fn last(&self) -> Option<Sample> {
        self.history.last()
    }

    /// Appends an in-order sample, keeping at most `cap` (and at least one).
    pub(crate) fn push(&mut self, sample: Sample, cap: usize) {
        self.history.push(sample, cap);
    }

    /// Inserts a late sample at its place in time; the oldest entry goes if the window is
    /// full, unless the late sample itself would be the oldest.
    pub(crate) fn insert(&mut self, at: usize, sample: Sample, cap: usize) {
        self.history.insert(at, sample, cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: i64) -> Sample {
        Sample {
            t: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute),
            c: Coord { x: 74.0, y: 42.0 },
            zones: ZoneSet::default(),
            country: CountryFix::default(),
        }
    }

    fn track() -> DeviceTrack {
        DeviceTrack::new(DeviceId::parse("dev1").unwrap())
    }

    fn minutes(track: &DeviceTrack) -> Vec<i64> {
        track
            .history
            .to_vec()
            .iter()
            .map(|s| s.t.timestamp() / 60)
            .collect()
    }

    /// A truck on a transit holds its route's state, with its path, besides its track: what
    /// it holds only at times (a deviation, a corridor off its route) is boxed.
    #[test]
    fn a_routed_trucks_state_stays_within_its_memory_budget() {
        assert!(
            size_of::<RouteState>() <= 96,
            "{} B",
            size_of::<RouteState>()
        );
        assert!(
            size_of::<DeviceTrack>() <= 208,
            "{} B",
            size_of::<DeviceTrack>()
        );
    }

    #[test]
    fn a_full_window_keeps_the_newest() {
        let mut track = track();
        for minute in 0..100 {
            track.push(sample(minute), 20);
            assert_eq!(track.history.len(), (minute as usize + 1).min(20));
        }
        assert_eq!(minutes(&track), (80..100).collect::<Vec<_>>());
        assert_eq!(track.last().map(|s| s.t.timestamp() / 60), Some(99));
    }

    #[test]
    fn a_late_sample_takes_its_place_in_time_within_the_window() {
        let mut track = track();
        for minute in [0, 2, 4] {
            track.push(sample(minute), 3);
        }
        track.insert(1, sample(1), 3);
        track.insert(0, sample(-1), 3);
        assert_eq!(minutes(&track), vec![1, 2, 4]);
    }
}
