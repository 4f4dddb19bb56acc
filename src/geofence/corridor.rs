//! Corridors and assigned routes as polylines with chainage, indexed by segment.
//!
//! The same structure serves the whole corridor network (nearest corridor for a device
//! without a route) and one assigned route (distance and chainage along the legs of a
//! transit). Lookups try a few segments around the device's previous position first, which
//! also keeps the chainage continuous where a route passes close to itself; only when that
//! fails does the R-tree of segments answer.

use geo::{Coord, LineString};
use rstar::primitives::{GeomWithData, Line};
use rstar::RTree;

use super::metric::{envelope_around, haversine_m, Local};

/// Segments either side of the previous one tried before the R-tree.
const WINDOW: u32 = 3;
/// Candidates taken from the R-tree's nearest-first walk (in degrees, which distorts
/// longitude) before settling on the nearest in metres.
const NEAREST_CANDIDATES: usize = 8;

type SegmentRef = GeomWithData<Line<[f64; 2]>, (u32, u32)>;

/// One polyline: a corridor, or a route built from corridor legs.
pub(crate) struct Path {
    coords: Vec<Coord<f64>>,
    /// Chainage at each vertex, in metres from the start.
    cum_m: Vec<f64>,
    /// Per segment: the corridor it belongs to (index into `Network::corridor_ids`).
    corridor: Vec<u32>,
}

/// Where a point projects onto a network.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Projection {
    pub path: u32,
    pub seg: u32,
    pub distance_m: f64,
    pub chainage_m: f64,
    pub corridor: u32,
}

pub(crate) struct Network {
    paths: Vec<Path>,
    corridor_ids: Vec<String>,
    widths_m: Vec<f64>,
    tree: RTree<SegmentRef>,
    linear: bool,
}

impl Network {
    /// `paths` are polylines of `(coordinate, corridor of the segment starting here)`;
    /// `corridors` are `(id, width)`.
    pub(crate) fn new(
        paths: Vec<Vec<(Coord<f64>, u32)>>,
        corridors: Vec<(String, f64)>,
        linear: bool,
    ) -> Self {
        let mut segments = Vec::new();
        let paths: Vec<Path> = paths
            .into_iter()
            .enumerate()
            .map(|(p, pts)| {
                let coords: Vec<Coord<f64>> = pts.iter().map(|(c, _)| *c).collect();
                let mut cum_m = Vec::with_capacity(coords.len());
                let mut total = 0.0;
                for (i, c) in coords.iter().enumerate() {
                    if i > 0 {
                        total += haversine_m(coords[i - 1], *c);
                        let line = Line::new([coords[i - 1].x, coords[i - 1].y], [c.x, c.y]);
                        segments.push(SegmentRef::new(line, (p as u32, i as u32 - 1)));
                    }
                    cum_m.push(total);
                }
                let corridor = pts.iter().map(|(_, k)| *k).collect();
                Path {
                    coords,
                    cum_m,
                    corridor,
                }
            })
            .collect();
        let (corridor_ids, widths_m) = corridors.into_iter().unzip();
        Self {
            paths,
            corridor_ids,
            widths_m,
            tree: RTree::bulk_load(segments),
            linear,
        }
    }

    /// Whether `p` points at a segment of this network (a saved projection may come from
    /// another build of the maps).
    pub(crate) fn holds(&self, p: Projection) -> bool {
        let segments = |path: &Path| path.coords.len().saturating_sub(1);
        self.paths
            .get(p.path as usize)
            .is_some_and(|path| (p.seg as usize) < segments(path))
            && (p.corridor as usize) < self.corridor_ids.len()
    }

    pub(crate) fn corridor_id(&self, corridor: u32) -> &str {
        &self.corridor_ids[corridor as usize]
    }

    pub(crate) fn width_m(&self, corridor: u32) -> f64 {
        self.widths_m[corridor as usize]
    }

    pub(crate) fn length_m(&self, path: u32) -> f64 {
        self.paths
            .get(path as usize)
            .and_then(|p| p.cum_m.last().copied())
            .unwrap_or(0.0)
    }

