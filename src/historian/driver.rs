//! The writer task: one owner of the batches, the spill store and the single pending request.
//!
//! Order invariant: unsent batches live either in memory (`ready`) or on disk (`spill`), never
//! both, and disk holds the older ones. So a sealed batch goes to disk whenever disk is not
//! empty, and moving memory to disk always moves all of it, oldest first. Replay is then
//! simply "disk head, else memory head".

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::batch::{Batch, Filling};
use super::settings::Checked;
use super::sink::{Sink, WriteError};
use super::spill::SpillStore;
use super::stats::Shared;

/// Lines taken from the channel per wake-up, so the loop also gets to its timers under load.
const INTAKE_CHUNK: usize = 1024;

type Request = Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The front of `ready`; it stays there until the request succeeds.
    Memory,
    Segment(u64),
}

struct InFlight {
    origin: Origin,
    lines: usize,
    request: Request,
}

pub(crate) struct Driver {
    cfg: Checked,
    rx: mpsc::Receiver<String>,
    inbox: Vec<String>,
    sink: Sink,
    spill: SpillStore,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    filling: Filling,
    ready: VecDeque<Batch>,
    ready_lines: usize,
    in_flight: Option<InFlight>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Driver {
    pub(crate) fn new(
        cfg: Checked,
        rx: mpsc::Receiver<String>,
        sink: Sink,
        spill: SpillStore,
        shared: Arc<Shared>,
        cancel: CancellationToken,
    ) -> Self {
        let backoff = cfg.retry_min;
        Self {
            cfg,
            rx,
            inbox: Vec::with_capacity(INTAKE_CHUNK),
            sink,
            spill,
            shared,
            cancel,
            filling: Filling::default(),
            ready: VecDeque::new(),
            ready_lines: 0,
            in_flight: None,
            retry_at: None,
            backoff,
        }
    }

    pub(crate) async fn run(mut self) {
        tracing::info!(spilled_segments = self.spill.len(), "Historian started.");
        loop {
            let now = Instant::now();
            self.seal_if_due(now);
            self.start_request(now);
            self.publish();
            let wake = self.next_wake();
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                outcome = finished(&mut self.in_flight) => self.on_outcome(outcome),
                n = self.rx.recv_many(&mut self.inbox, INTAKE_CHUNK) => {
                    if n == 0 {
                        break;
                    }
                    self.accept_inbox();
                }
                () = sleep_until(wake) => {}
            }
        }
        self.shutdown().await;
    }

    fn accept_inbox(&mut self) {
        let now = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut inbox = std::mem::take(&mut self.inbox);
        for line in inbox.drain(..) {
            self.filling.push(&line, now, now_ms);
            if self.filling.lines() >= self.cfg.batch_lines {
                self.seal();
            }
        }
        self.inbox = inbox;
    }

    /// The sender is idle and nothing waits ahead of the batch being filled.
    fn idle(&self) -> bool {
        self.in_flight.is_none()
            && self.retry_at.is_none()
            && self.ready.is_empty()
            && self.spill.is_empty()
    }

    /// Seals by age only when the batch would go out at once; otherwise it keeps filling, so a
    /// slow or absent server gets fewer, fuller requests and fewer, fuller segments.
    fn seal_if_due(&mut self, now: Instant) {
        let due = self
            .filling
            .deadline(self.cfg.flush_interval)
            .is_some_and(|d| d <= now);
        if due && self.idle() {
            self.seal();
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let flush = self
            .filling
            .deadline(self.cfg.flush_interval)
            .filter(|_| self.idle());
        let retry = self.retry_at.filter(|_| self.in_flight.is_none());
        flush.into_iter().chain(retry).min()
    }

    fn seal(&mut self) {
        let Some(batch) = self.filling.take() else {
            return;
        };
        if !self.spill.is_empty() {
            self.spill_batch(batch);
            return;
        }
        self.ready_lines += batch.lines;
        self.ready.push_back(batch);
        if self.ready_lines > self.cfg.queue_lines {
            // The server cannot keep up: treat the pending request as failed and keep order by
            // moving everything, its batch first, to disk.
            if self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.origin == Origin::Memory)
            {
                self.in_flight = None;
                Shared::add(&self.shared.failed_requests, 1);
                self.note_failure("memory queue full while a request was pending");
                self.back_off();
            }
            self.spill_ready();
        }
    }

    fn spill_ready(&mut self) {
        while let Some(batch) = self.ready.pop_front() {
            self.ready_lines -= batch.lines;
            self.spill_batch(batch);
        }
    }

    fn spill_batch(&mut self, batch: Batch) {
        let in_flight = match self.in_flight.as_ref().map(|f| f.origin) {
            Some(Origin::Segment(id)) => Some(id),
            _ => None,
        };
        let lines = batch.lines;
        match self.spill.append(&batch, in_flight) {
            Ok((_, evicted)) if evicted.lines > 0 => {
                Shared::add(&self.shared.dropped_lines, evicted.lines);
                tracing::warn!(
                    dropped_lines = evicted.lines,
                    dropped_segments = evicted.segments,
                    "Historian spill budget exceeded; dropped the oldest lines."
                );
            }
            Ok(_) => {}
            Err(error) => {
                Shared::add(&self.shared.dropped_lines, lines);
                tracing::error!(%error, lines, "Could not write a historian spill segment; dropped it.");
            }
        }
    }

