//! The maps and the geofence index built from them, loaded once per process.
//!
//! Building the index takes a noticeable fraction of a second, and every part of a process
//! (and every test server in a test process) reads the same immutable maps, so the embedded
//! maps' index is built once and shared.

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;

use crate::geofence::{GeofenceConfig, GeofenceIndex};
use crate::maps::Atlas;
use crate::settings::MapsSettings;

type Loaded = (Arc<Atlas>, Arc<GeofenceIndex>);

static EMBEDDED: OnceLock<Loaded> = OnceLock::new();

/// The atlas and its index for these settings.
///
/// # Errors
/// A map directory that cannot be loaded, or broken embedded maps.
pub fn load(maps: &MapsSettings, config: GeofenceConfig) -> anyhow::Result<Loaded> {
    if let Some(dir) = &maps.dir {
        let atlas =
            Atlas::load(dir).with_context(|| format!("loading the maps in {}", dir.display()))?;
        let index = GeofenceIndex::with_config(&atlas, config);
        return Ok((Arc::new(atlas), Arc::new(index)));
    }
    if config == GeofenceConfig::default() {
        if let Some(loaded) = EMBEDDED.get() {
            return Ok(loaded.clone());
        }
    }
    let atlas = Atlas::embedded().context("loading the built-in maps")?;
    let index = Arc::new(GeofenceIndex::with_config(&atlas, config.clone()));
    let loaded = (Arc::new(atlas), index);
    if config == GeofenceConfig::default() {
        return Ok(EMBEDDED.get_or_init(|| loaded).clone());
    }
    Ok(loaded)
}
