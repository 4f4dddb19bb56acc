//! Staging a crossing outside a BCP: the vehicle leaves its corridor before a BCP, goes
//! round it far off the road, changes country there and comes back to the road past it.
//!
//! Caravan counts a movement as passing a BCP when a fix, or the straight line between two
//! fixes, comes within its proximity of a post zone, and a transit arrives at a BCP when it
//! enters one. So the planned path, every ten seconds, is checked against every post (and
//! office) zone of the maps before the detour starts, and the vehicle then drives it at a steady speed, so
//! that the path it drives is the one checked.

use super::incident::{IncidentKind, Injected};
use super::message::rfc3339;
use super::route::{offset, Route};
use super::staging::Detour;
use super::vehicle::{Activity, Params, Vehicle};

/// How near a post or office zone a staged incident may come: Caravan's 1.5 km BCP
/// proximity, and a margin for the chord between two fixes, which cuts the corners of a
/// planned path.
pub(super) const CONTROL_CLEARANCE_M: f64 = 4_000.0;
/// The stretch of road, before the point where a crossing must leave it, where it may start.
const START_WINDOW_M: f64 = 5_000.0;
/// Spacing in time of the points of a planned crossing that are checked, seconds.
const CHECK_EVERY_S: i64 = 10;
/// The slowest a vehicle goes round a BCP, km/h.
const SLOWEST_KMH: f64 = 30.0;

impl Vehicle {
    /// Goes round the next BCP once it is close enough ahead for the detour to be at its
    /// full offset before the vehicle comes abreast of the BCP's post zones, and the road
    /// goes on far enough past it to keep the offset as far.
    pub(super) fn start_crossing(&mut self, route: &Route, params: &Params) -> Option<Injected> {
        let i = self.next_bcp?;
        let bcp = &route.bcps[i];
        let ahead = (bcp.chainage_m - self.chainage).abs();
        let beyond = if self.forward {
            route.length_m() - bcp.chainage_m
        } else {
            bcp.chainage_m
        };
        // Far enough round both post zones, reached before the BCP and kept past it.
        let peak_m = self.crossing_peak_m.max(bcp.clearance_m);
        let steady_kmh = self.cruise_kmh.max(SLOWEST_KMH);
        let ramp_m = Detour::ramp_s(peak_m) * steady_kmh / 3.6;
        let lead_m = ramp_m + bcp.clearance_m;
        let ready = self.activity == Activity::Driving
            && self.detour.is_none()
            && self.t >= self.silent_until
            && (lead_m..=lead_m + START_WINDOW_M).contains(&ahead)
            && beyond > lead_m + 10_000.0;
        if !ready {
            return None;
        }
        let place = route.place(self.chainage);
        let heading = if self.forward {
            place.bearing
        } else {
            place.bearing + 180.0
        };
        let minutes = (ahead + lead_m) / (steady_kmh / 3.6) / 60.0;
        let first = self.rng.bool();
        let detour = [first, !first]
            .into_iter()
            .map(|right| Detour {
                start: self.t,
                end: self.t + (minutes * 60.0) as i64,
                peak_m,
                bearing: heading + if right { 90.0 } else { -90.0 },
                steady_kmh: Some(steady_kmh),
            })
            .find(|plan| self.crossing_is_clear(route, params, i, plan))?;
        self.crossing_armed = false;
        self.bypass = Some(i);
        self.speed_kmh = steady_kmh;
        self.detour = Some(detour);
        let mut injected = self.injected(IncidentKind::CrossingOutsideBcp, route);
        injected.until = Some(rfc3339(detour.end));
        injected.distance_m = Some(peak_m.round());
        injected.bcp = Some(route.bcps[i].id.clone());
        Some(injected)
    }

    /// Whether `plan`, driven from now at its steady speed, goes round BCP `bcp` and nothing
    /// else: it stays on the road's stretch between its ends, out of coverage gaps, past no
    /// other BCP of the route, and (with transits, which know the maps' control places)
    /// every point of it is clear of every post and office zone.
    fn crossing_is_clear(&self, route: &Route, params: &Params, bcp: usize, plan: &Detour) -> bool {
        let speed_ms = plan.steady_kmh.unwrap_or(self.cruise_kmh) / 3.6;
        let along = |t: i64| {
            let metres = speed_ms * (t - plan.start) as f64;
            if self.forward {
                self.chainage + metres
            } else {
                self.chainage - metres
            }
        };
        let (from, to) = (along(plan.start), along(plan.end));
        let (lo, hi) = (from.min(to), from.max(to));
        let other_bcp = route
            .bcps
            .iter()
            .enumerate()
            .any(|(k, b)| k != bcp && (lo..=hi).contains(&b.chainage_m));
        if other_bcp || lo <= 0.0 || hi >= route.length_m() {
            return false;
        }
        let points = (plan.start..=plan.end).step_by(CHECK_EVERY_S as usize);
        points.chain([plan.end]).all(|t| {
            let c = along(t);
            let place = route.place(c);
            let p = offset((place.lat, place.lon), plan.bearing, plan.offset_m(t));
            let near_control = params
                .borders
                .as_ref()
                .is_some_and(|b| b.near_control_place(p, CONTROL_CLEARANCE_M));
            !route.in_gap(c) && !near_control
        })
    }
}
