//! Reading the five map files into an [`Atlas`].

use std::collections::HashMap;
use std::path::Path;

use super::error::{MapError, Origin};
use super::model::{Atlas, Bcp, Corridor, Country, CountryCode, CoverageGap, Office, Post};
use super::wire::{parse_collection, FeatureReader, RawFeature};

pub const COUNTRIES: &str = "countries.geojson";
pub const BORDER_CROSSINGS: &str = "border-crossings.geojson";
pub const CUSTOMS_OFFICES: &str = "customs-offices.geojson";
pub const CORRIDORS: &str = "corridors.geojson";
pub const COVERAGE_GAPS: &str = "coverage-gaps.geojson";

/// The most zones (BCP posts, customs offices and coverage gaps together) an atlas holds:
/// the geofence engine keeps the zones of every fix in a device's history window as 16-bit
/// indices.
pub const MAX_ZONES: usize = u16::MAX as usize;
/// The most polygon parts the countries have together, for the same reason.
pub const MAX_COUNTRY_PARTS: usize = u16::MAX as usize;

/// The map files, in the order they are read.
pub const FILES: [&str; 5] = [
    COUNTRIES,
    BORDER_CROSSINGS,
    CUSTOMS_OFFICES,
    CORRIDORS,
    COVERAGE_GAPS,
];

/// The maps shipped in the repository, compiled into the binary.
const EMBEDDED: [(&str, &str); 5] = [
    (COUNTRIES, include_str!("../../maps/countries.geojson")),
    (
        BORDER_CROSSINGS,
        include_str!("../../maps/border-crossings.geojson"),
    ),
    (
        CUSTOMS_OFFICES,
        include_str!("../../maps/customs-offices.geojson"),
    ),
    (CORRIDORS, include_str!("../../maps/corridors.geojson")),
    (
        COVERAGE_GAPS,
        include_str!("../../maps/coverage-gaps.geojson"),
    ),
];

/// The text of a shipped map file (`countries.geojson`, ...), as compiled in.
pub fn embedded_text(file: &str) -> Option<&'static str> {
    EMBEDDED
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, text)| *text)
}

impl Atlas {
    /// Reads the five map files from `dir`.
    ///
    /// # Errors
    /// The first file that cannot be read or parsed, or the first feature whose geometry or
    /// properties are invalid. `check` lists every problem instead of the first.
    pub fn load(dir: &Path) -> Result<Atlas, MapError> {
        let mut errors = Vec::new();
        let atlas = read_dir(dir, &mut errors);
        first_error(atlas, errors)
    }

    /// The maps shipped with Caravan, so that the service runs from any directory.
    ///
    /// # Errors
    /// Only if the shipped files are invalid, which the test suite rules out.
    pub fn embedded() -> Result<Atlas, MapError> {
        let mut errors = Vec::new();
        let atlas = assemble(
            EMBEDDED.map(|(file, text)| (file, Ok(text.to_owned()))),
            &mut errors,
        );
        first_error(atlas, errors)
    }
}

fn first_error(atlas: Atlas, errors: Vec<MapError>) -> Result<Atlas, MapError> {
    match errors.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(atlas),
    }
}

/// Reads every file of `dir`, pushing each problem to `errors` and keeping what is valid.
pub(crate) fn read_dir(dir: &Path, errors: &mut Vec<MapError>) -> Atlas {
    let texts = FILES.map(|file| {
        let text = std::fs::read_to_string(dir.join(file)).map_err(|source| MapError::Read {
            origin: Origin::file(file),
            source,
        });
        (file, text)
    });
    assemble(texts, errors)
}

type Text = Result<String, MapError>;

