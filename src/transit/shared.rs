//! Itineraries shared between the transits that follow them.
//!
//! An itinerary's checkpoints, legs and line are a couple of kilobytes, and they depend only
//! on the places declared and the maps: at the scale of a national fleet, a hundred thousand
//! open transits follow a few dozen itineraries. Held per transit, their copies were the
//! largest part of the transit book's memory. The book passes every transit it holds through
//! [`SharedItineraries::share`], which hands it the copy already held for an equal
//! itinerary; the geofence engine shares route polylines the same way
//! ([`RouteCache`](crate::geofence::RouteCache)).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use super::itinerary::{Checkpoint, Itinerary, Leg};
use super::line::RouteLine;
use super::model::Transit;
use crate::geofence::RouteLeg;

/// The parts of an itinerary that transits on the same places share.
#[derive(Clone)]
struct Parts {
    checkpoints: Arc<[Checkpoint]>,
    legs: Arc<[Leg]>,
    line: Arc<RouteLine>,
    /// The corridor legs of the approved route; its id is the transit's own.
    route_legs: Option<Arc<[RouteLeg]>>,
}

impl Parts {
    fn of(it: &Itinerary) -> Self {
        Self {
            checkpoints: it.checkpoints.clone(),
            legs: it.legs.clone(),
            line: it.line.clone(),
            route_legs: it.route.as_ref().map(|r| r.legs.clone()),
        }
    }

    /// Compared in full, not only by the places: a transit declared before the maps changed
    /// keeps its own route rather than taking the one declared since.
    fn equals(&self, it: &Itinerary) -> bool {
        let same = Arc::ptr_eq(&self.checkpoints, &it.checkpoints)
            && Arc::ptr_eq(&self.legs, &it.legs)
            && Arc::ptr_eq(&self.line, &it.line);
        same || *self.checkpoints == *it.checkpoints
            && *self.legs == *it.legs
            && *self.line == *it.line
    }

    /// Whether a transit still holds these parts, besides the cache.
    fn in_use(&self) -> bool {
        Arc::strong_count(&self.line) > 1
    }
}

/// Itinerary parts by the places they run through. Owned by the
/// [`TransitBook`](super::TransitBook), so it needs no lock.
#[derive(Default)]
pub struct SharedItineraries {
    /// By a hash of the checkpoint ids; the few itineraries with the same places (declared
    /// before and after a change of the maps) are told apart by [`Parts::equals`].
    parts: HashMap<u64, Vec<Parts>>,
    /// Distinct itineraries held.
    held: usize,
    /// The size at which itineraries no transit holds any more are dropped.
    prune_at: usize,
}

/// Itineraries held before the first pruning: far more than the shipped maps allow, so
/// pruning is rare.
const PRUNE_FLOOR: usize = 256;

impl SharedItineraries {
    /// Makes `it` hold the shared copy of an equal itinerary, or holds its parts for the
    /// transits that follow.
    pub fn share(&mut self, it: &mut Itinerary) {
        let candidates = self.parts.entry(places(it)).or_default();
        if let Some(held) = candidates.iter().find(|p| p.equals(it)) {
            it.checkpoints = held.checkpoints.clone();
            it.legs = held.legs.clone();
            it.line = held.line.clone();
            if let (Some(route), Some(legs)) = (it.route.as_mut(), &held.route_legs) {
                if route.legs == *legs {
                    route.legs = legs.clone();
                }
            }
            return;
        }
        candidates.push(Parts::of(it));
        self.held += 1;
        self.prune();
    }

    /// Distinct itineraries held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Drops itineraries no transit holds any more, once their number has doubled since the
    /// last time, so that it follows the open transits at a constant cost per insert.
    fn prune(&mut self) {
        if self.held < self.prune_at.max(PRUNE_FLOOR) {
            return;
        }
        for candidates in self.parts.values_mut() {
            candidates.retain(Parts::in_use);
        }
        self.parts.retain(|_, candidates| !candidates.is_empty());
        self.held = self.parts.values().map(Vec::len).sum();
        self.prune_at = self.held * 2;
    }
}

/// Itineraries shared by the threads that read the stored transits at a start, as each
/// transit is decoded: decoded all first, a hundred thousand transits' copies of a few
/// dozen itineraries were about two hundred megabytes at once, and the allocator kept part
/// of that peak long after the copies were dropped.
#[derive(Default)]
pub struct SharedOnRead(Mutex<SharedItineraries>);

impl SharedOnRead {
    /// Shares `t`'s itinerary and gives back the room its lists were decoded into.
    pub fn take_in(&self, t: &mut Transit) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .share(&mut t.itinerary);
        t.shrink_to_fit();
    }

    pub fn into_inner(self) -> SharedItineraries {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

fn places(it: &Itinerary) -> u64 {
    let mut h = DefaultHasher::new();
    for c in it.checkpoints.iter() {
        c.id.hash(&mut h);
    }
    h.finish()
}

/// A shared part written and read as the value it points to, so the stored and announced
/// form of a transit is the same as when every transit held its own copy.
pub(crate) mod arc {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T, S>(value: &Arc<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + ?Sized,
        S: Serializer,
    {
        (**value).serialize(s)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Arc<T>, D::Error>
    where
        T: ?Sized,
        Box<T>: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Box::<T>::deserialize(d).map(Arc::from)
    }
}
