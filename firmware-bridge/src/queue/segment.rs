//! The on-disk layout of the queue: numbered append-only segment files of checksummed
//! entries, plus two small state files.
//!
//! An entry is `len u32 LE | crc32c u32 LE | body`, the body `last_seq u64 BE | topic len
//! u16 BE | topic | payload`. A torn write (power cut mid-append) fails its checksum and
//! ends the readable part of its segment; the writer never appends after one because it
//! starts a fresh segment at every start.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crc::{Crc, CRC_32_ISCSI};

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
const HEADER: usize = 8;
/// Larger entries cannot have been written by this code: treat as corruption.
const MAX_ENTRY: usize = 16 * 1024 * 1024;

/// A place in the queue: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// One queued MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub last_seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Entry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let topic = self.topic.as_bytes();
        let mut body = Vec::with_capacity(10 + topic.len() + self.payload.len());
        body.extend_from_slice(&self.last_seq.to_be_bytes());
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic);
        body.extend_from_slice(&self.payload);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&CRC32C.checksum(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }

    fn decode(body: &[u8]) -> Option<Self> {
        let seq = body.get(..8)?;
        let last_seq = u64::from_be_bytes(seq.try_into().ok()?);
        let topic_len = usize::from(u16::from_be_bytes(body.get(8..10)?.try_into().ok()?));
        let topic = String::from_utf8(body.get(10..10 + topic_len)?.to_vec()).ok()?;
        let payload = body.get(10 + topic_len..)?.to_vec();
        Some(Self {
            last_seq,
            topic,
            payload,
        })
    }
}

/// Reads entries from `reader`, returning the next entry and its encoded size, `None` at a
/// clean end of data or at a torn or corrupt entry (the rest of that segment is unusable).
pub fn read_entry(reader: &mut impl Read) -> io::Result<Option<(Entry, u64)>> {
    let mut header = [0u8; HEADER];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len > MAX_ENTRY {
        return Ok(None);
    }
    let mut body = vec![0u8; len];
    match reader.read_exact(&mut body) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if CRC32C.checksum(&body) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Ok(None);
    }
    Ok(Entry::decode(&body).map(|e| (e, (HEADER + len) as u64)))
}

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The segment ids present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the dir.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The last `seq` handed out per device, as of the last segment roll.
pub fn read_seqs(dir: &Path) -> BTreeMap<String, u64> {
    fs::read(dir.join("seq.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The publisher's acknowledged position; stale is harmless (entries are published again
/// and the server drops duplicate seqs).
pub fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Position {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

pub fn write_cursor(dir: &Path, pos: Position) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))?;
    fs::rename(tmp, dir.join("cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_a_torn_one_ends_the_segment() {
        let entry = Entry {
            last_seq: 7,
            topic: "caravan/v1/dev/a/pos".into(),
            payload: b"{}".to_vec(),
        };
        let mut bytes = Vec::new();
        entry.encode(&mut bytes);
        let full = bytes.len();
        entry.encode(&mut bytes);
        bytes.truncate(full + 5);
        let mut r = bytes.as_slice();
        assert_eq!(read_entry(&mut r).unwrap(), Some((entry, full as u64)));
        assert_eq!(read_entry(&mut r).unwrap(), None);
    }
}
