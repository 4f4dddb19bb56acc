//! The bounded on-disk queue between devices and the broker.
//!
//! Devices are acknowledged only once their records are on disk (fsync), so neither a
//! broker outage nor a bridge crash loses what a device was told is safe. The writer (a
//! dedicated thread, because fsync blocks) gives each message its per-device `seq` and
//! group-commits every request waiting at the time in one write and one fsync. The
//! [`QueueReader`] is read by the publisher, which deletes whole segments once the broker
//! has acknowledged every entry in them.
//!
//! When the queue holds `budget_bytes`, new data is refused ([`QueueError::Full`]) and the
//! device is not acknowledged: it keeps its data and sends it again later, which is safer
//! than dropping the oldest buffered hours.
//!
//! `seq` survives restarts: `seq.json` is written at every segment roll, and at start the
//! remaining segments are scanned, so the next seq of a device is above every seq still on
//! disk or already deleted.

mod reader;
pub mod segment;
mod writer;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

pub use reader::{Item, QueueReader};
use segment::{list_segments, read_cursor, read_entry, read_seqs, segment_path, Position};

use crate::device::DeviceId;
use crate::metrics::Metrics;
use crate::report::Report;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is at its size budget")]
    Full,
    #[error("the queue could not write to disk: {0}")]
    Io(String),
    #[error("the queue writer has stopped")]
    Closed,
}

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub budget_bytes: u64,
    pub segment_bytes: u64,
}

struct Request {
    device: DeviceId,
    reports: Vec<Report>,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// Cheap to clone: one per connection task.
#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<Request>,
}

impl QueueHandle {
    /// Queues `reports` durably; returns once they are fsynced.
    ///
    /// # Errors
    /// [`QueueError::Full`] at the budget, `Io` on a disk error, `Closed` at shutdown.
    pub async fn enqueue(&self, device: &DeviceId, reports: Vec<Report>) -> Result<(), QueueError> {
        if reports.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            device: device.clone(),
            reports,
            reply,
        };
        self.tx
            .send(request)
            .await
            .map_err(|_| QueueError::Closed)?;
        answer.await.unwrap_or(Err(QueueError::Closed))
    }
}

/// Opens (or creates) the queue in `dir`, recovering seqs and the publisher's cursor.
/// The writer thread ends when every [`QueueHandle`] is dropped.
///
/// # Errors
/// I/O errors creating or scanning the directory.
pub fn open(
    dir: &Path,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
) -> io::Result<(QueueHandle, QueueReader, std::thread::JoinHandle<()>)> {
    fs::create_dir_all(dir)?;
    let segments = list_segments(dir)?;
    let cursor = read_cursor(dir)
        .filter(|c| segments.contains(&c.segment))
        .unwrap_or(Position {
            segment: segments.first().copied().unwrap_or(1),
            offset: 0,
        });
    let mut seqs: HashMap<String, u64> = read_seqs(dir).into_iter().collect();
    let (mut bytes, mut pending) = (0u64, 0i64);
    for &id in &segments {
        let file = File::open(segment_path(dir, id))?;
        bytes += file.metadata()?.len();
        let mut r = BufReader::new(file);
        let mut offset = 0;
        while let Some((entry, size)) = read_entry(&mut r)? {
            if let Some(device) = crate::wire::device_of_topic(&entry.topic) {
                let seq = seqs.entry(device.to_owned()).or_default();
                *seq = (*seq).max(entry.last_seq);
            }
            if (Position {
                segment: id,
                offset,
            }) >= cursor
            {
                pending += 1;
            }
            offset += size;
        }
    }
    metrics.queue_bytes.store(bytes, Relaxed);
    metrics.queue_entries.store(pending, Relaxed);
    let active = segments
        .last()
        .map_or(1, |last| last + 1)
        .max(cursor.segment);
    let (committed_tx, committed_rx) = watch::channel(Position {
        segment: active,
        offset: 0,
    });
    let writer = writer::Writer::create(dir, active, limits, seqs, committed_tx, metrics.clone())?;
    let (tx, rx) = mpsc::channel(1024);
    let thread = std::thread::Builder::new()
        .name("bridge-queue-writer".into())
        .spawn(move || writer.run(rx))?;
    let reader = QueueReader::new(dir.to_path_buf(), committed_rx, cursor, metrics);
    Ok((QueueHandle { tx }, reader, thread))
}
