//! The `rejects` table in PostgreSQL: refused messages kept as dead letters, bounded. What
//! is kept of a letter, when letters expire and how many fit the budget is
//! [`crate::store::dead_letters`]'s; only the SQL is here.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::store::dead_letters::{self as policy, Kept, LetterRow};
use crate::store::{DeadLetter, DeadLetterPolicy, StoreError, Trimmed};
use crate::telemetry::{DeviceId, RejectReason};

/// Inserts a dead letter, its payload cut to the policy's prefix; true when it was cut.
pub(crate) fn insert(
    tx: &mut impl GenericClient,
    d: &DeadLetter,
    policy: &DeadLetterPolicy,
) -> Result<bool, StoreError> {
    let kept = Kept::of(d, policy);
    tx.execute(
        "INSERT INTO rejects (received_ms, reason, detail, topic, device_id, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &d.received_at.timestamp_millis(),
            &d.reason.as_str(),
            &kept.detail,
            &kept.topic,
            &d.device_id.as_ref().map(DeviceId::as_str),
            &kept.payload,
        ],
    )?;
    Ok(kept.cut)
}

/// Deletes what expired or exceeds the budget, at most once a minute.
pub(crate) struct Pruner(policy::Pruner);

impl Pruner {
    pub(crate) fn new() -> Self {
        Self(policy::Pruner::new())
    }

    /// Prunes when a minute has passed since the last time; outside the commit's
    /// transaction, as the SQLite writer does, so a failed prune loses no commit.
    pub(crate) fn prune_if_due(
        &mut self,
        c: &mut impl GenericClient,
        policy: &DeadLetterPolicy,
        now: DateTime<Utc>,
    ) -> Result<Trimmed, StoreError> {
        if !self.0.due() {
            return Ok(Trimmed::default());
        }
        prune(c, policy, now)
    }
}

pub(crate) fn prune(
    c: &mut impl GenericClient,
    policy: &DeadLetterPolicy,
    now: DateTime<Utc>,
) -> Result<Trimmed, StoreError> {
    let expired = c.execute(
        "DELETE FROM rejects WHERE received_ms < $1",
        &[&policy.oldest_kept(now)],
    )?;
    let max_rows = i64::try_from(policy.max_rows()).unwrap_or(i64::MAX);
    let over_budget = c.execute(
        "DELETE FROM rejects
         WHERE id <= (SELECT id FROM rejects ORDER BY id DESC LIMIT 1 OFFSET $1)",
        &[&max_rows],
    )?;
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(Trimmed {
        payloads_cut: 0,
        expired: count(expired),
        over_budget: count(over_budget),
    })
}

