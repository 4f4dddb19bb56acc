//! The countries and control places of the maps, as the simulator needs them to keep a
//! staged incident from doing more than it was meant to.

use geo::{BoundingRect, Contains, Coord, Point, Polygon, Rect};

use super::route::EARTH_RADIUS_M;
use crate::maps::Atlas;

/// The countries and the control places of the maps, to keep a staged incident from
/// crossing a border, or happening at a BCP post or a customs office, by accident.
#[derive(Clone, Debug, Default)]
pub struct Borders {
    countries: Vec<(crate::maps::CountryCode, geo::MultiPolygon<f64>, Rect<f64>)>,
    /// Every post zone of every BCP and every customs office zone, with its box.
    controls: Vec<(Polygon<f64>, Rect<f64>)>,
}

impl Borders {
    pub fn new(atlas: &Atlas) -> Self {
        let countries = atlas
            .countries
            .iter()
            .filter_map(|c| Some((c.code, c.area.clone(), c.area.bounding_rect()?)))
            .collect();
        let posts = atlas
            .bcps
            .iter()
            .flat_map(|b| b.posts.iter().map(|p| &p.zone));
        let offices = atlas.offices.iter().map(|o| &o.zone);
        let controls = posts
            .chain(offices)
            .filter_map(|zone| Some((zone.clone(), zone.bounding_rect()?)))
            .collect();
        Self {
            countries,
            controls,
        }
    }

    /// Whether a BCP post zone or a customs office zone lies within `metres` of (lat, lon):
    /// Caravan counts a movement that comes near a post as passing its BCP, and a stop or a
    /// seal opened in a control place as authorised.
    pub fn near_control_place(&self, p: (f64, f64), metres: f64) -> bool {
        let c = Coord { x: p.1, y: p.0 };
        let per_degree = EARTH_RADIUS_M.to_radians();
        let per_degree_lon = per_degree * p.0.to_radians().cos().max(1e-6);
        // Metres east and north of `p`: flat is fine over the few km that matter here.
        let local = |v: Coord<f64>| ((v.x - c.x) * per_degree_lon, (v.y - c.y) * per_degree);
        self.controls.iter().any(|(zone, rect)| {
            let (lo, hi) = (local(rect.min()), local(rect.max()));
            let outside_box = (lo.0.max(-hi.0).max(0.0)).hypot(lo.1.max(-hi.1).max(0.0));
            if outside_box > metres {
                return false;
            }
            zone.contains(&Point(c))
                || zone
                    .exterior()
                    .lines()
                    .any(|l| distance_to_segment(local(l.start), local(l.end)) <= metres)
        })
    }

    /// The country at (lat, lon), if the maps have one there.
    pub fn country_at(&self, p: (f64, f64)) -> Option<crate::maps::CountryCode> {
        let c = Coord { x: p.1, y: p.0 };
        self.countries
            .iter()
            .find(|(_, area, rect)| rect.contains(&c) && area.contains(&Point(c)))
            .map(|(code, _, _)| *code)
    }
}

/// Distance from the origin to the segment `a`–`b`, in the segment's units.
fn distance_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let d = (b.0 - a.0, b.1 - a.1);
    let len2 = d.0 * d.0 + d.1 * d.1;
    let t = if len2 > 0.0 {
        (-(a.0 * d.0 + a.1 * d.1) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * d.0).hypot(a.1 + t * d.1)
}
