//! A fleet of simulated trucks on the shipped corridors, reporting like real trackers, and
//! driving customs transits from office to office.
//!
//! The core is pure and deterministic: [`Fleet::step`] takes a simulated instant and returns
//! the MQTT messages the devices send up to it, in wire contract v1; equal [`FleetConfig`]s
//! (seed included) give equal messages. Vehicles drive their corridor back and forth at
//! CAREC CPMM speeds, wait at BCPs (mean 9.9 h) and terminals, go quiet in the coverage-gap
//! zones and upload a backlog array when coverage returns, report seal events and status,
//! and drain their battery. Incidents are injected at configurable rates and recorded as
//! [`Injected`] truth, each with the alerts Caravan should raise for it ([`alerts_for`]).
//!
//! With transits ([`FleetConfig::transits`]), vehicles drive only the corridors between two
//! customs offices. Each declares a transit before it leaves an office ([`TripEvent::Declared`],
//! deadline from the shipped itinerary rules); on arrival and unloading, a transit without
//! incidents is completed ([`TripEvent::Completed`]: customs closes it) and the vehicle
//! declares its way back, while a transit with incidents keeps its vehicle parked at the
//! destination, the transit open, for an officer to work its alerts.
//!
//! [`run`] is the shell: it registers the devices through the API, keeps simulated time
//! ([`SimClock`]), publishes over MQTT with QoS 1, lodges the declarations and closes the
//! completed transits through the API, and writes the truth file ([`Truth`]). [`check`] and
//! [`Truth::verdict`] compare the alerts Caravan raised with the truth: matched, missed,
//! unexpected, and pending for evidence still held by devices out of coverage at the end.

mod borders;
mod clock;
mod crossing;
mod customs;
mod expect;
mod fleet;
mod incident;
mod message;
mod on_transit;
mod publish;
mod register;
mod reporting;
mod route;
mod run;
mod staging;
mod tracker;
mod trip;
mod truth;
mod vehicle;
mod verify;

#[cfg(test)]
mod expect_tests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod route_tests;
#[cfg(test)]
mod tests;

pub use clock::SimClock;
pub use expect::{alerts_for, check, Expectation, ExpectedAlert, SeenAlert, Verdict};
pub use fleet::{Fleet, FleetConfig, FleetDevice, SimulateError, CPMM_BCP_WAIT_S};
pub use incident::{IncidentKind, IncidentRates, Injected};
pub use message::{Outgoing, OutgoingKind};
pub use publish::Publishers;
pub use register::{register, Registration, CARRIER};
pub use reporting::Reporting;
pub use route::Route;
pub use run::{run, Options, Summary, TransitCounts, DEFAULT_ACCELERATED_S, DEMO_LEAD_IN};
pub use tracker::BACKLOG_CHUNK;
pub use trip::{DeclaredTransit, Trip, TripEvent, TripPlan, TripRequest, DEADLINE_GRACE_S};
pub use truth::{ClosedTransit, EndOfRun, HeldEvidence, Truth, TruthLine};
pub use vehicle::Vehicle;
pub use verify::fetch_alerts;
