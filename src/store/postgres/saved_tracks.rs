//! The pipeline's state saved at a clean stop, in PostgreSQL (see
//! [`crate::store::saved_tracks`] for when it stands for the store).

use std::collections::HashMap;

use postgres::GenericClient;

use crate::store::{SavedTracks, StoreError};
use crate::telemetry::DeviceId;

pub(super) fn replace(
    tx: &mut impl GenericClient,
    saved: &SavedTracks,
    events_id: i64,
    batch: i64,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM saved_tracks", &[])?;
    let (ids, bodies): (Vec<&str>, Vec<&[u8]>) = saved
        .tracks
        .iter()
        .map(|(id, body)| (id.as_str(), body.as_slice()))
        .unzip();
    tx.execute(
        "INSERT INTO saved_tracks (device_id, body) SELECT * FROM unnest($1::text[], $2::bytea[])",
        &[&ids, &bodies],
    )?;
    tx.execute(
        "INSERT INTO saved_tracks_at (id, engine, events_id, batch, saved_ms)
         VALUES (1, $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET engine = excluded.engine,
             events_id = excluded.events_id, batch = excluded.batch, saved_ms = excluded.saved_ms",
        &[
            &saved.engine,
            &events_id,
            &batch,
            &chrono::Utc::now().timestamp_millis(),
        ],
    )?;
    Ok(())
}

pub(super) fn read_current(
    c: &mut impl GenericClient,
    engine: &str,
) -> Result<HashMap<DeviceId, Vec<u8>>, StoreError> {
    let Some(marked) = c.query_opt(
        "SELECT engine, events_id, batch FROM saved_tracks_at WHERE id = 1",
        &[],
    )?
    else {
        return Ok(HashMap::new());
    };
    let (saved_engine, events_id, batch): (String, i64, i64) =
        (marked.try_get(0)?, marked.try_get(1)?, marked.try_get(2)?);
    let last = c.query_one(
        "SELECT (SELECT coalesce(max(id), 0) FROM event_log)::int8,
                (SELECT coalesce(max(batch), 0) FROM report_batches)::int8",
        &[],
    )?;
    let (last_event, last_batch): (i64, i64) = (last.try_get(0)?, last.try_get(1)?);
    if saved_engine != engine || events_id != last_event || batch != last_batch {
        return Ok(HashMap::new());
    }
    let mut saved = HashMap::new();
    for row in c.query("SELECT device_id, body FROM saved_tracks", &[])? {
        // A row that is not a device id (an edited store) is skipped: that device is
        // replayed instead.
        let (id, body): (&str, Vec<u8>) = (row.try_get(0)?, row.try_get(1)?);
        if let Ok(id) = DeviceId::parse(id) {
            saved.insert(id, body);
        }
    }
    Ok(saved)
}
