//! A corridor as a vehicle drives it: positions by chainage, the BCPs on the way and the
//! stretches without mobile coverage.

use geo::{BoundingRect, Contains, Coord, Point, Polygon, Rect};

use crate::maps::{Atlas, Corridor};

/// Mean Earth radius in metres (the sphere `geo`'s Haversine uses).
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Spacing of the samples that find where the route runs through a coverage gap.
const GAP_SAMPLE_M: f64 = 250.0;

/// A point on the route with the direction of travel there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    /// Bearing of the route at this point, degrees clockwise from north, in `[0, 360)`.
    pub bearing: f64,
}

/// A border crossing point on the route, at `chainage_m` from the route's start.
#[derive(Clone, Debug)]
pub struct RouteBcp {
    pub id: String,
    pub chainage_m: f64,
}

/// One corridor, measured once so that a vehicle's position is a cheap lookup.
#[derive(Clone, Debug)]
pub struct Route {
    pub corridor_id: String,
    /// How far a vehicle may stray from the route before it deviates, metres.
    pub width_m: f64,
    /// Vertices as (lat, lon).
    points: Vec<(f64, f64)>,
    /// Distance from the start to each vertex, metres.
    cumulative_m: Vec<f64>,
    pub bcps: Vec<RouteBcp>,
    /// Chainage ranges (start, end) that lie in a coverage-gap zone, in route order.
    pub gaps: Vec<(f64, f64)>,
}

/// Great-circle distance in metres.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Initial bearing from `a` to `b`, degrees in `[0, 360)`.
pub fn bearing_deg(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlon = (b.1 - a.1).to_radians();
    let y = dlon.sin() * la2.cos();
    let x = la1.cos() * la2.sin() - la1.sin() * la2.cos() * dlon.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

/// The point `metres` from `from` along `bearing` (flat-earth step: fine for tens of km).
pub fn offset(from: (f64, f64), bearing: f64, metres: f64) -> (f64, f64) {
    let b = bearing.to_radians();
    let per_degree = EARTH_RADIUS_M.to_radians();
    let lat = from.0 + metres * b.cos() / per_degree;
    let lon = from.1 + metres * b.sin() / (per_degree * from.0.to_radians().cos().max(1e-6));
    (lat, lon)
}

impl Route {
    /// Measures `corridor` and finds its BCPs (from `joins`) and coverage gaps in `atlas`.
    /// `None` for a route without length.
    pub fn new(atlas: &Atlas, corridor: &Corridor) -> Option<Route> {
        let points: Vec<(f64, f64)> = corridor.route.0.iter().map(|c| (c.y, c.x)).collect();
        if points.len() < 2 {
            return None;
        }
        let mut cumulative_m = vec![0.0];
        for pair in points.windows(2) {
            let last = cumulative_m.last().copied().unwrap_or(0.0);
            cumulative_m.push(last + haversine_m(pair[0], pair[1]));
        }
        let mut route = Route {
            corridor_id: corridor.id.clone(),
            width_m: corridor.width_m,
            points,
            cumulative_m,
            bcps: Vec::new(),
            gaps: Vec::new(),
        };
        if route.length_m() < 1.0 {
            return None;
        }
        route.bcps = corridor
            .joins
            .iter()
            .filter_map(|id| atlas.bcp(id))
            .map(|bcp| RouteBcp {
                id: bcp.id.clone(),
                chainage_m: route.chainage_of((bcp.location.y(), bcp.location.x())),
            })
            .collect();
        route
            .bcps
            .sort_by(|a, b| a.chainage_m.total_cmp(&b.chainage_m));
        let zones: Vec<(&Polygon<f64>, Rect<f64>)> = atlas
            .coverage_gaps
            .iter()
            .filter_map(|gap| Some((&gap.zone, gap.zone.bounding_rect()?)))
            .collect();
        route.gaps = route.spans_inside(&zones);
        Some(route)
    }

    pub fn length_m(&self) -> f64 {
        self.cumulative_m.last().copied().unwrap_or(0.0)
    }

    /// The place at `chainage_m` (clamped to the route).
    pub fn place(&self, chainage_m: f64) -> Place {
        let s = chainage_m.clamp(0.0, self.length_m());
        let i = match self.cumulative_m.partition_point(|&c| c <= s) {
            0 => 0,
            n => (n - 1).min(self.points.len() - 2),
        };
        let (a, b) = (self.points[i], self.points[i + 1]);
        let span = self.cumulative_m[i + 1] - self.cumulative_m[i];
        let f = if span > 0.0 {
            (s - self.cumulative_m[i]) / span
        } else {
            0.0
        };
        Place {
            lat: a.0 + f * (b.0 - a.0),
            lon: a.1 + f * (b.1 - a.1),
            bearing: bearing_deg(a, b),
        }
    }

    /// True where the route runs through a coverage gap.
    pub fn in_gap(&self, chainage_m: f64) -> bool {
        self.gaps
            .iter()
            .any(|&(start, end)| (start..=end).contains(&chainage_m))
    }

    /// Chainage of the route point closest to `p` (by sampling each segment; used once per
    /// BCP when the route is built).
    fn chainage_of(&self, p: (f64, f64)) -> f64 {
        let mut best = (f64::INFINITY, 0.0);
        let steps = (self.length_m() / 200.0).ceil() as usize;
        for k in 0..=steps {
            let s = self.length_m() * k as f64 / steps.max(1) as f64;
            let place = self.place(s);
            let d = haversine_m(p, (place.lat, place.lon));
            if d < best.0 {
                best = (d, s);
            }
        }
        best.1
    }

    fn spans_inside(&self, zones: &[(&Polygon<f64>, Rect<f64>)]) -> Vec<(f64, f64)> {
        let mut spans = Vec::new();
        let mut open: Option<f64> = None;
        let steps = (self.length_m() / GAP_SAMPLE_M).ceil() as usize;
        for k in 0..=steps {
            let s = (k as f64 * GAP_SAMPLE_M).min(self.length_m());
            let place = self.place(s);
            let c = Coord {
                x: place.lon,
                y: place.lat,
            };
            let inside = zones
                .iter()
                .any(|(zone, rect)| rect.contains(&c) && zone.contains(&Point(c)));
            match (inside, open) {
                (true, None) => open = Some(s),
                (false, Some(start)) => {
                    spans.push((start, s));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            spans.push((start, self.length_m()));
        }
        spans
    }
}
