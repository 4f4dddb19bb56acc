//! `caravan maps check`: every problem in a map directory, each naming its file and feature.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use geo::{BoundingRect, Centroid, Contains, Point};
use serde::Serialize;

use super::error::{MapError, Origin};
use super::load::{self, BORDER_CROSSINGS, CORRIDORS, COUNTRIES, COVERAGE_GAPS, CUSTOMS_OFFICES};
use super::measure;
use super::model::{Atlas, Bcp, CountryCode, Post};

/// How far a zone may sit outside its own country: Natural Earth 1:10m borders are only good
/// to 1–3 km in this region.
pub const BORDER_TOLERANCE_M: f64 = 3_000.0;
/// How far beyond its width a corridor may pass a checkpoint it claims to join.
pub const CHECKPOINT_TOLERANCE_M: f64 = 1_000.0;
/// Largest share of a post zone that may lie in the peer country.
pub const MAX_PEER_SHARE: f64 = 0.5;

/// What kind of problem was found, so tools and tests can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file is missing or is not a GeoJSON FeatureCollection.
    Unreadable,
    /// A property is missing or has the wrong type or value.
    InvalidProperty,
    /// Unclosed ring, position out of range, ring without area, wrong geometry type.
    InvalidGeometry,
    /// The same id is used twice, in one file or across files.
    DuplicateId,
    /// An id refers to a country, BCP, office or corridor that does not exist.
    UnknownReference,
    /// A BCP does not have one post in each of two countries.
    IncompletePair,
    /// A zone lies outside its own country or mostly inside the peer country.
    WrongSide,
    /// A corridor passes farther than its width from a checkpoint it claims to join.
    MissedCheckpoint,
}

