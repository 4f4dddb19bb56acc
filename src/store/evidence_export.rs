//! What an evidence bundle is cut from: a transit's records and its devices' reports exactly
//! as stored, the batches those reports were committed in, and the hashes of both chains up
//! to a checkpoint's heads.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::evidence::{stored_report, ChainHead, StoredReport, REPORT_COLUMNS};
use super::StoreError;
use crate::evidence::merkle::{self, from_hex, Digest, Frontier};

/// The leaf of a chain hash (event record or report batch) in the checkpoint's trees.
pub fn chain_leaf(hash_hex: &str) -> Digest {
    match from_hex(hash_hex) {
        Some(bytes) => merkle::leaf(&bytes),
        None => merkle::leaf(hash_hex.as_bytes()),
    }
}

/// The Merkle trees of both chains as far as they have been read: a checkpoint writer keeps
/// them between checkpoints and reads only what was appended since, so that a checkpoint costs
/// the records since the last one rather than the whole store.
#[derive(Clone, Debug, Default)]
pub struct ChainFrontiers {
    pub events: Frontier,
    pub batches: Frontier,
}

impl ChainFrontiers {
    /// The roots over the leaves read so far (hex): events, then batches.
    pub fn roots(&self) -> (String, String) {
        (
            merkle::to_hex(&self.events.root()),
            merkle::to_hex(&self.batches.root()),
        )
    }
}

/// Extends `frontiers` with the event hashes up to `head.events` and the batch hashes up to
/// `head.batches`, as stored now. A frontier that holds more leaves than the store now has
/// (the store was cut back) is rebuilt from the start, so the roots always describe the store.
pub fn extend_frontiers(
    conn: &Connection,
    frontiers: &mut ChainFrontiers,
    head: &ChainHead,
) -> Result<(), StoreError> {
    for (sql, frontier, upto) in [
        (
            "SELECT hash FROM event_log WHERE id > ?1 AND id <= ?2 ORDER BY id",
            &mut frontiers.events,
            head.events,
        ),
        (
            "SELECT hash FROM report_batches WHERE batch > ?1 AND batch <= ?2 ORDER BY batch",
            &mut frontiers.batches,
            head.batches,
        ),
    ] {
        let upto = u64::try_from(upto).unwrap_or(0);
        if frontier.leaves() > upto {
            *frontier = Frontier::default();
        }
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![frontier.leaves() as i64, upto as i64])?;
        while let Some(r) = rows.next()? {
            frontier.push(chain_leaf(&r.get::<_, String>(0)?));
        }
    }
    Ok(())
}

/// The Merkle roots over the event hashes 1..=head.events and the batch hashes
/// 1..=head.batches, as stored now (hex).
pub fn chain_roots(conn: &Connection, head: &ChainHead) -> Result<(String, String), StoreError> {
    let mut frontiers = ChainFrontiers::default();
    extend_frontiers(conn, &mut frontiers, head)?;
    Ok(frontiers.roots())
}

/// An event-log record exactly as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    pub id: i64,
    pub kind: String,
    pub device_id: Option<String>,
    pub transit_id: Option<String>,
    pub occurred_ms: i64,
    pub detected_ms: i64,
    pub late: bool,
    pub actor: Option<String>,
    /// The JSON text the hash covers.
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A report exactly as stored, with its batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawReport {
    pub device_id: String,
    pub seq: Option<i64>,
    pub kind: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub body: String,
    pub batch: i64,
}

impl TryFrom<StoredReport> for RawReport {
    type Error = StoreError;

    /// An export reads only reports committed in a batch: one without is refused.
    fn try_from(r: StoredReport) -> Result<Self, StoreError> {
        let Some(batch) = r.batch else {
            return Err(StoreError::Invalid(format!(
                "the report of device {} at {} ms has no batch",
                r.device_id, r.t_ms
            )));
        };
        Ok(RawReport {
            device_id: r.device_id,
            seq: r.seq,
            kind: r.kind,
            t_ms: r.t_ms,
            received_ms: r.received_ms,
            lat: r.lat,
            lon: r.lon,
            body: r.body,
            batch,
        })
    }
}

