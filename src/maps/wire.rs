//! GeoJSON as stored in `maps/` (RFC 7946), read into strictly validated `geo` geometry.
//!
//! Nothing is repaired here: an unclosed ring, a coordinate out of range or a ring without
//! area is an error naming the feature, so `caravan maps check` can report it.

use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{MapError, Origin};

/// One `*.geojson` file.
#[derive(Debug, Deserialize)]
pub(crate) struct RawCollection {
    #[serde(rename = "type")]
    pub kind: String,
    pub features: Vec<RawFeature>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawFeature {
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
    #[serde(default)]
    pub geometry: Option<RawGeometry>,
}

type Position = Vec<f64>;

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum RawGeometry {
    Point {
        coordinates: Position,
    },
    LineString {
        coordinates: Vec<Position>,
    },
    Polygon {
        coordinates: Vec<Vec<Position>>,
    },
    MultiPolygon {
        coordinates: Vec<Vec<Vec<Position>>>,
    },
    #[serde(other)]
    Unsupported,
}

impl RawGeometry {
    fn name(&self) -> &'static str {
        match self {
            Self::Point { .. } => "Point",
            Self::LineString { .. } => "LineString",
            Self::Polygon { .. } => "Polygon",
            Self::MultiPolygon { .. } => "MultiPolygon",
            Self::Unsupported => "unsupported geometry",
        }
    }
}

/// Parses a file's text into its features.
pub(crate) fn parse_collection(file: &str, text: &str) -> Result<Vec<RawFeature>, MapError> {
    let collection: RawCollection =
        serde_json::from_str(text).map_err(|source| MapError::Json {
            origin: Origin::file(file),
            source,
        })?;
    if collection.kind != "FeatureCollection" {
        return Err(MapError::Reference {
            origin: Origin::file(file),
            message: format!("type is `{}`, expected FeatureCollection", collection.kind),
        });
    }
    Ok(collection.features)
}

/// A feature being read, with the origin every error about it will carry.
pub(crate) struct FeatureReader<'a> {
    pub origin: Origin,
    properties: Option<&'a Map<String, Value>>,
    geometry: Option<&'a RawGeometry>,
}

impl<'a> FeatureReader<'a> {
    pub fn new(file: &str, index: usize, feature: &'a RawFeature) -> Self {
        let properties = feature.properties.as_ref();
        let id = properties
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{index}"), str::to_owned);
        Self {
            origin: Origin::feature(file, &id),
            properties,
            geometry: feature.geometry.as_ref(),
        }
    }

    fn property_error(&self, property: &'static str, message: &str) -> MapError {
        MapError::Property {
            origin: self.origin.clone(),
            property,
            message: message.to_owned(),
        }
    }

    fn value(&self, property: &'static str) -> Option<&'a Value> {
        self.properties
            .and_then(|p| p.get(property))
            .filter(|v| !v.is_null())
    }

    pub fn string(&self, property: &'static str) -> Result<String, MapError> {
        match self.value(property) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(_) => Err(self.property_error(property, "must be a non-empty string")),
            None => Err(self.property_error(property, "is missing")),
        }
    }

    pub fn optional_string(&self, property: &'static str) -> Result<Option<String>, MapError> {
        match self.value(property) {
            None => Ok(None),
            Some(_) => self.string(property).map(Some),
        }
    }

