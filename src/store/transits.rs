//! Transits in SQLite: one row per transit with its JSON, upserted on every change, and the
//! posts each open transit is expected at next.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::StoreError;
use crate::transit::eta::expectations;
use crate::transit::Transit;

/// The schema version that added `transit_expected`; stores migrated from before it have
/// their expectations filled from the stored transits.
pub const EXPECTED_SINCE: i64 = 5;

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
    expect(tx, t)
}

/// Rewrites the posts where `t` is expected next (none once it has arrived or closed).
fn expect(tx: &Transaction<'_>, t: &Transit) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM transit_expected WHERE transit_id = ?1")?
        .execute([t.id.as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO transit_expected
             (post_id, transit_id, remaining_m, recent_kmh, declared_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in expectations(t) {
        insert.execute(params![
            e.post_id,
            t.id.as_str(),
            e.remaining_m,
            e.recent_kmh,
            t.declared_at.timestamp_millis(),
        ])?;
    }
    Ok(())
}

/// Fills `transit_expected` from the open transits already stored.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn expect_stored(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut stmt = tx.prepare("SELECT body FROM transits WHERE open = 1")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        expect(tx, &parse(&row.get::<_, String>(0)?)?)?;
    }
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

/// Open transits expected next at `post_id`, soonest ETA first (the drive time in whole
/// seconds at the recent speed or `default_kmh`; then newest declared), skipping `skip`.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn expected_at(
    conn: &Connection,
    post_id: &str,
    default_kmh: f64,
    skip: usize,
    limit: usize,
) -> Result<Vec<Transit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.body FROM transit_expected e JOIN transits t ON t.id = e.transit_id
         WHERE e.post_id = ?1
         ORDER BY CAST(e.remaining_m / 1000.0 / COALESCE(e.recent_kmh, ?2) * 3600.0 AS INTEGER),
                  e.declared_ms DESC, e.transit_id
         LIMIT ?3 OFFSET ?4",
    )?;
    let rows = stmt.query_map(
        params![
            post_id,
            default_kmh,
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(skip).unwrap_or(i64::MAX)
        ],
        |row| row.get::<_, String>(0),
    )?;
    rows.map(|body| parse(&body?)).collect()
}
