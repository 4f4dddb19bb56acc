//! Devices and their pipeline state in PostgreSQL.

use postgres::{GenericClient, Row};

use super::statements::Statements;
use crate::device::{Device, DeviceState};
use crate::store::sqlite::{to_device, DeviceRow};
use crate::store::{DeviceFilter, StoreError};
use crate::telemetry::DeviceId;

const COLUMNS: &str = "d.device_id, d.carrier, d.plate, d.registered_at, s.state";

fn device_row(row: &Row) -> Result<DeviceRow, postgres::Error> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
    ))
}

pub(super) fn insert(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    d: &Device,
) -> Result<(), StoreError> {
    let insert = statements.get(
        tx,
        "INSERT INTO devices (device_id, carrier, plate, registered_at) VALUES ($1, $2, $3, $4)",
    )?;
    tx.execute(
        &insert,
        &[
            &d.device_id.as_str(),
            &d.carrier,
            &d.plate,
            &d.registered_at.to_rfc3339(),
        ],
    )?;
    Ok(())
}

/// Upserts the states of a commit in one statement, the last state of each device winning
/// (one statement may not update a row twice).
pub(super) fn upsert_states(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    states: &mut Vec<(String, String)>,
) -> Result<(), StoreError> {
    if states.is_empty() {
        return Ok(());
    }
    let mut last = std::collections::HashMap::new();
    for (i, (id, _)) in states.iter().enumerate() {
        last.insert(id.as_str(), i);
    }
    let (ids, bodies): (Vec<&str>, Vec<&str>) = states
        .iter()
        .enumerate()
        .filter(|(i, (id, _))| last.get(id.as_str()) == Some(i))
        .map(|(_, (id, state))| (id.as_str(), state.as_str()))
        .unzip();
    let upsert = statements.get(
        tx,
        "INSERT INTO device_state (device_id, state)
         SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (device_id) DO UPDATE SET state = excluded.state",
    )?;
    tx.execute(&upsert, &[&ids, &bodies])?;
    states.clear();
    Ok(())
}

pub(super) fn one(
    c: &mut impl GenericClient,
    id: &DeviceId,
) -> Result<Option<(Device, DeviceState)>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d
         LEFT JOIN device_state s USING (device_id) WHERE d.device_id = $1"
    );
    c.query_opt(&sql, &[&id.as_str()])?
        .map(|row| to_device(device_row(&row)?))
        .transpose()
}

pub(super) fn list(
    c: &mut impl GenericClient,
    filter: &DeviceFilter,
    after: Option<&DeviceId>,
    limit: usize,
) -> Result<Vec<(Device, DeviceState)>, StoreError> {
    // The state is TEXT (exactly what serde wrote, as in SQLite); the country filter reads
    // it as JSON. `->>` gives NULL where SQLite's json_extract does.
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d
         LEFT JOIN device_state s USING (device_id)
         WHERE d.device_id > $1
           AND ($3::text IS NULL OR d.carrier = $3)
           AND ($4::text IS NULL OR (s.state::jsonb -> 'geo' ->> 'country') = $4)
         ORDER BY d.device_id LIMIT $2"
    );
    let after = after.map_or("", DeviceId::as_str);
    c.query(
        &sql,
        &[
            &after,
            &super::reports::limit_of(limit),
            &filter.carrier,
            &filter.country,
        ],
    )?
    .iter()
    .map(|row| to_device(device_row(row)?))
    .collect()
}
