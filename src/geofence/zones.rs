//! BCP post zones, customs-office zones and coverage-gap zones, indexed for point and
//! segment queries.
//!
//! An R-tree of zone bounding boxes picks the few candidates near a fix; each zone keeps a
//! y-interval tree of its edges (`IntervalTreeMultiPolygon`) so the point-in-polygon test
//! costs a logarithmic lookup instead of a walk over every edge. Boundary distances and
//! segment tests walk the ring, but only for the one or two zones a fix is next to and only
//! when a state might change.

use geo::algorithm::indexed::IntervalTreeMultiPolygon;
use geo::{BoundingRect, Contains, Coord, MultiPolygon, Polygon, Rect};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::RTree;

use super::event::ZoneKind;
use super::metric::{crossing_param, envelope_around, point_segment_xy, segment_segment_m, Local};
use crate::maps::{Atlas, CountryCode};

/// One zone with what the events need to name it.
pub(crate) struct Zone {
    pub id: String,
    pub kind: ZoneKind,
    /// The post's or office's country.
    pub country: Option<CountryCode>,
    /// For a post, the country on the other side of its BCP.
    pub peer: Option<CountryCode>,
    pub bcp_id: Option<String>,
    /// For a coverage gap, the silence it tolerates.
    pub timeout_s: Option<u32>,
    polygon: Polygon<f64>,
    indexed: IntervalTreeMultiPolygon<f64>,
    bbox: Option<Rect<f64>>,
}

/// The zones a fix is in. Zones rarely overlap, so four inline slots avoid an allocation per
/// fix; a fifth overlapping zone is ignored. Every fix in a device's history window holds
/// one, so the slots are `u16`: half the size, for maps of at most
/// [`crate::maps::MAX_ZONES`] zones (the atlas refuses more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "u64", into = "u64")]
pub(crate) struct ZoneSet {
    /// Zone indices, [`EMPTY`] for an unused slot.
    ids: [u16; 4],
}

/// An unused slot of a [`ZoneSet`].
const EMPTY: u16 = u16::MAX;

// Every zone index of an atlas fits a slot, and none is taken for `EMPTY`.
const _: () = assert!(crate::maps::MAX_ZONES <= EMPTY as usize);

impl Default for ZoneSet {
    fn default() -> Self {
        Self { ids: [EMPTY; 4] }
    }
}

/// Saved as one number: each slot's index plus one in 16 bits, an empty slot as zero, so
/// the usual empty set is a single byte of a saved track.
impl From<ZoneSet> for u64 {
    fn from(set: ZoneSet) -> u64 {
        set.ids
            .iter()
            .enumerate()
            .map(|(i, id)| u64::from(id.wrapping_add(1)) << (16 * i))
            .sum()
    }
}

impl From<u64> for ZoneSet {
    fn from(packed: u64) -> Self {
        let mut ids = [EMPTY; 4];
        for (i, id) in ids.iter_mut().enumerate() {
            // Truncation intended: each slot is its own 16 bits.
            *id = ((packed >> (16 * i)) as u16).wrapping_sub(1);
        }
        Self { ids }
    }
}

impl ZoneSet {
    pub(crate) fn insert(&mut self, zone: u32) {
        let Ok(zone) = u16::try_from(zone) else {
            return;
        };
        if zone == EMPTY || self.contains(u32::from(zone)) {
            return;
        }
        if let Some(slot) = self.ids.iter_mut().find(|slot| **slot == EMPTY) {
            *slot = zone;
        }
    }

    pub(crate) fn contains(&self, zone: u32) -> bool {
        u16::try_from(zone).is_ok_and(|zone| zone != EMPTY && self.ids.contains(&zone))
    }

    /// Whether every id is one of `zones` zones (a saved set may come from another build).
    pub(crate) fn fits(&self, zones: usize) -> bool {
        self.iter().all(|z| (z as usize) < zones)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids
            .iter()
            .filter(|z| **z != EMPTY)
            .map(|z| u32::from(*z))
    }
}

type ZoneBox = GeomWithData<Rectangle<[f64; 2]>, u32>;

pub(crate) struct ZoneIndex {
    zones: Vec<Zone>,
    tree: RTree<ZoneBox>,
    /// Scan every zone with an unindexed `contains`: the naive reference the bench and the
    /// property tests compare against.
    linear: bool,
}