    pub fn strings(&self, property: &'static str) -> Result<Vec<String>, MapError> {
        let Some(value) = self.value(property) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| self.property_error(property, "must be an array of strings"))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.property_error(property, "must be an array of strings"))
            })
            .collect()
    }

    pub fn number(&self, property: &'static str) -> Result<f64, MapError> {
        match self.value(property).and_then(Value::as_f64) {
            Some(n) if n.is_finite() => Ok(n),
            _ => Err(self.property_error(property, "must be a finite number")),
        }
    }

    pub fn parsed<T>(&self, property: &'static str) -> Result<T, MapError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.string(property)?;
        text.parse()
            .map_err(|e: T::Err| self.property_error(property, &e.to_string()))
    }

    fn geometry_error(&self, message: String) -> MapError {
        MapError::Geometry {
            origin: self.origin.clone(),
            message,
        }
    }

    fn raw_geometry(&self) -> Result<&'a RawGeometry, MapError> {
        self.geometry
            .ok_or_else(|| self.geometry_error("the feature has no geometry".to_owned()))
    }

    fn mismatch(&self, expected: &str, found: &RawGeometry) -> MapError {
        self.geometry_error(format!("expected a {expected}, found a {}", found.name()))
    }

    pub fn point(&self) -> Result<geo::Point<f64>, MapError> {
        match self.raw_geometry()? {
            RawGeometry::Point { coordinates } => coord(coordinates)
                .map(geo::Point::from)
                .map_err(|m| self.geometry_error(m)),
            other => Err(self.mismatch("Point", other)),
        }
    }

    pub fn line_string(&self) -> Result<LineString<f64>, MapError> {
        match self.raw_geometry()? {
            RawGeometry::LineString { coordinates } => {
                line(coordinates).map_err(|m| self.geometry_error(m))
            }
            other => Err(self.mismatch("LineString", other)),
        }
    }

    pub fn polygon(&self) -> Result<Polygon<f64>, MapError> {
        match self.raw_geometry()? {
            RawGeometry::Polygon { coordinates } => {
                polygon(coordinates).map_err(|m| self.geometry_error(m))
            }
            other => Err(self.mismatch("Polygon", other)),
        }
    }

    /// A Polygon or a MultiPolygon, as a MultiPolygon.
    pub fn multi_polygon(&self) -> Result<MultiPolygon<f64>, MapError> {
        let parts = match self.raw_geometry()? {
            RawGeometry::Polygon { coordinates } => vec![polygon(coordinates)],
            RawGeometry::MultiPolygon { coordinates } => {
                coordinates.iter().map(|p| polygon(p)).collect()
            }
            other => return Err(self.mismatch("Polygon or MultiPolygon", other)),
        };
        let parts = parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| part.map_err(|m| self.geometry_error(format!("part {i}: {m}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiPolygon::new(parts))
    }
}

pub(crate) fn coord(position: &[f64]) -> Result<Coord<f64>, String> {
    let [x, y, ..] = position else {
        return Err(format!("position {position:?} has fewer than two numbers"));
    };
    if !x.is_finite() || !y.is_finite() {
        return Err(format!("position {position:?} is not finite"));
    }
    if !(-180.0..=180.0).contains(x) || !(-90.0..=90.0).contains(y) {
        return Err(format!(
            "position [{x}, {y}] is out of range (lon, lat order)"
        ));
    }
    Ok(Coord { x: *x, y: *y })
}

fn coords(positions: &[Position]) -> Result<Vec<Coord<f64>>, String> {
    positions.iter().map(|p| coord(p)).collect()
}

pub(crate) fn line(positions: &[Position]) -> Result<LineString<f64>, String> {
    let points = coords(positions)?;
    let distinct = points.windows(2).filter(|w| w[0] != w[1]).count();
    if points.len() < 2 || distinct == 0 {
        return Err("a LineString needs at least two distinct positions".to_owned());
    }
    Ok(LineString::new(points))
}

fn ring(index: usize, positions: &[Position]) -> Result<LineString<f64>, String> {
    let points = coords(positions)?;
    if points.len() < 4 {
        return Err(format!(
            "ring {index} has {} positions, fewer than 4",
            points.len()
        ));
    }
    if points.first() != points.last() {
        return Err(format!(
            "ring {index} is not closed: its first and last positions differ"
        ));
    }
    let ring = LineString::new(points);
    let area = geo::Polygon::new(ring.clone(), vec![]);
    if geo::Area::unsigned_area(&area) <= 0.0 {
        return Err(format!("ring {index} encloses no area"));
    }
    Ok(ring)
}

fn polygon(rings: &[Vec<Position>]) -> Result<Polygon<f64>, String> {
    let mut rings = rings.iter().enumerate().map(|(i, r)| ring(i, r));
    let exterior = rings
        .next()
        .ok_or_else(|| "a polygon needs at least one ring".to_owned())??;
    let interiors = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}
