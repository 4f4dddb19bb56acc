//! The pipeline's per-device state saved at a clean stop and taken up at the next start:
//! the duplicate window and the geofence track, one compact record per device.
//!
//! A start that finds a current save (nothing committed after it, same geofence index) reads
//! one row per device; any other start, and any device whose record does not decode, is
//! rebuilt from its stored seqs and reports, as after a crash. A save is skipped when the
//! state in memory is ahead of the store (work left uncommitted at the stop), since taking it
//! up would skip what the store never got.

use serde::{Deserialize, Serialize};

use super::kept::Kept;
use super::{SeqWindow, Tracked};
use crate::geofence::{DeviceTrack, GeofenceIndex, ResumedTrack, SavedTrackError};
use crate::telemetry::DeviceId;

#[derive(Serialize, Deserialize)]
struct SavedDevice {
    seqs: SeqWindow,
    track: Vec<u8>,
}

/// One device's record.
///
/// # Errors
/// The encoder failed (it does not for these types).
pub(super) fn save(tracked: &Tracked) -> Result<Vec<u8>, SavedTrackError> {
    let saved = SavedDevice {
        seqs: tracked.seqs.clone(),
        track: tracked.geo.save()?,
    };
    Ok(postcard::to_stdvec(&saved)?)
}

/// A device taken up from its record, its track waiting for its route.
pub(super) struct Resumed {
    pub seqs: SeqWindow,
    pub track: ResumedTrack,
}

/// Decodes one device's record.
///
/// # Errors
/// The record does not decode or does not fit `index`.
pub(super) fn resume(
    id: DeviceId,
    bytes: &[u8],
    index: &GeofenceIndex,
) -> Result<Resumed, SavedTrackError> {
    let saved: SavedDevice = postcard::from_bytes(bytes)?;
    if !saved.seqs.is_sound() {
        return Err(SavedTrackError::Unsound);
    }
    Ok(Resumed {
        seqs: saved.seqs,
        track: DeviceTrack::resume(id, &saved.track, index)?,
    })
}

/// A device's state from what is kept of its stored state, its duplicate window and its
/// track, however they were rebuilt.
pub(super) fn tracked(kept: Kept, seqs: SeqWindow, geo: DeviceTrack) -> Tracked {
    Tracked { kept, seqs, geo }
}
