//! Signed checkpoints of the chain heads, appended to a file outside the store.
//!
//! A checkpoint says: at this time the event log had this many records ending in this hash,
//! and the report batches this many ending in that one, signed with the instance key. A
//! store cut back (newest records deleted) has fewer records than a checkpoint; a chain
//! recomputed after an edit has another hash at a checkpoint's count; and without the
//! private key neither can be signed again.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::key::{self, InstanceKey};
use crate::store::ChainHead;

/// The checkpoints file in a checkpoint directory: one JSON object a line, appended only.
pub const FILE: &str = "checkpoints.jsonl";
/// A line longer than this is not a checkpoint (one is about 500 bytes).
const MAX_LINE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(flatten)]
    pub head: ChainHead,
    /// Merkle roots over every event hash and every batch hash up to the heads: what an
    /// inclusion proof in a bundle leads to.
    pub events_root: String,
    pub batches_root: String,
    pub at: DateTime<Utc>,
    /// The signing key's fingerprint.
    pub key: String,
    /// Ed25519 over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes signed: a fixed text, so a verifier elsewhere can rebuild them.
    pub fn message(&self) -> String {
        let h = &self.head;
        format!(
            "caravan-checkpoint-v1\nevents {} {} {}\nbatches {} {} {}\nat {}\n",
            h.events,
            h.events_head,
            self.events_root,
            h.batches,
            h.batches_head,
            self.batches_root,
            self.at.timestamp_millis()
        )
    }

    /// Signs the heads and roots as of `at`.
    pub fn sign(
        key: &InstanceKey,
        head: ChainHead,
        roots: (String, String),
        at: DateTime<Utc>,
    ) -> Self {
        let mut c = Self {
            head,
            events_root: roots.0,
            batches_root: roots.1,
            at,
            key: key.fingerprint(),
            signature: String::new(),
        };
        c.signature = key.sign(c.message().as_bytes());
        c
    }

    /// True when the signature is `public`'s.
    pub fn is_signed_by(&self, public: &[u8; 32]) -> bool {
        key::verify(public, self.message().as_bytes(), &self.signature)
    }
}

/// Appends `checkpoint` to the file in `dir` and flushes it to disk.
///
/// # Errors
/// The directory or file cannot be created or written.
pub fn append(dir: &Path, checkpoint: &Checkpoint) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(FILE);
    let mut line = serde_json::to_string(checkpoint)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    Ok(path)
}

/// The checkpoints in `dir`'s file, oldest first, and a description of each line that is not
/// one. No file means no checkpoints.
///
/// # Errors
/// The file exists but cannot be read.
pub fn read(dir: &Path) -> std::io::Result<(Vec<Checkpoint>, Vec<String>)> {
    let path = dir.join(FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let mut reader = std::io::BufReader::new(file);
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        n += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            bad.push(format!(
                "{} line {n}: longer than {MAX_LINE} bytes",
                path.display()
            ));
            // Skip the rest of the line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Checkpoint>(text.trim()) {
            Ok(c) => good.push(c),
            Err(e) => bad.push(format!("{} line {n}: {e}", path.display())),
        }
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(n: i64) -> ChainHead {
        ChainHead {
            events: n,
            events_head: "ab".repeat(32),
            batches: n * 2,
            batches_head: "cd".repeat(32),
        }
    }

    #[test]
    fn checkpoints_are_appended_and_read_back_with_their_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let key = InstanceKey::load_or_create(dir.path()).unwrap();
        let public = key::parse_public(&key.public_hex()).unwrap();
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let checkpoints = dir.path().join("elsewhere");
        for n in 1..=3 {
            append(
                &checkpoints,
                &Checkpoint::sign(&key, head(n), ("ee".repeat(32), "ff".repeat(32)), at),
            )
            .unwrap();
        }
        let (read, bad) = read(&checkpoints).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(|c| c.is_signed_by(&public)));
        let mut forged = read[2].clone();
        forged.head.events = 2;
        assert!(!forged.is_signed_by(&public));
    }

    proptest! {
        #[test]
        fn any_file_content_reads_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(FILE), &bytes).unwrap();
            let _ = read(dir.path()).unwrap();
        }
    }
}
