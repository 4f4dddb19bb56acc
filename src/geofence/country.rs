//! Which country a fix is in, and whether it is near enough a border for the border data's
//! tolerance to matter.
//!
//! Each polygon part of a country (mainland, exclaves, enclaves, islands) is indexed on its
//! own: an R-tree of part boxes finds the candidates, a y-interval tree of edges answers the
//! point-in-polygon test, and the last part a device was in is tried first, so a truck deep
//! inside a country costs one indexed test. Border edges sit in their own R-tree for the
//! "within tolerance of a border" question.

use geo::algorithm::indexed::IntervalTreeMultiPolygon;
use geo::{BoundingRect, ChamberlainDuquetteArea, Contains, Coord, MultiPolygon, Polygon, Rect};
use rstar::primitives::{GeomWithData, Line, Rectangle};
use rstar::RTree;

use super::grid::{Cell, Grid};
use super::metric::{envelope_around, point_segment_xy, Local};
use crate::maps::{Atlas, CountryCode};

/// One polygon of a country's territory.
struct Part {
    country: u16,
    polygon: Polygon<f64>,
    indexed: IntervalTreeMultiPolygon<f64>,
    bbox: Rect<f64>,
    /// Small enough to be crossed on an ordinary road (Sokh, Vorukh, Shakhimardan).
    enclave: bool,
}

/// Where a fix is, country-wise. Every fix in a device's history window holds one, so the
/// part is a `u16`: the atlas refuses more than [`crate::maps::MAX_COUNTRY_PARTS`] parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "u32", into = "u32")]
pub(crate) struct CountryFix {
    /// The part's index, [`NO_PART`] outside every country.
    part: u16,
    /// Inside a part that is not an enclave and beyond the border tolerance: a place where
    /// the device has certainly entered the country.
    pub settled: bool,
}

/// A [`CountryFix`] outside every country.
const NO_PART: u16 = u16::MAX;

// Every part index of an atlas fits, and none is taken for `NO_PART`.
const _: () = assert!(crate::maps::MAX_COUNTRY_PARTS <= NO_PART as usize);

impl Default for CountryFix {
    fn default() -> Self {
        Self {
            part: NO_PART,
            settled: false,
        }
    }
}

/// Saved as one number: the part plus one in the low 16 bits (zero outside every country),
/// and bit 16 for `settled`.
impl From<CountryFix> for u32 {
    fn from(fix: CountryFix) -> u32 {
        u32::from(fix.part.wrapping_add(1)) | (u32::from(fix.settled) << 16)
    }
}

impl From<u32> for CountryFix {
    fn from(packed: u32) -> Self {
        Self {
            // Truncation intended: the part is the low 16 bits.
            part: (packed as u16).wrapping_sub(1),
            settled: packed & (1 << 16) != 0,
        }
    }
}

impl CountryFix {
    pub(crate) fn new(part: Option<u32>, settled: bool) -> Self {
        let part = part
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != NO_PART);
        Self {
            part: part.unwrap_or(NO_PART),
            settled: settled && part.is_some(),
        }
    }

    /// The part of the country the fix is in.
    pub(crate) fn part(&self) -> Option<u32> {
        (self.part != NO_PART).then_some(u32::from(self.part))
    }
}

pub(crate) struct CountryIndex {
    codes: Vec<CountryCode>,
    parts: Vec<Part>,
    part_tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    borders: RTree<Line<[f64; 2]>>,
    grid: Option<Grid>,
    tolerance_m: f64,
    /// Linear scans with unindexed `contains`: the naive reference.
    linear: bool,
}

