//! Staging incidents on a vehicle at their scheduled times, and the truth of each.
//!
//! Each kind follows its own Poisson process per vehicle. An incident that cannot be staged
//! where the vehicle is (say, a stop while it waits at a BCP) is tried again ten minutes
//! later, so the realised rate stays close to the configured one.

use super::crossing::CONTROL_CLEARANCE_M;
use super::incident::{IncidentKind, IncidentRates, Injected};
use super::message::{rfc3339, Outgoing};
use super::reporting::Sample;
use super::route::{offset, Route};
use super::vehicle::{exponential, uniform, Activity, Params, Vehicle, Wait, CRUISE_KMH};
use crate::telemetry::SealEventKind;

const RETRY_S: i64 = 600;
const DAY_S: f64 = 86_400.0;
/// A GNSS jump is staged only this soon after the last fix, seconds.
const JUMP_AFTER_FIX_S: i64 = 30;
/// How long a staged silence lasts, seconds (2–6 h).
const SILENCE_S: (f64, f64) = (7_200.0, 21_600.0);
/// How far from any coverage-gap zone a silence starts, metres. Caravan allows a fix inside
/// such a zone the zone's longer silence, so a silence whose last fix lies there (in the
/// zone's covered fringe, or just before the vehicle left it) is no tracking gap; a few
/// kilometres is more than a moving tracker's reporting interval covers.
const SILENCE_GAP_CLEARANCE_M: f64 = 5_000.0;
/// How long a vehicle drives after any wait before an incident starts, seconds: a stop
/// staged as the last one ends would be, to Caravan, the same stop.
const SETTLE_S: i64 = 600;

/// Sideways speed of a vehicle leaving or rejoining its corridor on a detour, m/s (60 km/h):
/// together with its speed along the road it stays a plausible truck's.
const DETOUR_SIDEWAYS_MS: f64 = 60.0 / 3.6;

/// A planned excursion off the corridor, ramping out and back at [`DETOUR_SIDEWAYS_MS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Detour {
    pub start: i64,
    pub end: i64,
    pub peak_m: f64,
    /// Compass bearing of the offset, fixed when the detour starts (an offset square to each
    /// stretch of road would jump where the road bends).
    pub bearing: f64,
    /// A speed along the road held for the whole detour, so that its path is the one planned
    /// (a crossing must be clear of the posts before it turns back to the road).
    pub steady_kmh: Option<f64>,
}

impl Detour {
    /// Seconds to reach the peak from the road, or the road from the peak.
    pub fn ramp_s(peak_m: f64) -> f64 {
        (peak_m / DETOUR_SIDEWAYS_MS).max(300.0)
    }

