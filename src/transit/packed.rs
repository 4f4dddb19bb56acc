//! An open transit as the book holds it between changes: what every fix reads, decoded; the
//! rest of the customs record, packed.
//!
//! A fix reads a transit's stage, route and motion, and writes its motion. The rest of the
//! record (declaration, seals, goods, the history of steps, alerts, inspections, passages) is
//! read only when the transit changes, a few dozen times a trip; held decoded, it was the
//! largest part of a truck's memory at the scale of a national fleet. Between changes it is
//! kept as its JSON compressed with LZ4 against a dictionary: the first record packed, whose
//! field names, places and carriers repeat in every other record, so what remains of a
//! record is little more than its own ids, times and figures.

use std::mem;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::error;

use super::itinerary::Itinerary;
use super::model::{Stage, Transit, TransitId};
use super::motion::Motion;
use super::shared::SharedItineraries;
use crate::geofence::Route;
use crate::telemetry::DeviceId;

/// One open transit in the book.
pub(super) struct Held {
    pub id: TransitId,
    /// Shared with the open transits of the same itinerary, so its route is named by one of
    /// them: [`Held::route`] names it by this one.
    pub itinerary: Arc<Itinerary>,
    pub motion: Motion,
    pub devices: Box<[DeviceId]>,
    pub deadline: DateTime<Utc>,
    pub stage: Stage,
    /// Received from a peer instance, which holds its declaration.
    pub received: bool,
    /// An overdue alert is raised and not resolved.
    pub overdue_raised: bool,
    /// Everything else, with the itinerary, motion and devices left empty.
    rest: Rest,
}

enum Rest {
    Packed(Box<[u8]>),
    /// Kept whole when it could not be encoded: memory is lost, not the record.
    Whole(Box<Transit>),
}

/// Packs and unpacks the book's transits against one dictionary. Records live only in
/// memory, so the dictionary only has to stay the same for as long as the process runs.
#[derive(Default)]
pub(super) struct Packer {
    dictionary: Vec<u8>,
}

impl Packer {
    /// Holds `t`, its itinerary shared through `itineraries`. The approved route is named
    /// by the transit's id (the declaration names it so), and [`Held::route`] names it so
    /// again: a route of another name could not be shared, so it is renamed here.
    pub fn pack(&mut self, mut t: Transit, itineraries: &mut SharedItineraries) -> Held {
        let itinerary = itineraries.hold(mem::take(&mut t.itinerary));
        let motion = mem::take(&mut t.motion);
        let mut devices = mem::take(&mut t.devices);
        devices.shrink_to_fit();
        let rest = match serde_json::to_vec(&t) {
            Ok(json) => {
                if self.dictionary.is_empty() {
                    self.dictionary = json.clone();
                }
                let packed =
                    lz4_flex::block::compress_prepend_size_with_dict(&json, &self.dictionary);
                Rest::Packed(packed.into_boxed_slice())
            }
            Err(e) => {
                error!(transit_id = %t.id, error = %e, "A transit could not be packed; it is held whole.");
                Rest::Whole(Box::new(t.clone()))
            }
        };
        Held {
            id: t.id,
            itinerary,
            motion,
            devices: devices.into_boxed_slice(),
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

    /// The whole record. `None` only if the packed bytes no longer decode, which packing
    /// never makes (the same JSON is what the store keeps); it is logged.
    pub fn unpack(&self, held: &Held) -> Option<Transit> {
        let mut t = match &held.rest {
            Rest::Whole(t) => (**t).clone(),
            Rest::Packed(bytes) => match self.decode(bytes) {
                Ok(t) => t,
                Err(e) => {
                    error!(transit_id = %held.id, error = %e, "A packed transit did not decode.");
                    return None;
                }
            },
        };
        t.itinerary = Itinerary::clone(&held.itinerary);
        if let Some(route) = t.itinerary.route.as_mut() {
            route.id = held.id.shared();
        }
        t.motion = held.motion.clone();
        t.devices = held.devices.to_vec();
        Some(t)
    }

    fn decode(&self, bytes: &[u8]) -> anyhow::Result<Transit> {
        let json = lz4_flex::block::decompress_size_prepended_with_dict(bytes, &self.dictionary)?;
        let mut t: Transit = serde_json::from_slice(&json)?;
        t.shrink_to_fit();
        Ok(t)
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
        assert!(size_of::<Held>() <= 176, "{} B", size_of::<Held>());
    }
}