/// A report batch's chained row and its sorted leaves.
#[derive(Clone, Debug, PartialEq)]
pub struct RawBatch {
    pub batch: i64,
    pub reports: i64,
    pub root: String,
    pub events_id: i64,
    pub events_head: String,
    pub committed_ms: i64,
    pub leaves: Vec<Digest>,
    pub prev_hash: String,
    pub hash: String,
}

/// Everything a bundle of one transit is cut from.
#[derive(Clone, Debug, Default)]
pub struct ExportData {
    pub events: Vec<RawEvent>,
    pub reports: Vec<RawReport>,
    pub batches: Vec<RawBatch>,
    /// Leaves of the checkpoint's trees: every event hash and every batch hash up to it.
    pub event_leaves: Vec<Digest>,
    pub batch_leaves: Vec<Digest>,
}

/// Most reports one bundle carries.
pub const MAX_BUNDLE_REPORTS: usize = 500_000;

/// Reads a transit's records up to `head`, and the reports of `devices` between `from_ms`
/// and `to_ms` committed in batches up to `head`.
///
/// # Errors
/// Database errors, or more than [`MAX_BUNDLE_REPORTS`] reports.
pub fn export(
    conn: &Connection,
    transit_id: &str,
    devices: &[String],
    (from_ms, to_ms): (i64, i64),
    head: &ChainHead,
) -> Result<ExportData, StoreError> {
    let mut out = ExportData::default();
    let mut stmt = conn.prepare(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body,
                prev_hash, hash
         FROM event_log WHERE transit_id = ?1 AND id <= ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![transit_id, head.events], |r| {
        Ok(RawEvent {
            id: r.get(0)?,
            kind: r.get(1)?,
            device_id: r.get(2)?,
            transit_id: r.get(3)?,
            occurred_ms: r.get(4)?,
            detected_ms: r.get(5)?,
            late: r.get(6)?,
            actor: r.get(7)?,
            body: r.get(8)?,
            prev_hash: r.get(9)?,
            hash: r.get(10)?,
        })
    })?;
    out.events = rows.collect::<Result<_, _>>()?;
    for device in devices {
        for table in ["reports", "reports_recent"] {
            let mut stmt = conn.prepare(&format!(
                "SELECT {REPORT_COLUMNS} FROM {table}
                 WHERE device_id = ?1 AND t_ms >= ?2 AND t_ms <= ?3 AND batch <= ?4
                 ORDER BY t_ms, seq"
            ))?;
            let rows =
                stmt.query_map(params![device, from_ms, to_ms, head.batches], stored_report)?;
            for row in rows {
                out.reports.push(row?.try_into()?);
                if out.reports.len() > MAX_BUNDLE_REPORTS {
                    return Err(StoreError::Corrupt(serde::de::Error::custom(format!(
                        "the transit has more than {MAX_BUNDLE_REPORTS} reports; export a shorter period"
                    ))));
                }
            }
        }
    }
    let mut wanted: Vec<i64> = out.reports.iter().map(|r| r.batch).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut stmt = conn.prepare(
        "SELECT batch, reports, root, events_id, events_head, committed_ms, leaves, prev_hash,
                hash FROM report_batches WHERE batch = ?1",
    )?;
    for batch in wanted {
        let row = stmt.query_row([batch], |r| {
            let leaves: Vec<u8> = r.get(6)?;
            Ok(RawBatch {
                batch: r.get(0)?,
                reports: r.get(1)?,
                root: r.get(2)?,
                events_id: r.get(3)?,
                events_head: r.get(4)?,
                committed_ms: r.get(5)?,
                leaves: leaves
                    .chunks_exact(32)
                    .filter_map(|c| c.try_into().ok())
                    .collect(),
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        });
        match row {
            Ok(b) => out.batches.push(b),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (sql, upto, into) in [
        (
            "SELECT hash FROM event_log WHERE id <= ?1 ORDER BY id",
            head.events,
            &mut out.event_leaves,
        ),
        (
            "SELECT hash FROM report_batches WHERE batch <= ?1 ORDER BY batch",
            head.batches,
            &mut out.batch_leaves,
        ),
    ] {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([upto])?;
        while let Some(r) = rows.next()? {
            into.push(chain_leaf(&r.get::<_, String>(0)?));
        }
    }
    Ok(out)
}
