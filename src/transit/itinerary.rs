//! The route of a transit, built from the atlas: its checkpoints (office of departure, the
//! BCPs in order, office of destination), the legs between them with their country and time
//! budget, the corridor legs the geofence engine follows, and one polyline with chainage.

use std::collections::{HashMap, VecDeque};

use geo::{Centroid, Coord};
use serde::{Deserialize, Serialize};

use super::declare::FieldError;
use super::line::RouteLine;
use super::rules::TransitRules;
use crate::geofence::{Route, RouteLeg};
use crate::maps::{Atlas, Corridor, CountryCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    Office,
    Bcp,
}

/// One side of a BCP, as the transit meets it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostRef {
    pub id: String,
    pub country: CountryCode,
}

/// A place the transit must pass, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: String,
    pub kind: CheckpointKind,
    pub name: String,
    /// For a BCP: the post the transit reaches first, then the far post.
    pub posts: Vec<PostRef>,
    /// `[lon, lat]`.
    pub location: [f64; 2],
    /// Distance along the route from the office of departure.
    pub chainage_m: f64,
}

/// The part of the route between two consecutive checkpoints, in one country.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    pub from: String,
    pub to: String,
    /// Whose authority is responsible for the transit on this leg.
    pub country: CountryCode,
    pub distance_m: f64,
    /// Driving at the CPMM speed with delay, plus the typical dwell at a BCP ending the leg.
    pub budget_s: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Itinerary {
    pub checkpoints: Vec<Checkpoint>,
    pub legs: Vec<Leg>,
    /// The approved route, as the geofence engine is given it.
    pub route: Option<Route>,
    pub line: RouteLine,
}

impl Itinerary {
    pub fn checkpoint(&self, id: &str) -> Option<(usize, &Checkpoint)> {
        self.checkpoints
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == id)
    }

    /// The checkpoint index of the BCP owning `post_id`.
    pub fn checkpoint_of_post(&self, post_id: &str) -> Option<(usize, &Checkpoint)> {
        self.checkpoints
            .iter()
            .enumerate()
            .find(|(_, c)| c.posts.iter().any(|p| p.id == post_id))
    }
}

/// What the declaration names, to be resolved against the atlas.
pub struct Request<'a> {
    pub transit_id: &'a str,
    pub departure: &'a str,
    pub bcps: &'a [String],
    pub destination: &'a str,
}

/// Resolves the checkpoints, their countries and the corridors between them.
///
/// # Errors
/// One [`FieldError`] per problem: unknown office or BCP, a BCP that does not border the
/// country the previous leg ends in, a destination in another country, or two checkpoints no
/// chain of corridors connects.
pub fn build(
    atlas: &Atlas,
    rules: &TransitRules,
    req: &Request<'_>,
) -> Result<Itinerary, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut checkpoints = Vec::new();
    let mut countries = Vec::new();
    match atlas.office(req.departure) {
        Some(o) => {
            checkpoints.push(office_checkpoint(o));
            countries.push(o.country);
        }
        None => errors.push(FieldError::new(
            "departure_office",
            format!("no customs office `{}` in the maps", req.departure),
        )),
    }
    for (i, id) in req.bcps.iter().enumerate() {
        let field = format!("itinerary[{i}]");
        let Some(bcp) = atlas.bcp(id) else {
            errors.push(FieldError::new(field, format!("no BCP `{id}` in the maps")));
            continue;
        };
        let Some(&from) = countries.last() else {
            continue;
        };
        let Some(near) = bcp.posts.iter().find(|p| p.country == from) else {
            let msg = format!("BCP `{id}` has no post in {from}, where the previous leg ends");
            errors.push(FieldError::new(field, msg));
            continue;
        };
        let far = bcp.posts.iter().find(|p| p.country != from);
        let posts: Vec<PostRef> = std::iter::once(near)
            .chain(far)
            .map(|p| PostRef {
                id: p.id.clone(),
                country: p.country,
            })
            .collect();
        countries.push(far.map_or(near.peer_country, |p| p.country));
        checkpoints.push(Checkpoint {
            id: bcp.id.clone(),
            kind: CheckpointKind::Bcp,
            name: bcp.name.clone(),
            posts,
            location: [bcp.location.x(), bcp.location.y()],
            chainage_m: 0.0,
        });
    }
    match atlas.office(req.destination) {
        Some(o) => {
            if let Some(&last) = countries.last().filter(|c| **c != o.country) {
                let msg = format!(
                    "the office is in {}, but the itinerary ends in {last}",
                    o.country
                );
                errors.push(FieldError::new("destination_office", msg));
            }
            checkpoints.push(office_checkpoint(o));
        }
        None => errors.push(FieldError::new(
            "destination_office",
            format!("no customs office `{}` in the maps", req.destination),
        )),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    connect(atlas, rules, req.transit_id, checkpoints, &countries)
}

fn office_checkpoint(o: &crate::maps::Office) -> Checkpoint {
    let c = o.zone.centroid().map_or([0.0, 0.0], |p| [p.x(), p.y()]);
    Checkpoint {
        id: o.id.clone(),
        kind: CheckpointKind::Office,
        name: o.name.clone(),
        posts: Vec::new(),
        location: c,
        chainage_m: 0.0,
    }
}

