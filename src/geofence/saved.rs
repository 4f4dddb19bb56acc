//! A device's track saved at a clean stop, so the next start reads one small record per
//! device instead of decoding and replaying its last reports.
//!
//! The record holds the engine's memory as it is (indices into the zones, countries and
//! corridors of the index that wrote it), so it is only valid for the same index:
//! [`GeofenceIndex::fingerprint`] names that, and the caller keeps it beside the records. A
//! record from another index, or one edited into nonsense, is refused as a whole and the
//! device's track is rebuilt by replay, as after a crash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyState;
use super::border::BorderState;
use super::corridor::Projection;
use super::history::History;
use super::index::GeofenceIndex;
use super::presence::ZoneState;
use super::route::RouteProgress;
use super::signal::SignalState;
use super::stops::StopState;
use super::track::{DeviceTrack, Sample};
use crate::telemetry::DeviceId;

/// Bumped whenever a saved field changes meaning; part of [`GeofenceIndex::fingerprint`].
pub(crate) const FORMAT: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Saved {
    newest_t: Option<DateTime<Utc>>,
    last_received_at: Option<DateTime<Utc>>,
    history: Vec<Sample>,
    zones: Vec<ZoneState>,
    border: BorderState,
    route: Option<RouteProgress>,
    corridor: Option<Projection>,
    stop: StopState,
    signal: SignalState,
    anomaly: AnomalyState,
}

/// Why a saved track was not taken up.
#[derive(Debug, thiserror::Error)]
pub enum SavedTrackError {
    #[error("the saved track does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("the saved track names zones, countries or corridors this index does not have")]
    OtherIndex,
    #[error("the saved state is not one this build writes")]
    Unsound,
}

/// A track decoded from its saved form, waiting for its route: the route's path is shared
/// and comes from the transit, so the progress along it is taken up once it is assigned.
pub struct ResumedTrack {
    pub track: DeviceTrack,
    route: Option<RouteProgress>,
}

impl ResumedTrack {
    /// The track, with its saved progress along the route when the route assigned since is
    /// the one it was saved on.
    pub fn finish(mut self) -> DeviceTrack {
        if let (Some(state), Some(saved)) = (self.track.route.as_mut(), self.route.take()) {
            state.resume(saved);
        }
        self.track
    }
}

impl DeviceTrack {
    /// The track as a compact record (postcard).
    ///
    /// # Errors
    /// Only if the encoder fails, which it does not for these types.
    pub fn save(&self) -> Result<Vec<u8>, SavedTrackError> {
        let saved = Saved {
            newest_t: self.newest_t,
            last_received_at: self.last_received_at,
            history: self.history.to_vec(),
            zones: self.zones.to_vec(),
            border: self.border.clone(),
            route: self.route.as_ref().map(|r| r.saved()),
            corridor: self.corridor.as_deref().copied(),
            stop: self.stop,
            signal: self.signal,
            anomaly: self.anomaly.clone(),
        };
        Ok(postcard::to_stdvec(&saved)?)
    }

    /// Decodes a record of [`DeviceTrack::save`] written with `index`.
    ///
    /// # Errors
    /// The bytes do not decode, or name parts `index` does not have.
    pub fn resume(
        device_id: DeviceId,
        bytes: &[u8],
        index: &GeofenceIndex,
    ) -> Result<ResumedTrack, SavedTrackError> {
        let saved: Saved = postcard::from_bytes(bytes)?;
        if !fits(&saved, index) {
            return Err(SavedTrackError::OtherIndex);
        }
        let mut track = DeviceTrack::new(device_id);
        track.newest_t = saved.newest_t;
        track.last_received_at = saved.last_received_at;
        track.history = History::from_oldest_first(&saved.history);
        track.zones = saved.zones.into_boxed_slice();
        track.border = saved.border;
        track.corridor = saved.corridor.map(Box::new);
        track.stop = saved.stop;
        track.signal = saved.signal;
        track.anomaly = saved.anomaly;
        Ok(ResumedTrack {
            track,
            route: saved.route,
        })
    }
}

/// Whether every index in `saved` is one of `index`'s: the engine indexes its tables with
/// them and must not be handed one past the end.
fn fits(saved: &Saved, index: &GeofenceIndex) -> bool {
    let zones = index.zones.len();
    let parts = index.countries.parts();
    saved
        .history
        .iter()
        .all(|s| s.zones.fits(zones) && s.country.part().is_none_or(|p| (p as usize) < parts))
        && saved.zones.iter().all(|z| (z.zone as usize) < zones)
        && saved.border.fits(index.countries.countries(), zones)
        && saved.corridor.is_none_or(|p| index.corridors.holds(p))
}

/// Device times exactly, as whole seconds and nanoseconds (two varints), where chrono's own
/// form is an RFC 3339 string several times the size.
pub(crate) mod exact_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| serde::de::Error::custom("a time out of range"))
    }
}
