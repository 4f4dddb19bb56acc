//! A vehicle on its declared transits: it declares each before it leaves an office, keeps
//! its BCP waits within the deadline, notes its incidents on the transit, and at the office
//! of destination either completes the transit or stays parked for customs.

use super::incident::{IncidentKind, Injected};
use super::message::{rfc3339, Outgoing};
use super::route::Route;
use super::trip::{self, Trip, TripEvent, TripRequest};
use super::vehicle::{plate, uniform, Activity, Params, Placed, Vehicle, Wait};
use crate::telemetry::SealEventKind;

impl Vehicle {
    /// Records a truth line on the vehicle's transit, with the alerts it should raise.
    pub(super) fn note(&mut self, mut injected: Injected, truth: &mut Vec<Injected>) {
        if let Some(trip) = &mut self.trip {
            injected.transit_id = Some(trip.transit_id.clone());
            trip.incidents += 1;
        }
        injected.expected = super::expect::alerts_for(&injected);
        truth.push(injected);
    }

    /// A transit past its deadline before arriving is recorded once (see `Wait` caps).
    pub(super) fn check_deadline(&mut self, route: &Route, truth: &mut Vec<Injected>) {
        let Some(trip) = &self.trip else { return };
        if trip.arrived || trip.overdue || self.t <= trip.deadline {
            return;
        }
        let mut injected = self.injected(IncidentKind::Overdue, route);
        injected.at = rfc3339(trip.deadline);
        if let Some(trip) = &mut self.trip {
            trip.overdue = true;
        }
        self.note(injected, truth);
    }

    /// Lodges the declaration of the vehicle's next transit, leaving at `departs_at`.
    pub(super) fn declare(
        &mut self,
        route: &Route,
        params: &Params,
        departs_at: i64,
        position: usize,
        trips: &mut Vec<Placed>,
    ) {
        let (Some(run), Some(plan)) = (
            &params.transits,
            route.plans.get(if self.forward { 0 } else { 1 }),
        ) else {
            return;
        };
        self.trips_declared += 1;
        let plate = plate(self.index);
        let request = TripRequest {
            plan,
            reference: trip::reference(run, self.index, self.trips_declared),
            device_id: &self.tracker.device_id,
            plate: &plate,
            vehicle: self.index,
            number: self.trips_declared,
            seal_id: &self.tracker.seal_id,
            departs_at,
        };
        let transit_id = request.transit_id().to_string();
        self.trip = Some(Trip {
            number: self.trips_declared,
            transit_id: transit_id.clone(),
            reference: request.reference.clone(),
            seal_id: self.tracker.seal_id.clone(),
            departs_at,
            deadline: request.deadline(),
            incidents: 0,
            arrived: false,
            overdue: false,
        });
        let event = TripEvent::Declared {
            device_id: self.tracker.device_id.clone(),
            transit_id,
            declaration: Box::new(request.declaration()),
            at: self.t,
        };
        trips.push((position, event));
    }

    /// At the end of the route (the office of destination, with transits): the seal is
    /// opened for unloading, which takes 1–4 h.
    pub(super) fn reach_terminal(&mut self, out: &mut Vec<Outgoing>, route: &Route) {
        self.speed_kmh = 0.0;
        self.detour = None;
        if let Some(trip) = &mut self.trip {
            trip.arrived = true;
        }
        let sample = self.sample(route);
        let covered = !route.in_gap(self.chainage);
        if self.device_on() {
            self.tracker
                .seal_event(&sample, SealEventKind::Opened, covered, out);
        }
        let unloading = uniform(&mut self.rng, 3_600.0, 14_400.0) as i64;
        self.activity = Activity::Waiting {
            until: self.t + unloading,
            why: Wait::Terminal,
        };
    }

    /// After unloading at the end of a transit: one without incidents is completed (the
    /// office of destination closes it) and the vehicle goes on; one with incidents waits
    /// for customs, parked. True when the vehicle parks.
    pub(super) fn hold(&mut self, trips: &mut Vec<Placed>, position: usize) -> bool {
        let Some(trip) = &self.trip else {
            return false;
        };
        if trip.incidents > 0 {
            self.activity = Activity::Waiting {
                until: i64::MAX,
                why: Wait::Held,
            };
            self.speed_kmh = 0.0;
            return true;
        }
        let event = TripEvent::Completed {
            device_id: self.tracker.device_id.clone(),
            transit_id: trip.transit_id.clone(),
            at: self.t,
        };
        trips.push((position, event));
        false
    }

    /// The longest BCP wait that still lets the vehicle keep its transit's deadline: the
    /// rest of the route at 30 km/h, with three hours to spare (Caravan judges deadlines on
    /// its own clock, which simulated time trails, so an overdue transit cannot be checked).
    pub(super) fn wait_allowed_s(&self, route: &Route, at: f64) -> f64 {
        let Some(trip) = &self.trip else {
            return f64::INFINITY;
        };
        let rest_m = if self.forward {
            route.length_m() - at
        } else {
            at
        };
        let need_s = rest_m / (30.0 / 3.6) + 3.0 * 3600.0;
        (trip.deadline - self.t) as f64 - need_s
    }
}