/// The newest dead letters, optionally of one reason.
pub(crate) fn newest(
    c: &mut impl GenericClient,
    reason: Option<RejectReason>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT received_ms, reason, detail, topic, device_id, payload FROM rejects
         WHERE ($1::text IS NULL OR reason = $1) ORDER BY id DESC LIMIT $2",
        &[&reason.map(RejectReason::as_str), &limit],
    )?;
    let mut letters = Vec::new();
    for r in &rows {
        let row: LetterRow = (
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        );
        letters.extend(policy::letter(row));
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::postgres::test_db::{self, TestDb};
    use crate::store::{StoreReader, StoreWriter, Write};

    fn letter(received_at: DateTime<Utc>, payload: Vec<u8>) -> DeadLetter {
        DeadLetter {
            received_at,
            reason: RejectReason::Malformed,
            detail: "not JSON".into(),
            topic: "caravan/v1/dev/d1/pos".into(),
            device_id: None,
            payload,
        }
    }

    fn database(test: &str) -> Option<(TestDb, Client)> {
        let db = test_db::fresh(test)?;
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        crate::store::postgres::migrate::migrate(&mut client).unwrap();
        Some((db, client))
    }

    #[test]
    fn a_large_payload_is_kept_as_a_prefix_with_its_length_and_hash() {
        let Some((_db, mut client)) = database("a_large_payload_is_kept_as_a_prefix") else {
            return;
        };
        let mut tx = client.transaction().unwrap();
        let policy = DeadLetterPolicy::default();
        let big = letter(Utc::now(), vec![b'x'; 10_000]);
        assert!(insert(&mut tx, &big, &policy).unwrap());
        assert!(!insert(&mut tx, &letter(Utc::now(), b"{".to_vec()), &policy).unwrap());
        tx.commit().unwrap();
        let kept = newest(&mut client, None, 10).unwrap();
        assert_eq!(kept[1].payload.len(), 4096);
        assert!(
            kept[1].detail.contains("4096 of 10000 bytes"),
            "{}",
            kept[1].detail
        );
        let digest: String = Sha256::digest(vec![b'x'; 10_000])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(kept[1].detail.contains(&digest));
        assert_eq!(kept[0].payload, b"{");
        assert_eq!(kept[0].detail, "not JSON");
    }

    #[test]
    fn old_letters_expire_and_the_oldest_go_first_beyond_the_budget() {
        let Some((_db, mut client)) = database("old_letters_expire") else {
            return;
        };
        let now = Utc::now();
        let mut tx = client.transaction().unwrap();
        let default = DeadLetterPolicy::default();
        insert(
            &mut tx,
            &letter(now - chrono::Duration::days(40), b"old".to_vec()),
            &default,
        )
        .unwrap();
        for n in 0..30u8 {
            insert(&mut tx, &letter(now, vec![b'a' + n % 26]), &default).unwrap();
        }
        tx.commit().unwrap();
        // The first prune is due at once and removes the 40-day-old; the next waits a minute.
        let mut pruner = Pruner::new();
        let first = pruner.prune_if_due(&mut client, &default, now).unwrap();
        assert_eq!((first.expired, first.over_budget), (1, 0));
        // A budget of ten rows: (10 * (100 + 512)) bytes.
        let policy = DeadLetterPolicy {
            max_payload_bytes: 100,
            retention: chrono::Duration::days(30),
            max_total_bytes: 10 * 612,
        };
        let waiting = pruner.prune_if_due(&mut client, &policy, now).unwrap();
        assert_eq!(waiting, Trimmed::default());
        let trimmed = prune(&mut client, &policy, now).unwrap();
        assert_eq!(trimmed.expired, 0);
        assert_eq!(trimmed.over_budget, 20);
        let kept = newest(&mut client, None, 100).unwrap();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept[0].payload, vec![b'a' + 29 % 26], "the newest are kept");
    }

    /// The same letters through the SQLite store read back the same, reason filter included.
    #[test]
    fn sqlite_and_postgresql_keep_the_same_letters() {
        let Some((_db, mut client)) = database("dead_letters_sqlite_and_postgresql") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = crate::store::open(dir.path()).unwrap();
        let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let mut letters = vec![
            letter(at, vec![0xff; 5000]),
            DeadLetter {
                reason: RejectReason::UnknownDevice,
                device_id: Some(DeviceId::parse("truck-3").unwrap()),
                topic: "t".repeat(600),
                ..letter(at, b"{}".to_vec())
            },
        ];
        letters.push(letter(at, Vec::new()));
        let writes: Vec<_> = letters.iter().cloned().map(Write::DeadLetter).collect();
        let committed = writer.commit(&writes).unwrap();
        let mut tx = client.transaction().unwrap();
        let mut cut = 0;
        for d in &letters {
            cut += usize::from(insert(&mut tx, d, &DeadLetterPolicy::default()).unwrap());
        }
        tx.commit().unwrap();
        assert_eq!(cut, committed.trimmed.payloads_cut);
        let same = |a: &[DeadLetter], b: &[DeadLetter]| {
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(b) {
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
        };
        same(
            &newest(&mut client, None, 10).unwrap(),
            &reader.dead_letters(None, 10).unwrap(),
        );
        let unknown = Some(RejectReason::UnknownDevice);
        let found = newest(&mut client, unknown, 10).unwrap();
        assert_eq!(found.len(), 1);
        same(&found, &reader.dead_letters(unknown, 10).unwrap());
    }
}
