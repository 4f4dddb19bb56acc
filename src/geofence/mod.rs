//! The geofence engine: zones, countries and corridors, and the pure detection that turns a
//! device's reports into enter / exit / cross, border, route, stop, signal, GNSS and seal
//! events.
//!
//! # Use
//!
//! Build a [`GeofenceIndex`] once from the [`Atlas`](crate::maps::Atlas) and wrap it in an
//! [`Engine`]. Keep one [`DeviceTrack`] per device and call [`Engine::apply`] for every
//! report (or [`Engine::apply_batch`] for a backlog upload), [`Engine::check_silence`] from a
//! timer, and [`Engine::snapshot`] for the device view. Nothing here reads a clock or does
//! I/O: device time comes with each report, and the caller passes `detected_at` and `now`.
//!
//! # Semantics (docs/domain.md, in Tile38's words)
//!
//! - **Order.** A device's reports are evaluated in device-time order; a batch is sorted
//!   first. A report older than the newest one already evaluated for the device is *late*:
//!   it is still evaluated, at its own time, and every event it causes carries
//!   `late: true` with its `occurred_at` and `detected_at`. Seal alarms and jamming in a
//!   late report are always raised. How a late fix interacts with zone and border state is
//!   described in [`late`]: it adds past facts and never flips the current state.
//! - **Zones** (BCP posts, customs offices, coverage gaps): `enter`/`exit` flip after a fix
//!   beyond `zone_margin_m` of the edge or `zone_confirm_fixes` fixes in a row; the event
//!   time is the first fix on the new side. A segment between two fixes outside a zone that
//!   passes through it gives `cross`, timed where it enters.
//! - **Country and crossings**: see [`border`]. The crossing is judged between *settled*
//!   fixes (farther than `border_tolerance_m` inside a country and not in an enclave), and is
//!   outside a BCP when the movement since the last settled fix never came within
//!   `bcp_proximity_m` of a post of either country.
//! - **Route**: distance and chainage along the assigned route's polyline; a deviation
//!   opens after `deviation_min_fixes` fixes beyond the corridor width spanning
//!   `deviation_min_s`, timed at its first fix, and closes with its duration and maximum
//!   distance; chainage falling `wrong_direction_tolerance_m` behind the furthest point is
//!   wrong direction.
//! - **Stops, signal, GNSS**: see [`stops`], [`signal`] and [`anomaly`]. A GNSS-anomalous fix
//!   is reported and kept out of all other state.
//! - **Seals**: `opened`, `rope_cut` and `case_breach` always give `seal_alarm`, naming the
//!   post or office zone the device was in (critical outside one).

mod anomaly;
mod border;
mod config;
mod corridor;
mod country;
mod engine;
mod event;
mod grid;
mod history;
mod index;
mod late;
mod metric;
mod presence;
mod route;
mod routes;
mod saved;
mod signal;
mod stops;
mod track;
mod zones;

#[cfg(test)]
mod tests;

pub use config::GeofenceConfig;
pub use engine::Engine;
pub use event::{
    AnomalyReason, CorridorPosition, DeviceGeoState, EventKind, GeofenceEvent, Severity, ZoneKind,
};
pub use index::{GeofenceIndex, Location, Route, RouteLeg, RoutePath};
pub use routes::RouteCache;
pub use saved::{ResumedTrack, SavedTrackError};
pub use track::DeviceTrack;

/// Why the engine could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeofenceError {
    #[error("route leg names corridor `{0}`, which the maps do not have")]
    UnknownCorridor(String),
    #[error("route `{0}` has no segment to follow")]
    EmptyRoute(String),
}
