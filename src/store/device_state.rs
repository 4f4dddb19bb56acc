//! Each device's latest state (`device_state`), written at most about once a second per device
//! under load.
//!
//! A group commit holds a hundred or more reports, mostly of different devices, whose states
//! lie on different pages of the table: writing every state in every commit added about one
//! 4 KiB page to the write-ahead log per report, a fifth of Caravan's CPU under load. A state
//! that changed only what the reports themselves record ([`Write::DeviceProgress`]) therefore
//! waits in [`Pending`] and is written with the next fold of the report tail, in the fold's
//! transaction, once for all the commits since the last fold. A state that changed anything
//! else (a zone, the country, an outstanding signal loss, an event) is written in its own
//! commit ([`Write::DeviceState`]).
//!
//! So the stored state plus the device's reports still in the tail (`reports_recent`) is always
//! the device's current state: readers apply those reports to the stored state ([`overlay`]),
//! and a start after a crash, which finds the tail as the crash left it and pending states
//! lost, applies them before folding the tail ([`rebuild_from_tail`]). Applying a report the
//! state already holds changes nothing ([`DeviceState::apply`] keeps the newest of each
//! field), so the order and any overlap do not matter. What the reports cannot give back is
//! the corridor progress of the geofence part, which then lags by at most the tail (about a
//! second) and is current again with the device's next report; and `last_seen_at` comes from
//! a report in the tail to the millisecond, as reports store the time they were received.
//!
//! [`Write::DeviceProgress`]: super::Write::DeviceProgress
//! [`Write::DeviceState`]: super::Write::DeviceState

use std::collections::HashMap;

use chrono::DateTime;
use rusqlite::{params, Connection, OptionalExtension, Statement};

use super::reports::utf8;
use super::StoreError;
use crate::device::DeviceState;
use crate::telemetry::{DeviceId, Report};

pub const UPSERT: &str = "INSERT INTO device_state (device_id, state) VALUES (?1, ?2)
     ON CONFLICT(device_id) DO UPDATE SET state = excluded.state";

/// Writes one state with `upsert` (a statement of [`UPSERT`]); `json` is a buffer kept from one
/// state to the next.
pub fn write(
    upsert: &mut Statement<'_>,
    id: &DeviceId,
    state: &DeviceState,
    json: &mut Vec<u8>,
) -> Result<(), StoreError> {
    json.clear();
    serde_json::to_writer(&mut *json, state)?;
    upsert.execute(params![id.as_str(), utf8(json)?])?;
    Ok(())
}

/// States committed as progress and not yet written: the newest of each device.
#[derive(Default)]
pub struct Pending {
    states: HashMap<DeviceId, Box<DeviceState>>,
}

impl Pending {
    /// Takes `state` as the device's newest, once the commit that carried it succeeded.
    pub fn keep(&mut self, id: &DeviceId, state: &DeviceState) {
        match self.states.get_mut(id) {
            Some(slot) => state.clone_into(slot),
            None => {
                self.states.insert(id.clone(), Box::new(state.clone()));
            }
        }
    }

    /// Drops the device's waiting state: a newer one was written.
    pub fn forget(&mut self, id: &DeviceId) {
        self.states.remove(id);
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Writes every waiting state in `conn`'s open transaction; [`Pending::clear`] once it
    /// commits.
    pub fn write_all(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut upsert = conn.prepare_cached(UPSERT)?;
        let mut json = Vec::with_capacity(1024);
        for (id, state) in &self.states {
            write(&mut upsert, id, state, &mut json)?;
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.states.clear();
    }
}

/// The tail's reports of the devices `wanted` says yes to, by device, in commit order.
fn tail_reports(
    conn: &Connection,
    range: Option<(&str, &str)>,
    wanted: impl Fn(&str) -> bool,
) -> Result<HashMap<String, Vec<Report>>, StoreError> {
    let (first, last) = range.unwrap_or(("", "\u{10FFFF}"));
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, body, received_ms FROM reports_recent
         WHERE device_id >= ?1 AND device_id <= ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![first, last])?;
    let mut reports: HashMap<String, Vec<Report>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        if !wanted(&id) {
            continue;
        }
        let device_id = DeviceId::parse(&id)
            .map_err(|e| StoreError::Invalid(format!("a report's device {id}: {e}")))?;
        let body: String = row.get(1)?;
        let received_ms: i64 = row.get(2)?;
        let report = Report {
            device_id,
            received_at: DateTime::from_timestamp_millis(received_ms).unwrap_or_default(),
            body: serde_json::from_str(&body)?,
        };
        reports.entry(id).or_default().push(report);
    }
    Ok(reports)
}

/// Applies the reports still in the tail to the stored states of `devices`, which are sorted
/// by id: what a reader sees is then the device's state as of the last commit. `conn` must be
/// in a read transaction that also read `devices`, so a fold between the two reads cannot
/// write a state and empty the tail unseen.
pub fn overlay<D>(
    conn: &Connection,
    devices: &mut [(D, DeviceState)],
    id_of: impl Fn(&D) -> &DeviceId,
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (devices.first(), devices.last()) else {
        return Ok(());
    };
    let range = (id_of(&first.0).as_str(), id_of(&last.0).as_str());
    let ids: std::collections::HashSet<&str> =
        devices.iter().map(|(d, _)| id_of(d).as_str()).collect();
    let mut reports = tail_reports(conn, Some(range), |id| ids.contains(id))?;
    drop(ids);
    for (device, state) in devices.iter_mut() {
        for report in reports.remove(id_of(device).as_str()).unwrap_or_default() {
            state.apply(&report);
        }
    }
    Ok(())
}

/// Brings the stored state of every device in the tail up to its reports, in `conn`'s open
/// transaction, before the tail is folded at start-up: after a crash the states that waited
/// for a fold are lost, and the tail holds the reports they were built from.
pub fn rebuild_from_tail(conn: &Connection) -> Result<usize, StoreError> {
    let reports = tail_reports(conn, None, |_| true)?;
    let mut read = conn.prepare_cached(
        "SELECT d.device_id, s.state FROM devices d
         LEFT JOIN device_state s USING (device_id) WHERE d.device_id = ?1",
    )?;
    let mut upsert = conn.prepare_cached(UPSERT)?;
    let mut json = Vec::with_capacity(1024);
    let mut rebuilt = 0;
    for (id, reports) in reports {
        // A report of a device no longer registered has no state to keep; the fold drops it.
        let Some((_, stored)) = read
            .query_row([&id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .optional()?
        else {
            continue;
        };
        let mut state: DeviceState = match stored {
            Some(text) => serde_json::from_str(&text)?,
            None => DeviceState::default(),
        };
        for report in &reports {
            state.apply(report);
        }
        let Some(first) = reports.first() else {
            continue;
        };
        write(&mut upsert, &first.device_id, &state, &mut json)?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}
