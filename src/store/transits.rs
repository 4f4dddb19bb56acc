//! Transits in SQLite: one row per transit with its JSON, upserted on every change.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::StoreError;
use crate::transit::Transit;

/// Stores the transit as it now stands.
///
/// # Errors
/// Database errors, or a transit that does not serialise.
pub fn upsert(tx: &Transaction<'_>, t: &Transit) -> Result<(), StoreError> {
    let body = serde_json::to_string(t)?;
    let stage = serde_json::to_value(t.stage)?;
    tx.prepare_cached(
        "INSERT INTO transits (id, reference, issuing_country, carrier, stage, status, open,
             next_checkpoint, deadline_ms, declared_ms, updated_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET stage = excluded.stage, status = excluded.status,
             open = excluded.open, next_checkpoint = excluded.next_checkpoint,
             updated_ms = excluded.updated_ms, body = excluded.body",
    )?
    .execute(params![
        t.id.as_str(),
        t.reference,
        t.issuing_country.as_str(),
        t.carrier,
        stage.as_str().unwrap_or(""),
        t.status().as_str(),
        t.is_open(),
        t.next_checkpoint(),
        t.deadline.timestamp_millis(),
        t.declared_at.timestamp_millis(),
        chrono::Utc::now().timestamp_millis(),
        body,
    ])?;
    Ok(())
}

fn parse(body: &str) -> Result<Transit, StoreError> {
    Ok(serde_json::from_str(body)?)
}

/// # Errors
/// Database errors or a corrupt row.
pub fn get(conn: &Connection, id: &str) -> Result<Option<Transit>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM transits WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    body.as_deref().map(parse).transpose()
}

/// Transits, newest declared first; only open ones when `open_only`.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn list(conn: &Connection, open_only: bool, limit: usize) -> Result<Vec<Transit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM transits WHERE (?1 = 0 OR open = 1)
         ORDER BY declared_ms DESC, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![open_only, limit as i64], |row| {
        row.get::<_, String>(0)
    })?;
    rows.map(|body| parse(&body?)).collect()
}
