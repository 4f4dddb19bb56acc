//! Caravan: tracking of trucks and sealed goods in transit across the borders of Central Asia.
//!
//! See ARCHITECTURE.md for the module map and the path of a position report.

// warp's filter types nest one level per route; the API's routes need more than the default.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod atlas;
pub mod auth;
pub mod cli;
pub mod dashboard;
pub mod device;
pub mod endpoint;
pub mod evidence;
pub mod exchange;
pub mod geofence;
pub mod health;
pub mod historian;
pub mod ingest;
mod keyed;
pub mod live;
pub mod maps;
pub mod metrics;
pub mod pipeline;
pub mod role;
pub mod rules;
pub mod settings;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod text;
mod threads;
pub mod tokens;
pub mod transit;
