//! The transit step of the pipeline: after the geofence step, the engine's events and the
//! reports go to the [`TransitBook`]; declarations and officers' actions arrive as
//! [`TransitCommand`]s; every change becomes a stored transit and event-log records in the
//! same commit.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tracing::warn;

use crate::geofence::{DeviceTrack, Engine, GeofenceEvent, RouteCache};
use crate::historian::{AlertRecord, Historian};
use crate::maps::Atlas;
use crate::store::{LoggedEvent, Write};
use crate::telemetry::{DeviceId, Report};
use crate::transit::rules::RulesError;
use crate::transit::{
    Action, ActionError, Actor, Declaration, FieldError, Record, Transit, TransitBook,
    TransitChange, TransitId,
};

/// A request from the API, answered once its effects are committed.
pub enum TransitCommand {
    Declare {
        declaration: Box<Declaration>,
        by: Actor,
        reply: oneshot::Sender<Result<Box<Transit>, Vec<FieldError>>>,
    },
    Act {
        id: TransitId,
        action: Action,
        by: Actor,
        reply: oneshot::Sender<Result<Box<Transit>, ActionError>>,
    },
}

/// The pipeline's transits.
pub struct TransitStep {
    book: TransitBook,
    /// Route polylines, one per distinct itinerary, shared by the devices that follow it.
    routes: RouteCache,
    /// Raised alerts are copied to the historian.
    historian: Historian,
}

/// Writes and the reply to send once they are committed.
pub type Answer = (Vec<Write>, Option<Box<dyn FnOnce() + Send>>);

impl TransitStep {
    /// Resumes with every stored transit.
    ///
    /// # Errors
    /// The shipped rules files are broken.
    pub fn new(
        atlas: Arc<Atlas>,
        stored: Vec<Transit>,
        historian: Historian,
        rules: crate::rules::Rules,
    ) -> Result<Self, RulesError> {
        let mut book = TransitBook::new(atlas, rules.transit, rules.risk);
        book.restore(stored);
        Ok(Self {
            book,
            routes: RouteCache::default(),
            historian,
        })
    }

    /// Gives a device's track the approved route of its open transit, or none.
    pub fn assign_route(&mut self, engine: &Engine, track: &mut DeviceTrack) {
        match self.book.route_of(track.device_id()) {
            Some(route) => {
                if track.route_id() != Some(route.id.as_str()) {
                    if let Err(error) = engine.assign_shared_route(&mut self.routes, track, route) {
                        warn!(%error, device_id = %track.device_id(), "A transit's route did not resolve.");
                    }
                }
            }
            None => track.clear_route(),
        }
    }

    /// Route polylines built so far (one per distinct itinerary while they are held).
    pub fn routes_built(&self) -> u64 {
        self.routes.built()
    }

    /// Distinct itineraries the open transits follow, each held once.
    pub fn itineraries(&self) -> usize {
        self.book.itineraries()
    }

    /// Feeds the reports and the events they caused to the transits.
    pub fn after_reports(
        &mut self,
        reports: &[Report],
        events: &[GeofenceEvent],
        detected_at: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) {
        let mut changes = Vec::new();
        for report in reports {
            changes.extend(self.book.observe(report, detected_at));
        }
        changes.extend(self.book.on_geofence_events(events, detected_at));
        for change in changes {
            self.push_change(change, writes);
        }
    }

    /// Overdue transits.
    pub fn tick(&mut self, now: DateTime<Utc>, writes: &mut Vec<Write>) {
        for change in self.book.tick(now) {
            self.push_change(change, writes);
        }
    }

    /// Runs a command; `devices` are the transit's device ids, whose routes change.
    pub fn handle(
        &mut self,
        command: TransitCommand,
        now: DateTime<Utc>,
        registered: &dyn Fn(&DeviceId) -> bool,
    ) -> (Answer, Vec<DeviceId>) {
        let mut writes = Vec::new();
        match command {
            TransitCommand::Declare {
                declaration,
                by,
                reply,
            } => match self.book.declare(*declaration, &by, now, registered) {
                Ok(change) => {
                    let devices = change.transit.devices.clone();
                    let transit = change.transit.clone();
                    self.push_change(change, &mut writes);
                    let send = Box::new(move || {
                        let _ = reply.send(Ok(transit));
                    });
                    ((writes, Some(send)), devices)
                }
                Err(errors) => {
                    let _ = reply.send(Err(errors));
                    ((writes, None), Vec::new())
                }
            },
            TransitCommand::Act {
                id,
                action,
                by,
                reply,
            } => match self.book.act(&id, action, &by, now) {
                Ok(change) => {
                    let devices = change.transit.devices.clone();
                    let transit = change.transit.clone();
                    self.push_change(change, &mut writes);
                    let send = Box::new(move || {
                        let _ = reply.send(Ok(transit));
                    });
                    ((writes, Some(send)), devices)
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                    ((writes, None), Vec::new())
                }
            },
        }
    }
}

impl TransitStep {
    fn push_change(&self, change: TransitChange, writes: &mut Vec<Write>) {
        for record in &change.records {
            if record.kind == "transit.alert_raised" {
                if let Some(alert) = alert_record(record) {
                    self.historian.record_alert(&alert);
                }
            }
        }
        writes.extend(change.records.into_iter().map(|r| Write::Event(logged(r))));
        writes.push(Write::Transit(change.transit));
    }
}

/// The historian's view of a raised alert, read from the record's body (the alert).
fn alert_record(record: &Record) -> Option<AlertRecord> {
    let body = &record.body;
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Some(AlertRecord {
        t: record.occurred_at,
        kind: text("kind")?,
        severity: text("severity").unwrap_or_else(|| "warning".into()),
        device_id: record.device_id.clone()?,
        transit_id: record.transit_id.clone(),
        country: text("jurisdiction"),
        code: text("eaeu_code"),
        detail: None,
    })
}

fn logged(r: Record) -> LoggedEvent {
    LoggedEvent {
        kind: r.kind,
        device_id: r.device_id,
        transit_id: r.transit_id,
        occurred_at: r.occurred_at,
        detected_at: r.detected_at,
        late: r.late,
        actor: r.actor,
        body: r.body,
    }
}
