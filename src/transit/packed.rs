//! An open transit as the book holds it between changes: what every fix reads, decoded; the
//! rest of the customs record, packed.
//!
//! A fix reads a transit's stage, route and motion, and writes its motion. The rest of the
//! record (declaration, seals, goods, the history of steps, alerts, inspections, passages) is
//! read only when the transit changes, a few dozen times a trip; held decoded, it was the
//! largest part of a truck's memory at the scale of a national fleet. Between changes it is
//! kept as its JSON compressed with zstd against a dictionary. The first records are packed
//! against the very first one, whose field names, places and carriers repeat in every other
//! record; once [`TRAIN_ON`] records have been packed, zstd trains a dictionary on them,
//! which also knows how ids, times and figures are written, and every record is packed
//! against that one, those packed before included. A record of about 1.4 KB of JSON packs to
//! about 100 bytes that way, against about 300 with LZ4 against the first record
//! (`BENCHMARKS.md`).

use std::mem;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tracing::{error, warn};
use zstd::bulk::{Compressor, Decompressor};

use super::itinerary::Itinerary;
use super::model::{Stage, Transit, TransitId};
use super::motion::Motion;
use super::shared::SharedItineraries;
use crate::geofence::Route;
use crate::keyed::HasKey;

/// Records packed against the first one, whose JSON the dictionary is then trained on: a
/// thousand say more of a fleet than a few hundred (10 % smaller records on the load fleet's),
/// and are trained on in some 60 ms, once.
pub(super) const TRAIN_ON: usize = 1024;
/// Bytes of the trained dictionary: larger gained nothing on the load fleet's records.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// With a trained dictionary, level 1 packs as small as level 3, and faster.
const LEVEL: i32 = 1;
/// The largest record unpacked: far beyond any record (the store's own bound on a body is
/// lower), so only bytes that are not this module's could ask for more.
const RECORD_MAX: u64 = 64 * 1024 * 1024;

/// One open transit in the book.
pub(super) struct Held {
    pub id: TransitId,
    /// Shared with the open transits of the same itinerary, so its route is named by one of
    /// them: [`Held::route`] names it by this one.
    pub itinerary: Arc<Itinerary>,
    pub motion: Motion,
    pub deadline: DateTime<Utc>,
    pub stage: Stage,
    /// Received from a peer instance, which holds its declaration.
    pub received: bool,
    /// An overdue alert is raised and not resolved.
    pub overdue_raised: bool,
    /// Everything else, with the itinerary and motion left empty. The devices stay in it: the
    /// book indexes them by device, and nothing else reads them without the whole record.
    rest: Rest,
}

enum Rest {
    /// A byte naming the dictionary ([`FIRST`] or [`TRAINED`]), then the packed record. In
    /// the bytes rather than the enum, where it would take eight bytes of every transit.
    Packed(Box<[u8]>),
    /// Kept whole when it could not be packed: memory is lost, not the record.
    Whole(Box<Transit>),
}

/// Packed against the first record.
const FIRST: u8 = 0;
/// Packed against the trained dictionary.
const TRAINED: u8 = 1;