impl CountryIndex {
    pub(crate) fn new(
        atlas: &Atlas,
        tolerance_m: f64,
        enclave_max_area_km2: f64,
        linear: bool,
    ) -> Self {
        let mut codes = Vec::new();
        let mut parts = Vec::new();
        let mut edges = Vec::new();
        for country in &atlas.countries {
            let code = codes.len() as u16;
            codes.push(country.code);
            for polygon in &country.area.0 {
                let Some(bbox) = polygon.bounding_rect() else {
                    continue;
                };
                let area_km2 = polygon.chamberlain_duquette_unsigned_area() / 1e6;
                for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                    edges.extend(
                        ring.0
                            .windows(2)
                            .map(|w| Line::new([w[0].x, w[0].y], [w[1].x, w[1].y])),
                    );
                }
                parts.push(Part {
                    country: code,
                    indexed: IntervalTreeMultiPolygon::new(&MultiPolygon(vec![polygon.clone()])),
                    polygon: polygon.clone(),
                    bbox,
                    enclave: area_km2 < enclave_max_area_km2,
                });
            }
        }
        let boxes = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (lo, hi) = (p.bbox.min(), p.bbox.max());
                GeomWithData::new(
                    Rectangle::from_corners([lo.x, lo.y], [hi.x, hi.y]),
                    i as u32,
                )
            })
            .collect();
        let mut index = Self {
            codes,
            parts,
            part_tree: RTree::bulk_load(boxes),
            borders: RTree::bulk_load(edges),
            grid: None,
            tolerance_m,
            linear,
        };
        if !linear {
            index.grid = Grid::build(&index);
        }
        index
    }

    pub(crate) fn parts(&self) -> usize {
        self.parts.len()
    }

    pub(crate) fn countries(&self) -> usize {
        self.codes.len()
    }

    pub(crate) fn code(&self, part: u32) -> CountryCode {
        self.codes[usize::from(self.parts[part as usize].country)]
    }

    pub(crate) fn code_of(&self, country: u16) -> CountryCode {
        self.codes[usize::from(country)]
    }

    pub(crate) fn country_of(&self, part: u32) -> u16 {
        self.parts[part as usize].country
    }

    /// The country facts of `c`; `hint` is the part of the device's previous fix.
    pub(crate) fn locate(&self, c: Coord<f64>, hint: Option<u32>) -> CountryFix {
        if let Some(grid) = &self.grid {
            match grid.cell(c) {
                Cell::Inside(part) => {
                    return CountryFix::new(Some(part), !self.parts[part as usize].enclave)
                }
                Cell::Nowhere => return CountryFix::default(),
                Cell::Mixed => {}
            }
        }
        let part = self.part_at(c, hint);
        let settled = part.is_some_and(|p| {
            !self.parts[p as usize].enclave && !self.near_border(c, self.tolerance_m)
        });
        CountryFix::new(part, settled)
    }

    /// The part containing `c`, trying `hint` first.
    pub(crate) fn part_at(&self, c: Coord<f64>, hint: Option<u32>) -> Option<u32> {
        if self.linear {
            return (0..self.parts.len() as u32)
                .find(|&p| self.parts[p as usize].polygon.contains(&c));
        }
        if let Some(h) = hint.filter(|&h| self.part_contains(h, c)) {
            return Some(h);
        }
        self.part_tree
            .locate_all_at_point(&[c.x, c.y])
            .map(|hit| hit.data)
            .find(|&p| Some(p) != hint && self.part_contains(p, c))
    }

    fn part_contains(&self, part: u32, c: Coord<f64>) -> bool {
        let p = &self.parts[part as usize];
        let (lo, hi) = (p.bbox.min(), p.bbox.max());
        lo.x <= c.x && c.x <= hi.x && lo.y <= c.y && c.y <= hi.y && p.indexed.contains(&c)
    }

    /// Whether any border edge lies within `radius_m` of `c`.
    pub(crate) fn near_border(&self, c: Coord<f64>, radius_m: f64) -> bool {
        let frame = Local::at(c);
        let close = |l: &Line<[f64; 2]>| {
            let s = frame.project(Coord {
                x: l.from[0],
                y: l.from[1],
            });
            let e = frame.project(Coord {
                x: l.to[0],
                y: l.to[1],
            });
            point_segment_xy((0.0, 0.0), s, e).0 <= radius_m
        };
        if self.linear {
            return self.borders.iter().any(close);
        }
        let env = envelope_around(c, c, radius_m);
        self.borders
            .locate_in_envelope_intersecting(&env)
            .any(close)
    }

    pub(crate) fn parts_len(&self) -> usize {
        self.parts.len()
    }

    pub(crate) fn bounds(&self) -> Option<Rect<f64>> {
        let env = self.part_tree.root().envelope();
        (!self.parts.is_empty()).then(|| {
            Rect::new(
                Coord {
                    x: env.lower()[0],
                    y: env.lower()[1],
                },
                Coord {
                    x: env.upper()[0],
                    y: env.upper()[1],
                },
            )
        })
    }

    pub(crate) fn tolerance_m(&self) -> f64 {
        self.tolerance_m
    }
}
