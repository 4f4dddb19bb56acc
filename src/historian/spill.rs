//! Batches that could not be sent wait on disk as segment files, oldest first, within a byte
//! budget.
//!
//! A segment is one request body, plain line protocol, so an operator can also push it by hand
//! (`influx write --file`). Its name carries what the writer needs without reading it:
//! `{id:020}-{lines}-{first_enqueued_unix_ms}.lp`; the zero-padded id makes name order equal
//! age order. A segment is written to a `.tmp` file, synced and renamed, so a crash leaves
//! either a whole segment or none.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::batch::Batch;

/// What the store knows about one segment on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub id: u64,
    pub lines: usize,
    pub bytes: u64,
    pub first_enqueued_ms: i64,
}

/// Lines and segments removed to stay within the budget; the caller counts them as dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub segments: usize,
    pub lines: usize,
}

pub(crate) struct SpillStore {
    dir: PathBuf,
    budget: u64,
    segments: VecDeque<Segment>,
    bytes: u64,
    lines: usize,
    next_id: u64,
}

impl SpillStore {
    /// Opens (creating it if needed) the spill directory and indexes the segments a previous
    /// run left, then enforces the budget, which may have been lowered since.
    pub(crate) fn open(dir: &Path, budget: u64) -> io::Result<(Self, Evicted)> {
        fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A write interrupted by a crash: its batch was never counted as spilled.
                let _ = fs::remove_file(entry.path());
            } else if let Some((id, lines, first_enqueued_ms)) = parse_name(&name) {
                let bytes = entry.metadata()?.len();
                segments.push(Segment {
                    id,
                    lines,
                    bytes,
                    first_enqueued_ms,
                });
            } else {
                tracing::warn!(file = %name, "Ignored a file in the historian spill directory.");
            }
        }
        segments.sort_by_key(|s| s.id);
        let next_id = segments.last().map_or(0, |s| s.id + 1);
        let bytes = segments.iter().map(|s| s.bytes).sum();
        let lines = segments.iter().map(|s| s.lines).sum();
        let segments = segments.into();
        let mut store = Self {
            dir: dir.to_owned(),
            budget,
            segments,
            bytes,
            lines,
            next_id,
        };
        let evicted = store.evict_until_fits(0, None);
        Ok((store, evicted))
    }

    /// Writes `batch` as the newest segment, first dropping the oldest segments (except
    /// `in_flight`, which a request is replaying) until it fits the budget. A batch larger than
    /// the whole budget is not written and is reported as evicted.
    pub(crate) fn append(
        &mut self,
        batch: &Batch,
        in_flight: Option<u64>,
    ) -> io::Result<(Segment, Evicted)> {
        let size = batch.body.len() as u64;
        let mut evicted = self.evict_until_fits(size, in_flight);
        let id = self.next_id;
        let seg = Segment {
            id,
            lines: batch.lines,
            bytes: size,
            first_enqueued_ms: batch.first_enqueued_ms,
        };
        if size > self.budget {
            evicted.segments += 1;
            evicted.lines += batch.lines;
            return Ok((seg, evicted));
        }
        let path = self.path(&seg);
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&batch.body)?;
        file.sync_data()?;
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir);
        self.next_id += 1;
        self.bytes += size;
        self.lines += seg.lines;
        self.segments.push_back(seg);
        Ok((seg, evicted))
    }

    pub(crate) fn oldest(&self) -> Option<Segment> {
        self.segments.front().copied()
    }

    pub(crate) fn read(&self, seg: &Segment) -> io::Result<Vec<u8>> {
        fs::read(self.path(seg))
    }

    /// Forgets the segment and deletes its file; called after a 2xx response, or when the
    /// segment cannot be read.
    pub(crate) fn remove(&mut self, id: u64) -> io::Result<()> {
        let Some(pos) = self.segments.iter().position(|s| s.id == id) else {
            return Ok(());
        };
        if let Some(seg) = self.segments.remove(pos) {
            self.bytes -= seg.bytes;
            self.lines -= seg.lines;
            match fs::remove_file(self.path(&seg)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    fn evict_until_fits(&mut self, incoming: u64, keep: Option<u64>) -> Evicted {
        let mut evicted = Evicted::default();
        while self.bytes + incoming > self.budget {
            let Some(victim) = self.segments.iter().find(|s| Some(s.id) != keep).copied() else {
                break;
            };
            // `remove` forgets the segment even when its file cannot be deleted.
            if let Err(error) = self.remove(victim.id) {
                tracing::warn!(%error, id = victim.id, "Could not delete a spill segment.");
            }
            evicted.segments += 1;
            evicted.lines += victim.lines;
        }
        evicted
    }

    fn path(&self, seg: &Segment) -> PathBuf {
        self.dir.join(format!(
            "{:020}-{}-{}.lp",
            seg.id, seg.lines, seg.first_enqueued_ms
        ))
    }
}

fn parse_name(name: &str) -> Option<(u64, usize, i64)> {
    let mut parts = name.strip_suffix(".lp")?.splitn(3, '-');
    let id = parts.next()?.parse().ok()?;
    let lines = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    Some((id, lines, first))
}

/// Makes a rename durable; failure only weakens crash safety, so it is not an error.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
#[path = "spill_tests.rs"]
mod tests;