/// What a dictionary unpacks with. Behind a lock so that reading a record takes `&self`;
/// only the book's owner reads, so it is never contended.
struct Dictionary(Mutex<Decompressor<'static>>);

impl Dictionary {
    /// The dictionary of `bytes` (trained, or any content as a raw one), and a compressor
    /// that packs against it.
    fn new(bytes: &[u8]) -> std::io::Result<(Self, Compressor<'static>)> {
        let mut compressor = Compressor::with_dictionary(LEVEL, bytes)?;
        // Records live only in memory: no checksum, and the dictionary is known.
        compressor.include_checksum(false)?;
        compressor.include_dictid(false)?;
        compressor.include_contentsize(true)?;
        let decompressor = Decompressor::with_dictionary(bytes)?;
        Ok((Self(Mutex::new(decompressor)), compressor))
    }

    fn unpack(&self, bytes: &[u8]) -> anyhow::Result<Transit> {
        let size = zstd::zstd_safe::get_frame_content_size(bytes)
            .ok()
            .flatten()
            .filter(|size| *size <= RECORD_MAX)
            .ok_or_else(|| anyhow::anyhow!("a packed record without its size"))?;
        let json = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decompress(bytes, usize::try_from(size)?)?;
        let mut t: Transit = serde_json::from_slice(&json)?;
        t.shrink_to_fit();
        Ok(t)
    }
}

/// Packs and unpacks the book's transits. Records live only in memory, so a dictionary only
/// has to stay the same for as long as the process runs.
#[derive(Default)]
pub(super) struct Packer {
    first: Option<Dictionary>,
    trained: Option<Dictionary>,
    /// Packs against the trained dictionary once there is one, the first record before.
    compressor: Option<Compressor<'static>>,
    /// The JSON of the records packed so far, until the dictionary is trained on them;
    /// `None` once it was (or could not be).
    samples: Option<Vec<Vec<u8>>>,
    /// Set when the dictionary was just trained: the records packed before are packed again.
    trained_now: bool,
}

impl Packer {
    /// Holds `t`, its itinerary shared through `itineraries`. The approved route is named
    /// by the transit's id (the declaration names it so); the shared itinerary's route is
    /// named by another transit, so [`Held::route`] and [`Packer::unpack`] name it by this
    /// one again.
    pub fn pack(&mut self, mut t: Transit, itineraries: &mut SharedItineraries) -> Held {
        let itinerary = itineraries.hold(mem::take(&mut t.itinerary));
        let motion = mem::take(&mut t.motion);
        let rest = match self.compress(&t) {
            Ok(rest) => rest,
            Err(e) => {
                error!(transit_id = %t.id, error = %e, "A transit could not be packed; it is held whole.");
                Rest::Whole(Box::new(t.clone()))
            }
        };
        Held {
            id: t.id,
            itinerary,
            motion,
            deadline: t.deadline,
            stage: t.stage,
            received: t.held_by.is_some(),
            overdue_raised: t
                .alerts
                .iter()
                .any(|a| a.key == "overdue" && a.is_unresolved()),
            rest,
        }
    }

    fn compress(&mut self, t: &Transit) -> anyhow::Result<Rest> {
        let json = serde_json::to_vec(t)?;
        if self.first.is_none() {
            let (first, compressor) = Dictionary::new(&json)?;
            self.first = Some(first);
            self.compressor = Some(compressor);
            self.samples = Some(Vec::with_capacity(TRAIN_ON));
        }
        if let Some(samples) = self.samples.as_mut() {
            samples.push(json.clone());
            if samples.len() >= TRAIN_ON {
                self.train();
            }
        }
        let compressor = self
            .compressor
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no dictionary"))?;
        let against = if self.trained.is_some() {
            TRAINED
        } else {
            FIRST
        };
        let body = compressor.compress(&json)?;
        let mut packed = Vec::with_capacity(1 + body.len());
        packed.push(against);
        packed.extend_from_slice(&body);
        Ok(Rest::Packed(packed.into_boxed_slice()))
    }

    /// Trains the dictionary on the records packed so far, once.
    fn train(&mut self) {
        let Some(samples) = self.samples.take() else {
            return;
        };
        match zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
            .and_then(|bytes| Dictionary::new(&bytes))
        {
            Ok((trained, compressor)) => {
                self.trained = Some(trained);
                self.compressor = Some(compressor);
                self.trained_now = true;
            }
            // The first record stays the dictionary: records are larger, nothing is lost.
            Err(e) => warn!(error = %e, "No dictionary could be trained on the open transits."),
        }
    }

    /// Whether the dictionary was trained since the last call: the records packed before
    /// are then to be [packed again](Self::repack).
    pub fn take_trained_now(&mut self) -> bool {
        mem::take(&mut self.trained_now)
    }

    /// Packs a record packed against the first one against the trained dictionary.
    pub fn repack(&mut self, held: &mut Held) {
        let Rest::Packed(bytes) = &held.rest else {
            return;
        };
        let Some((&FIRST, bytes)) = bytes.split_first() else {
            return;
        };
        let (Some(first), true) = (&self.first, self.trained.is_some()) else {
            return;
        };
        let unpacked = first.unpack(bytes);
        let repacked = unpacked.and_then(|t| self.compress(&t));
        match repacked {
            Ok(rest) => held.rest = rest,
            Err(e) => {
                error!(transit_id = %held.id, error = %e, "A packed transit could not be packed again; it stays as it was.");
            }
        }
    }

    /// The whole record. `None` only if the packed bytes no longer decode, which packing
    /// never makes (the same JSON is what the store keeps); it is logged.
    pub fn unpack(&self, held: &Held) -> Option<Transit> {
        let unpacked = match &held.rest {
            Rest::Whole(t) => Some(Ok((**t).clone())),
            Rest::Packed(bytes) => match bytes.split_first() {
                Some((&FIRST, bytes)) => self.first.as_ref().map(|d| d.unpack(bytes)),
                Some((&TRAINED, bytes)) => self.trained.as_ref().map(|d| d.unpack(bytes)),
                _ => None,
            },
        }
        .unwrap_or_else(|| Err(anyhow::anyhow!("its dictionary is not held")));
        let mut t = match unpacked {
            Ok(t) => t,
            Err(e) => {
                error!(transit_id = %held.id, error = %e, "A packed transit did not decode.");
                return None;
            }
        };
        t.itinerary = Itinerary {
            route: held.route(),
            ..Itinerary::clone(&held.itinerary)
        };
        t.motion = held.motion.clone();
        Some(t)
    }
}

impl HasKey for Held {
    type Key = TransitId;

    fn key(&self) -> &TransitId {
        &self.id
    }
}

impl Held {
    /// The approved route, named by this transit.
    pub fn route(&self) -> Option<Route> {
        self.itinerary.route.as_ref().map(|r| Route {
            id: self.id.shared(),
            legs: r.legs.clone(),
            critical_deviation_m: r.critical_deviation_m,
        })
    }

    /// What the record is packed against: `first`, `trained`, or `whole` when not packed.
    #[cfg(test)]
    pub fn packed_against(&self) -> &'static str {
        match &self.rest {
            Rest::Packed(bytes) if bytes.first() == Some(&TRAINED) => "trained",
            Rest::Packed(_) => "first",
            Rest::Whole(_) => "whole",
        }
    }

    /// Bytes the packed part of the record takes.
    #[cfg(test)]
    pub fn packed_len(&self) -> usize {
        match &self.rest {
            Rest::Packed(bytes) => bytes.len(),
            Rest::Whole(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open transit is one `Held`: the itinerary is one pointer to the copy its
    /// transits share, and the rest is what every fix reads.
    #[test]
    fn a_held_transit_stays_within_its_memory_budget() {
        assert!(size_of::<Held>() <= 144, "{} B", size_of::<Held>());
    }
}
