//! The spine: one task owns all tracking state and handles every report in order.
//!
//! ingest ─ [`Input`] ─▶ pipeline (registry, duplicates, device state) ─ [`Unit`]s ─▶ committer
//!
//! Both queues are bounded. When the store falls behind, the committer's queue fills, the
//! pipeline waits on it, the ingest queue fills, and the ingest stops reading from the broker,
//! which holds the rest: back-pressure all the way to the broker, never a dropped message.
//!
//! The pipeline takes every input waiting (up to [`HANDOFF_BATCH`]) and hands their units to
//! the committer in one message: under load a burst costs the threads a few wake-ups, not
//! several per message.

mod committer;
mod dedupe;
mod geo;
#[cfg(test)]
mod handoff_tests;
mod kept;
mod saved;
mod startup;
mod track;
mod transits;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use kept::Kept;
use track::{log_reject, Sinks};

pub use committer::{Committer, Unit};
pub use dedupe::SeqWindow;
pub use geo::Geo;
pub use startup::Startup;
pub use transits::{TransitCommand, TransitStep};

use crate::device::{Device, DeviceState};
use crate::geofence::{DeviceGeoState, DeviceTrack};
use crate::historian::Historian;
use crate::keyed::{HasKey, Keyed};
use crate::metrics::{Metrics, Queue};
use crate::store::{DeadLetter, LoggedEvent, SavedTracks, Snapshot, Write};
use crate::telemetry::{Decoded, DeviceId, Reject, RejectReason, Report};
use crate::threads::side_by_side;

/// A QoS 1 message to acknowledge once its effects are committed.
#[derive(Clone, Debug)]
pub enum Ack {
    /// A message of the ingest's session with an external broker, by packet id.
    Broker(u16),
    /// A message from a device connected to the embedded endpoint.
    Device(crate::endpoint::DeviceAck),
}

/// Where committed work is announced: the external broker's connection, when there is one.
pub trait Outbox: Send + Sync + 'static {
    /// Hands a broker acknowledgement to the connection without waiting; false when it
    /// cannot take it now (the committer keeps it and tries again).
    fn acknowledge(&self, pkid: u16) -> bool;
    /// Republishes a refused message on `caravan/v1/rejected/{reason}`.
    fn dead_letter(&self, letter: &DeadLetter);
}

/// One MQTT message, decoded at the edge.
pub struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub received_at: DateTime<Utc>,
    pub decoded: Decoded,
    pub ack: Option<Ack>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    #[error("device {0} is already registered")]
    AlreadyRegistered(DeviceId),
}

pub enum Input {
    Delivery(Delivery),
    /// Registration goes through the pipeline because the pipeline owns the registry.
    RegisterDevice {
        device: Device,
        /// Its MQTT account, committed with it.
        account: Option<crate::store::NewAccount>,
        /// Who registered it, for the event log.
        actor: String,
        reply: oneshot::Sender<Result<(), RegisterError>>,
    },
    /// Writes that touch no tracking state (tokens), queued behind the reports so the store
    /// keeps one writer; `reply` fires once they are committed.
    Store {
        writes: Vec<Write>,
        reply: oneshot::Sender<()>,
    },
    /// Declarations and officers' actions: the pipeline owns the open transits.
    Transit(TransitCommand),
}

/// What the pipeline knows of one registered device.
struct Tracked {
    /// The device state as last written, without what `seqs` and the track (`geo`) hold.
    kept: Kept,
    seqs: SeqWindow,
    geo: DeviceTrack,
}

impl Tracked {
    /// The device state as last written, without the parts the track holds.
    fn state(&self) -> DeviceState {
        self.kept.state(self.seqs.highest())
    }

    /// The state to write: `state`, with the track's geofence part (`geo`, its snapshot)
    /// and outstanding signal loss.
    fn written(&self, state: DeviceState, geo: DeviceGeoState) -> DeviceState {
        DeviceState {
            geo: Some(Box::new(geo)),
            signal_lost_since: self.geo.signal_lost_since().map(Box::new),
            ..state
        }
    }
}

/// How often every device is checked for signal loss.
const SILENCE_CHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// Devices whose signal loss is committed together: a few thousand writes, a commit of tens
/// of milliseconds.
const SILENCE_UNIT: usize = 1024;
/// Inputs taken from the ingest queue at once, whose units go to the committer as one batch.
/// The committer's queue is bounded in batches, so this times its capacity bounds the
/// messages it can hold.
pub const HANDOFF_BATCH: usize = 256;

