//! A corridor as a vehicle drives it: positions by chainage, the BCPs on the way and the
//! stretches without mobile coverage.

use geo::{BoundingRect, Centroid, Contains, Coord, Point, Polygon, Rect};

use super::borders::Borders;
use crate::maps::{Atlas, Corridor};

/// Mean Earth radius in metres (the sphere `geo`'s Haversine uses).
pub(super) const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Spacing of the samples that find where the route runs through a coverage gap.
const GAP_SAMPLE_M: f64 = 250.0;
/// How far inside a coverage-gap zone the signal fades out (and back in): the zones are
/// drawn around the places without coverage, so a tracker's last fix before the silence
/// lies inside the zone, and Caravan allows the zone's longer silence for it. Lost right
/// at the edge, the last fix would lie outside, and Caravan would count the crossing as
/// signal loss after two reporting periods.
const GAP_EDGE_M: f64 = 1_500.0;

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
    /// How far from the BCP a vehicle going round it must stay to pass clear of both post
    /// zones, with Caravan's 1.5 km proximity and a margin: the furthest zone vertex plus
    /// 4.5 km.
    pub clearance_m: f64,
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
    /// Chainage ranges (start, end) without coverage, in route order: the stretches in a
    /// coverage-gap zone, less 1.5 km at either end (where the signal fades).
    pub gaps: Vec<(f64, f64)>,
    /// The stretches in a coverage-gap zone, whole: where Caravan allows a fix the zone's
    /// longer silence, coverage or not.
    gap_zones: Vec<(f64, f64)>,
    /// The customs offices at the start and at the end of the route, when it runs from
    /// office to office (see [`Route::between_offices`]).
    pub offices: Option<(String, String)>,
    /// The transit forward (`[0]`) and backward (`[1]`), when vehicles declare transits.
    pub plans: Vec<super::trip::TripPlan>,
}

