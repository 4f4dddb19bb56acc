//! The `rejects` table: refused messages kept as dead letters, bounded. A payload is cut to a
//! prefix (its full length and SHA-256 noted), old letters expire, and the oldest go first
//! beyond the total budget, so garbage from outside cannot fill the disk.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Transaction};
use sha2::{Digest, Sha256};

use super::{DeadLetter, StoreError};
use crate::telemetry::{DeviceId, RejectReason};

/// How much of the dead letters is kept (from `[dead_letters]`).
#[derive(Clone, Copy, Debug)]
pub struct DeadLetterPolicy {
    pub max_payload_bytes: usize,
    pub retention: chrono::Duration,
    pub max_total_bytes: u64,
}

impl Default for DeadLetterPolicy {
    fn default() -> Self {
        Self {
            max_payload_bytes: 4096,
            retention: chrono::Duration::days(30),
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

impl DeadLetterPolicy {
    /// The budget in rows: each row holds at most the payload prefix and about 512 bytes of
    /// reason, detail, topic and index.
    pub(crate) fn max_rows(&self) -> u64 {
        (self.max_total_bytes / (self.max_payload_bytes as u64 + 512)).max(1)
    }

    /// Letters received before this (ms) have expired.
    pub(crate) fn oldest_kept(&self, now: DateTime<Utc>) -> i64 {
        (now - self.retention).timestamp_millis()
    }
}

/// What pruning and cutting did, for the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub payloads_cut: usize,
    pub expired: usize,
    pub over_budget: usize,
}

/// A dead letter as stored: the payload cut to the policy's prefix, and the detail noting
/// its full length and SHA-256 when it was. Shared with the PostgreSQL store.
pub(crate) struct Kept<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) detail: String,
    /// A topic is at most 64 KiB by MQTT; a readable prefix is kept.
    pub(crate) topic: String,
    pub(crate) cut: bool,
}

impl<'a> Kept<'a> {
    pub(crate) fn of(d: &'a DeadLetter, policy: &DeadLetterPolicy) -> Self {
        let cut = d.payload.len() > policy.max_payload_bytes;
        let (payload, detail) = if cut {
            let digest = Sha256::digest(&d.payload);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let detail = format!(
                "{} (payload cut to its first {} of {} bytes; SHA-256 of the whole: {hex})",
                d.detail,
                policy.max_payload_bytes,
                d.payload.len()
            );
            (&d.payload[..policy.max_payload_bytes], detail)
        } else {
            (&d.payload[..], d.detail.clone())
        };
        Self {
            payload,
            detail,
            topic: d.topic.chars().take(512).collect(),
            cut,
        }
    }
}

/// Inserts a dead letter, its payload cut to the policy's prefix; true when it was cut.
pub(super) fn insert(
    tx: &Transaction<'_>,
    d: &DeadLetter,
    policy: &DeadLetterPolicy,
) -> Result<bool, StoreError> {
    let kept = Kept::of(d, policy);
    tx.prepare_cached(
        "INSERT INTO rejects (received_ms, reason, detail, topic, device_id, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.received_at.timestamp_millis(),
        d.reason.as_str(),
        kept.detail,
        kept.topic,
        d.device_id.as_ref().map(DeviceId::as_str),
        kept.payload,
    ])?;
    Ok(kept.cut)
}

/// Deletes what expired or exceeds the budget, at most once a minute.
pub(crate) struct Pruner {
    last: Option<Instant>,
}

impl Pruner {
    pub fn new() -> Self {
        Self { last: None }
    }

