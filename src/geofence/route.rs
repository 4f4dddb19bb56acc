//! Progress along an assigned route: distance, chainage, deviation and wrong direction.

use chrono::{DateTime, Utc};

use super::config::GeofenceConfig;
use super::corridor::Projection;
use super::engine::Found;
use super::event::EventKind;
use super::index::RoutePath;
use super::track::Sample;

/// A fix beyond the route's corridor is looked for up to this far in the R-tree before the
/// unbounded nearest-segment walk.
const SEARCH_M: f64 = 20_000.0;

pub(crate) struct RouteState {
    pub path: RoutePath,
    pub last: Option<Projection>,
    /// Boxed: open only while the truck is off its route.
    deviation: Option<Box<Deviation>>,
    heading: Heading,
}

/// Which way travel goes along the route, as far as the chainage on the corridor shows. One
/// figure at a time matters, so one is held (every truck on a transit holds this).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Heading {
    /// Nothing on the corridor yet.
    Unknown,
    /// The furthest chainage reached.
    Forward { high_water_m: f64 },
    /// The lowest chainage since travel turned the wrong way.
    WrongWay { low_m: f64 },
}

impl Heading {
    /// As saved: the furthest chainage reached, and the lowest since travel turned.
    fn saved(self) -> (Option<f64>, Option<f64>) {
        match self {
            Self::Unknown => (None, None),
            Self::Forward { high_water_m } => (Some(high_water_m), None),
            Self::WrongWay { low_m } => (None, Some(low_m)),
        }
    }

    /// From what was saved; a record of an earlier version holds the furthest chainage
    /// also while travel goes the wrong way, which is not read then.
    fn resumed(high_water_m: Option<f64>, wrong_way_low_m: Option<f64>) -> Self {
        match (high_water_m, wrong_way_low_m) {
            (_, Some(low_m)) => Self::WrongWay { low_m },
            (Some(high_water_m), None) => Self::Forward { high_water_m },
            (None, None) => Self::Unknown,
        }
    }
}

/// What a route's state holds beyond its path: saved at a clean stop and resumed on the same
/// route at the next start.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct RouteProgress {
    pub route_id: String,
    last: Option<Projection>,
    deviation: Option<Deviation>,
    high_water_m: Option<f64>,
    wrong_way_low_m: Option<f64>,
}

/// Fixes off the corridor, counted until they amount to a deviation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Deviation {
    since: DateTime<Utc>,
    fixes: u32,
    max_m: f64,
    open: bool,
    /// Already reported beyond the route's critical distance.
    critical: bool,
}

impl RouteState {
    pub(crate) fn new(path: RoutePath) -> Self {
        Self {
            path,
            last: None,
            deviation: None,
            heading: Heading::Unknown,
        }
    }

    pub(crate) fn saved(&self) -> RouteProgress {
        let (high_water_m, wrong_way_low_m) = self.heading.saved();
        RouteProgress {
            route_id: self.path.id().to_owned(),
            last: self.last,
            deviation: self.deviation.as_deref().cloned(),
            high_water_m,
            wrong_way_low_m,
        }
    }

    /// Takes up `saved` progress on this route; false (and nothing taken) when it was saved
    /// on another route or points past this route's segments.
    pub(crate) fn resume(&mut self, saved: RouteProgress) -> bool {
        let fits = saved.route_id == self.path.id()
            && saved.last.is_none_or(|p| self.path.network.holds(p));
        if fits {
            self.last = saved.last;
            self.deviation = saved.deviation.map(Box::new);
            self.heading = Heading::resumed(saved.high_water_m, saved.wrong_way_low_m);
        }
        fits
    }

    pub(crate) fn update(&mut self, cfg: &GeofenceConfig, cur: &Sample, out: &mut Vec<Found>) {
        let net = &self.path.network;
        let hint = self.last.map(|p| (p.path, p.seg));
        let Some(p) = net.locate(cur.c, hint, SEARCH_M, true) else {
            return;
        };
        self.last = Some(p);
        let width = net.width_m(p.corridor);
        if p.distance_m > width {
            self.off_route(cfg, cur, p, width, out);
        } else {
            self.on_route(cur, out);
            self.progress(cfg, cur, p.chainage_m, out);
        }
    }

