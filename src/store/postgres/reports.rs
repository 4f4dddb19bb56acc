//! Reports in PostgreSQL: inserted straight into `reports`, a commit's reports in one
//! statement.
//!
//! SQLite appends to an unindexed tail and folds it into the indexed table once a second,
//! because each indexed insert there rewrote a whole page per report. PostgreSQL's heap is
//! appended to and its B-tree takes an entry without rewriting the page to disk at each
//! commit (the WAL carries the change), so the tail would only add a second write of every
//! report. Inserting directly also lets a commit count its own duplicates at once: a
//! redelivered report already stored is in `Committed::duplicates` of the commit that
//! brought it, where SQLite counts it at the next fold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::statements::Statements;
use crate::evidence::merkle::Digest;
use crate::store::evidence::report_leaf;
use crate::store::reports::{fix_of, report_of, row, seqs_in_window, window_reads};
use crate::store::StoreError;
use crate::telemetry::{DeviceId, Fix, Report};

/// A commit's reports in column arrays, sent as one `INSERT ... SELECT FROM unnest(...)`:
/// a round trip per report would cost more than the insert.
#[derive(Default)]
pub(super) struct Pending {
    device_id: Vec<String>,
    seq: Vec<Option<i64>>,
    kind: Vec<String>,
    t_ms: Vec<i64>,
    received_ms: Vec<i64>,
    lat: Vec<Option<f64>>,
    lon: Vec<Option<f64>>,
    body: Vec<String>,
}

impl Pending {
    /// Adds a report; returns its leaf. `json` is a buffer kept from one report to the next.
    pub(super) fn push(
        &mut self,
        report: &Report,
        json: &mut Vec<u8>,
    ) -> Result<Digest, StoreError> {
        let row = row(report, json)?;
        self.device_id.push(row.device_id.to_owned());
        self.seq.push(row.seq);
        self.kind.push(row.kind.to_owned());
        self.t_ms.push(row.t_ms);
        self.received_ms.push(row.received_ms);
        self.lat.push(row.lat);
        self.lon.push(row.lon);
        self.body.push(row.body.to_owned());
        Ok(report_leaf(&row))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.device_id.is_empty()
    }

