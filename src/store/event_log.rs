//! The hash-chained domain event log.
//!
//! Each row's hash is SHA-256 over the previous row's hash and this row's stored text, so
//! editing, removing or reordering any row breaks every hash from there on, and
//! [`verify_chain`] names the first row that no longer fits.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::telemetry::DeviceId;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A fact to append: a geofence event, an alert, a transit step, an officer's action.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    pub kind: String,
    pub device_id: Option<DeviceId>,
    pub transit_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    /// Detected after later facts of the same device had already been evaluated.
    pub late: bool,
    /// Who caused it: a principal for officer actions, `None` for what devices reported.
    pub actor: Option<String>,
    pub body: serde_json::Value,
}

/// A row of the log as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub device_id: Option<String>,
    pub transit_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub late: bool,
    pub actor: Option<String>,
    pub body: serde_json::Value,
    pub hash: String,
}

/// Which events to read: for a device or a transit (or all), after a row id, oldest first.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub device_id: Option<DeviceId>,
    pub transit_id: Option<String>,
    pub after: Option<i64>,
    pub limit: usize,
}

/// The text of a row exactly as stored, which is what the hash covers. Shared with the
/// PostgreSQL store, so both hash the same bytes.
pub(crate) struct Row<'a> {
    pub(crate) kind: &'a str,
    pub(crate) device_id: Option<&'a str>,
    pub(crate) transit_id: Option<&'a str>,
    pub(crate) occurred_ms: i64,
    pub(crate) detected_ms: i64,
    pub(crate) late: bool,
    pub(crate) actor: Option<&'a str>,
    pub(crate) body: &'a str,
}

impl<'a> Row<'a> {
    /// The row `event` is stored as, `body` being its JSON text ([`body_text`]).
    pub(crate) fn of(event: &'a LoggedEvent, body: &'a str) -> Self {
        Row {
            kind: &event.kind,
            device_id: event.device_id.as_ref().map(DeviceId::as_str),
            transit_id: event.transit_id.as_deref(),
            occurred_ms: event.occurred_at.timestamp_millis(),
            detected_ms: event.detected_at.timestamp_millis(),
            late: event.late,
            actor: event.actor.as_deref(),
            body,
        }
    }
}

/// The JSON text an event's body is stored (and hashed) as.
pub(crate) fn body_text(event: &LoggedEvent) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&event.body)?)
}

pub(crate) fn hash(prev: &str, row: &Row<'_>) -> String {
    let mut h = Sha256::new();
    // A unit separator between fields, so no two different rows hash the same text.
    for part in [
        prev,
        row.kind,
        row.device_id.unwrap_or(""),
        row.transit_id.unwrap_or(""),
        &row.occurred_ms.to_string(),
        &row.detected_ms.to_string(),
        if row.late { "1" } else { "0" },
        row.actor.unwrap_or(""),
        row.body,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    format!("{:x}", h.finalize())
}

/// The hash of a record as exported, recomputed from its stored text and its previous hash.
pub fn record_hash(e: &super::evidence_export::RawEvent) -> String {
    hash(
        &e.prev_hash,
        &Row {
            kind: &e.kind,
            device_id: e.device_id.as_deref(),
            transit_id: e.transit_id.as_deref(),
            occurred_ms: e.occurred_ms,
            detected_ms: e.detected_ms,
            late: e.late,
            actor: e.actor.as_deref(),
            body: &e.body,
        },
    )
}

/// The newest hash, to continue the chain from.
pub fn head(conn: &Connection) -> Result<String, StoreError> {
    let mut stmt = conn.prepare("SELECT hash FROM event_log ORDER BY id DESC LIMIT 1")?;
    let mut rows = stmt.query([])?;
    Ok(match rows.next()? {
        Some(row) => row.get(0)?,
        None => GENESIS.to_owned(),
    })
}

/// Appends `event` after `chain`, moves `chain` to the new row's hash, and returns its id.
pub fn append(
    tx: &Transaction<'_>,
    event: &LoggedEvent,
    chain: &mut String,
) -> Result<i64, StoreError> {
    let body = body_text(event)?;
    let row = Row::of(event, &body);
    let new = hash(chain, &row);
    tx.prepare_cached(
        "INSERT INTO event_log (kind, device_id, transit_id, occurred_ms, detected_ms, late,
                                actor, body, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.kind,
        row.device_id,
        row.transit_id,
        row.occurred_ms,
        row.detected_ms,
        row.late,
        row.actor,
        row.body,
        chain.as_str(),
        new,
    ])?;
    *chain = new;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Reads events matching `query`, oldest first.
pub fn read(conn: &Connection, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body, hash
         FROM event_log
         WHERE (?1 IS NULL OR device_id = ?1) AND (?2 IS NULL OR transit_id = ?2) AND id > ?3
         ORDER BY id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            query.device_id.as_ref().map(DeviceId::as_str),
            query.transit_id,
            query.after.unwrap_or(0),
            query.limit as i64,
        ],
        |r| {
            Ok((
                StoredEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    device_id: r.get(2)?,
                    transit_id: r.get(3)?,
                    occurred_at: time(r.get(4)?),
                    detected_at: time(r.get(5)?),
                    late: r.get(6)?,
                    actor: r.get(7)?,
                    body: serde_json::Value::Null,
                    hash: r.get(9)?,
                },
                r.get::<_, String>(8)?,
            ))
        },
    )?;
    rows.map(|row| {
        let (mut event, body) = row?;
        event.body = serde_json::from_str(&body)?;
        Ok(event)
    })
    .collect()
}

