//! The fleet: every vehicle on its corridor, advanced together to a simulated instant.

use super::borders::Borders;
use super::incident::{IncidentRates, Injected};
use super::message::Outgoing;
use super::reporting::Reporting;
use super::route::Route;
use super::tracker::Tracker;
use super::trip::{TripEvent, TripPlan};
use super::truth::HeldEvidence;
use super::vehicle::{plate, Params, Placed, Vehicle};
use crate::maps::Atlas;
use crate::transit::TransitRules;

/// CAREC CPMM 2022: average time at a BCP, 9.9 hours.
pub const CPMM_BCP_WAIT_S: f64 = 9.9 * 3600.0;

/// Everything that shapes a fleet; equal configs give equal fleets and equal messages.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub vehicles: usize,
    pub seed: u64,
    /// Simulated unix seconds at which the fleet starts.
    pub start: i64,
    pub reporting: Reporting,
    pub rates: IncidentRates,
    pub bcp_wait_mean_s: f64,
    /// Device ids are `{prefix}-{index}`, so reruns with the same prefix reuse them.
    pub device_prefix: String,
    /// Seqs of every device continue from here (reruns pass a higher base).
    pub seq_base: u64,
    /// Drive declared transits, office to office, with this tag in their references (unique
    /// per run, so that reruns declare new transits); `None` drives without transits.
    pub transits: Option<String>,
}

impl FleetConfig {
    pub fn new(vehicles: usize, seed: u64, start: i64) -> Self {
        Self {
            vehicles,
            seed,
            start,
            reporting: Reporting::Teltonika,
            rates: IncidentRates::default(),
            bcp_wait_mean_s: CPMM_BCP_WAIT_S,
            device_prefix: format!("sim{seed}"),
            seq_base: 0,
            transits: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimulateError {
    #[error("the maps hold no corridor with a length to drive")]
    NoCorridors,
    #[error("the shipped transit rules do not load: {0}")]
    Rules(String),
}

/// A registered identity of one simulated vehicle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetDevice {
    pub device_id: String,
    pub plate: String,
    pub corridor: String,
}

pub struct Fleet {
    routes: Vec<Route>,
    pub(super) vehicles: Vec<Vehicle>,
    params: Params,
    truth: Vec<Injected>,
    trips: Vec<Placed>,
}

impl Fleet {
    /// Places `config.vehicles` vehicles on the corridors of `atlas`, spread over them.
    /// With transits, only the corridors between two customs offices are driven, from
    /// office to office.
    ///
    /// # Errors
    /// [`SimulateError::NoCorridors`] when the atlas has no usable corridor;
    /// [`SimulateError::Rules`] when the shipped transit rules do not load.
    pub fn new(atlas: &Atlas, config: &FleetConfig) -> Result<Fleet, SimulateError> {
        let routes: Vec<Route> = match config.transits {
            None => atlas
                .corridors
                .iter()
                .filter_map(|c| Route::new(atlas, c))
                .collect(),
            Some(_) => {
                let rules =
                    TransitRules::shipped().map_err(|e| SimulateError::Rules(e.to_string()))?;
                let borders = Borders::new(atlas);
                atlas
                    .corridors
                    .iter()
                    .filter_map(|c| {
                        let mut route = Route::between_offices(atlas, c)?;
                        if !route.changes_country_only_at_bcps(&borders) {
                            return None;
                        }
                        route.plans = TripPlan::for_route(atlas, rules, &route)?.to_vec();
                        Some(route)
                    })
                    .collect()
            }
        };
        if routes.is_empty() {
            return Err(SimulateError::NoCorridors);
        }
        let params = Params {
            reporting: config.reporting,
            rates: config.rates.clone(),
            bcp_wait_mean_s: config.bcp_wait_mean_s.max(60.0),
            inspection_share: 0.15,
            transits: config.transits.clone(),
            borders: config
                .transits
                .as_ref()
                .map(|_| std::sync::Arc::new(Borders::new(atlas))),
        };
        let vehicles = (0..config.vehicles)
            .map(|i| {
                let mut rng = fastrand::Rng::with_seed(
                    config.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let route = rng.usize(..routes.len());
                let battery = 40.0 + rng.f64() * 60.0;
                let device_id = format!("{}-{i:05}", config.device_prefix);
                let tracker = Tracker::new(device_id, config.reporting, config.seq_base, battery);
                Vehicle::new(
                    (i, route),
                    &routes[route],
                    tracker,
                    config.start,
                    &params,
                    rng,
                )
            })
            .collect();
        Ok(Fleet {
            routes,
            vehicles,
            params,
            truth: Vec::new(),
            trips: Vec::new(),
        })
    }

    /// The devices to register before publishing.
    pub fn devices(&self) -> Vec<FleetDevice> {
        self.vehicles
            .iter()
            .enumerate()
            .map(|(i, v)| FleetDevice {
                device_id: v.tracker.device_id.clone(),
                plate: plate(i),
                corridor: self.routes[v.route].corridor_id.clone(),
            })
            .collect()
    }

    /// Lives every vehicle up to simulated second `now`; returns what the devices send, in
    /// order per device. Calls with `now` in the past do nothing.
    pub fn step(&mut self, now: i64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.trips.clear();
        for vehicle in &mut self.vehicles {
            let route = &self.routes[vehicle.route];
            let (truth, trips) = (&mut self.truth, &mut self.trips);
            vehicle.advance(route, now, &self.params, &mut out, truth, trips);
        }
        out
    }

    /// The transit events of the last [`Fleet::step`], each with the index of the first
    /// message of that step that must wait for it (messages before it go first).
    pub fn take_trips(&mut self) -> Vec<(usize, TripEvent)> {
        let mut trips = std::mem::take(&mut self.trips);
        trips.sort_by_key(|(position, _)| *position);
        trips
    }

    /// The incidents injected since the last call, in the order they happened per vehicle.
    pub fn take_truth(&mut self) -> Vec<Injected> {
        std::mem::take(&mut self.truth)
    }

    /// Fixes recorded but still waiting for coverage, across the fleet.
    pub fn buffered_fixes(&self) -> usize {
        self.vehicles.iter().map(|v| v.tracker.buffered()).sum()
    }

    /// The devices still holding evidence out of coverage, for the end of a run.
    pub fn held_evidence(&self) -> Vec<HeldEvidence> {
        self.vehicles
            .iter()
            .filter_map(|v| {
                let since = v.tracker.holding_since()?;
                Some(HeldEvidence {
                    device_id: v.tracker.device_id.clone(),
                    since: since.to_owned(),
                    fixes: v.tracker.buffered(),
                })
            })
            .collect()
    }

    pub fn vehicles(&self) -> &[Vehicle] {
        &self.vehicles
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}
