//! `caravan maps check|locate|import-route`: validate a map directory, ask the maps about one
//! point, replace a corridor's route with a surveyed one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Subcommand;
use geo::LineString;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::maps::{self, Atlas};

/// The shipped maps, relative to the working directory.
const DEFAULT_DIR: &str = "maps";
const CORRIDORS: &str = "corridors.geojson";

#[derive(Debug, Subcommand)]
pub enum MapsCommand {
    /// Validate a map directory: one line per problem, naming the file and the feature.
    Check {
        /// The directory holding the five GeoJSON files.
        #[arg(default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Print, as JSON, what the maps say about one point: its country, the zones containing
    /// it and the nearest corridor.
    Locate {
        /// Latitude in WGS 84 degrees, -90 to 90.
        #[arg(long, allow_hyphen_values = true, value_parser = latitude)]
        lat: f64,
        /// Longitude in WGS 84 degrees, -180 to 180.
        #[arg(long, allow_hyphen_values = true, value_parser = longitude)]
        lon: f64,
        /// A map directory (default: the maps built into the binary).
        #[arg(long, value_name = "DIR")]
        maps: Option<PathBuf>,
    },
    /// Replace a corridor's geometry with the first LineString of a GeoJSON file (or a GPX
    /// track), keeping
    /// its properties; refused when the new route misses a checkpoint the corridor joins.
    ImportRoute {
        /// A GeoJSON LineString, Feature or FeatureCollection (lon, lat order), or a GPX
        /// track (or route) from a survey.
        file: PathBuf,
        /// The id of the corridor to replace.
        #[arg(long)]
        corridor: String,
        /// The map directory whose `corridors.geojson` is rewritten.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
        maps: PathBuf,
    },
}

fn latitude(raw: &str) -> Result<f64, String> {
    coordinate(raw, 90.0)
}

fn longitude(raw: &str) -> Result<f64, String> {
    coordinate(raw, 180.0)
}

fn coordinate(raw: &str, limit: f64) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    if value.is_finite() && value.abs() <= limit {
        Ok(value)
    } else {
        Err(format!(
            "{raw} is out of range: WGS 84 degrees from -{limit} to {limit}"
        ))
    }
}

/// # Errors
/// When the maps have problems or cannot be read, or the route cannot be imported.
pub fn run(command: MapsCommand) -> anyhow::Result<()> {
    match command {
        MapsCommand::Check { dir } => check(&dir),
        MapsCommand::Locate { lat, lon, maps } => {
            let atlas = match maps {
                Some(dir) => Atlas::load(&dir)?,
                None => Atlas::embedded()?,
            };
            let location = maps::locate(&atlas, lat, lon);
            println!("{}", serde_json::to_string_pretty(&location)?);
            Ok(())
        }
        MapsCommand::ImportRoute {
            file,
            corridor,
            maps,
        } => import_route(&file, &corridor, &maps),
    }
}

/// A missing folder is one problem, said plainly, not one per file it should hold.
fn require_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "there is no maps folder at {}: name the folder of map files (the repository's maps/), e.g. caravan maps check path/to/maps",
            dir.display()
        );
    }
    Ok(())
}

fn check(dir: &Path) -> anyhow::Result<()> {
    require_dir(dir)?;
    let problems = maps::check(dir);
    for problem in &problems {
        println!("{problem}");
    }
    if !problems.is_empty() {
        bail!("{} problem(s) in {}", problems.len(), dir.display());
    }
    let atlas = Atlas::load(dir)?;
    println!(
        "{}: {} countries, {} BCPs, {} posts, {} offices, {} corridors, {} coverage gaps; no problems.",
        dir.display(),
        atlas.countries.len(),
        atlas.bcps.len(),
        atlas.posts().count(),
        atlas.offices.len(),
        atlas.corridors.len(),
        atlas.coverage_gaps.len(),
    );
    Ok(())
}

fn import_route(file: &Path, corridor: &str, dir: &Path) -> anyhow::Result<()> {
    require_dir(dir)?;
    let route = maps::import_route(file)?;
    let mut atlas = Atlas::load(dir)?;
    let Some(target) = atlas.corridors.iter_mut().find(|c| c.id == corridor) else {
        bail!(
            "{CORRIDORS} in {} has no corridor `{corridor}`",
            dir.display()
        );
    };
    target.route = route.clone();
    let problems = maps::check_atlas(&atlas);
    for problem in &problems {
        println!("{problem}");
    }
    if !problems.is_empty() {
        bail!("the route was not imported: {} problem(s)", problems.len());
    }
    let path = dir.join(CORRIDORS);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = with_route(&text, corridor, &route)
        .with_context(|| format!("rewriting {}", path.display()))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    check(dir)
}

/// The FeatureCollection `text` with the geometry of feature `id` replaced, written as the
/// map build writes it: one feature per line, every other feature and every property kept
/// byte for byte, coordinates rounded to 6 decimals (0.1 m).
fn with_route(text: &str, id: &str, route: &LineString<f64>) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Collection<'a> {
        #[serde(borrow)]
        features: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Feature<'a> {
        #[serde(borrow)]
        properties: &'a RawValue,
    }
    let collection: Collection = serde_json::from_str(text)?;
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let coordinates: Vec<[f64; 2]> = route.coords().map(|c| [round(c.x), round(c.y)]).collect();
    let geometry = serde_json::json!({ "type": "LineString", "coordinates": coordinates });
    let mut found = false;
    let mut lines = Vec::with_capacity(collection.features.len());
    for raw in collection.features {
        let properties = serde_json::from_str::<Feature>(raw.get())?.properties;
        let parsed: Value = serde_json::from_str(properties.get())?;
        if parsed["id"] == id {
            found = true;
            lines.push(format!(
                "{{\"type\":\"Feature\",\"properties\":{},\"geometry\":{geometry}}}",
                properties.get()
            ));
        } else {
            lines.push(raw.get().to_owned());
        }
    }
    if !found {
        bail!("no feature `{id}`");
    }
    Ok(format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}\n",
        lines.join(",\n")
    ))
}
