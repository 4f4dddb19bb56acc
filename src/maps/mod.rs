//! The maps of the region: countries, border crossing points with a control zone per post,
//! customs offices, corridors and coverage gaps, read from the GeoJSON files in `maps/`.
//!
//! [`Atlas::embedded`] gives the shipped maps, [`Atlas::load`] reads another directory,
//! [`check`] validates a directory and [`locate`] tells an operator what the maps say about
//! one point, and [`import_route`] reads a surveyed route. The indexed, hot-path queries belong to the geofence engine.

mod check;
mod error;
mod gpx;
mod import;
mod load;
mod locate;
pub mod measure;
mod model;
mod wire;

#[cfg(test)]
mod tests;

pub use check::{
    check, check_atlas, MapProblem, ProblemKind, BORDER_TOLERANCE_M, CHECKPOINT_TOLERANCE_M,
    MAX_PEER_SHARE,
};
pub use error::{MapError, Origin};
pub use import::import_route;
pub use load::{embedded_text, FILES, MAX_COUNTRY_PARTS, MAX_ZONES};
pub use locate::{locate, CorridorHit, CountryHit, Location, ZoneHit, ZoneKind};
pub use model::{
    Atlas, Bcp, Confidence, Corridor, Country, CountryCode, CoverageGap, InvalidCountryCode,
    Office, Post,
};
