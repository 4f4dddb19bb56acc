//! The queue's single writer: seq assignment, group commit, budget, segment rolls.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::segment::{segment_path, sync_dir, write_atomic, Entry, Position};
use super::{QueueError, QueueLimits, Request};
use crate::metrics::Metrics;
use crate::wire;

/// Requests taken per group commit; bounds the latency one fsync adds to the last of them.
const MAX_BATCH: usize = 512;

pub(super) struct Writer {
    dir: PathBuf,
    limits: QueueLimits,
    active_id: u64,
    active: File,
    active_len: u64,
    /// The last seq committed to disk per device.
    seqs: HashMap<String, u64>,
    committed: watch::Sender<Position>,
    metrics: Arc<Metrics>,
}

type Reply = oneshot::Sender<Result<(), QueueError>>;

impl Writer {
    pub(super) fn create(
        dir: &Path,
        active_id: u64,
        limits: QueueLimits,
        seqs: HashMap<String, u64>,
        committed: watch::Sender<Position>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let active = new_segment(dir, active_id)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            limits,
            active_id,
            active,
            active_len: 0,
            seqs,
            committed,
            metrics,
        })
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        if let Err(error) = self.roll_seqs() {
            tracing::error!(%error, "Could not save the seq counters at shutdown.");
        }
    }

    /// Renders every request that fits the budget, writes them with one fsync, then
    /// answers each: nobody is told "safe" before the fsync returns.
    fn commit(&mut self, batch: Vec<Request>) {
        let mut buf = Vec::new();
        let mut staged: HashMap<String, u64> = HashMap::new();
        let mut accepted: Vec<(Reply, i64)> = Vec::new();
        let on_disk = self.metrics.queue_bytes.load(Relaxed);
        for request in batch {
            let key = request.device.as_str();
            let start = buf.len();
            let mut next = staged.get(key).or(self.seqs.get(key)).copied().unwrap_or(0) + 1;
            for report in &request.reports {
                let m = wire::render(&request.device, report, next);
                next = m.last_seq + 1;
                Entry {
                    last_seq: m.last_seq,
                    topic: m.topic,
                    payload: m.payload,
                }
                .encode(&mut buf);
            }
            if on_disk + buf.len() as u64 > self.limits.budget_bytes {
                buf.truncate(start);
                self.metrics.queue_full.fetch_add(1, Relaxed);
                let _ = request.reply.send(Err(QueueError::Full));
                continue;
            }
            staged.insert(key.to_owned(), next - 1);
            accepted.push((request.reply, request.reports.len() as i64));
        }
        if accepted.is_empty() {
            return;
        }
        match self.append(&buf) {
            Ok(()) => {
                self.seqs.extend(staged);
                let n: i64 = accepted.iter().map(|(_, n)| n).sum();
                self.metrics.queue_entries.fetch_add(n, Relaxed);
                let _ = self.committed.send(Position {
                    segment: self.active_id,
                    offset: self.active_len,
                });
                for (reply, _) in accepted {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "Could not write to the disk queue; refused the batch.");
                // The segment's tail is now unknown: continue in a fresh one.
                self.active_len = self.limits.segment_bytes;
                for (reply, _) in accepted {
                    let _ = reply.send(Err(QueueError::Io(error.to_string())));
                }
            }
        }
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.active_len >= self.limits.segment_bytes {
            self.roll()?;
        }
        self.active.write_all(buf)?;
        self.active.sync_data()?;
        self.active_len += buf.len() as u64;
        self.metrics
            .queue_bytes
            .fetch_add(buf.len() as u64, Relaxed);
        Ok(())
    }

    /// Closes the active segment: its seqs are saved first, so deleting it later cannot
    /// make a seq reusable.
    fn roll(&mut self) -> io::Result<()> {
        self.roll_seqs()?;
        let next = self.active_id + 1;
        self.active = new_segment(&self.dir, next)?;
        self.active_id = next;
        self.active_len = 0;
        let _ = self.committed.send(Position {
            segment: next,
            offset: 0,
        });
        Ok(())
    }

    fn roll_seqs(&self) -> io::Result<()> {
        let sorted: std::collections::BTreeMap<_, _> = self.seqs.iter().collect();
        let json = serde_json::to_vec(&sorted).map_err(io::Error::other)?;
        write_atomic(&self.dir, "seq.json", &json)
    }
}

fn new_segment(dir: &Path, id: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, id))?;
    sync_dir(dir)?;
    Ok(file)
}
