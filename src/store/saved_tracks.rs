//! The pipeline's state saved at a clean stop (`saved_tracks`), and whether it still stands
//! for the store.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension as _, Transaction};

use super::{SavedTracks, StoreError};
use crate::telemetry::DeviceId;

/// Replaces the saved tracks with `saved`, marked as following event `events_id` and report
/// batch `batch` (the last ones once this transaction commits).
pub fn replace(
    tx: &Transaction<'_>,
    saved: &SavedTracks,
    events_id: i64,
    batch: i64,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM saved_tracks", [])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO saved_tracks (device_id, body) VALUES (?1, ?2)")?;
    for (id, body) in &saved.tracks {
        insert.execute(params![id.as_str(), body])?;
    }
    tx.execute(
        "INSERT INTO saved_tracks_at (id, engine, events_id, batch, saved_ms)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET engine = excluded.engine,
             events_id = excluded.events_id, batch = excluded.batch, saved_ms = excluded.saved_ms",
        params![
            saved.engine,
            events_id,
            batch,
            chrono::Utc::now().timestamp_millis()
        ],
    )?;
    Ok(())
}

/// The saved tracks, if they were saved with `engine` and nothing was committed after them:
/// every report commit adds a batch and every change of a device's state comes with an event
/// or a report, so the last event and batch tell. Empty otherwise.
pub fn read_current(
    conn: &Connection,
    engine: &str,
) -> Result<HashMap<DeviceId, Vec<u8>>, StoreError> {
    let marked: Option<(String, i64, i64)> = conn
        .query_row(
            "SELECT engine, events_id, batch FROM saved_tracks_at WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((saved_engine, events_id, batch)) = marked else {
        return Ok(HashMap::new());
    };
    let (last_event, last_batch): (i64, i64) = conn.query_row(
        "SELECT (SELECT coalesce(max(id), 0) FROM event_log),
                (SELECT coalesce(max(batch), 0) FROM report_batches)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if saved_engine != engine || events_id != last_event || batch != last_batch {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare("SELECT device_id, body FROM saved_tracks")?;
    let mut rows = stmt.query([])?;
    let mut saved = HashMap::new();
    while let Some(row) = rows.next()? {
        // A row that is not a device id and a blob (an edited store) is skipped: that device
        // is replayed instead.
        let id = row.get_ref(0)?.as_str().ok().map(DeviceId::parse);
        let body = row.get_ref(1)?.as_blob().ok();
        if let (Some(Ok(id)), Some(body)) = (id, body) {
            saved.insert(id, body.to_vec());
        }
    }
    Ok(saved)
}
