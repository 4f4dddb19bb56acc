//! `caravan maps locate`: what the maps say about one point, for an operator debugging a map.

use geo::{Contains, Point};
use serde::Serialize;

use super::measure;
use super::model::{Atlas, CountryCode};

/// The answer for one point, printed as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    /// The country whose polygon contains the point; `None` outside every mapped country.
    pub country: Option<CountryHit>,
    /// Every BCP post zone, office zone and coverage gap containing the point.
    pub zones: Vec<ZoneHit>,
    /// The corridor nearest to the point, if the atlas has any.
    pub nearest_corridor: Option<CorridorHit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryHit {
    pub code: CountryCode,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    BcpPost,
    CustomsOffice,
    CoverageGap,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneHit {
    pub kind: ZoneKind,
    pub id: String,
    pub name: String,
    /// For a post: the BCP it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcp_id: Option<String>,
    /// For a post or an office: the country whose zone it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// For a coverage gap: the silence tolerated inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_loss_timeout_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorridorHit {
    pub id: String,
    pub name: String,
    /// Haversine distance to the nearest point of the route, in metres.
    pub distance_m: f64,
    pub width_m: f64,
    /// Whether the point is within the corridor's width.
    pub within: bool,
}

/// Looks the point up in every layer of the atlas (linear scans: a debugging tool).
/// Coordinates are WGS 84 degrees; the caller validates their range.
pub fn locate(atlas: &Atlas, lat: f64, lon: f64) -> Location {
    let point = Point::new(lon, lat);
    Location {
        lat,
        lon,
        country: atlas
            .countries
            .iter()
            .find(|c| c.area.contains(&point))
            .map(|c| CountryHit {
                code: c.code,
                name: c.name.clone(),
            }),
        zones: zones(atlas, point),
        nearest_corridor: nearest_corridor(atlas, point),
    }
}

fn zones(atlas: &Atlas, point: Point<f64>) -> Vec<ZoneHit> {
    let posts = atlas
        .posts()
        .filter(|(_, post)| post.zone.contains(&point))
        .map(|(bcp, post)| ZoneHit {
            kind: ZoneKind::BcpPost,
            id: post.id.clone(),
            name: post.name.clone(),
            bcp_id: Some(bcp.id.clone()),
            country: Some(post.country),
            signal_loss_timeout_s: None,
        });
    let offices = atlas
        .offices
        .iter()
        .filter(|office| office.zone.contains(&point))
        .map(|office| ZoneHit {
            kind: ZoneKind::CustomsOffice,
            id: office.id.clone(),
            name: office.name.clone(),
            bcp_id: None,
            country: Some(office.country),
            signal_loss_timeout_s: None,
        });
    let gaps = atlas
        .coverage_gaps
        .iter()
        .filter(|gap| gap.zone.contains(&point))
        .map(|gap| ZoneHit {
            kind: ZoneKind::CoverageGap,
            id: gap.id.clone(),
            name: gap.name.clone(),
            bcp_id: None,
            country: None,
            signal_loss_timeout_s: Some(gap.signal_loss_timeout_s),
        });
    posts.chain(offices).chain(gaps).collect()
}

fn nearest_corridor(atlas: &Atlas, point: Point<f64>) -> Option<CorridorHit> {
    atlas
        .corridors
        .iter()
        .map(|corridor| (corridor, measure::to_line_m(&corridor.route, point)))
        .filter(|(_, distance)| distance.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(corridor, distance_m)| CorridorHit {
            id: corridor.id.clone(),
            name: corridor.name.clone(),
            distance_m: distance_m.round(),
            width_m: corridor.width_m,
            within: distance_m <= corridor.width_m,
        })
}