pub struct Pipeline {
    /// Boxed, and found by the id each holds: a hash table keeps up to twice as many slots
    /// as entries, and a slot of a few hundred bytes per device would double the memory of
    /// every device; a pointer does not.
    devices: Devices,
    geo: Geo,
    transits: TransitStep,
    committer: mpsc::Sender<Vec<Unit>>,
    metrics: Arc<Metrics>,
    historian: Historian,
    /// When each device last had a reject logged: at most one log line per device a minute.
    reject_logged: HashMap<Option<DeviceId>, DateTime<Utc>>,
    /// Set when a stop left raised work uncommitted: the state in memory is then ahead of
    /// the store and is not saved.
    ahead_of_store: bool,
}

impl Pipeline {
    /// Resumes from the store's snapshot.
    pub fn new(
        snapshot: Snapshot,
        geo: Geo,
        mut transits: TransitStep,
        committer: mpsc::Sender<Vec<Unit>>,
        metrics: Arc<Metrics>,
        historian: Historian,
    ) -> Self {
        let never = CancellationToken::new();
        let nothing_stored = |_: &DeviceId, _| Ok(Default::default());
        let devices = restore(snapshot, &geo, &mut transits, &never, &nothing_stored)
            .ok()
            .flatten()
            .map(|(devices, _)| devices)
            .unwrap_or_default();
        Self::resume(devices, geo, transits, committer, metrics, historian)
    }

    /// The pipeline over devices already restored.
    fn resume(
        devices: Devices,
        geo: Geo,
        transits: TransitStep,
        committer: mpsc::Sender<Vec<Unit>>,
        metrics: Arc<Metrics>,
        historian: Historian,
    ) -> Self {
        Self {
            devices,
            geo,
            transits,
            committer,
            metrics,
            historian,
            reject_logged: HashMap::new(),
            ahead_of_store: false,
        }
    }

    /// Handles inputs until cancelled, then drains what was already queued and returns, which
    /// closes the committer's queue.
    pub async fn run(mut self, mut inputs: mpsc::Receiver<Input>, cancel: CancellationToken) {
        let mut silence = tokio::time::interval(SILENCE_CHECK);
        silence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(HANDOFF_BATCH);
        loop {
            let taken = tokio::select! {
                taken = inputs.recv_many(&mut batch, HANDOFF_BATCH) => taken,
                _ = silence.tick(), if !cancel.is_cancelled() => {
                    if !self.check_silence(&mut inputs, &cancel).await {
                        break;
                    }
                    continue;
                }
                () = cancel.cancelled() => {
                    inputs.close();
                    inputs.recv_many(&mut batch, HANDOFF_BATCH).await
                }
            };
            // Nothing taken: the queue is closed and empty.
            if taken == 0 {
                break;
            }
            self.metrics.set_queue_depth(Queue::ingest, inputs.len());
            if !self.handle(&mut batch).await {
                warn!("The committer stopped; the pipeline stops with it.");
                break;
            }
        }
        if self.ahead_of_store {
            info!("Tracking state not saved: the stop left raised events uncommitted, so the next start rebuilds it from the store.");
        } else {
            self.save_tracks().await;
        }
        info!(devices = self.devices.len(), "Pipeline stopped.");
    }

    /// Hands every device's state to the committer as the last unit, for the next start.
    async fn save_tracks(&self) {
        let started = std::time::Instant::now();
        let mut tracks = Vec::with_capacity(self.devices.len());
        for tracked in self.devices.values() {
            let id = tracked.geo.device_id();
            match saved::save(tracked) {
                Ok(bytes) => tracks.push((id.clone(), bytes)),
                Err(error) => {
                    warn!(%error, device_id = %id, "Tracking state not saved; the next start rebuilds it from the store.");
                    return;
                }
            }
        }
        let bytes: usize = tracks.iter().map(|(_, b)| b.len()).sum();
        let saved = SavedTracks {
            engine: self.geo.engine().index().fingerprint().to_owned(),
            tracks,
        };
        let unit = Unit {
            writes: vec![Write::SavedTracks(Box::new(saved))],
            ack: None,
            reply: None,
        };
        if self.committer.send(vec![unit]).await.is_ok() {
            info!(
                devices = self.devices.len(),
                bytes,
                encode_s = started.elapsed().as_secs_f64(),
                "Tracking state handed to the store for the next start."
            );
        }
    }

