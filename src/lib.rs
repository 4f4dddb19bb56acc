//! Caravan: tracking of trucks and sealed goods in transit across the borders of Central Asia.
//!
//! See ARCHITECTURE.md for the module map and the path of a position report.

pub mod device;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod ingest;
pub mod broker;
pub mod api;
pub mod app;
pub mod cli;
