//! Group commit: the one writer to the store, on its own thread.
//!
//! It takes every batch of units waiting in its queue, commits them in one transaction, and
//! only then acknowledges the MQTT messages behind them and republishes their dead letters. A
//! failed commit is retried with backoff while intake waits behind the bounded queue: nothing
//! is acknowledged that is not stored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tracing::{error, warn};

use super::{Ack, Outbox};

/// How long a failing commit is retried once the app is stopping, inside its 5 s to stop.
const GIVE_UP_AT_SHUTDOWN: Duration = Duration::from_secs(2);
use crate::endpoint::DeviceAcks;
use crate::health::Health;
use crate::live::Live;
use crate::metrics::{Metrics, Queue};
use crate::store::{StoreError, StoreWriter, Write};
use crate::telemetry::DeviceId;

/// Writes that belong together, and what to do once they are committed.
pub struct Unit {
    pub writes: Vec<Write>,
    pub ack: Option<Ack>,
    pub reply: Option<Box<dyn FnOnce() + Send>>,
}

pub struct Committer<W> {
    pub writer: W,
    pub outbox: Arc<dyn Outbox>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub max_batch: usize,
    pub live: broadcast::Sender<Live>,
    /// Acknowledgements of committed messages the broker connection could not take yet.
    pub deferred: VecDeque<u16>,
    /// Set when the app is stopping: a commit that keeps failing is then given up (its
    /// messages stay unacknowledged, for the broker or the device to deliver again) rather
    /// than retried forever.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Units given up at shutdown because the store would not take them.
    pub abandoned: Arc<std::sync::atomic::AtomicUsize>,
    /// This instance's role: a fenced commit means another instance took the lease over.
    pub roles: Arc<crate::role::Roles>,
}