/// Builds the atlas from the texts of the five files, in the order of [`FILES`].
pub(crate) fn assemble(texts: [(&'static str, Text); 5], errors: &mut Vec<MapError>) -> Atlas {
    let [countries, crossings, offices, corridors, gaps] =
        texts.map(|(file, text)| (file, features(file, text, errors)));
    let atlas = Atlas {
        countries: build_all(&countries, errors, country),
        bcps: bcps(&crossings, errors),
        offices: build_all(&offices, errors, office),
        corridors: build_all(&corridors, errors, corridor),
        coverage_gaps: build_all(&gaps, errors, coverage_gap),
    };
    errors.extend(beyond_limits(&atlas));
    atlas
}

/// Maps larger than the engine's indices can name are refused, not cut.
pub(super) fn beyond_limits(atlas: &Atlas) -> Vec<MapError> {
    let zones = atlas.posts().count() + atlas.offices.len() + atlas.coverage_gaps.len();
    let parts: usize = atlas.countries.iter().map(|c| c.area.0.len()).sum();
    let mut errors = Vec::new();
    if zones > MAX_ZONES {
        errors.push(MapError::Reference {
            origin: Origin::file(BORDER_CROSSINGS),
            message: format!(
                "{zones} zones (posts, offices and coverage gaps together); at most {MAX_ZONES}"
            ),
        });
    }
    if parts > MAX_COUNTRY_PARTS {
        errors.push(MapError::Reference {
            origin: Origin::file(COUNTRIES),
            message: format!("{parts} country polygons; at most {MAX_COUNTRY_PARTS}"),
        });
    }
    errors
}

fn features(file: &str, text: Text, errors: &mut Vec<MapError>) -> Vec<RawFeature> {
    match text.and_then(|text| parse_collection(file, &text)) {
        Ok(features) => features,
        Err(error) => {
            errors.push(error);
            Vec::new()
        }
    }
}

type Layer = (&'static str, Vec<RawFeature>);

fn build_all<T>(
    (file, features): &Layer,
    errors: &mut Vec<MapError>,
    build: fn(&FeatureReader) -> Result<T, MapError>,
) -> Vec<T> {
    features
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            build(&FeatureReader::new(file, i, f))
                .map_err(|e| errors.push(e))
                .ok()
        })
        .collect()
}

fn expect_kind(feature: &FeatureReader, expected: &str) -> Result<(), MapError> {
    let kind = feature.string("kind")?;
    if kind == expected {
        return Ok(());
    }
    Err(MapError::Property {
        origin: feature.origin.clone(),
        property: "kind",
        message: format!("is `{kind}`, expected `{expected}`"),
    })
}

fn country(feature: &FeatureReader) -> Result<Country, MapError> {
    Ok(Country {
        code: feature.parsed("id")?,
        name: feature.string("name")?,
        area: feature.multi_polygon()?,
    })
}

fn office(feature: &FeatureReader) -> Result<Office, MapError> {
    expect_kind(feature, "customs_office")?;
    Ok(Office {
        id: feature.string("id")?,
        name: feature.string("name")?,
        country: feature.parsed("country")?,
        zone: feature.polygon()?,
    })
}

fn corridor(feature: &FeatureReader) -> Result<Corridor, MapError> {
    expect_kind(feature, "corridor")?;
    let width_m = feature.number("width_m")?;
    if width_m <= 0.0 {
        return Err(MapError::Property {
            origin: feature.origin.clone(),
            property: "width_m",
            message: format!("is {width_m}, must be positive"),
        });
    }
    Ok(Corridor {
        id: feature.string("id")?,
        name: feature.string("name")?,
        width_m,
        route: feature.line_string()?,
        joins: feature.strings("joins")?,
        carec: feature.optional_string("carec")?,
        waypoints: feature.strings("waypoints")?,
    })
}

fn coverage_gap(feature: &FeatureReader) -> Result<CoverageGap, MapError> {
    expect_kind(feature, "coverage_gap")?;
    let timeout = feature.number("signal_loss_timeout_s")?;
    if timeout < 1.0 || timeout > f64::from(u32::MAX) || timeout.fract() != 0.0 {
        return Err(MapError::Property {
            origin: feature.origin.clone(),
            property: "signal_loss_timeout_s",
            message: format!("is {timeout}, must be a positive whole number of seconds"),
        });
    }
    Ok(CoverageGap {
        id: feature.string("id")?,
        name: feature.string("name")?,
        zone: feature.polygon()?,
        // Range and fraction were checked above.
        signal_loss_timeout_s: timeout as u32,
        corridor: feature.optional_string("corridor")?,
    })
}

fn bcp(feature: &FeatureReader) -> Result<Bcp, MapError> {
    Ok(Bcp {
        id: feature.string("id")?,
        name: feature.string("name")?,
        posts: Vec::new(),
        corridors: feature.strings("corridors")?,
        confidence: feature.parsed("confidence")?,
        location: feature.point()?,
        carec: feature.optional_string("carec")?,
    })
}

fn post(feature: &FeatureReader) -> Result<(String, Post), MapError> {
    let post = Post {
        id: feature.string("id")?,
        name: feature.string("name")?,
        country: feature.parsed::<CountryCode>("country")?,
        peer_country: feature.parsed::<CountryCode>("peer_country")?,
        zone: feature.polygon()?,
    };
    Ok((feature.string("bcp_id")?, post))
}

/// `border-crossings.geojson` holds one `bcp` Point per crossing and one `bcp_post` Polygon
/// per side; the posts are attached to their crossing by `bcp_id`.
fn bcps((file, features): &Layer, errors: &mut Vec<MapError>) -> Vec<Bcp> {
    let mut bcps = Vec::new();
    let mut posts = Vec::new();
    for (i, raw) in features.iter().enumerate() {
        let feature = FeatureReader::new(file, i, raw);
        let result = feature.string("kind").and_then(|kind| match kind.as_str() {
            "bcp" => bcp(&feature).map(|b| bcps.push(b)),
            "bcp_post" => post(&feature).map(|p| posts.push((feature.origin.clone(), p))),
            other => Err(MapError::Property {
                origin: feature.origin.clone(),
                property: "kind",
                message: format!("is `{other}`, expected `bcp` or `bcp_post`"),
            }),
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    let index: HashMap<String, usize> = bcps
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id.clone(), i))
        .collect();
    for (origin, (bcp_id, post)) in posts {
        match index.get(&bcp_id) {
            Some(&i) => bcps[i].posts.push(post),
            None => errors.push(MapError::Reference {
                origin,
                message: format!("post of an unknown BCP `{bcp_id}`"),
            }),
        }
    }
    bcps
}