/// One problem in a map directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapProblem {
    pub file: String,
    /// The feature's id, when the problem is about one feature.
    pub feature: Option<String>,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for MapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feature {
            Some(feature) => write!(f, "{}: feature `{feature}`: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl MapProblem {
    fn new(origin: Origin, kind: ProblemKind, message: String) -> Self {
        Self {
            file: origin.file,
            feature: origin.feature,
            kind,
            message,
        }
    }
}

impl From<MapError> for MapProblem {
    fn from(error: MapError) -> Self {
        let kind = match &error {
            MapError::Read { .. } | MapError::Json { .. } => ProblemKind::Unreadable,
            MapError::Property { .. } => ProblemKind::InvalidProperty,
            MapError::Geometry { .. } | MapError::Import { .. } => ProblemKind::InvalidGeometry,
            MapError::Reference { .. } => ProblemKind::UnknownReference,
        };
        let message = match &error {
            MapError::Read { source, .. } => format!("cannot read the file: {source}"),
            MapError::Json { source, .. } => format!("not a GeoJSON FeatureCollection: {source}"),
            MapError::Property {
                property, message, ..
            } => format!("property `{property}` {message}"),
            MapError::Geometry { message, .. } => format!("invalid geometry: {message}"),
            MapError::Reference { message, .. } | MapError::Import { message, .. } => {
                message.clone()
            }
        };
        Self::new(error.origin().clone(), kind, message)
    }
}

/// Validates the five map files in `dir`; an empty list means they are fit to load.
pub fn check(dir: &Path) -> Vec<MapProblem> {
    let mut errors = Vec::new();
    let atlas = load::read_dir(dir, &mut errors);
    let mut problems: Vec<MapProblem> = errors.into_iter().map(MapProblem::from).collect();
    problems.extend(check_atlas(&atlas));
    problems
}

/// The checks that need more than one feature: ids, sides of the border, corridor joins.
pub fn check_atlas(atlas: &Atlas) -> Vec<MapProblem> {
    let mut problems = Vec::new();
    unique_ids(atlas, &mut problems);
    for bcp in &atlas.bcps {
        check_bcp(atlas, bcp, &mut problems);
    }
    check_offices(atlas, &mut problems);
    check_corridors(atlas, &mut problems);
    for gap in &atlas.coverage_gaps {
        if let Some(corridor) = gap.corridor.as_deref() {
            if atlas.corridor(corridor).is_none() {
                let origin = Origin::feature(COVERAGE_GAPS, &gap.id);
                let message = format!("refers to an unknown corridor `{corridor}`");
                problems.push(MapProblem::new(
                    origin,
                    ProblemKind::UnknownReference,
                    message,
                ));
            }
        }
    }
    problems
}

fn unique_ids(atlas: &Atlas, problems: &mut Vec<MapProblem>) {
    let countries = atlas
        .countries
        .iter()
        .map(|c| (COUNTRIES, c.code.to_string()));
    let bcps = atlas.bcps.iter().flat_map(|b| {
        std::iter::once((BORDER_CROSSINGS, b.id.clone()))
            .chain(b.posts.iter().map(|p| (BORDER_CROSSINGS, p.id.clone())))
    });
    let offices = atlas
        .offices
        .iter()
        .map(|o| (CUSTOMS_OFFICES, o.id.clone()));
    let corridors = atlas.corridors.iter().map(|c| (CORRIDORS, c.id.clone()));
    let gaps = atlas
        .coverage_gaps
        .iter()
        .map(|g| (COVERAGE_GAPS, g.id.clone()));
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (file, id) in countries
        .chain(bcps)
        .chain(offices)
        .chain(corridors)
        .chain(gaps)
    {
        if let Some(first) = seen.get(&id) {
            let message = format!("id `{id}` is already used in {first}");
            problems.push(MapProblem::new(
                Origin::feature(file, &id),
                ProblemKind::DuplicateId,
                message,
            ));
        } else {
            seen.insert(id, file);
        }
    }
}

fn check_bcp(atlas: &Atlas, bcp: &Bcp, problems: &mut Vec<MapProblem>) {
    let mut countries: Vec<CountryCode> = bcp.posts.iter().map(|p| p.country).collect();
    countries.sort();
    countries.dedup();
    if bcp.posts.len() != 2 || countries.len() != 2 {
        let origin = Origin::feature(BORDER_CROSSINGS, &bcp.id);
        let message = format!(
            "has {} posts in {} countries; a BCP needs one post on each side",
            bcp.posts.len(),
            countries.len()
        );
        problems.push(MapProblem::new(
            origin,
            ProblemKind::IncompletePair,
            message,
        ));
    }
    for corridor in &bcp.corridors {
        if atlas.corridor(corridor).is_none() {
            let origin = Origin::feature(BORDER_CROSSINGS, &bcp.id);
            let message = format!("lists an unknown corridor `{corridor}`");
            problems.push(MapProblem::new(
                origin,
                ProblemKind::UnknownReference,
                message,
            ));
        }
    }
    for post in &bcp.posts {
        check_post(atlas, post, problems);
    }
}

fn check_post(atlas: &Atlas, post: &Post, problems: &mut Vec<MapProblem>) {
    let origin = Origin::feature(BORDER_CROSSINGS, &post.id);
    let mut report = |kind, message| problems.push(MapProblem::new(origin.clone(), kind, message));
    let (Some(own), Some(peer)) = (
        atlas.country(post.country),
        atlas.country(post.peer_country),
    ) else {
        let message = format!(
            "country {} or peer country {} is not in {COUNTRIES}",
            post.country, post.peer_country
        );
        return report(ProblemKind::UnknownReference, message);
    };
    if post.country == post.peer_country {
        return report(
            ProblemKind::InvalidProperty,
            "country and peer_country are the same".to_owned(),
        );
    }
    let Some(centre) = post.zone.centroid() else {
        return report(
            ProblemKind::InvalidGeometry,
            "the zone has no centroid".to_owned(),
        );
    };
    let outside_m = measure::to_area_m(&own.area, centre);
    if outside_m > BORDER_TOLERANCE_M {
        let message = format!(
            "the zone's centre lies {:.1} km outside {}, beyond the {:.0} km border tolerance",
            outside_m / 1000.0,
            post.country,
            BORDER_TOLERANCE_M / 1000.0
        );
        return report(ProblemKind::WrongSide, message);
    }
    let share = share_inside(&post.zone, &peer.area);
    if share > MAX_PEER_SHARE {
        let message = format!(
            "{:.0} % of the zone lies in the peer country {}; a post belongs on its own side",
            share * 100.0,
            post.peer_country
        );
        report(ProblemKind::WrongSide, message);
    }
}

/// The share of `zone` that lies inside `area`, estimated on a 16 × 16 grid.
fn share_inside(zone: &geo::Polygon<f64>, area: &geo::MultiPolygon<f64>) -> f64 {
    const STEPS: u32 = 16;
    let Some(rect) = zone.bounding_rect() else {
        return 0.0;
    };
    let (mut inside_zone, mut inside_area) = (0u32, 0u32);
    for i in 0..STEPS {
        for j in 0..STEPS {
            let x = rect.min().x + rect.width() * (f64::from(i) + 0.5) / f64::from(STEPS);
            let y = rect.min().y + rect.height() * (f64::from(j) + 0.5) / f64::from(STEPS);
            let p = Point::new(x, y);
            if zone.contains(&p) {
                inside_zone += 1;
                inside_area += u32::from(area.contains(&p));
            }
        }
    }
    if inside_zone == 0 {
        return 0.0;
    }
    f64::from(inside_area) / f64::from(inside_zone)
}

fn check_offices(atlas: &Atlas, problems: &mut Vec<MapProblem>) {
    for office in &atlas.offices {
        let origin = Origin::feature(CUSTOMS_OFFICES, &office.id);
        let Some(country) = atlas.country(office.country) else {
            let message = format!("country {} is not in {COUNTRIES}", office.country);
            problems.push(MapProblem::new(
                origin,
                ProblemKind::UnknownReference,
                message,
            ));
            continue;
        };
        let Some(centre) = office.zone.centroid() else {
            continue;
        };
        let outside_m = measure::to_area_m(&country.area, centre);
        if outside_m > BORDER_TOLERANCE_M {
            let message = format!(
                "the zone's centre lies {:.1} km outside {}",
                outside_m / 1000.0,
                office.country
            );
            problems.push(MapProblem::new(origin, ProblemKind::WrongSide, message));
        }
    }
}

/// The reference point of a checkpoint: a BCP's coordinate or an office zone's centre.
fn checkpoint(atlas: &Atlas, id: &str) -> Option<Point<f64>> {
    if let Some(bcp) = atlas.bcp(id) {
        return Some(bcp.location);
    }
    atlas.office(id).and_then(|office| office.zone.centroid())
}

fn check_corridors(atlas: &Atlas, problems: &mut Vec<MapProblem>) {
    for corridor in &atlas.corridors {
        for id in &corridor.joins {
            let origin = Origin::feature(CORRIDORS, &corridor.id);
            let Some(point) = checkpoint(atlas, id) else {
                let message = format!("joins `{id}`, which is neither a BCP nor an office");
                problems.push(MapProblem::new(
                    origin,
                    ProblemKind::UnknownReference,
                    message,
                ));
                continue;
            };
            let distance_m = measure::to_line_m(&corridor.route, point);
            if distance_m > corridor.width_m + CHECKPOINT_TOLERANCE_M {
                let message = format!(
                    "claims to join `{id}` but passes {:.1} km from it (width {:.1} km)",
                    distance_m / 1000.0,
                    corridor.width_m / 1000.0
                );
                problems.push(MapProblem::new(
                    origin,
                    ProblemKind::MissedCheckpoint,
                    message,
                ));
            }
        }
    }
}
