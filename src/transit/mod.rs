//! Transits from declaration to destination: the customs domain (docs/domain.md).
//!
//! Pure, like the geofence engine it builds on: no I/O and no clock reads; time comes in as
//! arguments and device time comes with each event.
//!
//! - [`declare`] checks a [`Declaration`] against the maps and the transits already known,
//!   with one [`FieldError`] per field, and builds the route from the corridors' `joins`
//!   ([`itinerary`]): checkpoints, legs with their country and time budget, and the
//!   geofence [`Route`](crate::geofence::Route).
//! - [`lifecycle`]: `declared → departed → in_transit ⇄ at_bcp → … → arrived → closed`,
//!   plus `cancelled`, driven by zone events and officers' actions; `suspended` is shown
//!   while a critical alert is open.
//! - [`alert`]: one taxonomy with EAEU codes, deduplicated while open, with a lifecycle.
//! - [`inspection`]: controls at posts with seal continuity, visible to later legs.
//! - [`eta`], [`risk`] and [`performance`] answer the border posts and the coordinators.
//! - [`TransitBook`] holds the open transits for the pipeline and turns every change into
//!   [`TransitChange`]s: the transit as it now stands and the [`Record`]s for the event log.
//!
//! The figures these rules use are data: `rules/transit.toml` and `rules/risk.toml`.

pub mod alert;
mod book;
pub mod declare;
pub mod detail;
mod effects;
pub mod eta;
pub mod inspection;
pub mod itinerary;
pub mod lifecycle;
mod line;
mod model;
mod motion;
mod packed;
pub mod performance;
mod react;
mod record;
pub mod risk;
pub mod rules;
mod shared;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

pub use alert::{Alert, AlertAction, AlertKind, AlertState, Outcome};
pub use book::{Action, ActionError, TransitBook};
pub use declare::{Declaration, FieldError};
pub use inspection::{Attestation, ChecklistItem, Inspection, InspectionReport, InspectionResult};
pub use itinerary::{Checkpoint, Itinerary, Leg};
pub use lifecycle::OfficerAction;
pub use line::RouteLine;
pub use model::{
    Actor, Driver, GoodsLine, Seal, SealCondition, Stage, Status, Transit, TransitId, Transition,
};
pub use motion::Motion;
pub use record::{Record, TransitChange};
pub use risk::{Lane, RiskAssessment, RiskRules};
pub use rules::TransitRules;
pub(crate) use shared::arc;
pub use shared::{SharedItineraries, SharedOnRead};