    /// The projection of `c`: near `hint` if it is within that corridor's width there,
    /// otherwise the nearest within `radius_m`, otherwise (when `unbounded`) the nearest.
    pub(crate) fn locate(
        &self,
        c: Coord<f64>,
        hint: Option<(u32, u32)>,
        radius_m: f64,
        unbounded: bool,
    ) -> Option<Projection> {
        if self.linear {
            return self
                .nearest_linear(c)
                .filter(|p| unbounded || p.distance_m <= radius_m);
        }
        if let Some((path, seg)) = hint {
            // A vehicle on its corridor is nearly always on the same segment or the next.
            // The nearer of the two counts: past a sharp bend the fix is still within the
            // width of the segment before it, and projecting it there would move it back.
            let frame = Local::at(c);
            let segs = self
                .paths
                .get(path as usize)
                .map_or(0, |p| p.corridor.len() as u32);
            let on = (seg..(seg + 2).min(segs.saturating_sub(1)))
                .map(|s| self.project(&frame, path, s))
                .filter(|p| p.distance_m <= self.width_m(p.corridor))
                .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
            if on.is_some() {
                return on;
            }
            let near = self.nearest_in_window(c, path, seg);
            if let Some(p) = near.filter(|p| p.distance_m <= self.width_m(p.corridor)) {
                return Some(p);
            }
        }
        let frame = Local::at(c);
        let env = envelope_around(c, c, radius_m);
        let within = self
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|s| self.project(&frame, s.data.0, s.data.1))
            .filter(|p| p.distance_m <= radius_m)
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        if within.is_some() || !unbounded {
            return within;
        }
        self.tree
            .nearest_neighbor_iter(&[c.x, c.y])
            .take(NEAREST_CANDIDATES)
            .map(|s| self.project(&frame, s.data.0, s.data.1))
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
    }

    fn nearest_in_window(&self, c: Coord<f64>, path: u32, seg: u32) -> Option<Projection> {
        let segs = self
            .paths
            .get(path as usize)?
            .corridor
            .len()
            .saturating_sub(1) as u32;
        let frame = Local::at(c);
        (seg.saturating_sub(WINDOW)..(seg + WINDOW + 1).min(segs))
            .map(|s| self.project(&frame, path, s))
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
    }

    fn nearest_linear(&self, c: Coord<f64>) -> Option<Projection> {
        let frame = Local::at(c);
        (0..self.paths.len() as u32)
            .flat_map(|p| {
                let n = self.paths[p as usize].coords.len().saturating_sub(1) as u32;
                (0..n).map(move |s| (p, s))
            })
            .map(|(p, s)| self.project(&frame, p, s))
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
    }

    fn project(&self, frame: &Local, path: u32, seg: u32) -> Projection {
        let p = &self.paths[path as usize];
        let i = seg as usize;
        let (distance_m, t) = frame.segment_distance(p.coords[i], p.coords[i + 1]);
        Projection {
            path,
            seg,
            distance_m,
            chainage_m: p.cum_m[i] + t * (p.cum_m[i + 1] - p.cum_m[i]),
            corridor: p.corridor[i],
        }
    }
}

/// Chains corridor lines into one route polyline, orienting each leg so it starts where the
/// previous one ended unless the caller fixed its direction.
pub(crate) fn chain_legs(legs: &[(&LineString<f64>, Option<bool>, u32)]) -> Vec<(Coord<f64>, u32)> {
    let mut out: Vec<(Coord<f64>, u32)> = Vec::new();
    for (i, (line, reversed, corridor)) in legs.iter().enumerate() {
        let mut pts: Vec<Coord<f64>> = line.0.clone();
        let reverse = reversed.unwrap_or_else(|| match (out.last(), legs.get(i + 1)) {
            (Some((end, _)), _) => closer_to_end(&pts, *end),
            (None, Some((next, _, _))) => next_starts_near_our_start(&pts, &next.0),
            (None, None) => false,
        });
        if reverse {
            pts.reverse();
        }
        for (j, c) in pts.into_iter().enumerate() {
            if j == 0 && out.last().is_some_and(|(e, _)| *e == c) {
                continue;
            }
            out.push((c, *corridor));
        }
    }
    out
}

fn closer_to_end(pts: &[Coord<f64>], from: Coord<f64>) -> bool {
    match (pts.first(), pts.last()) {
        (Some(s), Some(e)) => haversine_m(from, *e) < haversine_m(from, *s),
        _ => false,
    }
}

fn next_starts_near_our_start(pts: &[Coord<f64>], next: &[Coord<f64>]) -> bool {
    let (Some(s), Some(e)) = (pts.first(), pts.last()) else {
        return false;
    };
    let ends = [next.first(), next.last()];
    let min_to = |c: &Coord<f64>| {
        ends.iter()
            .flatten()
            .map(|n| haversine_m(*c, **n))
            .fold(f64::INFINITY, f64::min)
    };
    min_to(s) < min_to(e)
}
