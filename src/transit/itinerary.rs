//! The route of a transit, built from the atlas: its checkpoints (office of departure, the
//! BCPs in order, office of destination), the legs between them with their country and time
//! budget, the corridor legs the geofence engine follows, and one polyline with chainage.
//!
//! A transit may also be national: it may begin at the post of entry of a BCP (goods
//! entering the country under transit to an inland office), end at the post of exit of a
//! BCP (from an inland office out of the country), or run from one office to another in one
//! country. The post is named by its id (`irkeshtam-kg`), which says whose side it is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

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
    /// One post of a BCP where a national transit begins (entry) or ends (exit).
    Post,
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
    /// For a post of entry or exit: the BCP it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcp_id: Option<String>,
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

/// The checkpoints, legs and line are the same for every transit declared on the same
/// places with the same maps, and are shared between them
/// ([`SharedItineraries`](super::shared::SharedItineraries)). The route carries the
/// transit's own id; the book holds one itinerary whole for the open transits on it and
/// names its route by each transit as it is read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Itinerary {
    #[serde(with = "super::shared::arc")]
    pub checkpoints: Arc<[Checkpoint]>,
    #[serde(with = "super::shared::arc")]
    pub legs: Arc<[Leg]>,
    /// The approved route, as the geofence engine is given it.
    pub route: Option<Route>,
    #[serde(with = "super::shared::arc")]
    pub line: Arc<RouteLine>,
}

impl Itinerary {
    /// Countries of the legs from `leg` on, in route order, each once.
    pub fn countries_from(&self, leg: usize) -> Vec<CountryCode> {
        let mut out: Vec<CountryCode> = Vec::new();
        for l in self.legs.iter().skip(leg) {
            if !out.contains(&l.country) {
                out.push(l.country);
            }
        }
        out
    }

    pub fn checkpoint(&self, id: &str) -> Option<(usize, &Checkpoint)> {
        self.checkpoints
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == id)
    }

    /// Whether the transit begins or ends at a post of `bcp_id` (a national transit).
    pub fn starts_or_ends_at(&self, bcp_id: &str) -> bool {
        [self.checkpoints.first(), self.checkpoints.last()]
            .into_iter()
            .flatten()
            .any(|c| c.bcp_id.as_deref() == Some(bcp_id))
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
    if req.departure == req.destination {
        let msg = format!(
            "`{}` is both departure and destination: a transit runs from one place to another",
            req.destination
        );
        errors.push(FieldError::new("destination_office", msg));
    }
    match place(atlas, req.departure) {
        Ok((cp, country)) => {
            checkpoints.push(cp);
            countries.push(country);
        }
        Err(msg) => errors.push(FieldError::new("departure_office", msg)),
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
            bcp_id: None,
        });
    }
    match place(atlas, req.destination) {
        Ok((cp, country)) => {
            if let Some(&last) = countries.last().filter(|c| **c != country) {
                let msg = format!(
                    "`{}` is in {country}, but the itinerary ends in {last}",
                    cp.id
                );
                errors.push(FieldError::new("destination_office", msg));
            }
            checkpoints.push(cp);
        }
        Err(msg) => errors.push(FieldError::new("destination_office", msg)),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    connect(atlas, rules, req.transit_id, checkpoints, &countries)
}

/// The country whose customs a transit starting at `id` (an office or a post) answers to.
pub fn place_country(atlas: &Atlas, id: &str) -> Option<CountryCode> {
    place(atlas, id).ok().map(|(_, c)| c)
}

/// An office, or the post of a BCP where a national transit begins or ends.
fn place(atlas: &Atlas, id: &str) -> Result<(Checkpoint, CountryCode), String> {
    if let Some(o) = atlas.office(id) {
        return Ok((office_checkpoint(o), o.country));
    }
    if let Some((bcp, post)) = atlas.post(id) {
        let cp = Checkpoint {
            id: post.id.clone(),
            kind: CheckpointKind::Post,
            name: post.name.clone(),
            posts: vec![PostRef {
                id: post.id.clone(),
                country: post.country,
            }],
            location: [bcp.location.x(), bcp.location.y()],
            chainage_m: 0.0,
            bcp_id: Some(bcp.id.clone()),
        };
        return Ok((cp, post.country));
    }
    if let Some(bcp) = atlas.bcp(id) {
        let posts: Vec<&str> = bcp.posts.iter().map(|p| p.id.as_str()).collect();
        return Err(format!(
            "`{id}` is a BCP with a post on each side: name the post ({})",
            posts.join(" or ")
        ));
    }
    Err(format!("no customs office or BCP post `{id}` in the maps"))
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
        bcp_id: None,
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
        // A post of entry or exit is reached along the corridors through its BCP.
        let node = |c: &Checkpoint| c.bcp_id.clone().unwrap_or_else(|| c.id.clone());
        let Some(pieces) = corridor_path(atlas, &node(a), &node(b)) else {
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
        // A transit ending at a post of exit ends on arrival there: no dwell.
        let dwell = match b.kind {
            CheckpointKind::Bcp => rules.dwell(&b.id),
            CheckpointKind::Office | CheckpointKind::Post => chrono::Duration::zero(),
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
        checkpoints: checkpoints.into(),
        legs: legs.into(),
        route: Some(Route {
            id: transit_id.into(),
            legs: route_legs.into(),
            critical_deviation_m: Some(rules.alerts.deviation_critical_km * 1000.0),
        }),
        line: Arc::new(RouteLine::new(coords)),
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