    fn off_route(
        &mut self,
        cfg: &GeofenceConfig,
        cur: &Sample,
        p: Projection,
        width_m: f64,
        out: &mut Vec<Found>,
    ) {
        let d = self.deviation.get_or_insert_with(|| {
            Box::new(Deviation {
                since: cur.t,
                fixes: 0,
                max_m: 0.0,
                open: false,
                critical: false,
            })
        });
        d.fixes += 1;
        d.max_m = d.max_m.max(p.distance_m);
        let long_enough = (cur.t - d.since).num_seconds() >= cfg.deviation_min_s;
        let corridor_id = self.path.network.corridor_id(p.corridor).to_owned();
        let beyond = self
            .path
            .critical_deviation_m
            .filter(|limit| p.distance_m > *limit);
        if !d.open && d.fixes >= cfg.deviation_min_fixes.max(1) && long_enough {
            d.open = true;
            // Opened already beyond the limit: the deviation event itself carries the
            // distance that makes it critical.
            d.critical = beyond.is_some();
            let kind = EventKind::RouteDeviation {
                route_id: self.path.id().to_owned(),
                corridor_id,
                distance_m: p.distance_m,
                width_m,
            };
            out.push(Found::new(kind, d.since, Some(cur.c)));
            return;
        }
        if let (true, false, Some(limit_m)) = (d.open, d.critical, beyond) {
            d.critical = true;
            let kind = EventKind::RouteDeviationCritical {
                route_id: self.path.id().to_owned(),
                corridor_id,
                distance_m: p.distance_m,
                limit_m,
                since: d.since,
            };
            out.push(Found::new(kind, cur.t, Some(cur.c)));
        }
    }

    fn on_route(&mut self, cur: &Sample, out: &mut Vec<Found>) {
        if let Some(d) = self.deviation.take().filter(|d| d.open) {
            let kind = EventKind::RouteDeviationEnded {
                route_id: self.path.id().to_owned(),
                duration_s: (cur.t - d.since).num_seconds(),
                max_distance_m: d.max_m,
            };
            out.push(Found::new(kind, cur.t, Some(cur.c)));
        }
    }

    /// Wrong direction: chainage falls more than the tolerance below the furthest point
    /// reached. It is raised once, and re-armed when travel has gone forward again by the
    /// tolerance.
    fn progress(
        &mut self,
        cfg: &GeofenceConfig,
        cur: &Sample,
        chainage: f64,
        out: &mut Vec<Found>,
    ) {
        let tol = cfg.wrong_direction_tolerance_m;
        let high = match self.heading {
            Heading::WrongWay { low_m } => {
                self.heading = if chainage > low_m + tol {
                    Heading::Forward {
                        high_water_m: chainage,
                    }
                } else {
                    Heading::WrongWay {
                        low_m: low_m.min(chainage),
                    }
                };
                return;
            }
            Heading::Forward { high_water_m } => high_water_m.max(chainage),
            Heading::Unknown => chainage,
        };
        self.heading = Heading::Forward { high_water_m: high };
        if chainage < high - tol {
            self.heading = Heading::WrongWay { low_m: chainage };
            let kind = EventKind::WrongDirection {
                route_id: self.path.id().to_owned(),
                chainage_m: chainage,
                regressed_m: high - chainage,
            };
            out.push(Found::new(kind, cur.t, Some(cur.c)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Heading;

    #[test]
    fn a_heading_reads_back_as_saved_and_from_a_record_that_held_both_figures() {
        for heading in [
            Heading::Unknown,
            Heading::Forward {
                high_water_m: 1_200.0,
            },
            Heading::WrongWay { low_m: 800.0 },
        ] {
            let (high, low) = heading.saved();
            assert_eq!(Heading::resumed(high, low), heading);
        }
        // Records saved before held the furthest chainage while travel went the wrong way.
        assert_eq!(
            Heading::resumed(Some(1_200.0), Some(800.0)),
            Heading::WrongWay { low_m: 800.0 }
        );
    }
}
