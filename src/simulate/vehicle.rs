//! One truck on its corridor, one simulated second at a time: driving, waiting at BCPs and
//! terminals, with the incidents staged on it (`staging.rs`) and its declared transits
//! (`on_transit.rs`).
//!
//! Speeds are altitude-free: the maps carry no elevation, so "slower on passes" is modelled
//! as 55 % of cruising speed inside the coverage-gap zones (every shipped gap is a mountain
//! pass) and a crawl near BCPs and terminals. Cruising speeds of 44–58 km/h with those
//! slowdowns average close to the CAREC CPMM 2022 figure of 42 km/h without delay.

use super::incident::{IncidentKind, IncidentRates, Injected};
use super::message::Outgoing;
use super::reporting::{Reporting, Sample};
use super::route::{offset, Route};
use super::staging::Detour;
use super::tracker::Tracker;
use super::trip::{Trip, TripEvent};
use crate::telemetry::SealEventKind;

/// A trip event with the position in the step's messages before which it happens.
pub type Placed = (usize, TripEvent);

/// What the whole fleet shares.
#[derive(Clone, Debug)]
pub struct Params {
    pub reporting: Reporting,
    pub rates: IncidentRates,
    /// Mean wait at a BCP, seconds (exponential, clamped to 0.5–48 h).
    pub bcp_wait_mean_s: f64,
    /// Chance that a BCP wait includes an inspection that opens and closes the seal.
    pub inspection_share: f64,
    /// Set when vehicles drive declared transits: the run's tag in transit references.
    pub transits: Option<String>,
    /// The countries, so that a staged deviation does not cross a border by accident (only
    /// with transits, where an alert would follow).
    pub borders: Option<std::sync::Arc<super::borders::Borders>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Wait {
    Bcp(usize),
    /// Unloading at the end of the route; the vehicle then turns round.
    Terminal,
    Stop,
    /// Loading at the office of departure, with the transit declared.
    Loading,
    /// Parked at the office of destination until customs clears a transit with incidents.
    Held,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Activity {
    Driving,
    Waiting { until: i64, why: Wait },
}

/// The range of cruising speeds, km/h: a vehicle drives no faster than the top of it.
pub(super) const CRUISE_KMH: (f64, f64) = (44.0, 58.0);

#[derive(Clone, Debug)]
pub struct Vehicle {
    pub route: usize,
    pub(super) chainage: f64,
    pub(super) forward: bool,
    pub(super) cruise_kmh: f64,
    pub(super) speed_kmh: f64,
    pub(super) activity: Activity,
    pub(super) next_bcp: Option<usize>,
    pub(super) detour: Option<Detour>,
    /// The BCP the current detour goes round.
    pub(super) bypass: Option<usize>,
    pub(super) crossing_armed: bool,
    /// How far the armed crossing goes round its BCP, at least the BCP's clearance.
    pub(super) crossing_peak_m: f64,
    /// A pending GNSS jump: distance in metres and bearing.
    pub(super) jump: Option<(f64, f64)>,
    pub(super) silent_until: i64,
    /// When the vehicle last set off after a wait.
    pub(super) driving_since: i64,
    pub(super) next_incident: [i64; 6],
    pub(super) seal_plan: Vec<(i64, SealEventKind)>,
    pub(super) rng: fastrand::Rng,
    pub tracker: Tracker,
    /// The last simulated second this vehicle has lived.
    pub t: i64,
    started: bool,
    /// The vehicle's place in the fleet (for transit references and plates).
    pub(super) index: usize,
    /// The declared transit the vehicle is on, when the run declares transits.
    pub(super) trip: Option<Trip>,
    pub(super) trips_declared: u32,
}

/// The plate of the `index`-th vehicle of a fleet.
pub fn plate(index: usize) -> String {
    format!("{:02}SIM{:03}", index % 100, index % 1000)
}

pub(super) fn uniform(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> f64 {
    lo + rng.f64() * (hi - lo)
}

/// An exponential draw with this mean.
pub(super) fn exponential(rng: &mut fastrand::Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.f64()).ln()
}

impl Vehicle {
    /// A vehicle somewhere along `route`, heading either way, alive from `start`.
    /// With transits, the vehicle starts loading at one of the route's offices instead.
    pub fn new(
        (index, route_index): (usize, usize),
        route: &Route,
        tracker: Tracker,
        start: i64,
        params: &Params,
        mut rng: fastrand::Rng,
    ) -> Self {
        let forward = rng.bool();
        let mut chainage = uniform(&mut rng, 0.05, 0.95) * route.length_m();
        let cruise_kmh = uniform(&mut rng, CRUISE_KMH.0, CRUISE_KMH.1);
        let mut activity = Activity::Driving;
        if params.transits.is_some() && !route.plans.is_empty() {
            chainage = if forward { 0.0 } else { route.length_m() };
            let loading = uniform(&mut rng, 600.0, 3_600.0) as i64;
            activity = Activity::Waiting {
                until: start + loading,
                why: Wait::Loading,
            };
        }
        let mut vehicle = Self {
            route: route_index,
            chainage,
            forward,
            cruise_kmh,
            speed_kmh: cruise_kmh,
            activity,
            next_bcp: None,
            detour: None,
            bypass: None,
            crossing_armed: false,
            crossing_peak_m: 0.0,
            jump: None,
            silent_until: i64::MIN,
            driving_since: i64::MIN,
            next_incident: [i64::MAX; 6],
            seal_plan: Vec::new(),
            rng,
            tracker,
            t: start,
            started: false,
            index,
            trip: None,
            trips_declared: 0,
        };
        vehicle.next_bcp = vehicle.bcp_ahead(route);
        for kind in IncidentKind::ALL {
            vehicle.schedule(kind, start, &params.rates);
        }
        vehicle
    }

    /// Lives every second after `self.t` up to and including `until`.
    pub fn advance(
        &mut self,
        route: &Route,
        until: i64,
        params: &Params,
        out: &mut Vec<Outgoing>,
        truth: &mut Vec<Injected>,
        trips: &mut Vec<Placed>,
    ) {
        while self.t < until {
            self.t += 1;
            self.tick(route, params, out, truth, trips);
        }
    }

    fn tick(
        &mut self,
        route: &Route,
        params: &Params,
        out: &mut Vec<Outgoing>,
        truth: &mut Vec<Injected>,
        trips: &mut Vec<Placed>,
    ) {
        let t = self.t;
        self.drive(route, params, out, trips);
        let sample = self.sample(route);
        let covered = !route.in_gap(self.chainage);
        if !self.started {
            self.started = true;
            if let Activity::Waiting {
                until,
                why: Wait::Loading,
            } = self.activity
            {
                self.declare(route, params, until, out.len(), trips);
            }
            self.tracker
                .seal_event(&sample, SealEventKind::Armed, covered, out);
        }
        self.check_deadline(route, truth);
        self.stage_incidents(route, params, &sample, out, truth);
        if !self.device_on() {
            return;
        }
        while let Some(&(at, event)) = self.seal_plan.first() {
            if at > t {
                break;
            }
            self.seal_plan.remove(0);
            self.tracker.seal_event(&sample, event, covered, out);
        }
        self.tracker
            .set_rssi(-85.0 + uniform(&mut self.rng, -8.0, 8.0));
        let jump = self.jump.take();
        let sample = match jump {
            Some((distance, bearing)) => {
                let (lat, lon) = offset((sample.lat, sample.lon), bearing, distance);
                Sample { lat, lon, ..sample }
            }
            None => sample,
        };
        let was_low = self.tracker.battery_low();
        let seq = self.tracker.tick(&sample, covered, jump.is_some(), out);
        if let (Some((distance, _)), Some(seq)) = (jump, seq) {
            let mut injected = self.injected(IncidentKind::GnssJump, route);
            injected.distance_m = Some(distance.round());
            injected.seq = Some(seq);
            self.note(injected, truth);
        }
        if !was_low && self.tracker.battery_low() && self.trip.is_some() {
            let injected = self.injected(IncidentKind::LowBattery, route);
            self.note(injected, truth);
        }
    }

    /// False while the device is silent: it then records and sends nothing.
    pub(super) fn device_on(&self) -> bool {
        self.t >= self.silent_until
    }

    /// Where the vehicle is now, with its detour, as the receiver would report it.
    pub(super) fn sample(&mut self, route: &Route) -> Sample {
        let place = route.place(self.chainage);
        let heading = if self.forward {
            place.bearing
        } else {
            (place.bearing + 180.0) % 360.0
        };
        let mut point = (place.lat, place.lon);
        if let Some(detour) = self.detour {
            let off = detour.offset_m(self.t);
            point = offset(point, detour.bearing, off);
            if self.t >= detour.end {
                self.detour = None;
            }
        }
        Sample {
            t: self.t,
            lat: point.0,
            lon: point.1,
            speed_kmh: self.speed_kmh,
            heading_deg: (heading + uniform(&mut self.rng, -1.5, 1.5)).rem_euclid(360.0),
        }
    }

    /// The index of the next BCP in the direction of travel, if any.
    pub(super) fn bcp_ahead(&self, route: &Route) -> Option<usize> {
        let ahead = |c: f64| {
            if self.forward {
                c > self.chainage + 1.0
            } else {
                c < self.chainage - 1.0
            }
        };
        let mut indices = (0..route.bcps.len()).filter(|&i| ahead(route.bcps[i].chainage_m));
        if self.forward {
            indices.next()
        } else {
            indices.next_back()
        }
    }

    /// One second of motion: waits end, speed follows the road, BCPs and terminals stop us.
    fn drive(
        &mut self,
        route: &Route,
        params: &Params,
        out: &mut Vec<Outgoing>,
        trips: &mut Vec<Placed>,
    ) {
        if let Activity::Waiting { until, why } = self.activity {
            if self.t < until {
                self.speed_kmh = 0.0;
                return;
            }
            self.activity = Activity::Driving;
            self.driving_since = self.t;
            if why == Wait::Terminal {
                if self.hold(trips, out.len()) {
                    return;
                }
                self.forward = !self.forward;
                let sample = self.sample(route);
                let covered = !route.in_gap(self.chainage);
                if self.device_on() {
                    self.tracker.reseal(&sample, covered, out);
                }
                if self.trip.is_some() {
                    let loading = uniform(&mut self.rng, 1_800.0, 7_200.0) as i64;
                    let until = self.t + loading;
                    self.declare(route, params, until, out.len(), trips);
                    self.activity = Activity::Waiting {
                        until,
                        why: Wait::Loading,
                    };
                    return;
                }
            }
            self.next_bcp = self.bcp_ahead(route);
        }
        let target = self.target_speed(route);
        let step = (target - self.speed_kmh).clamp(-3.0, 1.5);
        self.speed_kmh = (self.speed_kmh + step).max(0.0);
        if self.t % 120 == 0 {
            self.cruise_kmh = (self.cruise_kmh + uniform(&mut self.rng, -3.0, 3.0))
                .clamp(CRUISE_KMH.0, CRUISE_KMH.1);
        }
        let metres = self.speed_kmh / 3.6;
        let before = self.chainage;
        self.chainage += if self.forward { metres } else { -metres };
        if let Some(i) = self.next_bcp {
            let at = route.bcps[i].chainage_m;
            if (before - at).signum() != (self.chainage - at).signum() {
                self.reach_bcp(i, at, route, params);
                return;
            }
        }
        if self.chainage <= 0.0 || self.chainage >= route.length_m() {
            self.chainage = self.chainage.clamp(0.0, route.length_m());
            self.reach_terminal(out, route);
        }
    }

    fn target_speed(&self, route: &Route) -> f64 {
        if let Some(steady) = self.detour.and_then(|d| d.steady_kmh) {
            return steady;
        }
        let mut target = self.cruise_kmh;
        if route.in_gap(self.chainage) {
            target *= 0.55;
        }
        let near_bcp = route
            .bcps
            .iter()
            .any(|b| (b.chainage_m - self.chainage).abs() < 5_000.0);
        // Off the road, a vehicle does not queue at the post it goes round.
        if near_bcp && self.detour.is_none() {
            target = target.min(25.0);
        }
        let to_end = self.chainage.min(route.length_m() - self.chainage);
        if to_end < 3_000.0 {
            target = target.min(30.0);
        }
        target
    }

    fn reach_bcp(&mut self, i: usize, at: f64, route: &Route, params: &Params) {
        if self.bypass == Some(i) {
            self.bypass = None;
            self.next_bcp = self.bcp_ahead(route);
            return;
        }
        self.chainage = at;
        self.speed_kmh = 0.0;
        let wait = exponential(&mut self.rng, params.bcp_wait_mean_s)
            .clamp(1_800.0, 172_800.0)
            .min(self.wait_allowed_s(route, at).max(1_800.0));
        let until = self.t + wait as i64;
        self.activity = Activity::Waiting {
            until,
            why: Wait::Bcp(i),
        };
        if self.rng.f64() < params.inspection_share {
            let opened = self.t + (wait * 0.3) as i64;
            let closed = self.t + (wait * 0.6) as i64;
            self.seal_plan.push((opened, SealEventKind::Opened));
            self.seal_plan.push((closed, SealEventKind::Closed));
        }
    }
}