    pub fn offset_m(&self, t: i64) -> f64 {
        let ramp = Self::ramp_s(self.peak_m);
        let into = (t - self.start) as f64 / ramp;
        let left = (self.end - t) as f64 / ramp;
        self.peak_m * into.min(left).clamp(0.0, 1.0)
    }
}

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
            && self.t.saturating_sub(self.driving_since) >= SETTLE_S
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
            transit_id: None,
            expected: Vec::new(),
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
            if let Some(injected) = self.start_crossing(route, params) {
                self.note(injected, truth);
            }
        }
        for kind in IncidentKind::ALL {
            if self.t < self.next_incident[kind as usize] {
                continue;
            }
            let staged = self.stage(kind, route, params, sample, out);
            match staged {
                Some(Some(injected)) => self.note(injected, truth),
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
        params: &Params,
        sample: &Sample,
        out: &mut Vec<Outgoing>,
    ) -> Option<Option<Injected>> {
        let place = route.place(self.chainage);
        // An intermediate office or another corridor's BCP may lie beside the open road: a
        // stop or a seal opened there is authorised.
        let controlled = params
            .borders
            .as_ref()
            .is_some_and(|b| b.near_control_place((place.lat, place.lon), CONTROL_CLEARANCE_M));
        if !self.on_open_road(route) || controlled {
            return None;
        }
        let mut injected = self.injected(kind, route);
        match kind {
            IncidentKind::RouteDeviation => {
                let peak_m = route.width_m + uniform(&mut self.rng, 4_000.0, 10_000.0);
                let ramp_min = Detour::ramp_s(peak_m) / 60.0;
                let minutes = uniform(&mut self.rng, 20.0, 60.0).max(2.0 * ramp_min + 10.0);
                let right = self.rng.bool();
                let bearing = [right, !right]
                    .into_iter()
                    .map(|r| sample.heading_deg + if r { 90.0 } else { -90.0 })
                    .find(|&b| self.detour_is_clear(route, params, minutes, peak_m, b))?;
                let end = self.detour(minutes, peak_m, bearing);
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
                self.crossing_peak_m = uniform(&mut self.rng, 15_000.0, 25_000.0);
                return Some(None);
            }
            IncidentKind::GnssJump => {
                // Only right after a fix: from one an hour old (a stop's last record, or the
                // last before a silence) a jump of 50 km is a plausible drive, and Caravan
                // would take the jumped fix, and a border between, for real.
                let last = self.tracker.last_fix_t().unwrap_or(i64::MIN);
                if self.t.saturating_sub(last) > JUMP_AFTER_FIX_S || self.speed_kmh < 30.0 {
                    return None;
                }
                // Across the road, so the jump cannot land back on the corridor.
                let distance = uniform(&mut self.rng, 50_000.0, 300_000.0);
                let side = if self.rng.bool() { 90.0 } else { -90.0 };
                let bearing = sample.heading_deg + side + uniform(&mut self.rng, -15.0, 15.0);
                self.jump = Some((distance, bearing));
                return Some(None);
            }
            IncidentKind::DeviceSilent => {
                let longest_s = self.silence_allowed_s(route);
                if longest_s < SILENCE_S.0
                    || route.near_gap_zone(self.chainage, SILENCE_GAP_CLEARANCE_M)
                {
                    return None;
                }
                let silence_s = uniform(&mut self.rng, SILENCE_S.0, SILENCE_S.1).min(longest_s);
                self.silent_until = self.t + silence_s as i64;
                injected.until = Some(rfc3339(self.silent_until));
            }
            // Recorded where they happen, never staged.
            IncidentKind::LowBattery | IncidentKind::Overdue => return None,
        }
        Some(Some(injected))
    }

    /// Leaves the corridor now for `minutes`, reaching `peak_m` off it towards `bearing`;
    /// returns the end.
    fn detour(&mut self, minutes: f64, peak_m: f64, bearing: f64) -> i64 {
        let end = self.t + (minutes * 60.0) as i64;
        self.detour = Some(Detour {
            start: self.t,
            end,
            peak_m,
            bearing,
            steady_kmh: None,
        });
        end
    }

    /// The longest silence that ends before the vehicle, at its top speed, could come near
    /// the posts of the next BCP: a device heard again only past a border leaves Caravan no
    /// evidence that the vehicle crossed at the post, and it rightly raises a crossing
    /// outside a BCP for what was only a silence.
    fn silence_allowed_s(&self, route: &Route) -> f64 {
        let Some(bcp) = self.bcp_ahead(route).map(|i| &route.bcps[i]) else {
            return f64::INFINITY;
        };
        let to_posts_m = (bcp.chainage_m - self.chainage).abs() - bcp.clearance_m;
        to_posts_m.max(0.0) / (CRUISE_KMH.1 / 3.6)
    }

    /// Whether a deviation starting now stays a deviation and nothing else: the road ahead
    /// holds no BCP or terminal within its reach, and (with transits) every point of it stays
    /// in the country of the road beside it and clear of every post and office zone, checked
    /// every minute.
    fn detour_is_clear(
        &self,
        route: &Route,
        params: &Params,
        minutes: f64,
        peak_m: f64,
        bearing: f64,
    ) -> bool {
        let duration_s = minutes * 60.0;
        let reach_m = CRUISE_KMH.1 / 3.6 * duration_s + 15_000.0;
        let ahead = |c: f64| {
            let d = if self.forward {
                c - self.chainage
            } else {
                self.chainage - c
            };
            d >= 0.0 && d <= reach_m
        };
        let end = if self.forward { route.length_m() } else { 0.0 };
        if ahead(end) || route.bcps.iter().any(|b| ahead(b.chainage_m)) {
            return false;
        }
        let Some(borders) = &params.borders else {
            return true;
        };
        let plan = Detour {
            start: 0,
            end: duration_s as i64,
            peak_m,
            bearing,
            steady_kmh: None,
        };
        let speed_ms = self.cruise_kmh / 3.6;
        let mut furthest_m: f64 = 0.0;
        let clear = (0..=(duration_s / 60.0).ceil() as i64).all(|k| {
            let t = k * 60;
            let along = speed_ms * t as f64;
            let c = if self.forward {
                self.chainage + along
            } else {
                self.chainage - along
            };
            let place = route.place(c);
            let road = (place.lat, place.lon);
            let off = offset(road, bearing, plan.offset_m(t));
            furthest_m = furthest_m.max(route.distance_m(off));
            borders.country_at(road) == borders.country_at(off)
                && !borders.near_control_place(off, CONTROL_CLEARANCE_M)
        });
        // Where the road bends, an offset in a fixed direction may stay near it.
        clear && furthest_m > route.width_m + 2_000.0
    }
}