impl ZoneIndex {
    pub(crate) fn new(atlas: &Atlas, linear: bool) -> Self {
        let mut zones = Vec::new();
        for (bcp, post) in atlas.posts() {
            zones.push(Zone::new(&post.id, ZoneKind::Post, &post.zone).with(|z| {
                z.country = Some(post.country);
                z.peer = Some(post.peer_country);
                z.bcp_id = Some(bcp.id.clone());
            }));
        }
        for office in &atlas.offices {
            zones.push(
                Zone::new(&office.id, ZoneKind::Office, &office.zone)
                    .with(|z| z.country = Some(office.country)),
            );
        }
        for gap in &atlas.coverage_gaps {
            zones.push(
                Zone::new(&gap.id, ZoneKind::CoverageGap, &gap.zone)
                    .with(|z| z.timeout_s = Some(gap.signal_loss_timeout_s)),
            );
        }
        let boxes = zones
            .iter()
            .enumerate()
            .filter_map(|(i, z)| {
                let r = z.bbox?;
                let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                Some(ZoneBox::new(rect, i as u32))
            })
            .collect();
        Self {
            zones,
            tree: RTree::bulk_load(boxes),
            linear,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.zones.len()
    }

    pub(crate) fn zone(&self, zone: u32) -> &Zone {
        &self.zones[zone as usize]
    }

    /// Calls `f` with every zone whose box comes within `margin_m` of the segment `a`–`b`.
    pub(crate) fn for_each_near(
        &self,
        a: Coord<f64>,
        b: Coord<f64>,
        margin_m: f64,
        mut f: impl FnMut(u32),
    ) {
        if self.linear {
            (0..self.zones.len() as u32).for_each(f);
            return;
        }
        let env = envelope_around(a, b, margin_m);
        for hit in self.tree.locate_in_envelope_intersecting(&env) {
            f(hit.data);
        }
    }

    /// The zones containing `c`.
    pub(crate) fn at(&self, c: Coord<f64>) -> ZoneSet {
        let mut set = ZoneSet::default();
        self.for_each_near(c, c, 0.0, |z| {
            if self.contains(z, c) {
                set.insert(z);
            }
        });
        set
    }

    pub(crate) fn contains(&self, zone: u32, c: Coord<f64>) -> bool {
        let z = self.zone(zone);
        if self.linear {
            return z.polygon.contains(&c);
        }
        z.bbox.is_some_and(|r| {
            r.min().x <= c.x && c.x <= r.max().x && r.min().y <= c.y && c.y <= r.max().y
        }) && z.indexed.contains(&c)
    }

    /// Distance in metres from `c` to the zone's boundary.
    pub(crate) fn boundary_distance_m(&self, zone: u32, c: Coord<f64>) -> f64 {
        let frame = Local::at(c);
        self.edges(zone)
            .map(|(s, e)| point_segment_xy((0.0, 0.0), frame.project(s), frame.project(e)).0)
            .fold(f64::INFINITY, f64::min)
    }

    /// Distance in metres from the segment `a`–`b` to the zone: zero when it touches it.
    pub(crate) fn segment_distance_m(&self, zone: u32, a: Coord<f64>, b: Coord<f64>) -> f64 {
        if self.contains(zone, a) || self.contains(zone, b) {
            return 0.0;
        }
        self.edges(zone)
            .map(|(s, e)| segment_segment_m(a, b, s, e))
            .fold(f64::INFINITY, f64::min)
    }

    /// The first point (as a fraction of `a`–`b`) where the segment crosses the boundary.
    pub(crate) fn first_crossing(&self, zone: u32, a: Coord<f64>, b: Coord<f64>) -> Option<f64> {
        let frame = Local::at(a);
        let (pa, pb) = (frame.project(a), frame.project(b));
        self.edges(zone)
            .filter_map(|(s, e)| crossing_param(pa, pb, frame.project(s), frame.project(e)))
            .min_by(f64::total_cmp)
    }

    fn edges(&self, zone: u32) -> impl Iterator<Item = (Coord<f64>, Coord<f64>)> + '_ {
        let p = &self.zone(zone).polygon;
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .flat_map(|ring| ring.0.windows(2).map(|w| (w[0], w[1])))
    }
}

impl Zone {
    fn new(id: &str, kind: ZoneKind, polygon: &Polygon<f64>) -> Self {
        Self {
            id: id.to_owned(),
            kind,
            country: None,
            peer: None,
            bcp_id: None,
            timeout_s: None,
            indexed: IntervalTreeMultiPolygon::new(&MultiPolygon(vec![polygon.clone()])),
            bbox: polygon.bounding_rect(),
            polygon: polygon.clone(),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_set_holds_four_zones_and_is_saved_as_one_number() {
        let mut set = ZoneSet::default();
        assert_eq!(u64::from(set), 0, "the empty set saves as zero");
        for zone in [0, 7, 7, 65_534, 12, 13] {
            set.insert(zone);
        }
        // The duplicate and the fifth zone are ignored; an index past the slots never lands.
        set.insert(u32::from(EMPTY));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 7, 65_534, 12]);
        assert!(set.contains(65_534) && !set.contains(13) && !set.contains(u32::from(EMPTY)));
        assert_eq!(ZoneSet::from(u64::from(set)), set);
        // Any number read back names only real slots.
        assert!(ZoneSet::from(u64::MAX).iter().all(|z| z < u32::from(EMPTY)));
    }
}
