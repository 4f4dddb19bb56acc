//! Staging incidents on a vehicle at their scheduled times, and the truth of each.
//!
//! Each kind follows its own Poisson process per vehicle. An incident that cannot be staged
//! where the vehicle is (say, a stop while it waits at a BCP) is tried again ten minutes
//! later, so the realised rate stays close to the configured one.

use super::incident::{IncidentKind, IncidentRates, Injected};
use super::message::{rfc3339, Outgoing};
use super::reporting::Sample;
use super::route::Route;
use super::vehicle::{exponential, uniform, Activity, Detour, Params, Vehicle, Wait};
use crate::telemetry::SealEventKind;

const RETRY_S: i64 = 600;
const DAY_S: f64 = 86_400.0;
/// How far before a BCP a crossing detour leaves the road.
const CROSSING_LEAD_M: (f64, f64) = (15_000.0, 20_000.0);

impl Vehicle {
    pub(super) fn schedule(&mut self, kind: IncidentKind, now: i64, rates: &IncidentRates) {
        let rate = rates.get(kind);
        self.next_incident[kind as usize] = if rate > 0.0 {
            now.saturating_add(exponential(&mut self.rng, DAY_S / rate).ceil() as i64)
        } else {
            i64::MAX
        };
    }

    /// Driving, on the corridor, away from BCPs, terminals and coverage gaps, and not already
    /// in the middle of another incident.
    fn on_open_road(&self, route: &Route) -> bool {
        let away_from_bcps = route
            .bcps
            .iter()
            .all(|b| (b.chainage_m - self.chainage).abs() > 15_000.0);
        let to_end = self.chainage.min(route.length_m() - self.chainage);
        self.activity == Activity::Driving
            && self.detour.is_none()
            && self.t >= self.silent_until
            && !self.crossing_armed
            && away_from_bcps
            && to_end > 10_000.0
            && !route.in_gap(self.chainage)
    }

    /// A truth record for `kind` starting now, where the vehicle is on its corridor.
    pub(super) fn injected(&self, kind: IncidentKind, route: &Route) -> Injected {
        let place = route.place(self.chainage);
        Injected {
            kind,
            device_id: self.tracker.device_id.clone(),
            at: rfc3339(self.t),
            until: None,
            lat: (place.lat * 1e6).round() / 1e6,
            lon: (place.lon * 1e6).round() / 1e6,
            corridor: route.corridor_id.clone(),
            distance_m: None,
            bcp: None,
            seal_id: None,
            event: None,
            seq: None,
        }
    }

    pub(super) fn stage_incidents(
        &mut self,
        route: &Route,
        params: &Params,
        sample: &Sample,
        out: &mut Vec<Outgoing>,
        truth: &mut Vec<Injected>,
    ) {
        if self.crossing_armed {
            if let Some(injected) = self.start_crossing(route) {
                truth.push(injected);
            }
        }
        for kind in IncidentKind::ALL {
            if self.t < self.next_incident[kind as usize] {
                continue;
            }
            let staged = self.stage(kind, route, sample, out);
            match staged {
                Some(Some(injected)) => truth.push(injected),
                Some(None) => {}
                None => {
                    self.next_incident[kind as usize] = self.t + RETRY_S;
                    continue;
                }
            }
            self.schedule(kind, self.t, &params.rates);
        }
    }

    /// Stages one incident. `None`: not possible here; `Some(None)`: started, its truth comes
    /// later (a GNSS jump with its fix, a crossing when the vehicle nears a BCP).
    fn stage(
        &mut self,
        kind: IncidentKind,
        route: &Route,
        sample: &Sample,
        out: &mut Vec<Outgoing>,
    ) -> Option<Option<Injected>> {
        if !self.on_open_road(route) {
            return None;
        }
        let mut injected = self.injected(kind, route);
        match kind {
            IncidentKind::RouteDeviation => {
                let minutes = uniform(&mut self.rng, 20.0, 60.0);
                let peak_m = route.width_m + uniform(&mut self.rng, 4_000.0, 10_000.0);
                let end = self.detour(minutes, peak_m);
                injected.until = Some(rfc3339(end));
                injected.distance_m = Some(peak_m.round());
            }
            IncidentKind::UnauthorisedStop => {
                let until = self.t + uniform(&mut self.rng, 2_700.0, 7_200.0) as i64;
                self.activity = Activity::Waiting {
                    until,
                    why: Wait::Stop,
                };
                self.speed_kmh = 0.0;
                injected.until = Some(rfc3339(until));
            }
            IncidentKind::SealBreach => {
                let event = if self.rng.bool() {
                    SealEventKind::RopeCut
                } else {
                    SealEventKind::CaseBreach
                };
                let seq = self.tracker.seal_event(sample, event, true, out);
                injected.seq = Some(seq);
                injected.seal_id = Some(self.tracker.seal_id.clone());
                injected.event = serde_json::to_value(event)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
            }
            IncidentKind::CrossingOutsideBcp => {
                let inland = |c: f64| c > 25_000.0 && route.length_m() - c > 25_000.0;
                if !route.bcps.iter().any(|b| inland(b.chainage_m)) {
                    return None;
                }
                self.crossing_armed = true;
                return Some(None);
            }
            IncidentKind::GnssJump => {
                // Across the road, so the jump cannot land back on the corridor.
                let distance = uniform(&mut self.rng, 50_000.0, 300_000.0);
                let side = if self.rng.bool() { 90.0 } else { -90.0 };
                let bearing = sample.heading_deg + side + uniform(&mut self.rng, -15.0, 15.0);
                self.jump = Some((distance, bearing));
                return Some(None);
            }
            IncidentKind::DeviceSilent => {
                self.silent_until = self.t + uniform(&mut self.rng, 7_200.0, 21_600.0) as i64;
                injected.until = Some(rfc3339(self.silent_until));
            }
        }
        Some(Some(injected))
    }

    /// Leaves the corridor now for `minutes`, reaching `peak_m` off it; returns the end.
    fn detour(&mut self, minutes: f64, peak_m: f64) -> i64 {
        let end = self.t + (minutes * 60.0) as i64;
        self.detour = Some(Detour {
            start: self.t,
            end,
            peak_m,
            side: if self.rng.bool() { 1.0 } else { -1.0 },
        });
        end
    }

    /// Goes round the next BCP once it is 15–20 km ahead and the road goes on 25 km past it.
    fn start_crossing(&mut self, route: &Route) -> Option<Injected> {
        let i = self.next_bcp?;
        let bcp = &route.bcps[i];
        let ahead = (bcp.chainage_m - self.chainage).abs();
        let beyond = if self.forward {
            route.length_m() - bcp.chainage_m
        } else {
            bcp.chainage_m
        };
        let ready = self.activity == Activity::Driving
            && self.detour.is_none()
            && (CROSSING_LEAD_M.0..=CROSSING_LEAD_M.1).contains(&ahead)
            && beyond > 25_000.0;
        if !ready {
            return None;
        }
        self.crossing_armed = false;
        self.bypass = Some(i);
        let speed_ms = self.cruise_kmh.max(30.0) / 3.6;
        let minutes = (ahead + 20_000.0) / speed_ms / 60.0;
        let peak_m = uniform(&mut self.rng, 15_000.0, 25_000.0);
        let end = self.detour(minutes, peak_m);
        let mut injected = self.injected(IncidentKind::CrossingOutsideBcp, route);
        injected.until = Some(rfc3339(end));
        injected.distance_m = Some(peak_m.round());
        injected.bcp = Some(bcp.id.clone());
        Some(injected)
    }
}
