//! Route polylines shared between transits on the same legs.
//!
//! A route's polyline and its segment index are a few kilobytes to tens of kilobytes. Trucks
//! in this region travel a handful of corridors, so at the scale of a national fleet
//! thousands of open transits follow the same legs: built per device, their copies were most
//! of the memory of a store of trucks on transits, and most of the start-up time. The cache
//! builds each distinct list of legs once; a route still carries its own transit's id.

use std::collections::HashMap;
use std::sync::Arc;

use super::corridor::Network;
use super::index::{GeofenceIndex, Route, RouteLeg, RoutePath};
use super::GeofenceError;

/// Polylines by their legs. Owned by whoever assigns routes (the pipeline), so it needs no
/// lock.
#[derive(Default)]
pub struct RouteCache {
    shapes: HashMap<Arc<[RouteLeg]>, Arc<Network>>,
    /// Polylines built, for the test that sharing works and for the metrics.
    built: u64,
    /// The size at which entries no route uses any more are dropped.
    prune_at: usize,
}

/// Entries kept before the first pruning: far more distinct itineraries than the shipped
/// maps allow, so pruning is rare.
const PRUNE_FLOOR: usize = 256;

impl RouteCache {
    /// The route on `route`'s legs, built only if no route on the same legs is held.
    ///
    /// # Errors
    /// As [`GeofenceIndex::build_route`].
    pub fn resolve(
        &mut self,
        index: &GeofenceIndex,
        route: &Route,
    ) -> Result<RoutePath, GeofenceError> {
        let network = match self.shapes.get(&route.legs) {
            Some(network) => network.clone(),
            None => {
                let network = Arc::new(index.route_network(route)?);
                self.built += 1;
                self.prune();
                self.shapes.insert(route.legs.clone(), network.clone());
                network
            }
        };
        Ok(RoutePath {
            id: route.id.clone(),
            network,
            critical_deviation_m: route.critical_deviation_m,
        })
    }

    /// How many polylines were built since the cache was made.
    pub fn built(&self) -> u64 {
        self.built
    }

    /// Distinct polylines held.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// Drops polylines no route holds any more, once the cache has doubled since the last
    /// time, so that its size follows the open transits at a constant cost per insert.
    fn prune(&mut self) {
        if self.shapes.len() < self.prune_at.max(PRUNE_FLOOR) {
            return;
        }
        self.shapes
            .retain(|_, network| Arc::strong_count(network) > 1);
        self.prune_at = self.shapes.len() * 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::Atlas;

    fn route(id: &str, corridors: &[&str]) -> Route {
        Route {
            id: id.into(),
            legs: corridors
                .iter()
                .map(|c| RouteLeg {
                    corridor_id: (*c).into(),
                    reversed: None,
                })
                .collect(),
            critical_deviation_m: None,
        }
    }

    #[test]
    fn routes_on_the_same_legs_share_one_polyline_and_keep_their_own_ids() {
        let atlas = Atlas::embedded().expect("the shipped maps load");
        let index = GeofenceIndex::new(&atlas);
        let corridor = atlas.corridors[0].id.as_str();
        let mut cache = RouteCache::default();
        let a = cache
            .resolve(&index, &route("T-1", &[corridor]))
            .expect("a");
        let b = cache
            .resolve(&index, &route("T-2", &[corridor]))
            .expect("b");
        assert_eq!(cache.built(), 1);
        assert!(Arc::ptr_eq(&a.network, &b.network));
        assert_eq!((a.id(), b.id()), ("T-1", "T-2"));
        let other = atlas.corridors[1].id.as_str();
        cache.resolve(&index, &route("T-3", &[other])).expect("c");
        assert_eq!(cache.built(), 2);
    }

    #[test]
    fn a_route_naming_an_unknown_corridor_is_refused_and_not_cached() {
        let atlas = Atlas::embedded().expect("the shipped maps load");
        let index = GeofenceIndex::new(&atlas);
        let mut cache = RouteCache::default();
        let bad = route("T-9", &["no-such-corridor"]);
        assert!(cache.resolve(&index, &bad).is_err());
        assert!(cache.is_empty());
    }
}