    /// Inserts the reports in `batch` and empties the arrays; returns how many were already
    /// stored. Each of those is kept in `reports_redelivered` (as SQLite's fold keeps it), so
    /// the batch it came in again stays complete, unless the same report is already stored
    /// in this very batch.
    pub(super) fn flush(
        &mut self,
        tx: &mut impl GenericClient,
        statements: &mut Statements,
        batch: i64,
    ) -> Result<usize, StoreError> {
        if self.is_empty() {
            return Ok(0);
        }
        let insert = statements.get(
            tx,
            "INSERT INTO reports (device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch)
             SELECT d, s, k, t, r, la, lo, b, $9
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[],
                         $6::float8[], $7::float8[], $8::text[]) AS u(d, s, k, t, r, la, lo, b)
             ON CONFLICT (device_id, t_ms, seq) DO NOTHING
             RETURNING device_id, t_ms, seq",
        )?;
        let inserted = tx.query(
            &insert,
            &[
                &self.device_id,
                &self.seq,
                &self.kind,
                &self.t_ms,
                &self.received_ms,
                &self.lat,
                &self.lon,
                &self.body,
                &batch,
            ],
        )?;
        let mut stored: HashMap<(String, i64, Option<i64>), usize> = HashMap::new();
        for row in &inserted {
            *stored
                .entry((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
                .or_default() += 1;
        }
        let mut duplicates = 0;
        for i in 0..self.device_id.len() {
            let key = (self.device_id[i].clone(), self.t_ms[i], self.seq[i]);
            match stored.get_mut(&key) {
                Some(n) if *n > 0 => *n -= 1,
                _ => {
                    duplicates += 1;
                    self.redelivered(tx, statements, i, batch)?;
                }
            }
        }
        *self = Self::default();
        Ok(duplicates)
    }

    fn redelivered(
        &self,
        tx: &mut impl GenericClient,
        statements: &mut Statements,
        i: usize,
        batch: i64,
    ) -> Result<(), StoreError> {
        let insert = statements.get(
            tx,
            "INSERT INTO reports_redelivered
                 (device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE NOT EXISTS (SELECT 1 FROM reports p
                 WHERE p.device_id = $1 AND p.t_ms = $4
                   AND p.seq IS NOT DISTINCT FROM $2 AND p.batch IS NOT DISTINCT FROM $9)",
        )?;
        tx.execute(
            &insert,
            &[
                &self.device_id[i],
                &self.seq[i],
                &self.kind[i],
                &self.t_ms[i],
                &self.received_ms[i],
                &self.lat[i],
                &self.lon[i],
                &self.body[i],
                &batch,
            ],
        )?;
        Ok(())
    }
}

/// Marks where this commit's reports end, as SQLite marks where a fold ends: the verifier
/// reads each batch's reports as one range of ids.
pub(super) fn mark_fold(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    batch: i64,
) -> Result<(), StoreError> {
    let mark = statements.get(
        tx,
        "INSERT INTO report_folds (last_row, last_batch)
         SELECT coalesce(max(id), 0), $1 FROM reports
         ON CONFLICT (last_row) DO UPDATE SET last_batch = excluded.last_batch",
    )?;
    tx.execute(&mark, &[&batch])?;
    Ok(())
}

/// A device's fixes between two device times, oldest first.
pub(super) fn track(
    c: &mut impl GenericClient,
    id: &DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Fix>, StoreError> {
    let rows = c.query(
        "SELECT body FROM reports
         WHERE device_id = $1 AND kind = 'pos' AND t_ms >= $2 AND t_ms <= $3
         ORDER BY t_ms, seq LIMIT $4",
        &[
            &id.as_str(),
            &from.timestamp_millis(),
            &to.timestamp_millis(),
            &limit_of(limit),
        ],
    )?;
    let mut fixes = Vec::new();
    for row in rows {
        fixes.extend(fix_of(row.try_get(0)?)?);
    }
    Ok(fixes)
}

/// A device's newest `limit` reports other than connection changes, oldest first.
pub(super) fn recent(
    c: &mut impl GenericClient,
    id: &DeviceId,
    limit: usize,
) -> Result<Vec<Report>, StoreError> {
    let rows = c.query(
        "SELECT body, received_ms FROM reports WHERE device_id = $1 AND kind != 'conn'
         ORDER BY t_ms DESC LIMIT $2",
        &[&id.as_str(), &limit_of(limit)],
    )?;
    let mut reports = rows
        .iter()
        .map(|row| report_of(id, row.try_get(0)?, row.try_get(1)?))
        .collect::<Result<Vec<_>, _>>()?;
    reports.reverse();
    Ok(reports)
}

/// A device's stored seqs in the duplicate window below its highest seq (the stored state's
/// `max_seq` or the highest stored seq, whichever is higher), and its last reports.
pub(super) fn window(
    c: &mut impl GenericClient,
    id: &DeviceId,
    max_seq: Option<u64>,
    window: u64,
    recent_reports: usize,
) -> Result<(Vec<u64>, Vec<Report>), StoreError> {
    let rows = c.query(
        "SELECT seq FROM reports WHERE device_id = $1 AND seq IS NOT NULL
         ORDER BY t_ms DESC LIMIT $2",
        &[
            &id.as_str(),
            &i64::try_from(window_reads(window)).unwrap_or(i64::MAX),
        ],
    )?;
    let newest_first = rows
        .iter()
        .map(|row| row.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let seqs = seqs_in_window(newest_first, max_seq, window);
    Ok((seqs, recent(c, id, recent_reports)?))
}

/// A `LIMIT` from a count (PostgreSQL's is a BIGINT; larger means all).
pub(super) fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