/// Polygons with their boxes, for cheap containment tests.
fn boxed<'a>(
    zones: impl IntoIterator<Item = &'a Polygon<f64>>,
) -> Vec<(&'a Polygon<f64>, Rect<f64>)> {
    zones
        .into_iter()
        .filter_map(|zone| Some((zone, zone.bounding_rect()?)))
        .collect()
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
        Self::along(atlas, corridor, points)
    }

    /// The part of `corridor` between its first and its last customs office (the offices
    /// among its `joins`), so that a vehicle can drive it as a declared transit: it leaves
    /// one office and arrives at the other. `None` for a corridor with fewer than two
    /// offices, which no transit can run along from end to end.
    pub fn between_offices(atlas: &Atlas, corridor: &Corridor) -> Option<Route> {
        let offices: Vec<_> = corridor
            .joins
            .iter()
            .filter_map(|id| atlas.office(id))
            .collect();
        let (first, last) = (offices.first()?, offices.last()?);
        if first.id == last.id {
            return None;
        }
        let whole = Self::new(atlas, corridor)?;
        let at = |zone: &Polygon<f64>| {
            let c = zone.centroid()?;
            Some(whole.chainage_of((c.y(), c.x())))
        };
        let (from, to) = (at(&first.zone)?, at(&last.zone)?);
        if to - from < 1_000.0 {
            return None;
        }
        let mut route = Self::along(atlas, corridor, whole.slice(from, to))?;
        // The offices at the ends have coverage even inside a gap zone (Murghob lies in
        // three): a tracker there uploads what it holds, so that Caravan sees the vehicle
        // arrive before customs closes its transit, as the office of destination would.
        let gaps = boxed(atlas.coverage_gaps.iter().map(|g| &g.zone));
        route.set_gaps(route.spans_inside(&gaps, &boxed([&first.zone, &last.zone])));
        route.offices = Some((first.id.clone(), last.id.clone()));
        Some(route)
    }

    /// Distance in metres from `p` (lat, lon) to the route (sampled every 200 m).
    pub fn distance_m(&self, p: (f64, f64)) -> f64 {
        let place = self.place(self.chainage_of(p));
        haversine_m(p, (place.lat, place.lon))
    }

    /// Whether the route changes country only at its BCPs (within 10 km of one). The
    /// approximate corridor lines of roads that follow a border (the Pamir highway along the
    /// Panj) wander across it, and a vehicle on them would cross outside a BCP for real.
    pub fn changes_country_only_at_bcps(&self, borders: &Borders) -> bool {
        let steps = (self.length_m() / 1_000.0).ceil() as usize;
        let mut last = None;
        for k in 0..=steps {
            let s = self.length_m() * k as f64 / steps.max(1) as f64;
            let place = self.place(s);
            let here = borders.country_at((place.lat, place.lon));
            let near_bcp = self
                .bcps
                .iter()
                .any(|b| (b.chainage_m - s).abs() < 10_000.0);
            if last.is_some() && here != last && !near_bcp {
                return false;
            }
            last = here;
        }
        true
    }

    /// The vertices between two chainages, with the cut points interpolated.
    fn slice(&self, from: f64, to: f64) -> Vec<(f64, f64)> {
        let point = |s: f64| {
            let p = self.place(s);
            (p.lat, p.lon)
        };
        let mut out = vec![point(from)];
        for (i, &c) in self.cumulative_m.iter().enumerate() {
            if c > from + 1.0 && c < to - 1.0 {
                out.push(self.points[i]);
            }
        }
        out.push(point(to));
        out
    }

    fn along(atlas: &Atlas, corridor: &Corridor, points: Vec<(f64, f64)>) -> Option<Route> {
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
            gap_zones: Vec::new(),
            offices: None,
            plans: Vec::new(),
        };
        if route.length_m() < 1.0 {
            return None;
        }
        route.bcps = corridor
            .joins
            .iter()
            .filter_map(|id| atlas.bcp(id))
            .filter_map(|bcp| {
                let p = (bcp.location.y(), bcp.location.x());
                let chainage_m = route.chainage_of(p);
                // A trimmed route keeps only the BCPs on its own stretch.
                let place = route.place(chainage_m);
                let clearance_m = bcp
                    .posts
                    .iter()
                    .flat_map(|post| post.zone.exterior().0.iter())
                    .map(|v| haversine_m(p, (v.y, v.x)))
                    .fold(0.0, f64::max)
                    + 4_500.0;
                (haversine_m(p, (place.lat, place.lon)) < 5_000.0).then(|| RouteBcp {
                    id: bcp.id.clone(),
                    chainage_m,
                    clearance_m,
                })
            })
            .collect();
        route
            .bcps
            .sort_by(|a, b| a.chainage_m.total_cmp(&b.chainage_m));
        route
            .set_gaps(route.spans_inside(&boxed(atlas.coverage_gaps.iter().map(|g| &g.zone)), &[]));
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

    /// True within `margin_m` of a stretch in a coverage-gap zone, covered or not.
    pub fn near_gap_zone(&self, chainage_m: f64, margin_m: f64) -> bool {
        self.gap_zones
            .iter()
            .any(|&(start, end)| (start - margin_m..=end + margin_m).contains(&chainage_m))
    }

    /// Records the stretches in coverage-gap zones, and those of them without coverage.
    fn set_gaps(&mut self, zones: Vec<(f64, f64)>) {
        // The route's own ends are where vehicles start or stop, not edges they cross.
        let length = self.length_m();
        let inset = |s: f64, toward: f64| {
            if s <= 0.0 || s >= length {
                s
            } else {
                s + GAP_EDGE_M * (toward - s).signum()
            }
        };
        self.gaps = zones
            .iter()
            .map(|&(start, end)| (inset(start, end), inset(end, start)))
            .filter(|(start, end)| start < end)
            .collect();
        self.gap_zones = zones;
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

    /// The chainage ranges inside one of `zones` and outside all of `except`.
    fn spans_inside(
        &self,
        zones: &[(&Polygon<f64>, Rect<f64>)],
        except: &[(&Polygon<f64>, Rect<f64>)],
    ) -> Vec<(f64, f64)> {
        let within = |set: &[(&Polygon<f64>, Rect<f64>)], c: Coord<f64>| {
            set.iter()
                .any(|(zone, rect)| rect.contains(&c) && zone.contains(&Point(c)))
        };
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
            let inside = within(zones, c) && !within(except, c);
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