    /// Handles the inputs in order and hands their writes to the committer together, leaving
    /// `inputs` empty; false when the committer has stopped.
    async fn handle(&mut self, inputs: &mut Vec<Input>) -> bool {
        let units: Vec<Unit> = inputs
            .drain(..)
            .filter_map(|input| self.unit(input))
            .collect();
        units.is_empty() || self.committer.send(units).await.is_ok()
    }

    /// Runs one input; its writes and what to do once they are committed, or `None` when
    /// there is nothing to commit (it was answered at once).
    fn unit(&mut self, input: Input) -> Option<Unit> {
        let unit = match input {
            Input::Delivery(delivery) => self.deliver(delivery),
            Input::Store { writes, reply } => Unit {
                writes,
                ack: None,
                reply: Some(Box::new(move || {
                    let _ = reply.send(());
                })),
            },
            Input::Transit(command) => self.transit_command(command)?,
            Input::RegisterDevice {
                device,
                account,
                actor,
                reply,
            } => match self.register(device, account, actor) {
                Ok(unit) => Unit {
                    reply: Some(Box::new(move || {
                        let _ = reply.send(Ok(()));
                    })),
                    ..unit
                },
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return None;
                }
            },
        };
        Some(unit)
    }

    /// Runs a transit command; `None` when it was refused and answered at once.
    fn transit_command(&mut self, command: TransitCommand) -> Option<Unit> {
        let devices = &self.devices;
        let registered = |id: &DeviceId| devices.get(id).map(|t| t.geo.device_id().clone());
        let ((writes, reply), moved) = self.transits.handle(command, Utc::now(), &registered);
        for id in moved {
            if let Some(tracked) = self.devices.get_mut(&id) {
                self.transits
                    .assign_route(self.geo.engine(), &mut tracked.geo);
            }
        }
        reply.map(|reply| Unit {
            writes,
            ack: None,
            reply: Some(reply),
        })
    }

    fn register(
        &mut self,
        device: Device,
        account: Option<crate::store::NewAccount>,
        actor: String,
    ) -> Result<Unit, RegisterError> {
        if self.devices.contains_key(&device.device_id) {
            return Err(RegisterError::AlreadyRegistered(device.device_id));
        }
        let tracked = Box::new(Tracked {
            kept: Kept::from(&DeviceState::default()),
            seqs: SeqWindow::default(),
            geo: DeviceTrack::new(device.device_id.clone()),
        });
        self.devices.insert(tracked);
        let logged = LoggedEvent {
            kind: "device_registered".into(),
            device_id: Some(device.device_id.clone()),
            transit_id: None,
            occurred_at: device.registered_at,
            detected_at: device.registered_at,
            late: false,
            actor: Some(actor),
            body: serde_json::to_value(&device).unwrap_or_default(),
        };
        let mut writes = vec![Write::Device(device), Write::Event(logged)];
        writes.extend(account.map(Write::Account));
        Ok(Unit {
            writes,
            ack: None,
            reply: None,
        })
    }

    fn deliver(&mut self, delivery: Delivery) -> Unit {
        let Delivery {
            topic,
            payload,
            received_at,
            decoded,
            ack,
        } = delivery;
        let lag = Utc::now() - received_at;
        // Whole microseconds are exact in an f64; the gauge is in seconds, as Prometheus wants.
        let lag_us = lag.num_microseconds().unwrap_or(i64::MAX);
        self.metrics
            .pipeline_lag_seconds
            .set(lag_us as f64 / 1_000_000.0);
        let mut writes = Vec::new();
        let letter = |reject: Reject, raw: Option<String>, device_id: Option<DeviceId>| {
            Write::DeadLetter(DeadLetter {
                received_at,
                reason: reject.reason,
                detail: reject.detail,
                topic: topic.clone(),
                device_id,
                payload: raw.map_or_else(|| payload.to_vec(), String::into_bytes),
            })
        };
        let device_id = decoded.device_id;
        let tracked = device_id.as_ref().and_then(|id| self.devices.get_mut(id));
        match tracked {
            Some(tracked) if !decoded.reports.is_empty() || !decoded.rejects.is_empty() => {
                for (reject, raw) in decoded.rejects {
                    self.metrics.reject(reject.reason);
                    log_reject(&mut self.reject_logged, &device_id, &reject, received_at);
                    writes.push(letter(reject, raw, device_id.clone()));
                }
                if let Some(id) = &device_id {
                    let sinks = Sinks {
                        metrics: &self.metrics,
                        historian: &self.historian,
                        geo: &self.geo,
                        transits: &mut self.transits,
                    };
                    track::track(
                        tracked,
                        id,
                        decoded.reports,
                        received_at,
                        sinks,
                        &mut writes,
                    );
                }
            }
            Some(_) => {}
            None => {
                let reject = match decoded.rejects.into_iter().next() {
                    Some((reject, None)) => reject,
                    _ => Reject::new(
                        RejectReason::UnknownDevice,
                        "the device is not registered (caravan device add)",
                    ),
                };
                self.metrics.reject(reject.reason);
                log_reject(&mut self.reject_logged, &device_id, &reject, received_at);
                writes.push(letter(reject, None, device_id));
            }
        }
        Unit {
            writes,
            ack,
            reply: None,
        }
    }
}

