//! The publisher's side of the queue: reads committed entries in order and forgets them
//! once the broker has acknowledged them.

use std::fs::{self, File};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::segment::{list_segments, read_entry, segment_path, write_cursor, Entry, Position};
use crate::metrics::Metrics;

/// How often the acknowledged position is saved; losing the last interval only means
/// publishing those entries again, and the server drops duplicate seqs.
const CURSOR_EVERY: Duration = Duration::from_millis(200);

/// What the reader yields: a message ending at `end`, or the move to the next segment.
/// Both are acknowledged through [`QueueReader::acked_through`] in the order read.
#[derive(Debug)]
pub enum Item {
    Message(Entry, Position),
    SegmentEnd(Position),
}

pub struct QueueReader {
    dir: PathBuf,
    committed: watch::Receiver<Position>,
    read: Position,
    acked: Position,
    file: Option<(u64, BufReader<File>)>,
    metrics: Arc<Metrics>,
    cursor_saved: Instant,
}

impl QueueReader {
    pub(super) fn new(
        dir: PathBuf,
        committed: watch::Receiver<Position>,
        start: Position,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            dir,
            committed,
            read: start,
            acked: start,
            file: None,
            metrics,
            cursor_saved: Instant::now(),
        }
    }

    /// The next committed item, or `None` when everything committed has been read.
    ///
    /// # Errors
    /// I/O errors reading a segment.
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        let committed = *self.committed.borrow_and_update();
        if self.read >= committed {
            return Ok(None);
        }
        let closed = self.read.segment < committed.segment;
        let Some(reader) = self.open()? else {
            return Ok(closed.then(|| self.next_segment()));
        };
        match read_entry(reader)? {
            Some((entry, size)) => {
                self.read.offset += size;
                Ok(Some(Item::Message(entry, self.read)))
            }
            None if closed => {
                let len = reader.get_ref().metadata()?.len();
                if len > self.read.offset {
                    self.metrics.queue_corrupt_segments.fetch_add(1, Relaxed);
                    tracing::warn!(
                        segment = self.read.segment,
                        offset = self.read.offset,
                        "Skipped the unreadable tail of a queue segment."
                    );
                }
                Ok(Some(self.next_segment()))
            }
            None => Ok(None),
        }
    }

    /// Resolves when the writer commits more; cancel-safe.
    pub async fn changed(&mut self) {
        if self.committed.changed().await.is_err() {
            // The writer is gone: nothing more will come.
            std::future::pending::<()>().await;
        }
    }

    /// Goes back to the first unacknowledged entry, after a broker disconnection.
    pub fn rewind(&mut self) {
        self.read = self.acked;
        self.file = None;
    }

    /// Everything up to `pos` is acknowledged: whole segments before it are deleted.
    pub fn acked_through(&mut self, pos: Position) {
        let left_segment = pos.segment > self.acked.segment;
        self.acked = pos;
        if left_segment {
            self.delete_before(pos.segment);
        }
        if left_segment || self.cursor_saved.elapsed() >= CURSOR_EVERY {
            self.save_cursor();
        }
    }

    pub fn save_cursor(&mut self) {
        if let Err(error) = write_cursor(&self.dir, self.acked) {
            tracing::warn!(%error, "Could not save the queue cursor.");
        }
        self.cursor_saved = Instant::now();
    }

    fn next_segment(&mut self) -> Item {
        self.read = Position {
            segment: self.read.segment + 1,
            offset: 0,
        };
        self.file = None;
        Item::SegmentEnd(self.read)
    }

    fn open(&mut self) -> io::Result<Option<&mut BufReader<File>>> {
        if self
            .file
            .as_ref()
            .is_none_or(|(id, _)| *id != self.read.segment)
        {
            let mut file = match File::open(segment_path(&self.dir, self.read.segment)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(self.read.offset))?;
            self.file = Some((self.read.segment, BufReader::new(file)));
        }
        Ok(self.file.as_mut().map(|(_, r)| r))
    }

    fn delete_before(&self, segment: u64) {
        let Ok(ids) = list_segments(&self.dir) else {
            return;
        };
        for id in ids.into_iter().filter(|&id| id < segment) {
            let path = segment_path(&self.dir, id);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {
                    self.metrics
                        .queue_bytes
                        .fetch_sub(len.min(self.metrics.queue_bytes.load(Relaxed)), Relaxed);
                }
                Err(error) => {
                    tracing::warn!(%error, segment = id, "Could not delete an acknowledged queue segment.")
                }
            }
        }
    }
}
