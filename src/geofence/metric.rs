//! Distances in metres on the WGS 84 sphere approximation.
//!
//! Geometry is stored in degrees (`x` = longitude, `y` = latitude). Distances that matter
//! (corridor width, border tolerance, stop radius) are a few metres to a few tens of
//! kilometres, so a local equirectangular projection centred on the query point is accurate
//! to well under one percent there and costs two multiplications; segment lengths that add
//! up to chainage use the haversine formula.

use geo::Coord;
use rstar::AABB;

/// Mean Earth radius (IUGG), the radius `geo`'s haversine uses.
pub(crate) const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude (and of longitude at the equator).
pub(crate) const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// Below this cosine (about 89.4° of latitude) longitude spans are clamped, so nothing
/// divides by zero at the poles.
const MIN_COS: f64 = 0.01;

/// A local flat frame in metres around `origin`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Local {
    origin: Coord<f64>,
    kx: f64,
}

impl Local {
    pub(crate) fn at(origin: Coord<f64>) -> Self {
        let kx = origin.y.to_radians().cos().max(MIN_COS) * M_PER_DEG;
        Self { origin, kx }
    }

    pub(crate) fn project(&self, c: Coord<f64>) -> (f64, f64) {
        let mut dx = c.x - self.origin.x;
        if dx > 180.0 {
            dx -= 360.0;
        } else if dx < -180.0 {
            dx += 360.0;
        }
        (dx * self.kx, (c.y - self.origin.y) * M_PER_DEG)
    }

    /// Distance from the origin to the segment `a`–`b`, and where along it (0..=1) the
    /// closest point lies.
    pub(crate) fn segment_distance(&self, a: Coord<f64>, b: Coord<f64>) -> (f64, f64) {
        let (ax, ay) = self.project(a);
        let (bx, by) = self.project(b);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (px, py) = (ax + t * dx, ay + t * dy);
        ((px * px + py * py).sqrt(), t)
    }

    pub(crate) fn distance(&self, c: Coord<f64>) -> f64 {
        let (x, y) = self.project(c);
        (x * x + y * y).sqrt()
    }
}

/// Great-circle distance in metres.
pub(crate) fn haversine_m(a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (la1, la2) = (a.y.to_radians(), b.y.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.x - a.x).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// Degrees of longitude and latitude spanned by `radius_m` at latitude `lat`.
pub(crate) fn degrees_for(radius_m: f64, lat: f64) -> (f64, f64) {
    let cos = lat.to_radians().cos().max(MIN_COS);
    (radius_m / (M_PER_DEG * cos), radius_m / M_PER_DEG)
}

/// The box around the segment `a`–`b` grown by `margin_m` on every side, in degrees.
pub(crate) fn envelope_around(a: Coord<f64>, b: Coord<f64>, margin_m: f64) -> AABB<[f64; 2]> {
    let lat = if a.y.abs() > b.y.abs() { a.y } else { b.y };
    let (dx, dy) = degrees_for(margin_m, lat);
    AABB::from_corners(
        [a.x.min(b.x) - dx, a.y.min(b.y) - dy],
        [a.x.max(b.x) + dx, a.y.max(b.y) + dy],
    )
}

/// Minimum distance in metres between the segments `a`–`b` and `c`–`d`, in a frame local
/// to `a`; zero when they intersect.
pub(crate) fn segment_segment_m(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>, d: Coord<f64>) -> f64 {
    let frame = Local::at(a);
    let p = [a, b, c, d].map(|q| frame.project(q));
    if segments_cross(p[0], p[1], p[2], p[3]) {
        return 0.0;
    }
    let dist = |q: (f64, f64), s: (f64, f64), e: (f64, f64)| point_segment_xy(q, s, e).0;
    dist(p[0], p[2], p[3])
        .min(dist(p[1], p[2], p[3]))
        .min(dist(p[2], p[0], p[1]))
        .min(dist(p[3], p[0], p[1]))
}

/// Distance from `q` to the segment `s`–`e` in the plane, and the parameter of the closest
/// point.
pub(crate) fn point_segment_xy(q: (f64, f64), s: (f64, f64), e: (f64, f64)) -> (f64, f64) {
    let (dx, dy) = (e.0 - s.0, e.1 - s.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((q.0 - s.0) * dx + (q.1 - s.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (px, py) = (s.0 + t * dx - q.0, s.1 + t * dy - q.1);
    ((px * px + py * py).sqrt(), t)
}

/// Where along `a`–`b` (0..=1) it crosses `c`–`d`, if it does.
pub(crate) fn crossing_param(
    a: (f64, f64),
    b: (f64, f64),
    c: (f64, f64),
    d: (f64, f64),
) -> Option<f64> {
    let r = (b.0 - a.0, b.1 - a.1);
    let s = (d.0 - c.0, d.1 - c.1);
    let denom = r.0 * s.1 - r.1 * s.0;
    if denom == 0.0 || !denom.is_finite() {
        return None;
    }
    let q = (c.0 - a.0, c.1 - a.1);
    let t = (q.0 * s.1 - q.1 * s.0) / denom;
    let u = (q.0 * r.1 - q.1 * r.0) / denom;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some(t)
}

fn segments_cross(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    crossing_param(a, b, c, d).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_frame_agrees_with_haversine_over_short_distances() {
        let a = Coord { x: 73.9, y: 39.7 };
        let b = Coord { x: 73.95, y: 39.72 };
        let local = Local::at(a).distance(b);
        let great = haversine_m(a, b);
        assert!((local - great).abs() / great < 0.005, "{local} vs {great}");
    }

    #[test]
    fn a_point_beside_a_segment_is_measured_to_its_foot() {
        let frame = Local::at(Coord { x: 74.0, y: 40.001 });
        let (d, t) =
            frame.segment_distance(Coord { x: 73.99, y: 40.0 }, Coord { x: 74.01, y: 40.0 });
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert!((t - 0.5).abs() < 1e-6);
    }
}
