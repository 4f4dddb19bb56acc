//! A transit's route as one polyline with chainage (metres from the office of departure).
//!
//! Routes are a few dozen vertices (corridors are drawn through their waypoints), so the
//! projection scans the segments; the per-fix geofence checks use the engine's R-tree.

use geo::{Coord, Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteLine {
    /// `[lon, lat]` vertices in travel order.
    pub points: Vec<[f64; 2]>,
    /// Chainage of each vertex.
    pub cum_m: Vec<f64>,
}

/// Where a point lies relative to the route.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Along {
    pub chainage_m: f64,
    /// Distance from the route.
    pub offset_m: f64,
}

pub(crate) fn haversine_m(a: Coord<f64>, b: Coord<f64>) -> f64 {
    Haversine.distance(Point(a), Point(b))
}

fn coord(p: [f64; 2]) -> Coord<f64> {
    Coord { x: p[0], y: p[1] }
}

impl RouteLine {
    pub fn new(coords: Vec<Coord<f64>>) -> Self {
        let mut points: Vec<[f64; 2]> = Vec::with_capacity(coords.len());
        let mut cum_m = Vec::with_capacity(coords.len());
        let mut total = 0.0;
        for c in coords {
            if let Some(last) = points.last() {
                if *last == [c.x, c.y] {
                    continue;
                }
                total += haversine_m(coord(*last), c);
            }
            points.push([c.x, c.y]);
            cum_m.push(total);
        }
        Self { points, cum_m }
    }

    pub fn length_m(&self) -> f64 {
        self.cum_m.last().copied().unwrap_or(0.0)
    }

    /// Projects `p` on the nearest segment, measured in a plane around `p`.
    pub fn locate(&self, p: Coord<f64>) -> Option<Along> {
        let first = self.points.first().map(|c| Along {
            chainage_m: 0.0,
            offset_m: haversine_m(p, coord(*c)),
        });
        self.points
            .windows(2)
            .zip(&self.cum_m)
            .map(|(seg, start_m)| {
                let (a, b) = (coord(seg[0]), coord(seg[1]));
                let (t, closest) = closest_on_segment(p, a, b);
                let seg_m = haversine_m(a, b);
                Along {
                    chainage_m: start_m + t * seg_m,
                    offset_m: haversine_m(p, closest),
                }
            })
            .chain(first)
            .min_by(|x, y| x.offset_m.total_cmp(&y.offset_m))
    }

    /// The part of the route between two chainages, in travel order.
    pub fn slice(&self, from_m: f64, to_m: f64) -> Vec<Coord<f64>> {
        let (lo, hi) = (from_m.min(to_m), from_m.max(to_m));
        let mut out = vec![self.point_at(lo)];
        for (p, m) in self.points.iter().zip(&self.cum_m) {
            if *m > lo && *m < hi {
                out.push(coord(*p));
            }
        }
        out.push(self.point_at(hi));
        if from_m > to_m {
            out.reverse();
        }
        out
    }

    /// The point at a chainage, clamped to the route.
    pub fn point_at(&self, chainage_m: f64) -> Coord<f64> {
        let i = self.cum_m.partition_point(|m| *m <= chainage_m);
        match (self.points.get(i.wrapping_sub(1)), self.points.get(i)) {
            (Some(a), Some(b)) => {
                let (m0, m1) = (self.cum_m[i - 1], self.cum_m[i]);
                let t = if m1 > m0 {
                    (chainage_m - m0) / (m1 - m0)
                } else {
                    0.0
                };
                Coord {
                    x: a[0] + t * (b[0] - a[0]),
                    y: a[1] + t * (b[1] - a[1]),
                }
            }
            (Some(a), None) | (None, Some(a)) => coord(*a),
            (None, None) => Coord { x: 0.0, y: 0.0 },
        }
    }
}

/// The fraction along `a`–`b` of the point closest to `p`, and that point.
fn closest_on_segment(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> (f64, Coord<f64>) {
    let scale = p.y.to_radians().cos().max(1e-6);
    let (ax, ay) = ((a.x - p.x) * scale, a.y - p.y);
    let (bx, by) = ((b.x - p.x) * scale, b.y - p.y);
    let (dx, dy) = (bx - ax, by - ay);
    let length2 = dx * dx + dy * dy;
    let t = if length2 == 0.0 {
        0.0
    } else {
        (-(ax * dx + ay * dy) / length2).clamp(0.0, 1.0)
    };
    let closest = Coord {
        x: a.x + t * (b.x - a.x),
        y: a.y + t * (b.y - a.y),
    };
    (t, closest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> RouteLine {
        RouteLine::new(vec![
            Coord { x: 73.0, y: 40.0 },
            Coord { x: 74.0, y: 40.0 },
            Coord { x: 74.0, y: 41.0 },
        ])
    }

    #[test]
    fn a_point_beside_the_route_projects_to_its_chainage() {
        let route = line();
        let along = route.locate(Coord { x: 73.5, y: 40.01 }).expect("a route");
        let half = route.cum_m[1] / 2.0;
        assert!((along.chainage_m - half).abs() < 200.0, "{along:?}");
        assert!((along.offset_m - 1_112.0).abs() < 10.0, "{along:?}");
    }

    #[test]
    fn a_slice_backwards_is_in_travel_order() {
        let route = line();
        let end = route.length_m();
        let back = route.slice(end, 0.0);
        assert_eq!(back.first().map(|c| c.y), Some(41.0));
        assert_eq!(back.last().map(|c| c.x), Some(73.0));
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn the_point_at_a_chainage_beyond_the_end_is_the_end() {
        let route = line();
        let end = route.point_at(route.length_m() + 10.0);
        assert_eq!((end.x, end.y), (74.0, 41.0));
    }
}