/// One stretch of one corridor, between two of its joins.
struct Piece<'a> {
    corridor: &'a Corridor,
    from: usize,
    to: usize,
}

fn connect(
    atlas: &Atlas,
    rules: &TransitRules,
    transit_id: &str,
    mut checkpoints: Vec<Checkpoint>,
    countries: &[CountryCode],
) -> Result<Itinerary, Vec<FieldError>> {
    let mut legs = Vec::new();
    let mut coords: Vec<Coord<f64>> = Vec::new();
    let mut route_legs: Vec<RouteLeg> = Vec::new();
    let mut chainage = 0.0;
    let mut errors = Vec::new();
    for k in 0..checkpoints.len().saturating_sub(1) {
        let (a, b) = (&checkpoints[k], &checkpoints[k + 1]);
        let Some(pieces) = corridor_path(atlas, &a.id, &b.id) else {
            let msg = format!("no corridor in the maps connects `{}` to `{}`", a.id, b.id);
            errors.push(FieldError::new("itinerary", msg));
            continue;
        };
        let mut leg_coords = Vec::new();
        for piece in &pieces {
            leg_coords.extend(piece_coords(atlas, piece));
            let reversed = piece.from > piece.to;
            if route_legs
                .last()
                .is_none_or(|l| l.corridor_id != piece.corridor.id)
            {
                route_legs.push(RouteLeg {
                    corridor_id: piece.corridor.id.clone(),
                    reversed: Some(reversed),
                });
            }
        }
        let distance_m = RouteLine::new(leg_coords.clone()).length_m();
        let dwell = match b.kind {
            CheckpointKind::Bcp => rules.dwell(&b.id),
            CheckpointKind::Office => chrono::Duration::zero(),
        };
        let budget = TransitRules::drive(distance_m, rules.speed.with_delay_kmh) + dwell;
        legs.push(Leg {
            from: a.id.clone(),
            to: b.id.clone(),
            country: countries[k],
            distance_m,
            budget_s: budget.num_seconds(),
        });
        chainage += distance_m;
        checkpoints[k + 1].chainage_m = chainage;
        coords.extend(leg_coords);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Itinerary {
        checkpoints,
        legs,
        route: Some(Route {
            id: transit_id.to_owned(),
            legs: route_legs,
        }),
        line: RouteLine::new(coords),
    })
}

/// The shortest chain of corridor stretches (fewest joins) from one checkpoint to the next,
/// walking the corridors' `joins` lists without passing another BCP.
fn corridor_path<'a>(atlas: &'a Atlas, from: &str, to: &str) -> Option<Vec<Piece<'a>>> {
    let mut edges: HashMap<&str, Vec<(&str, usize, usize, usize)>> = HashMap::new();
    for (c, corridor) in atlas.corridors.iter().enumerate() {
        for j in 1..corridor.joins.len() {
            let (x, y) = (corridor.joins[j - 1].as_str(), corridor.joins[j].as_str());
            edges.entry(x).or_default().push((y, c, j - 1, j));
            edges.entry(y).or_default().push((x, c, j, j - 1));
        }
    }
    let mut came: HashMap<&str, (&str, usize, usize, usize)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        // A path through another BCP would cross a border the itinerary does not declare.
        if node != from && atlas.bcp(node).is_some() {
            continue;
        }
        for &(next, c, i, j) in edges.get(node).into_iter().flatten() {
            if next != from && !came.contains_key(next) {
                came.insert(next, (node, c, i, j));
                queue.push_back(next);
            }
        }
    }
    let mut steps = Vec::new();
    let mut node = to;
    while node != from {
        let &(prev, c, i, j) = came.get(node)?;
        steps.push((c, i, j));
        node = prev;
    }
    steps.reverse();
    let mut pieces: Vec<Piece<'a>> = Vec::new();
    for (c, i, j) in steps {
        match pieces.last_mut() {
            Some(p) if p.corridor.id == atlas.corridors[c].id && (p.to == i) => p.to = j,
            _ => pieces.push(Piece {
                corridor: &atlas.corridors[c],
                from: i,
                to: j,
            }),
        }
    }
    (!pieces.is_empty()).then_some(pieces)
}

/// The corridor's line between the places its two joins name, in travel order.
fn piece_coords(atlas: &Atlas, piece: &Piece<'_>) -> Vec<Coord<f64>> {
    let line = RouteLine::new(piece.corridor.route.0.clone());
    let at = |join: usize| {
        let id = piece
            .corridor
            .joins
            .get(join)
            .map(String::as_str)
            .unwrap_or("");
        join_location(atlas, id)
            .and_then(|c| line.locate(c))
            .map(|a| a.chainage_m)
    };
    let last = piece.corridor.joins.len().saturating_sub(1).max(1) as f64;
    let fallback = |join: usize| line.length_m() * join as f64 / last;
    let from_m = at(piece.from).unwrap_or_else(|| fallback(piece.from));
    let to_m = at(piece.to).unwrap_or_else(|| fallback(piece.to));
    line.slice(from_m, to_m)
}

fn join_location(atlas: &Atlas, id: &str) -> Option<Coord<f64>> {
    if let Some(bcp) = atlas.bcp(id) {
        return Some(bcp.location.0);
    }
    atlas
        .office(id)
        .and_then(|o| o.zone.centroid())
        .map(|p| p.0)
}
