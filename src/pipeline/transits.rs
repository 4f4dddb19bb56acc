//! The transit step of the pipeline: after the geofence step, the engine's events and the
//! reports go to the [`TransitBook`]; declarations and officers' actions arrive as
//! [`TransitCommand`]s; every change becomes a stored transit and event-log records in the
//! same commit.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tracing::warn;

use crate::exchange::routing::Holder;
use crate::exchange::{routing, Body, Exchange, Message, Outcome, Peer, Signed};
use crate::geofence::{DeviceTrack, Engine, GeofenceEvent, RouteCache};
use crate::historian::{AlertRecord, Historian};
use crate::maps::Atlas;
use crate::store::{LoggedEvent, Write};
use crate::telemetry::{DeviceId, Fix, Report, ReportBody};
use crate::transit::rules::RulesError;
use crate::transit::{
    Action, ActionError, Actor, Declaration, FieldError, Record, SharedItineraries, Transit,
    TransitBook, TransitChange, TransitId,
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
    /// A message from a peer instance, its signature verified by the API.
    Receive {
        from: Arc<Peer>,
        message: Box<Message>,
        signed: Signed,
        reply: oneshot::Sender<Outcome>,
    },
}

/// The pipeline's transits.
pub struct TransitStep {
    book: TransitBook,
    /// Route polylines, one per distinct itinerary, shared by the devices that follow it.
    routes: RouteCache,
    /// Raised alerts are copied to the historian.
    historian: Historian,
    /// The exchange with peer instances, when configured.
    exchange: Option<Exchange>,
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
        historian: Historian,
        rules: crate::rules::Rules,
    ) -> Result<Self, RulesError> {
        Ok(Self {
            book: TransitBook::new(atlas, rules.transit, rules.risk),
            routes: RouteCache::default(),
            historian,
            exchange: None,
        })
    }

    /// Resumes from the stored transits, with the itineraries shared as they were read.
    pub fn restored(mut self, stored: Vec<Transit>, itineraries: SharedItineraries) -> Self {
        self.book.adopt_itineraries(itineraries);
        self.book.restore(stored);
        self
    }

    /// Keeps peer instances informed of the transits that concern them, and applies what
    /// they send.
    pub fn with_exchange(mut self, exchange: Exchange) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// The transits' copy of a device's id, when they hold one (see
    /// [`TransitBook::shared_device_id`]).
    pub fn shared_device_id(&self, id: DeviceId) -> DeviceId {
        self.book.shared_device_id(id)
    }

    /// Gives a device's track the approved route of its open transit, or none.
    pub fn assign_route(&mut self, engine: &Engine, track: &mut DeviceTrack) {
        let device = track.device_id();
        match self.book.route_id_of(device) {
            Some(id) if track.route_id() == Some(id.as_str()) => {}
            Some(_) => {
                let Some(route) = self.book.route_of(device) else {
                    return;
                };
                if let Err(error) = engine.assign_shared_route(&mut self.routes, track, &route) {
                    warn!(%error, device_id = %track.device_id(), "A transit's route did not resolve.");
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
        self.forward_positions(reports, detected_at, writes);
    }

    /// Each peer instance gets the fixes of the transits it follows that lie in its
    /// countries, one message per device and batch.
    fn forward_positions(
        &mut self,
        reports: &[Report],
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) {
        let Some(ex) = self.exchange.as_mut().filter(|ex| ex.has_peers()) else {
            return;
        };
        let mut by_device: Vec<(&DeviceId, Vec<&Fix>)> = Vec::new();
        for report in reports {
            let ReportBody::Fix(fix) = &report.body else {
                continue;
            };
            match by_device.iter_mut().find(|(d, _)| **d == report.device_id) {
                Some((_, fixes)) => fixes.push(fix),
                None => by_device.push((&report.device_id, vec![fix])),
            }
        }
        for (device, fixes) in by_device {
            if let Some((id, itinerary)) = self.book.itinerary_of(device) {
                writes.extend(ex.queue_positions(id, itinerary, device, &fixes, now));
            }
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
        registered: &dyn Fn(&DeviceId) -> Option<DeviceId>,
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
            } => match self.book.act(&id, action.clone(), &by, now) {
                Ok(change) => {
                    let devices = change.transit.devices.clone();
                    let transit = change.transit.clone();
                    // Acted on here, on a transit a peer holds: the holder applies it too.
                    if let Some(ex) = self.exchange.as_mut() {
                        writes.extend(ex.queue_action(&change.transit, action, &by, now));
                    }
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
            TransitCommand::Receive {
                from,
                message,
                signed,
                reply,
            } => self.receive(&from, *message, &signed, reply, now),
        }
    }

    /// Applies a peer's message once: a record of a transit it holds, or an action on one
    /// held here, each within what the peer's countries may assert.
    fn receive(
        &mut self,
        from: &Peer,
        message: Message,
        signed: &Signed,
        reply: oneshot::Sender<Outcome>,
        now: DateTime<Utc>,
    ) -> (Answer, Vec<DeviceId>) {
        let seq = message.seq;
        let Some(ex) = self.exchange.as_ref() else {
            let reason = "this instance takes part in no exchange".to_owned();
            let _ = reply.send(Outcome::Refused { seq, reason });
            return ((Vec::new(), None), Vec::new());
        };
        if ex.seen(from, seq) {
            let _ = reply.send(Outcome::Duplicate { seq });
            return ((Vec::new(), None), Vec::new());
        }
        let applied = match message.body.clone() {
            Body::Transit(t) if t.id != message.transit_id => {
                Err("the record is of another transit than the message names".to_owned())
            }
            Body::Transit(mut t) => {
                let holder = self.book.holder(&t.id);
                routing::check_record(from, ex.countries(), &t, &holder).map(|()| {
                    ex.check_attestations(&mut t);
                    self.book.receive(*t, &from.name, now)
                })
            }
            Body::Positions { device_id, fixes } => {
                let id = &message.transit_id;
                match self.book.holder(id) {
                    Holder::Peer(holder) if holder == from.name => self
                        .book
                        .follow(id, &device_id, &fixes)
                        .ok_or_else(|| format!("{id} is not open here")),
                    _ => Err(format!("{id} is not held by {}", from.name)),
                }
            }
            Body::Action { action, by, .. } => {
                let id = &message.transit_id;
                match self.book.transit(id) {
                    None => Err(format!("{id} is not open here")),
                    Some(t) if t.held_by.is_some() => {
                        Err(format!("{id} is not held by this instance"))
                    }
                    Some(t) => routing::check_action(from, &t, &action).and_then(|()| {
                        let by = Actor(format!("{by} via {}", from.name));
                        let signed = Exchange::attestation(from, signed);
                        self.book
                            .act_attested(id, action, &by, now, Some(signed))
                            .map_err(|e| e.to_string())
                    }),
                }
            }
        };
        let mut writes = Vec::new();
        let mut devices = Vec::new();
        let outcome = match applied {
            Ok(change) => {
                if change.transit.held_by.is_none() {
                    devices = change.transit.devices.clone();
                }
                self.push_change(change, &mut writes);
                Outcome::Applied { seq }
            }
            Err(reason) => {
                warn!(peer = %from.name, seq, %reason, "A peer's message was refused.");
                Outcome::Refused { seq, reason }
            }
        };
        if let Some(ex) = self.exchange.as_mut() {
            writes.extend(ex.settle(from, &message, signed, &outcome, now));
        }
        let send = Box::new(move || {
            let _ = reply.send(outcome);
        });
        ((writes, Some(send)), devices)
    }
}

impl TransitStep {
    fn push_change(&mut self, change: TransitChange, writes: &mut Vec<Write>) {
        for record in &change.records {
            if record.kind == "transit.alert_raised" {
                if let Some(alert) = alert_record(record) {
                    self.historian.record_alert(&alert);
                }
            }
        }
        writes.extend(change.records.into_iter().map(|r| Write::Event(logged(r))));
        if let Some(ex) = self.exchange.as_mut() {
            writes.extend(ex.queue_record(&change.transit, Utc::now()));
        }
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
