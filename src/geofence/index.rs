//! The spatial index built once from an [`Atlas`], shared by every device.

use std::collections::HashMap;
use std::sync::Arc;

use geo::{Coord, LineString};
use serde::{Deserialize, Serialize};

use super::config::GeofenceConfig;
use super::corridor::{chain_legs, Network};
use super::country::CountryIndex;
use super::event::CorridorPosition;
use super::zones::ZoneIndex;
use super::GeofenceError;
use crate::maps::{Atlas, CountryCode};
use crate::telemetry::GeoPoint;
use crate::text::SharedText;

/// Zones, countries and corridors of an atlas, indexed for the per-fix checks.
pub struct GeofenceIndex {
    pub(crate) zones: ZoneIndex,
    pub(crate) countries: CountryIndex,
    pub(crate) corridors: Network,
    corridor_lines: Vec<LineString<f64>>,
    corridor_by_id: HashMap<String, u32>,
    pub(crate) config: GeofenceConfig,
    linear: bool,
    /// Names the maps, the configuration and the saved-track format this index was built
    /// with: saved tracks are indices into it (see `saved`).
    fingerprint: String,
}

/// An approved route: corridor legs in travel order, as the transit assigns them.
///
/// Both parts are shared rather than copied: the id with the route resolved for each of the
/// transit's devices ([`RoutePath`]), the legs with every transit on the same itinerary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: SharedText,
    #[serde(with = "crate::transit::arc")]
    pub legs: Arc<[RouteLeg]>,
    /// A deviation farther than this from the route is critical (the transit rules' EAEU
    /// code 03 threshold). The engine reports the first fix beyond it on an open deviation
    /// as its own event, so the alert escalates when the evidence does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_deviation_m: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteLeg {
    pub corridor_id: String,
    /// Travel against the corridor's drawing direction. `None` orients the leg so it
    /// continues from the previous one, which is what a list of corridor ids usually means.
    #[serde(default)]
    pub reversed: Option<bool>,
}

/// A route resolved against the index: one polyline with chainage. The polyline is shared
/// by every transit on the same legs ([`RouteCache`](super::RouteCache)); only the id is the
/// transit's own. Held in the device's route state itself, not behind a pointer: a truck's
/// route is its transit's alone, so there is nothing to share beyond the polyline.
pub struct RoutePath {
    pub(crate) id: SharedText,
    pub(crate) network: Arc<Network>,
    pub(crate) critical_deviation_m: Option<f64>,
}

impl RoutePath {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn length_m(&self) -> f64 {
        self.network.length_m(0)
    }
}

/// What the maps say about one point (for `caravan maps locate` and debugging).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Location {
    pub country: Option<CountryCode>,
    pub zones: Vec<String>,
    pub corridor: Option<CorridorPosition>,
}

impl GeofenceIndex {
    /// Builds the index with the default thresholds.
    pub fn new(atlas: &Atlas) -> Self {
        Self::with_config(atlas, GeofenceConfig::default())
    }

    /// Builds the index; the border tolerance and the enclave size shape the country index.
    pub fn with_config(atlas: &Atlas, config: GeofenceConfig) -> Self {
        Self::build(atlas, config, false)
    }

    /// The same checks with linear scans and unindexed point-in-polygon tests: the
    /// reference the bench measures the index against and the property tests compare with.
    pub fn naive(atlas: &Atlas, config: GeofenceConfig) -> Self {
        Self::build(atlas, config, true)
    }

    fn build(atlas: &Atlas, config: GeofenceConfig, linear: bool) -> Self {
        let corridors: Vec<(String, f64)> = atlas
            .corridors
            .iter()
            .map(|c| (c.id.clone(), c.width_m))
            .collect();
        let paths = atlas
            .corridors
            .iter()
            .enumerate()
            .map(|(i, c)| c.route.0.iter().map(|p| (*p, i as u32)).collect())
            .collect();
        Self {
            zones: ZoneIndex::new(atlas, linear),
            countries: CountryIndex::new(
                atlas,
                config.border_tolerance_m,
                config.enclave_max_area_km2,
                linear,
            ),
            corridors: Network::new(paths, corridors, linear),
            corridor_lines: atlas.corridors.iter().map(|c| c.route.clone()).collect(),
            corridor_by_id: atlas
                .corridors
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.clone(), i as u32))
                .collect(),
            fingerprint: fingerprint(atlas, &config, linear),
            config,
            linear,
        }
    }

    pub fn config(&self) -> &GeofenceConfig {
        &self.config
    }

    /// What a saved track must have been written with to be taken up by this index.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Resolves a route's legs into one polyline.
    ///
    /// # Errors
    /// [`GeofenceError::UnknownCorridor`] for a leg naming no corridor of the atlas, and
    /// [`GeofenceError::EmptyRoute`] for a route with no usable segment.
    pub fn build_route(&self, route: &Route) -> Result<RoutePath, GeofenceError> {
        Ok(RoutePath {
            id: route.id.clone(),
            network: Arc::new(self.route_network(route)?),
            critical_deviation_m: route.critical_deviation_m,
        })
    }

    /// The polyline of a route's legs, with its segment index: what routes on the same legs
    /// can share.
    pub(crate) fn route_network(&self, route: &Route) -> Result<Network, GeofenceError> {
        let mut legs = Vec::with_capacity(route.legs.len());
        for leg in route.legs.iter() {
            let i = *self
                .corridor_by_id
                .get(&leg.corridor_id)
                .ok_or_else(|| GeofenceError::UnknownCorridor(leg.corridor_id.clone()))?;
            legs.push((&self.corridor_lines[i as usize], leg.reversed, i));
        }
        let points = chain_legs(&legs);
        if points.len() < 2 {
            return Err(GeofenceError::EmptyRoute(route.id.to_string()));
        }
        let corridors = (0..self.corridor_lines.len() as u32)
            .map(|i| {
                (
                    self.corridors.corridor_id(i).to_owned(),
                    self.corridors.width_m(i),
                )
            })
            .collect();
        Ok(Network::new(vec![points], corridors, self.linear))
    }

    /// Country, zones and nearest corridor of one point.
    pub fn locate(&self, point: GeoPoint) -> Location {
        let c = Coord {
            x: point.lon,
            y: point.lat,
        };
        let country = self.countries.part_at(c, None);
        let zones = self.zones.at(c);
        let corridor = self
            .corridors
            .locate(c, None, self.config.corridor_search_m, false)
            .map(|p| CorridorPosition {
                id: self.corridors.corridor_id(p.corridor).to_owned(),
                route_id: None,
                distance_m: p.distance_m,
                chainage_m: p.chainage_m,
            });
        Location {
            country: country.map(|p| self.countries.code(p)),
            zones: zones
                .iter()
                .map(|z| self.zones.zone(z).id.clone())
                .collect(),
            corridor,
        }
    }
}

/// A digest of everything the indices in a saved track depend on. The atlas's debug form is
/// complete (every coordinate of every zone, part and corridor), which is what matters
/// here, not its look.
fn fingerprint(atlas: &Atlas, config: &GeofenceConfig, linear: bool) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    // The release too: a record is the engine's own types, whose layout may change with
    // any release; the one start after an upgrade replays instead.
    let release = env!("CARGO_PKG_VERSION");
    h.update(format!("track-format-{} {release}\n", super::saved::FORMAT));
    h.update(format!("{atlas:?}\n{config:?}\n{linear}"));
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
