//! A fleet of simulated trucks on the shipped corridors, reporting like real trackers.
//!
//! The core is pure and deterministic: [`Fleet::step`] takes a simulated instant and returns
//! the MQTT messages the devices send up to it, in wire contract v1; equal [`FleetConfig`]s
//! (seed included) give equal messages. Vehicles drive their corridor back and forth at
//! CAREC CPMM speeds, wait at BCPs (mean 9.9 h) and terminals, go quiet in the coverage-gap
//! zones and upload a backlog array when coverage returns, report seal events and status,
//! and drain their battery. Incidents are injected at configurable rates and recorded as
//! [`Injected`] truth.
//!
//! [`run`] is the shell: it registers the devices through the API, keeps simulated time
//! ([`SimClock`]), and publishes over MQTT with QoS 1.

mod clock;
mod fleet;
mod incident;
mod message;
mod publish;
mod register;
mod reporting;
mod route;
mod run;
mod staging;
mod tracker;
mod vehicle;

#[cfg(test)]
mod tests;

pub use clock::SimClock;
pub use fleet::{Fleet, FleetConfig, FleetDevice, SimulateError, CPMM_BCP_WAIT_S};
pub use incident::{IncidentKind, IncidentRates, Injected};
pub use message::{Outgoing, OutgoingKind};
pub use publish::Publishers;
pub use register::{register, Registration, CARRIER};
pub use reporting::Reporting;
pub use route::Route;
pub use run::{run, Options, Summary, DEFAULT_ACCELERATED_S};
pub use tracker::BACKLOG_CHUNK;
pub use vehicle::Vehicle;