    /// True at most once a minute (and the first time): when to prune again.
    pub(crate) fn due(&mut self) -> bool {
        if self
            .last
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
        {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    pub fn prune_if_due(
        &mut self,
        conn: &Connection,
        policy: &DeadLetterPolicy,
        now: DateTime<Utc>,
    ) -> Result<Trimmed, StoreError> {
        if !self.due() {
            return Ok(Trimmed::default());
        }
        prune(conn, policy, now)
    }
}

pub(super) fn prune(
    conn: &Connection,
    policy: &DeadLetterPolicy,
    now: DateTime<Utc>,
) -> Result<Trimmed, StoreError> {
    let expired = conn.execute(
        "DELETE FROM rejects WHERE received_ms < ?1",
        [policy.oldest_kept(now)],
    )?;
    let over_budget = conn.execute(
        "DELETE FROM rejects WHERE id <= (SELECT id FROM rejects ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [policy.max_rows() as i64],
    )?;
    Ok(Trimmed {
        payloads_cut: 0,
        expired,
        over_budget,
    })
}

/// The newest dead letters, optionally of one reason.
pub(super) fn newest(
    conn: &Connection,
    reason: Option<RejectReason>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT received_ms, reason, detail, topic, device_id, payload FROM rejects
         WHERE (?1 IS NULL OR reason = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![reason.map(RejectReason::as_str), limit as i64],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Vec<u8>>(5)?,
            ))
        },
    )?;
    let mut letters = Vec::new();
    for row in rows {
        letters.extend(letter(row?));
    }
    Ok(letters)
}

/// received_ms, reason, detail, topic, device_id, payload.
pub(crate) type LetterRow = (i64, String, String, String, Option<String>, Vec<u8>);

/// A stored row as a dead letter; `None` for a reason this build does not know, which is
/// skipped rather than failing the whole listing.
pub(crate) fn letter(
    (ms, reason, detail, topic, device_id, payload): LetterRow,
) -> Option<DeadLetter> {
    Some(DeadLetter {
        received_at: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
        reason: RejectReason::parse(&reason)?,
        detail,
        topic,
        device_id: device_id.and_then(|d| DeviceId::parse(&d).ok()),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, StoreReader, StoreWriter, Write};

    fn letter(received_at: DateTime<Utc>, payload: Vec<u8>) -> Write {
        Write::DeadLetter(DeadLetter {
            received_at,
            reason: RejectReason::Malformed,
            detail: "not JSON".into(),
            topic: "caravan/v1/dev/d1/pos".into(),
            device_id: None,
            payload,
        })
    }

    #[test]
    fn a_large_payload_is_kept_as_a_prefix_with_its_length_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = store::open(dir.path()).unwrap();
        let committed = writer
            .commit(&[letter(Utc::now(), vec![b'x'; 10_000])])
            .unwrap();
        assert_eq!(committed.trimmed.payloads_cut, 1);
        let kept = reader.dead_letters(None, 10).unwrap();
        assert_eq!(kept[0].payload.len(), 4096);
        assert!(
            kept[0].detail.contains("4096 of 10000 bytes"),
            "{}",
            kept[0].detail
        );
        let digest: String = Sha256::digest(vec![b'x'; 10_000])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(kept[0].detail.contains(&digest));
    }

    #[test]
    fn old_letters_expire_and_the_oldest_go_first_beyond_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = store::open(dir.path()).unwrap();
        let now = Utc::now();
        let mut writes = vec![letter(now - chrono::Duration::days(40), b"old".to_vec())];
        for n in 0..30u8 {
            writes.push(letter(now, vec![b'a' + n % 26]));
        }
        // The writer prunes with its (default) policy as it commits: the 40-day-old is gone.
        let committed = writer.commit(&writes).unwrap();
        assert_eq!(committed.trimmed.expired, 1);
        // A budget of ten rows: (10 * (100 + 512)) bytes.
        let policy = DeadLetterPolicy {
            max_payload_bytes: 100,
            retention: chrono::Duration::days(30),
            max_total_bytes: 10 * 612,
        };
        let conn = Connection::open(dir.path().join("caravan.sqlite")).unwrap();
        let trimmed = prune(&conn, &policy, now).unwrap();
        assert_eq!(trimmed.expired, 0);
        assert_eq!(trimmed.over_budget, 20);
        let kept = reader.dead_letters(None, 100).unwrap();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept[0].payload, vec![b'a' + 29 % 26], "the newest are kept");
    }
}