    /// Sends the oldest unsent batch when no request is pending and no backoff is running.
    fn start_request(&mut self, now: Instant) {
        if self.in_flight.is_some() || self.retry_at.is_some_and(|t| t > now) {
            return;
        }
        self.retry_at = None;
        while let Some(seg) = self.spill.oldest() {
            match self.spill.read(&seg) {
                Ok(body) => {
                    let request = Box::pin(self.sink.write(body.into()));
                    self.in_flight = Some(InFlight {
                        origin: Origin::Segment(seg.id),
                        lines: seg.lines,
                        request,
                    });
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, id = seg.id, "Could not read a historian spill segment; dropped it.");
                    Shared::add(&self.shared.dropped_lines, seg.lines);
                    let _ = self.spill.remove(seg.id);
                }
            }
        }
        if let Some(batch) = self.ready.front() {
            let request = Box::pin(self.sink.write(batch.body.clone()));
            self.in_flight = Some(InFlight {
                origin: Origin::Memory,
                lines: batch.lines,
                request,
            });
        }
    }

    fn on_outcome(&mut self, outcome: Result<(), WriteError>) {
        let Some(done) = self.in_flight.take() else {
            return;
        };
        match outcome {
            Ok(()) => {
                Shared::add(&self.shared.written_lines, done.lines);
                if self.shared.down.swap(false, Relaxed) {
                    tracing::info!(
                        spilled_segments = self.spill.len(),
                        "InfluxDB accepts writes again."
                    );
                }
                self.backoff = self.cfg.retry_min;
                self.forget(done.origin);
            }
            Err(WriteError::Rejected(message)) => {
                Shared::add(&self.shared.failed_requests, 1);
                Shared::add(&self.shared.rejected_lines, done.lines);
                tracing::error!(error = %message, lines = done.lines, "InfluxDB refused a batch; dropped it.");
                self.shared.set_error(&message);
                self.forget(done.origin);
            }
            Err(WriteError::Retryable(message)) => {
                Shared::add(&self.shared.failed_requests, 1);
                self.note_failure(&message);
                if done.origin == Origin::Memory {
                    self.spill_ready();
                }
                self.back_off();
            }
        }
    }

    /// Exponential backoff: one request at a time, each failure doubles the wait up to the max.
    fn back_off(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.cfg.retry_max);
    }

    fn note_failure(&self, message: &str) {
        self.shared.set_error(message);
        if !self.shared.down.swap(true, Relaxed) {
            tracing::warn!(error = %message, "InfluxDB write failed; spilling to disk and retrying.");
        } else {
            tracing::debug!(error = %message, "InfluxDB write failed again.");
        }
    }

    /// Removes a batch that needs no further sending.
    fn forget(&mut self, origin: Origin) {
        match origin {
            Origin::Memory => {
                if let Some(batch) = self.ready.pop_front() {
                    self.ready_lines -= batch.lines;
                }
            }
            Origin::Segment(id) => {
                if let Err(error) = self.spill.remove(id) {
                    tracing::warn!(%error, id, "Could not delete a sent spill segment.");
                }
            }
        }
    }

    fn publish(&self) {
        let s = &self.shared;
        s.memory_lines
            .store((self.filling.lines() + self.ready_lines) as u64, Relaxed);
        s.spilled_lines.store(self.spill.lines() as u64, Relaxed);
        s.spilled_bytes.store(self.spill.bytes(), Relaxed);
        s.spilled_segments.store(self.spill.len() as u64, Relaxed);
        let oldest = [
            self.spill.oldest().map(|s| s.first_enqueued_ms),
            self.ready.front().map(|b| b.first_enqueued_ms),
            self.filling.first_enqueued_ms(),
        ];
        s.oldest_unsent_ms
            .store(oldest.into_iter().flatten().min().unwrap_or(0), Relaxed);
    }

    /// Takes what is still in the channel, tries to send what is in memory for a short while,
    /// and spills the rest, so that a restart loses nothing.
    async fn shutdown(mut self) {
        self.rx.close();
        while let Ok(line) = self.rx.try_recv() {
            self.inbox.push(line);
        }
        self.accept_inbox();
        self.seal();
        let deadline = Instant::now() + self.cfg.shutdown_flush;
        let _ = tokio::time::timeout_at(deadline, self.flush_memory()).await;
        // An unfinished request is abandoned; its batch is still in `ready` or on disk.
        self.in_flight = None;
        self.spill_ready();
        self.publish();
        tracing::info!(spilled_segments = self.spill.len(), "Historian stopped.");
    }

    async fn flush_memory(&mut self) {
        loop {
            if let Some(pending) = self.in_flight.as_mut() {
                let outcome = (&mut pending.request).await;
                self.on_outcome(outcome);
            } else if self.spill.is_empty() && !self.ready.is_empty() {
                self.retry_at = None;
                self.start_request(Instant::now());
            } else {
                return;
            }
        }
    }
}

async fn finished(in_flight: &mut Option<InFlight>) -> Result<(), WriteError> {
    match in_flight {
        Some(pending) => (&mut pending.request).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