impl Pipeline {
    /// Hands the units over one at a time, each once the previous one is committed, so that
    /// a check raising thousands of events neither holds the store in one long commit (reads
    /// and reports wait on it) nor delays a stop: on cancellation the rest is left, and what
    /// was not committed is raised again at the next start. False when the committer is gone.
    async fn commit_one_by_one(
        &mut self,
        units: Vec<Unit>,
        inputs: &mut mpsc::Receiver<Input>,
        cancel: &CancellationToken,
    ) -> bool {
        for mut unit in units {
            let (done, committed) = oneshot::channel();
            let reply = unit.reply.take();
            unit.reply = Some(Box::new(move || {
                if let Some(reply) = reply {
                    reply();
                }
                let _ = done.send(());
            }));
            if self.committer.send(vec![unit]).await.is_err() {
                return false;
            }
            // Devices keep being served while a unit commits: a mass signal loss must not
            // stall intake.
            let mut committed = std::pin::pin!(committed);
            let mut batch = Vec::with_capacity(HANDOFF_BATCH);
            loop {
                tokio::select! {
                    // A unit committed before the stop counts as committed.
                    biased;
                    _ = &mut committed => break,
                    () = cancel.cancelled() => {
                        self.ahead_of_store = true;
                        return true;
                    }
                    taken = inputs.recv_many(&mut batch, HANDOFF_BATCH) => {
                        if taken == 0 {
                            self.ahead_of_store = true;
                            return true;
                        }
                        if !self.handle(&mut batch).await {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// Raises `signal_lost` for every device silent longer than its allowance, then runs the
    /// transits' clock. The losses are raised a unit of at most `SILENCE_UNIT` devices at a
    /// time, each committed before the next is raised: a mass loss holds one unit's writes,
    /// not a whole fleet's (at 1,000,000 silent trucks that was gigabytes), and a stop leaves
    /// the devices not yet checked as they were. False when the committer is gone.
    async fn check_silence(
        &mut self,
        inputs: &mut mpsc::Receiver<Input>,
        cancel: &CancellationToken,
    ) -> bool {
        let ids: Vec<DeviceId> = self
            .devices
            .values()
            .map(|t| t.geo.device_id().clone())
            .collect();
        let mut next = 0;
        while next < ids.len() && !cancel.is_cancelled() {
            let (unit, scanned) = self.raise_losses(&ids[next..], Utc::now());
            next += scanned;
            if let Some(unit) = unit {
                if !self.commit_one_by_one(vec![unit], inputs, cancel).await {
                    return false;
                }
            }
        }
        let mut writes = Vec::new();
        self.transits.tick(Utc::now(), &mut writes);
        if writes.is_empty() || cancel.is_cancelled() {
            return true;
        }
        let unit = Unit {
            writes,
            ack: None,
            reply: None,
        };
        self.commit_one_by_one(vec![unit], inputs, cancel).await
    }

    /// Raises the losses among `ids`, in order, until `SILENCE_UNIT` are raised: their unit,
    /// if any, and how many of `ids` were checked.
    fn raise_losses(&mut self, ids: &[DeviceId], now: DateTime<Utc>) -> (Option<Unit>, usize) {
        let mut writes = Vec::new();
        let mut silent = Vec::new();
        let mut checked = 0;
        for id in ids {
            checked += 1;
            let Some(tracked) = self.devices.get_mut(id) else {
                continue;
            };
            let Some(event) = self.geo.engine().check_silence(&mut tracked.geo, now) else {
                continue;
            };
            self.metrics.geofence_event(event.kind_str());
            writes.push(Write::Event(geo::logged(&event)));
            // The state records the outstanding loss, in the same commit as its event.
            let geo = self.geo.engine().snapshot(&tracked.geo);
            let written = tracked.written(tracked.state(), geo);
            writes.push(Write::DeviceState(
                event.device_id.clone(),
                Box::new(written),
            ));
            silent.push(event);
            if silent.len() == SILENCE_UNIT {
                break;
            }
        }
        self.transits.after_reports(&[], &silent, now, &mut writes);
        let unit = (!writes.is_empty()).then_some(Unit {
            writes,
            ack: None,
            reply: None,
        });
        (unit, checked)
    }
}

/// Where a device's seqs and last reports come from when its saved state cannot be used.
/// Called from the threads that rebuild the devices side by side.
pub(crate) type Replay<'a> = &'a (dyn Fn(&DeviceId, Option<u64>) -> Result<(Vec<u64>, Vec<Report>), crate::store::StoreError>
         + Sync);

/// Every registered device's state, by id.
type Devices = Keyed<Tracked>;

impl HasKey for Tracked {
    type Key = DeviceId;

    fn key(&self) -> &DeviceId {
        self.geo.device_id()
    }
}

/// How the devices were restored.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// From their state saved at the last clean stop.
    pub saved: usize,
    /// By replaying their last reports.
    pub replayed: usize,
    /// Of those replayed, the ones whose saved record was refused.
    pub refused: usize,
}

impl Restored {
    fn add(&mut self, other: &Restored) {
        self.saved += other.saved;
        self.replayed += other.replayed;
        self.refused += other.refused;
    }
}

/// One device as the snapshot holds it.
struct Stored {
    id: DeviceId,
    state: DeviceState,
    saved: Option<Vec<u8>>,
    /// Its seqs and last reports, when the snapshot read them.
    window: Option<(Vec<u64>, Vec<Report>)>,
}

/// A device rebuilt, before its track is given its transit's route.
enum Rebuilt {
    Resumed(Kept, saved::Resumed),
    Replayed(Tracked),
}

/// Rebuilds every device's tracking state from the snapshot: its duplicate window, its
/// geofence track and its transit's route. A device saved at the last clean stop is taken up
/// as it was; any other is rebuilt by replaying its last reports (and resuming a signal loss
/// it was left in). `None` when `cancel` fired first.
///
/// When most devices are replayed, they are rebuilt in two halves side by side (each device's
/// track depends on its own reports only, and the engine is read-only); the routes, which
/// share one cache, are given after, in one pass.
///
/// # Errors
/// A device's reports could not be read: tracking without them would raise again what was
/// raised before.
fn restore(
    snapshot: Snapshot,
    geo: &Geo,
    transits: &mut TransitStep,
    cancel: &CancellationToken,
    replay: Replay<'_>,
) -> Result<Option<(Devices, Restored)>, crate::store::StoreError> {
    let Snapshot {
        devices: listed,
        recent_seqs,
        recent_reports,
        mut saved,
    } = snapshot;
    let mut seqs: HashMap<DeviceId, Vec<u64>> = recent_seqs.into_iter().collect();
    let mut recent: HashMap<DeviceId, Vec<Report>> = recent_reports.into_iter().collect();
    let mut first: Vec<Stored> = listed
        .into_iter()
        .map(|(device, state)| {
            // One copy of the id for the registry, the track and the transit book.
            let id = transits.shared_device_id(device.device_id);
            let window = match (seqs.remove(&id), recent.remove(&id)) {
                (Some(s), Some(r)) => Some((s, r)),
                _ => None,
            };
            Stored {
                saved: saved.remove(&id),
                id,
                state,
                window,
            }
        })
        .collect();
    // Replaying is most of a start after a crash: two halves side by side. Devices saved at
    // a clean stop are only decoded, which takes a fraction of that, and rebuilt on two
    // threads they were held in more memory (each thread allocates from its own pages).
    let replays = first.iter().filter(|d| d.saved.is_none()).count();
    let at = if replays * 2 > first.len() {
        first.len().div_ceil(2)
    } else {
        first.len()
    };
    let second = first.split_off(at);
    let (first, second) = side_by_side(
        || rebuild(first, geo, cancel, replay),
        || rebuild(second, geo, cancel, replay),
    );
    let (Some((first, mut restored)), Some((second, counted))) = (first?, second?) else {
        return Ok(None);
    };
    restored.add(&counted);
    let mut devices = Devices::with_capacity(first.len() + second.len());
    for rebuilt in first.into_iter().chain(second) {
        let tracked = match rebuilt {
            Rebuilt::Resumed(kept, saved::Resumed { seqs, mut track }) => {
                transits.assign_route(geo.engine(), &mut track.track);
                saved::tracked(kept, seqs, track.finish())
            }
            Rebuilt::Replayed(mut tracked) => {
                transits.assign_route(geo.engine(), &mut tracked.geo);
                tracked
            }
        };
        devices.insert(Box::new(tracked));
    }
    Ok(Some((devices, restored)))
}

/// One half of the devices, rebuilt, with how.
type Half = (Vec<Rebuilt>, Restored);

/// Rebuilds `devices` on this thread; `None` when `cancel` fired first.
fn rebuild(
    devices: Vec<Stored>,
    geo: &Geo,
    cancel: &CancellationToken,
    replay: Replay<'_>,
) -> Result<Option<Half>, crate::store::StoreError> {
    let mut restored = Restored::default();
    let mut out = Vec::with_capacity(devices.len());
    for (n, device) in devices.into_iter().enumerate() {
        if n % 1024 == 0 && cancel.is_cancelled() {
            return Ok(None);
        }
        let Stored {
            id,
            state,
            saved,
            window,
        } = device;
        let resumed = saved.map(|bytes| saved::resume(id.clone(), &bytes, geo.engine().index()));
        let rebuilt = match resumed {
            Some(Ok(resumed)) => {
                restored.saved += 1;
                Rebuilt::Resumed(Kept::from(&state), resumed)
            }
            failed => {
                if let Some(Err(error)) = failed {
                    // Once a half: an edited store could otherwise write a line per device.
                    if restored.refused == 0 {
                        warn!(%error, device_id = %id, "A saved track was not taken up; replaying the device's reports (the count follows once restored).");
                    }
                    restored.refused += 1;
                }
                // Asked of the store even when the stored state holds no seq: the reports
                // are the record, and a state can lag them.
                let (stored_seqs, reports) = match window {
                    Some(window) => window,
                    None => replay(&id, state.max_seq)?,
                };
                restored.replayed += 1;
                Rebuilt::Replayed(replayed(geo, id.clone(), state, &stored_seqs, &reports))
            }
        };
        out.push(rebuilt);
    }
    Ok(Some((out, restored)))
}

/// A device's state rebuilt from its stored seqs and last reports, its route not yet given.
fn replayed(
    geo: &Geo,
    id: DeviceId,
    state: DeviceState,
    stored_seqs: &[u64],
    reports: &[Report],
) -> Tracked {
    let mut window = SeqWindow::default();
    for seq in stored_seqs {
        window.insert(*seq);
    }
    // The stored state may lag the reports (it is written about once a second, and a crash
    // loses what waited): folding them in again brings it up to them, and changes nothing
    // it already holds.
    let mut state = state;
    for report in reports {
        state.apply(report);
    }
    // The highest seq the stored state names was seen, even if its report is no longer
    // stored: the window holds it, as it holds the highest seq from then on.
    if let Some(max) = state.max_seq {
        window.insert(max);
    }
    let mut track = geo.restore(id, reports);
    if let Some(since) = state.signal_lost_since.as_deref() {
        track.resume_signal_lost(*since);
    }
    saved::tracked(Kept::from(&state), window, track)
}

#[cfg(test)]
mod lag_tests;
#[cfg(test)]
mod saved_tests;
#[cfg(test)]
mod startup_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered device holds one `Tracked` whether it reports or not, so its size is
    /// the floor of the memory per device (BENCHMARKS.md, "Memory per tracked device"): a
    /// field that makes it grow should be one most devices use.
    #[test]
    fn a_registered_device_stays_within_its_memory_budget() {
        assert!(size_of::<Tracked>() <= 424, "{} B", size_of::<Tracked>());
        assert!(size_of::<SeqWindow>() <= 32);
        assert!(size_of::<DeviceId>() <= 8);
    }
}