impl<W: StoreWriter> Committer<W> {
    /// Runs until every sender of `units` is gone and the queue is empty. Blocking.
    ///
    /// The pipeline hands over one batch of units per run of inputs it drained, so a burst
    /// wakes this thread once rather than once per message.
    pub fn run(mut self, mut units: mpsc::Receiver<Vec<Unit>>) {
        while let Some(mut batch) = self.next_batch(&mut units) {
            let mut size = batch.iter().map(|u| u.writes.len()).sum();
            self.gather(&mut units, &mut batch, &mut size);
            self.metrics.set_queue_depth(Queue::commit, units.len());
            self.commit(batch);
        }
        // The ingest keeps the connection up until this returns, so the last acknowledgements
        // still have a moment to go out.
        let deadline = Instant::now() + Duration::from_secs(1);
        self.flush_acks();
        while !self.deferred.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            self.flush_acks();
        }
        if !self.deferred.is_empty() {
            warn!(
                count = self.deferred.len(),
                "Stopped with acknowledgements the broker connection did not take; those messages will be redelivered."
            );
        }
        if let Err(error) = self.writer.finish() {
            warn!(%error, "The device states waiting for the next fold were not written; the next start rebuilds them from the reports.");
        }
    }

    /// Adds what is waiting to the batch, until it holds `max_batch` writes or more.
    fn gather(
        &self,
        units: &mut mpsc::Receiver<Vec<Unit>>,
        batch: &mut Vec<Unit>,
        size: &mut usize,
    ) {
        while *size < self.max_batch {
            match units.try_recv() {
                Ok(more) => {
                    *size += more.iter().map(|u| u.writes.len()).sum::<usize>();
                    batch.extend(more);
                }
                Err(_) => break,
            }
        }
    }

    /// The next batch; while acknowledgements wait, it keeps offering them instead of
    /// sleeping on an empty queue.
    fn next_batch(&mut self, units: &mut mpsc::Receiver<Vec<Unit>>) -> Option<Vec<Unit>> {
        loop {
            self.flush_acks();
            if self.deferred.is_empty() {
                return units.blocking_recv();
            }
            match units.try_recv() {
                Ok(batch) => return Some(batch),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Offers the waiting acknowledgements, oldest first, until one is not taken.
    fn flush_acks(&mut self) {
        while let Some(pkid) = self.deferred.front() {
            if !self.outbox.acknowledge(*pkid) {
                break;
            }
            self.deferred.pop_front();
        }
        self.metrics
            .set_queue_depth(Queue::acks, self.deferred.len());
    }

    fn commit(&mut self, batch: Vec<Unit>) {
        let mut writes = Vec::with_capacity(batch.iter().map(|u| u.writes.len()).sum());
        let mut after = Vec::with_capacity(batch.len());
        for unit in batch {
            writes.extend(unit.writes);
            after.push((unit.ack, unit.reply));
        }
        let mut writes = latest_states_only(writes);
        if self.abandoned.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            // Work was given up: a save of the state in memory would be ahead of the store.
            writes.retain(|w| !matches!(w, Write::SavedTracks(_)));
        }
        let mut backoff = Duration::from_millis(50);
        let mut failing_since = None;
        let event_ids = loop {
            let started = Instant::now();
            match self.writer.commit(&writes) {
                Ok(committed) => {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.duplicates.inc_by(committed.duplicates as u64);
                    self.metrics.dead_letters_trimmed(&committed.trimmed);
                    self.metrics
                        .committed_reports
                        .inc_by(committed.reports as u64);
                    self.health.set_store(Ok(()));
                    break committed.event_ids;
                }
                Err(StoreError::Fenced { epoch }) => {
                    // Retrying cannot help: another instance writes now. Nothing of the
                    // batch is acknowledged, so the broker delivers it to that instance.
                    self.roles
                        .lose(epoch, crate::store::postgres::lease::Loss::TakenOver);
                    self.abandon(&StoreError::Fenced { epoch }, after.len());
                    return;
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let given_up = self.abandoned.load(std::sync::atomic::Ordering::Relaxed) > 0;
                    if self.stopping.is_cancelled()
                        && (given_up || since.elapsed() >= GIVE_UP_AT_SHUTDOWN)
                    {
                        self.abandon(&e, after.len());
                        return;
                    }
                    self.failed(&e, &mut backoff);
                }
            }
        };
        self.announce(writes, event_ids);
        self.flush_acks();
        let settled = after.iter().filter(|(ack, _)| ack.is_some()).count();
        self.health.settled(settled as u64);
        let mut devices = DeviceAcks::default();
        for (ack, reply) in after {
            match ack {
                Some(Ack::Device(ack)) => devices.push(ack),
                // Acknowledgements keep their order: none overtakes one still waiting.
                Some(Ack::Broker(pkid))
                    if !self.deferred.is_empty() || !self.outbox.acknowledge(pkid) =>
                {
                    self.deferred.push_back(pkid);
                }
                Some(Ack::Broker(_)) => {}
                None => {}
            }
            if let Some(reply) = reply {
                reply();
            }
        }
        devices.send();
    }

    /// Gives a batch up at shutdown: nothing of it is acknowledged, so a persistent broker
    /// session or the device still holds every message of it.
    fn abandon(&self, e: &StoreError, units: usize) {
        self.abandoned
            .fetch_add(units, std::sync::atomic::Ordering::Relaxed);
        error!(error = %e, units, "Stopping with messages the store would not take; they stay unacknowledged and will be delivered again.");
    }

    /// Republishes dead letters and tells live subscribers what was committed.
    fn announce(&self, writes: Vec<Write>, event_ids: Vec<i64>) {
        let listening = self.live.receiver_count() > 0;
        let mut ids = event_ids.into_iter();
        for write in writes {
            match write {
                Write::DeadLetter(letter) => self.outbox.dead_letter(&letter),
                Write::Event(event) => {
                    if let (Some(id), true) = (ids.next(), listening) {
                        let event = Arc::new(event);
                        let _ = self.live.send(Live::Event { id, event });
                    }
                }
                Write::DeviceState(device_id, state) | Write::DeviceProgress(device_id, state)
                    if listening =>
                {
                    let state = Arc::from(state);
                    let _ = self.live.send(Live::Device { device_id, state });
                }
                _ => {}
            }
        }
    }

    fn failed(&self, e: &StoreError, backoff: &mut Duration) {
        self.metrics.commit_failures.inc();
        self.health.set_store(Err(e.to_string()));
        // One line per backoff step, and then one every 5 s: a full disk must not fill the
        // log as well.
        error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "A group commit failed; retrying.");
        if *backoff == Duration::from_secs(5) {
            warn!("The store keeps failing; intake is paused until it recovers.");
        }
        // Short naps, so a shutdown that starts meanwhile is noticed at once.
        let until = Instant::now() + *backoff;
        while Instant::now() < until && !self.stopping.is_cancelled() {
            std::thread::sleep(Duration::from_millis(10));
        }
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }
}

