//! Distances in metres between points, routes and zones, for the checks and the operator
//! tools. Linear scans: the hot path uses the geofence engine's indexes instead.

use geo::{Contains, Coord, Distance, Haversine, LineString, MultiPolygon, Point, Polygon};

/// Metres per degree of latitude on the mean sphere, for the local projection below.
const METRES_PER_DEGREE: f64 = 111_195.0;

/// The point of segment `a`–`b` closest to `p`, found in a plane projected around `p`
/// (good to well under a metre over the few hundred kilometres of a segment here).
fn closest_on_segment(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> Coord<f64> {
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
    Coord {
        x: a.x + t * (b.x - a.x),
        y: a.y + t * (b.y - a.y),
    }
}

/// Distance in metres from `p` to the nearest point of `line`.
pub fn to_line_m(line: &LineString<f64>, p: Point<f64>) -> f64 {
    line.lines()
        .map(|segment| closest_on_segment(p.0, segment.start, segment.end))
        .chain(line.0.first().copied())
        .map(|c| Haversine.distance(p, Point(c)))
        .fold(f64::INFINITY, f64::min)
}

/// Distance in metres from `p` to `polygon`; zero inside it.
pub fn to_polygon_m(polygon: &Polygon<f64>, p: Point<f64>) -> f64 {
    if polygon.contains(&p) {
        return 0.0;
    }
    std::iter::once(polygon.exterior())
        .chain(polygon.interiors())
        .map(|ring| to_line_m(ring, p))
        .fold(f64::INFINITY, f64::min)
}

/// Distance in metres from `p` to the nearest part of `area`; zero inside it.
pub fn to_area_m(area: &MultiPolygon<f64>, p: Point<f64>) -> f64 {
    area.0
        .iter()
        .map(|polygon| to_polygon_m(polygon, p))
        .fold(f64::INFINITY, f64::min)
}

/// A rough size for a tolerance expressed in degrees of latitude.
pub fn metres_to_degrees(metres: f64) -> f64 {
    metres / METRES_PER_DEGREE
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::line_string;

    #[test]
    fn the_distance_to_a_route_is_measured_across_to_its_nearest_segment() {
        let route = line_string![(x: 73.0, y: 40.0), (x: 74.0, y: 40.0)];
        let north = Point::new(73.5, 40.01);
        let metres = to_line_m(&route, north);
        assert!((metres - 1_112.0).abs() < 5.0, "{metres}");
    }

    #[test]
    fn the_distance_beyond_a_route_end_is_to_that_end() {
        let route = line_string![(x: 73.0, y: 40.0), (x: 74.0, y: 40.0)];
        let beyond = Point::new(72.99, 40.0);
        let expected = Haversine.distance(beyond, Point::new(73.0, 40.0));
        assert!((to_line_m(&route, beyond) - expected).abs() < 0.01);
    }
}