/// The result of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub rows: u64,
    /// The first row that does not fit the chain, and why.
    pub first_broken: Option<(i64, String)>,
}

/// Walks the whole log and checks every link.
///
/// # Errors
/// Database errors only; a broken chain is a report, not an error.
pub fn verify_chain(conn: &Connection) -> Result<ChainReport, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body,
                prev_hash, hash
         FROM event_log ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut walk = ChainWalk::default();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let (kind, device_id, transit_id): (String, Option<String>, Option<String>) =
            (r.get(1)?, r.get(2)?, r.get(3)?);
        let (actor, body, prev, stored): (Option<String>, String, String, String) =
            (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?);
        let row = Row {
            kind: &kind,
            device_id: device_id.as_deref(),
            transit_id: transit_id.as_deref(),
            occurred_ms: r.get(4)?,
            detected_ms: r.get(5)?,
            late: r.get(6)?,
            actor: actor.as_deref(),
            body: &body,
        };
        if let Some(report) = walk.check(id, &prev, &row, stored) {
            return Ok(report);
        }
    }
    Ok(walk.finish())
}

/// A walk along the chain, row by row in id order, whichever database the rows come from.
pub(crate) struct ChainWalk {
    expected_prev: String,
    rows: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            expected_prev: GENESIS.to_owned(),
            rows: 0,
        }
    }
}

impl ChainWalk {
    /// Checks the next row; the report when it is the first that does not fit.
    pub(crate) fn check(
        &mut self,
        id: i64,
        prev: &str,
        row: &Row<'_>,
        stored: String,
    ) -> Option<ChainReport> {
        self.rows += 1;
        let broken = if prev != self.expected_prev {
            Some("its previous-hash does not match the row before it (a row was removed or inserted)")
        } else if hash(prev, row) != stored {
            Some("its content does not match its hash (the row was edited)")
        } else {
            None
        };
        if let Some(why) = broken {
            return Some(ChainReport {
                rows: self.rows,
                first_broken: Some((id, why.to_owned())),
            });
        }
        self.expected_prev = stored;
        None
    }

    /// The report of a walk that found every row in place.
    pub(crate) fn finish(self) -> ChainReport {
        ChainReport {
            rows: self.rows,
            first_broken: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, StoreReader, StoreWriter, Write};

    fn event(n: i64) -> Write {
        let t = DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap();
        Write::Event(LoggedEvent {
            kind: "seal_alarm".into(),
            device_id: None,
            transit_id: Some("KG-2026-1".into()),
            occurred_at: t,
            detected_at: t,
            late: n % 2 == 0,
            actor: None,
            body: serde_json::json!({"n": n}),
        })
    }

    fn chain_of(n: i64) -> (tempfile::TempDir, crate::store::SqliteReader) {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = open(dir.path()).unwrap();
        // Two commits, so the chain continues across transactions.
        let first: Vec<_> = (1..=n / 2).map(event).collect();
        let second: Vec<_> = (n / 2 + 1..=n).map(event).collect();
        writer.commit(&first).unwrap();
        writer.commit(&second).unwrap();
        (dir, reader)
    }

    #[test]
    fn an_untouched_log_verifies() {
        let (_dir, reader) = chain_of(6);
        let report = reader.verify_event_log().unwrap();
        assert_eq!(
            report,
            ChainReport {
                rows: 6,
                first_broken: None
            }
        );
    }

    #[test]
    fn a_chain_continues_after_reopening_the_store() {
        let (dir, _) = chain_of(4);
        let (mut writer, reader) = open(dir.path()).unwrap();
        writer.commit(&[event(5)]).unwrap();
        assert_eq!(reader.verify_event_log().unwrap().first_broken, None);
    }

    #[test]
    fn a_deleted_record_is_found_at_the_next_one() {
        let (dir, reader) = chain_of(6);
        let db = Connection::open(dir.path().join("caravan.sqlite")).unwrap();
        db.execute_batch("DROP TRIGGER event_log_no_delete; DELETE FROM event_log WHERE id = 3;")
            .unwrap();
        let report = reader.verify_event_log().unwrap();
        assert_eq!(report.first_broken.map(|(id, _)| id), Some(4));
    }

    #[test]
    fn the_database_refuses_edits_to_the_log() {
        let (dir, _reader) = chain_of(2);
        let db = Connection::open(dir.path().join("caravan.sqlite")).unwrap();
        let err = db
            .execute("UPDATE event_log SET late = 1 WHERE id = 1", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
