//! Group commit: the one writer to the store, on its own thread.
//!
//! It takes every unit waiting in its queue, commits them in one transaction, and only then
//! acknowledges the MQTT messages behind them and republishes their dead letters. A failed
//! commit is retried with backoff while intake waits behind the bounded queue: nothing is
//! acknowledged that is not stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, warn};

use super::{Ack, Outbox};
use crate::health::Health;
use crate::metrics::{Metrics, Queue};
use crate::store::{StoreError, StoreWriter, Write};

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
}

impl<W: StoreWriter> Committer<W> {
    /// Runs until every sender of `units` is gone and the queue is empty. Blocking.
    pub fn run(mut self, mut units: mpsc::Receiver<Unit>) {
        while let Some(first) = units.blocking_recv() {
            let mut batch = vec![first];
            let mut size = batch[0].writes.len();
            while size < self.max_batch {
                match units.try_recv() {
                    Ok(unit) => {
                        size += unit.writes.len();
                        batch.push(unit);
                    }
                    Err(_) => break,
                }
            }
            self.metrics.set_queue_depth(Queue::commit, units.len());
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Unit>) {
        let mut writes = Vec::with_capacity(batch.iter().map(|u| u.writes.len()).sum());
        let mut after = Vec::with_capacity(batch.len());
        for unit in batch {
            writes.extend(unit.writes);
            after.push((unit.ack, unit.reply));
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            match self.writer.commit(&writes) {
                Ok(committed) => {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.duplicates.inc_by(committed.duplicates as u64);
                    self.health.set_store(Ok(()));
                    break;
                }
                Err(e) => self.failed(&e, &mut backoff),
            }
        }
        for write in &writes {
            if let Write::DeadLetter(letter) = write {
                self.outbox.dead_letter(letter);
            }
        }
        for (ack, reply) in after {
            if let Some(ack) = ack {
                self.outbox.acknowledge(ack);
            }
            if let Some(reply) = reply {
                reply();
            }
        }
    }

    fn failed(&self, e: &StoreError, backoff: &mut Duration) {
        self.metrics.commit_failures.inc();
        self.health.set_store(Err(e.to_string()));
        error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "A group commit failed; retrying.");
        std::thread::sleep(*backoff);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        if *backoff == Duration::from_secs(5) {
            warn!("The store keeps failing; intake is paused until it recovers.");
        }
    }
}
