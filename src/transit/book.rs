//! The book of open transits, owned by the pipeline: indexed by device, fed the geofence
//! events, the reports and the officers' actions, and answering with the changed transits
//! and the records that explain each change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::{self, AlertAction, AlertError, AlertKind, Candidate};
use super::declare::{self, Declaration, FieldError, Known};
use super::effects::{count_outcome, next_country, settle, suspension};
use super::inspection::{self, Attestation, InspectionError, InspectionReport};
use super::itinerary::Itinerary;
use super::lifecycle::{self, Cause, Effect, LifecycleError, OfficerAction};
use super::model::{Actor, Stage, Status, Transit, TransitId};
use super::packed::{Held, Packer};
use super::react::react;
use super::record::{Fact, Recorder, TransitChange};
use super::risk::{self, CarrierHistory, RiskRules};
use super::rules::TransitRules;
use super::shared::SharedItineraries;
use crate::exchange::routing::Holder;
use crate::geofence::{GeofenceEvent, Route};
use crate::keyed::Keyed;
use crate::maps::Atlas;
use crate::telemetry::{DeviceId, Report, ReportBody};

/// An officer's action on one transit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Lifecycle(OfficerAction),
    Inspect(InspectionReport),
    Alert {
        alert_id: String,
        action: AlertAction,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no open transit {0}")]
    NotFound(TransitId),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Inspection(#[from] InspectionError),
    #[error(transparent)]
    Alert(#[from] AlertError),
}

/// The figures and maps every rule reads.
struct Ctx {
    atlas: Arc<Atlas>,
    rules: TransitRules,
    risk: RiskRules,
}

pub struct TransitBook {
    ctx: Ctx,
    /// Boxed, and found by the id each holds: a table keeps room for more entries than it
    /// holds (up to twice as many), which would each be a held transit's size unboxed.
    open: Keyed<Held>,
    packer: Packer,
    by_device: HashMap<DeviceId, TransitId>,
    /// Every transit declared or received that is no longer open; with `open`, every one
    /// ever known, so references stay unique. An open transit's id is only a key of `open`.
    closed: HashSet<TransitId>,
    /// Transits received from peer instances, open or not, with the peer that holds each.
    held_elsewhere: HashMap<TransitId, String>,
    carriers: HashMap<String, CarrierHistory>,
    /// One copy of each itinerary the open transits follow.
    itineraries: SharedItineraries,
}

impl TransitBook {
    pub fn new(atlas: Arc<Atlas>, rules: TransitRules, risk: RiskRules) -> Self {
        Self {
            ctx: Ctx { atlas, rules, risk },
            open: Keyed::default(),
            packer: Packer::default(),
            by_device: HashMap::new(),
            closed: HashSet::new(),
            held_elsewhere: HashMap::new(),
            carriers: HashMap::new(),
            itineraries: SharedItineraries::default(),
        }
    }

    /// Takes up the itineraries shared while the stored transits were read, before they are
    /// restored: those transits already hold their copies.
    pub fn adopt_itineraries(&mut self, itineraries: SharedItineraries) {
        self.itineraries = itineraries;
    }

    /// Resumes from the store: every transit declared so far (closed ones count for the
    /// uniqueness of references and the carriers' history).
    pub fn restore(&mut self, transits: impl IntoIterator<Item = Transit>) {
        for mut t in transits {
            // Routes declared before the critical deviation distance travelled with them.
            if let Some(route) = t.itinerary.route.as_mut() {
                route.critical_deviation_m = route
                    .critical_deviation_m
                    .or(Some(self.ctx.rules.alerts.deviation_critical_km * 1000.0));
            }
            if let Some(peer) = &t.held_by {
                self.held_elsewhere.insert(t.id.clone(), peer.clone());
            }
            let history = self.carriers.entry(t.carrier.clone()).or_default();
            for a in t
                .alerts
                .iter()
                .filter_map(|a| a.outcome.map(|o| (a.kind, o)))
            {
                count_outcome(history, a.0, a.1);
            }
            if t.is_open() {
                self.index(t);
            } else {
                self.closed.insert(t.id);
            }
        }
    }

    /// Whether a transit of this id was ever declared or received here.
    fn known(&self, id: &TransitId) -> bool {
        self.open.contains_key(id) || self.closed.contains(id)
    }

    /// A transit received from a peer is not indexed by device: its devices report to the
    /// peer, and a device of the same id here is another truck's business.
    fn index(&mut self, mut t: Transit) {
        t.shrink_to_fit();
        if t.held_by.is_none() {
            for d in &t.devices {
                self.by_device.insert(d.clone(), t.id.clone());
            }
        }
        self.hold(t);
    }

    /// Packs `t` into the book; once the packer has trained its dictionary, the records
    /// packed before are packed again with it.
    fn hold(&mut self, t: Transit) {
        let held = self.packer.pack(t, &mut self.itineraries);
        self.open.insert(Box::new(held));
        if self.packer.take_trained_now() {
            for held in self.open.values_mut() {
                self.packer.repack(held);
            }
        }
    }

    /// Moves a received transit's truck to the newest of `fixes` its holder forwarded;
    /// `None` when that transit is not open here. Positions older than the newest known are
    /// history and change nothing.
    pub fn follow(
        &mut self,
        id: &TransitId,
        device_id: &DeviceId,
        fixes: &[crate::exchange::message::Position],
    ) -> Option<TransitChange> {
        let held = self.open.get_mut(id).filter(|h| h.received)?;
        let mut transit = self.packer.unpack(held)?;
        if !transit.devices.contains(device_id) {
            return None;
        }
        for f in fixes {
            if held.motion.last_t.is_none_or(|last| f.t > last) {
                held.motion.last_t = Some(f.t);
                held.motion.point = Some(crate::telemetry::GeoPoint {
                    lat: f.lat,
                    lon: f.lon,
                });
            }
        }
        transit.motion = held.motion.clone();
        Some(TransitChange {
            transit: Box::new(transit),
            records: Vec::new(),
        })
    }

    /// Where a transit's declaration is held.
    pub fn holder(&self, id: &TransitId) -> Holder {
        match self.held_elsewhere.get(id) {
            Some(peer) => Holder::Peer(peer.clone()),
            None if self.known(id) => Holder::Here,
            None => Holder::Unknown,
        }
    }

    /// Takes in a transit's record as the peer `from` holds it (checked by the caller with
    /// `exchange::routing::check_record`): it replaces what was known here, and leaves the
    /// book once closed or cancelled.
    pub fn receive(&mut self, mut t: Transit, from: &str, now: DateTime<Utc>) -> TransitChange {
        t.held_by = Some(from.to_owned());
        self.held_elsewhere.insert(t.id.clone(), from.to_owned());
        let mut rec = Recorder::new(&t, now);
        let by = Actor(format!("exchange:{from}"));
        // The whole record, as with a declaration: the log alone rebuilds what is shown.
        rec.push("received", Fact::by(&by, now), &t);
        let change = TransitChange {
            transit: Box::new(t.clone()),
            records: rec.records,
        };
        if t.is_open() {
            self.closed.remove(&t.id);
            self.index(t);
        } else {
            self.open.remove(&t.id);
            self.closed.insert(t.id);
        }
        change
    }

    /// An open transit's whole record, unpacked: for changes and checks, not for every fix.
    pub fn transit(&self, id: &TransitId) -> Option<Transit> {
        self.open.get(id).and_then(|h| self.packer.unpack(h))
    }

    pub fn transit_of(&self, device: &DeviceId) -> Option<Transit> {
        self.by_device.get(device).and_then(|id| self.transit(id))
    }

    /// What a held transit's record is packed against (see `Held::packed_against`).
    #[cfg(test)]
    pub(crate) fn packed_against(&self, id: &TransitId) -> Option<&'static str> {
        self.open.get(id).map(|h| h.packed_against())
    }

    /// Bytes of a held transit's packed record.
    #[cfg(test)]
    pub(crate) fn packed_len(&self, id: &TransitId) -> Option<usize> {
        self.open.get(id).map(|h| h.packed_len())
    }

    /// The id and itinerary of the transit a device is on, read from what the book keeps
    /// decoded. Only transits held here are found: a received one is not indexed by device.
    pub fn itinerary_of(&self, device: &DeviceId) -> Option<(&TransitId, &Itinerary)> {
        let held = self.held_of(device)?;
        Some((&held.id, &held.itinerary))
    }

    /// The open transit held here that a device is on.
    /// The book's copy of a device's id when it is on an open transit here, else `id`: a
    /// registry that keeps this copy holds each id once for both.
    pub fn shared_device_id(&self, id: DeviceId) -> DeviceId {
        self.by_device
            .get_key_value(&id)
            .map_or(id, |(shared, _)| shared.clone())
    }

    fn held_of(&self, device: &DeviceId) -> Option<&Held> {
        self.open.get(self.by_device.get(device)?)
    }

    /// The approved route the geofence engine should follow for a device on a transit.
    pub fn route_of(&self, device: &DeviceId) -> Option<Route> {
        self.held_of(device)?.route()
    }

    /// The id of the route [`route_of`](Self::route_of) gives, without building it: what
    /// every fix checks.
    pub fn route_id_of(&self, device: &DeviceId) -> Option<&TransitId> {
        let held = self.held_of(device)?;
        held.itinerary.route.as_ref().map(|_| &held.id)
    }

    /// Distinct itineraries the open transits follow (each held once).
    pub fn itineraries(&self) -> usize {
        self.itineraries.len()
    }

    pub fn rules(&self) -> &TransitRules {
        &self.ctx.rules
    }

    /// Validates and opens a transit.
    ///
    /// # Errors
    /// One [`FieldError`] per problem with the declaration.
    pub fn declare(
        &mut self,
        decl: Declaration,
        by: &Actor,
        now: DateTime<Utc>,
        registered: &dyn Fn(&DeviceId) -> Option<DeviceId>,
    ) -> Result<TransitChange, Vec<FieldError>> {
        let by_device = &self.by_device;
        let device_on = |d: &DeviceId| by_device.get(d).cloned();
        let declared = |id: &TransitId| self.known(id);
        let known = Known {
            declared: &declared,
            device_on: &device_on,
            device_registered: registered,
        };
        let mut t = declare::declare(decl, &self.ctx.atlas, &self.ctx.rules, &known, by, now)?;
        let history = self.carriers.get(&t.carrier).cloned().unwrap_or_default();
        t.risk = risk::assess(&self.ctx.risk, &t, &history, now);
        let mut rec = Recorder::new(&t, now);
        rec.push("declared", Fact::by(by, now), &t);
        let change = TransitChange {
            transit: Box::new(t.clone()),
            records: rec.records,
        };
        self.index(t);
        Ok(change)
    }

    /// Feeds the engine's events of one report (or batch) to the transits of their devices.
    pub fn on_geofence_events(
        &mut self,
        events: &[GeofenceEvent],
        detected_at: DateTime<Utc>,
    ) -> Vec<TransitChange> {
        let mut changed: Vec<(Transit, Recorder, Status)> = Vec::new();
        for e in events {
            let Some(id) = self.by_device.get(&e.device_id) else {
                continue;
            };
            let slot = match changed.iter().position(|(t, _, _)| t.id == *id) {
                Some(i) => i,
                None => {
                    let Some(t) = self.open.get(id).and_then(|h| self.packer.unpack(h)) else {
                        continue;
                    };
                    let rec = Recorder::new(&t, detected_at);
                    let before = t.status();
                    changed.push((t, rec, before));
                    changed.len() - 1
                }
            };
            let (t, rec, _) = &mut changed[slot];
            let effects = react(t, e, &self.ctx.rules);
            settle(t, effects, rec, Some(&e.device_id));
        }
        let mut out = Vec::new();
        for (t, rec, before) in changed {
            if rec.records.is_empty() {
                self.keep(t);
            } else {
                out.push(self.finish(t, rec, before, &Actor::system()));
            }
        }
        out
    }

    /// Folds a report into its transit: fixes move the ETA and section speeds forward (no
    /// change is returned for them), a status with a low battery raises an alert.
    pub fn observe(
        &mut self,
        report: &Report,
        detected_at: DateTime<Utc>,
    ) -> Option<TransitChange> {
        let id = self.by_device.get(&report.device_id)?;
        let held = self.open.get_mut(id)?;
        match &report.body {
            ReportBody::Fix(fix) => {
                let at_bcp = held.stage == Stage::AtBcp;
                let line = &held.itinerary.line;
                held.motion.observe(
                    &self.ctx.rules,
                    line,
                    fix.t,
                    fix.point,
                    fix.speed_kmh,
                    at_bcp,
                );
                None
            }
            ReportBody::Status(s) => {
                let low = s.battery_pct? < self.ctx.rules.alerts.low_battery_pct;
                if !low {
                    return None;
                }
                let key = format!("low_battery:{}", report.device_id);
                let mut c = Candidate::new(AlertKind::LowBattery, key, s.t);
                c.detected_at = detected_at;
                c.device_id = Some(report.device_id.clone());
                c.detail = serde_json::json!({ "battery_pct": s.battery_pct });
                let mut t = self.packer.unpack(held)?;
                let before = t.status();
                let mut rec = Recorder::new(&t, detected_at);
                let effects = vec![Effect::Alert(c)];
                settle(&mut t, effects, &mut rec, Some(&report.device_id));
                Some(self.finish(t, rec, before, &Actor::system()))
            }
            _ => None,
        }
    }

    /// An officer's action on a transit.
    ///
    /// # Errors
    /// No such open transit, or the action does not apply (see [`ActionError`]).
    pub fn act(
        &mut self,
        id: &TransitId,
        action: Action,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<TransitChange, ActionError> {
        self.act_attested(id, action, by, now, None)
    }

    /// An action taken at a peer instance on a transit held here, with the peer's signed
    /// message: an inspection keeps it, so later legs can check who recorded it.
    ///
    /// # Errors
    /// As [`TransitBook::act`].
    pub fn act_attested(
        &mut self,
        id: &TransitId,
        action: Action,
        by: &Actor,
        now: DateTime<Utc>,
        attestation: Option<Attestation>,
    ) -> Result<TransitChange, ActionError> {
        // Changed on a copy: an action refused half-way leaves the held record as it was.
        let mut transit = self
            .transit(id)
            .ok_or_else(|| ActionError::NotFound(id.clone()))?;
        let t = &mut transit;
        let before = t.status();
        let mut rec = Recorder::new(t, now);
        let cause = Cause {
            by: by.clone(),
            at: now,
            recorded_at: now,
            late: false,
        };
        match action {
            Action::Lifecycle(a) => {
                let effects = lifecycle::act(t, &a, &cause)?;
                settle(t, effects, &mut rec, None);
            }
            Action::Inspect(report) => {
                inspection::record(t, report, by, now)?;
                if let Some(inspection) = t.inspections.last_mut() {
                    inspection.attested = attestation;
                    rec.push("inspection_recorded", Fact::by(by, now), &*inspection);
                }
            }
            Action::Alert { alert_id, action } => {
                let next = next_country(t, &alert_id);
                let a = t
                    .alerts
                    .iter_mut()
                    .find(|a| a.id == alert_id)
                    .ok_or(AlertError::NotFound(alert_id))?;
                alert::act(a, &action, next, by, now)?;
                if let AlertAction::Resolve { outcome, .. } = action {
                    let history = self.carriers.entry(t.carrier.clone()).or_default();
                    count_outcome(history, a.kind, outcome);
                }
                rec.push("alert_updated", Fact::by(by, now), &*a);
            }
        }
        Ok(self.finish(transit, rec, before, by))
    }

    /// Raises overdue alerts for transits past their deadline and not yet arrived.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<TransitChange> {
        let due: Vec<TransitId> = self
            .open
            .values()
            // The holder of a received transit raises its overdue alert.
            .filter(|h| !h.received && !h.overdue_raised)
            .filter(|h| now > h.deadline && !matches!(h.stage, Stage::Arrived))
            .map(|h| h.id.clone())
            .collect();
        let mut changes = Vec::new();
        for id in due {
            let Some(mut t) = self.transit(&id) else {
                continue;
            };
            let before = t.status();
            let mut c = Candidate::new(AlertKind::Overdue, "overdue", t.deadline);
            c.detected_at = now;
            c.late = false;
            c.detail = serde_json::json!({ "deadline": t.deadline, "status": before });
            let mut rec = Recorder::new(&t, now);
            settle(&mut t, vec![Effect::Alert(c)], &mut rec, None);
            changes.push(self.finish(t, rec, before, &Actor::system()));
        }
        changes
    }

    /// Records suspension and resumption, rescoring, and holds the transit as it now
    /// stands, or takes it out of the book once finished; returns it.
    fn finish(
        &mut self,
        mut t: Transit,
        mut rec: Recorder,
        before: Status,
        by: &Actor,
    ) -> TransitChange {
        suspension(&mut t, before, by, rec.detected_at, &mut rec);
        let history = self.carriers.get(&t.carrier).cloned().unwrap_or_default();
        let risk = risk::assess(&self.ctx.risk, &t, &history, rec.detected_at);
        if (risk.score, risk.lane) != (t.risk.score, t.risk.lane) {
            rec.push(
                "risk_assessed",
                Fact::by(&Actor::system(), rec.detected_at),
                &risk,
            );
        }
        t.risk = risk;
        let snapshot = Box::new(t.clone());
        self.keep(t);
        TransitChange {
            transit: snapshot,
            records: rec.records,
        }
    }

    /// Holds a changed transit again, or lets it go once closed or cancelled.
    fn keep(&mut self, t: Transit) {
        if t.is_open() {
            self.hold(t);
            return;
        }
        if t.held_by.is_none() {
            for d in &t.devices {
                self.by_device.remove(d);
            }
        }
        self.open.remove(&t.id);
        self.closed.insert(t.id);
    }
}