/// Keeps only the last state of each device in a batch: each state is the whole state, so the
/// earlier ones would be written only to be overwritten in the same transaction. The last is
/// written in this commit if any of the device's states in the batch had to be (it holds what
/// that one changed), and may wait for the next fold only if none had.
pub(super) fn latest_states_only(writes: Vec<Write>) -> Vec<Write> {
    // Per device: whether a state was seen after this write (walking backwards) and whether
    // any of its states must be written now.
    let mut seen: HashMap<&DeviceId, bool> = HashMap::new();
    let mut keep = vec![true; writes.len()];
    for (n, write) in writes.iter().enumerate().rev() {
        let (id, now) = match write {
            Write::DeviceState(id, _) => (id, true),
            Write::DeviceProgress(id, _) => (id, false),
            _ => continue,
        };
        match seen.get_mut(id) {
            Some(any_now) => {
                keep[n] = false;
                *any_now |= now;
            }
            None => {
                seen.insert(id, now);
            }
        }
    }
    let now: HashSet<DeviceId> = seen
        .into_iter()
        .filter(|(_, now)| *now)
        .map(|(id, _)| id.clone())
        .collect();
    writes
        .into_iter()
        .zip(keep)
        .filter_map(|(write, keep)| keep.then_some(write))
        .map(|write| match write {
            Write::DeviceProgress(id, state) if now.contains(&id) => Write::DeviceState(id, state),
            write => write,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceState;
    use crate::telemetry::DeviceId;

    fn state(id: &str, seq: u64) -> Write {
        let state = DeviceState {
            max_seq: Some(seq),
            ..DeviceState::default()
        };
        Write::DeviceState(DeviceId::parse(id).unwrap(), Box::new(state))
    }

    /// A broker connection whose request queue is full for the first `refuse` offers.
    struct SlowOutbox {
        refuse: std::sync::Mutex<usize>,
        taken: std::sync::Mutex<Vec<u16>>,
    }

    impl Outbox for SlowOutbox {
        fn acknowledge(&self, pkid: u16) -> bool {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return false;
            }
            self.taken.lock().unwrap().push(pkid);
            true
        }

        fn dead_letter(&self, _: &crate::store::DeadLetter) {}
    }

    #[test]
    fn acknowledgements_the_connection_cannot_take_are_kept_and_sent_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _) = crate::store::open(dir.path()).unwrap();
        let outbox = Arc::new(SlowOutbox {
            refuse: std::sync::Mutex::new(3),
            taken: std::sync::Mutex::new(Vec::new()),
        });
        let committer = Committer {
            writer,
            outbox: outbox.clone(),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            max_batch: 1,
            live: crate::live::channel(),
            deferred: VecDeque::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
            abandoned: Arc::default(),
            roles: crate::role::Roles::single(),
        };
        let (tx, rx) = mpsc::channel(16);
        for pkid in 1..=5 {
            let unit = Unit {
                writes: Vec::new(),
                ack: Some(Ack::Broker(pkid)),
                reply: None,
            };
            tx.try_send(vec![unit]).unwrap();
        }
        drop(tx);
        committer.run(rx);
        assert_eq!(*outbox.taken.lock().unwrap(), [1, 2, 3, 4, 5]);
    }

    /// A store whose first commit fails, and which notes whether any connection had an
    /// acknowledgement waiting when a commit began.
    struct Watched {
        commits: Arc<std::sync::atomic::AtomicUsize>,
        connections: Arc<std::sync::Mutex<Vec<mpsc::UnboundedReceiver<Vec<u16>>>>>,
        early: Arc<std::sync::atomic::AtomicBool>,
    }

    impl StoreWriter for Watched {
        fn commit(&mut self, _: &[Write]) -> Result<crate::store::Committed, StoreError> {
            let connections = self.connections.lock().unwrap();
            if connections.iter().any(|rx| !rx.is_empty()) {
                self.early.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            match self
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            {
                0 => Err(StoreError::Closed),
                _ => Ok(crate::store::Committed::default()),
            }
        }
    }

    #[test]
    fn a_burst_from_several_connections_is_acknowledged_to_each_in_order_once_committed() {
        let (a, a_rx) = crate::endpoint::DeviceAck::queue();
        let (b, b_rx) = crate::endpoint::DeviceAck::queue();
        let (c, c_rx) = crate::endpoint::DeviceAck::queue();
        let connections = Arc::new(std::sync::Mutex::new(vec![a_rx, b_rx, c_rx]));
        let commits = Arc::default();
        let early = Arc::default();
        let writer = Watched {
            commits: Arc::clone(&commits),
            connections: Arc::clone(&connections),
            early: Arc::clone(&early),
        };
        let committer = Committer {
            writer,
            outbox: Arc::new(crate::endpoint::StoredOnly),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            max_batch: 16_000,
            live: crate::live::channel(),
            deferred: VecDeque::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
            abandoned: Arc::default(),
            roles: crate::role::Roles::single(),
        };
        let unit = |ack| Unit {
            writes: Vec::new(),
            ack: Some(Ack::Device(ack)),
            reply: None,
        };
        // Two hand-offs of the pipeline, the connections' messages interleaved.
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(vec![unit(a(1)), unit(b(7)), unit(a(2)), unit(c(3))])
            .unwrap();
        tx.try_send(vec![unit(b(8)), unit(a(3)), unit(c(4)), unit(b(9))])
            .unwrap();
        drop(tx);
        committer.run(rx);

        // The failed attempt and its retry: one commit of both hand-offs.
        assert_eq!(commits.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert!(!early.load(std::sync::atomic::Ordering::Relaxed));
        let mut connections = connections.lock().unwrap();
        let got: Vec<Vec<Vec<u16>>> = connections
            .iter_mut()
            .map(|rx| std::iter::from_fn(|| rx.try_recv().ok()).collect())
            .collect();
        // Each connection is handed its acknowledgements once, in the order of its messages.
        assert_eq!(
            got,
            [vec![vec![1, 2, 3]], vec![vec![7, 8, 9]], vec![vec![3, 4]]]
        );
    }

    #[test]
    fn a_batch_writes_a_device_state_now_if_any_of_its_states_had_to_be() {
        let progress = |id: &str, seq| match state(id, seq) {
            Write::DeviceState(id, s) => Write::DeviceProgress(id, s),
            other => other,
        };
        let writes = vec![
            state("a", 1),
            progress("a", 2),
            progress("b", 1),
            progress("b", 2),
        ];
        let kept: Vec<_> = latest_states_only(writes)
            .into_iter()
            .map(|w| match w {
                Write::DeviceState(id, s) => (id.to_string(), s.max_seq, "now"),
                Write::DeviceProgress(id, s) => (id.to_string(), s.max_seq, "later"),
                _ => unreachable!("only states were given"),
            })
            .collect();
        assert_eq!(
            kept,
            [("a".into(), Some(2), "now"), ("b".into(), Some(2), "later")]
        );
    }

    #[test]
    fn a_batch_writes_each_device_state_once_the_newest() {
        let writes = vec![state("a", 1), state("b", 1), state("a", 2), state("a", 3)];
        let kept: Vec<_> = latest_states_only(writes)
            .into_iter()
            .map(|w| match w {
                Write::DeviceState(id, s) => (id.to_string(), s.max_seq),
                _ => unreachable!("only states were given"),
            })
            .collect();
        assert_eq!(kept, [("b".into(), Some(1)), ("a".into(), Some(3))]);
    }
}
