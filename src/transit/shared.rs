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
    /// The itinerary whole, as the book holds it for its open transits: one per approved
    /// route on these parts (there is one unless a route was declared without one, or with
    /// another critical distance). Its route's id names the transit that first held it;
    /// the book names it by each transit's own.
    wholes: Vec<Arc<Itinerary>>,
}

impl Parts {
    fn of(it: &Itinerary) -> Self {
        Self {
            checkpoints: it.checkpoints.clone(),
            legs: it.legs.clone(),
            line: it.line.clone(),
            route_legs: it.route.as_ref().map(|r| r.legs.clone()),
            wholes: Vec::new(),
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

    /// Whether a transit still holds these parts, besides the cache; wholes no transit
    /// holds any more are dropped.
    fn in_use(&mut self) -> bool {
        self.wholes.retain(|w| Arc::strong_count(w) > 1);
        !self.wholes.is_empty() || Arc::strong_count(&self.line) > 1
    }

    /// The whole held for `it`, whose parts are these: the one with the same route, its id
    /// aside, or `it` itself from now on.
    fn whole(&mut self, it: Itinerary) -> Arc<Itinerary> {
        let same_route = |w: &Itinerary| match (&w.route, &it.route) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.critical_deviation_m == b.critical_deviation_m && *a.legs == *b.legs
            }
            _ => false,
        };
        if let Some(w) = self.wholes.iter().find(|w| same_route(w)) {
            return w.clone();
        }
        let w = Arc::new(it);
        self.wholes.push(w.clone());
        w
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

    /// The shared copy of `it` whole, for a transit the book holds open. Its route's id is
    /// not this transit's: see [`Held::route`](super::packed::Held::route).
    pub fn hold(&mut self, mut it: Itinerary) -> Arc<Itinerary> {
        self.share(&mut it);
        let held = self
            .parts
            .get_mut(&places(&it))
            .and_then(|candidates| candidates.iter_mut().find(|p| p.equals(&it)));
        match held {
            Some(parts) => parts.whole(it),
            // `share` has just held these parts; not reached.
            None => Arc::new(it),
        }
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
            candidates.retain_mut(Parts::in_use);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transit::itinerary::CheckpointKind;

    /// An itinerary of its own, through one place.
    fn itinerary(n: usize) -> Itinerary {
        let place = Checkpoint {
            id: format!("place-{n}"),
            kind: CheckpointKind::Office,
            name: String::new(),
            posts: Vec::new(),
            location: [0.0, 0.0],
            chainage_m: 0.0,
            bcp_id: None,
        };
        Itinerary {
            checkpoints: vec![place].into(),
            ..Itinerary::default()
        }
    }

    #[test]
    fn itineraries_no_open_transit_holds_are_let_go_and_those_held_are_kept() {
        let mut shared = SharedItineraries::default();
        let kept = shared.hold(itinerary(0));
        for n in 1..PRUNE_FLOOR {
            drop(shared.hold(itinerary(n)));
        }
        // Pruned when the count reached the floor: what is left is the itinerary a transit
        // holds, and the one being held at that moment.
        assert_eq!(shared.len(), 2);
        assert!(Arc::ptr_eq(&kept, &shared.hold(itinerary(0))));
        assert_eq!(shared.len(), 2);
    }
}
