//! Report batches in PostgreSQL: binding a commit's leaves, the heads of both chains, the
//! walk that verifies every report, and what an evidence bundle is cut from. The hashing and
//! the checks are [`crate::store::evidence`]'s and [`crate::store::evidence_export`]'s; only
//! the SQL is here.

use postgres::{GenericClient, Row};

use super::statements::Statements;
use crate::evidence::merkle::Digest;
use crate::store::event_log::GENESIS;
use crate::store::evidence::{
    seal, BatchChain, ChainHead, PositionsSource, StoredBatch, StoredReport, REPORT_COLUMNS,
};
use crate::store::evidence_export::{
    chain_leaf, ChainFrontiers, ExportData, RawBatch, RawEvent, MAX_BUNDLE_REPORTS,
};
use crate::store::StoreError;

/// Where the writer continues both chains.
pub(super) fn chain(c: &mut impl GenericClient) -> Result<BatchChain, StoreError> {
    let last = c.query_opt(
        "SELECT batch, hash FROM report_batches ORDER BY batch DESC LIMIT 1",
        &[],
    )?;
    let (last, head) = match last {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (0, GENESIS.to_owned()),
    };
    let events_id: i64 = c
        .query_one("SELECT coalesce(max(id), 0)::int8 FROM event_log", &[])?
        .try_get(0)?;
    Ok(BatchChain {
        next: last + 1,
        head,
        events_id,
    })
}

/// Records a committed batch of report leaves; returns the batch's hash.
pub(super) fn bind(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    chain: &BatchChain,
    leaves: &mut [Digest],
    events: (i64, &str),
    committed_ms: i64,
) -> Result<String, StoreError> {
    let sealed = seal(chain, leaves, events, committed_ms);
    let insert = statements.get(
        tx,
        "INSERT INTO report_batches (batch, reports, root, events_id, events_head,
                                     committed_ms, leaves, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )?;
    tx.execute(
        &insert,
        &[
            &sealed.batch,
            &sealed.reports,
            &sealed.root,
            &sealed.events_id,
            &sealed.events_head,
            &sealed.committed_ms,
            &leaves.as_flattened(),
            &sealed.prev_hash,
            &sealed.hash,
        ],
    )?;
    Ok(sealed.hash)
}

/// The heads of both chains as stored now.
pub(super) fn head(c: &mut impl GenericClient) -> Result<ChainHead, StoreError> {
    let last = |c: &mut _, sql| -> Result<(i64, String), StoreError> {
        Ok(match GenericClient::query_opt(c, sql, &[])? {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            None => (0, GENESIS.to_owned()),
        })
    };
    let (events, events_head) = last(c, "SELECT id, hash FROM event_log ORDER BY id DESC LIMIT 1")?;
    let (batches, batches_head) = last(
        c,
        "SELECT batch, hash FROM report_batches ORDER BY batch DESC LIMIT 1",
    )?;
    Ok(ChainHead {
        events,
        events_head,
        batches,
        batches_head,
    })
}

/// The stored hash of event `id` and of batch `batch` (genesis for 0).
pub(super) fn hashes_at(
    c: &mut impl GenericClient,
    id: i64,
    batch: i64,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let mut hash = |sql, key: i64| -> Result<Option<String>, StoreError> {
        if key == 0 {
            return Ok(Some(GENESIS.to_owned()));
        }
        Ok(c.query_opt(sql, &[&key])?
            .map(|r| r.try_get(0))
            .transpose()?)
    };
    Ok((
        hash("SELECT hash FROM event_log WHERE id = $1", id)?,
        hash("SELECT hash FROM report_batches WHERE batch = $1", batch)?,
    ))
}

/// What [`crate::store::evidence::verify_from`] reads, from PostgreSQL.
pub(super) struct Source<'a, C>(pub(super) &'a mut C);

/// A row of [`REPORT_COLUMNS`].
fn stored_report(r: &Row) -> Result<StoredReport, postgres::Error> {
    Ok(StoredReport {
        device_id: r.try_get(0)?,
        seq: r.try_get(1)?,
        kind: r.try_get(2)?,
        t_ms: r.try_get(3)?,
        received_ms: r.try_get(4)?,
        lat: r.try_get(5)?,
        lon: r.try_get(6)?,
        body: r.try_get(7)?,
        batch: r.try_get(8)?,
    })
}

impl<C: GenericClient> Source<'_, C> {
    /// Streams the rows (a range may be millions of reports).
    fn each(
        &mut self,
        sql: &str,
        args: &[i64],
        each: &mut dyn FnMut(StoredReport),
    ) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator as _;
        let mut rows = self.0.query_raw(sql, args)?;
        while let Some(r) = rows.next()? {
            each(stored_report(&r)?);
        }
        Ok(())
    }
}

impl<C: GenericClient> PositionsSource for Source<'_, C> {
    fn folds(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        self.0
            .query(
                "SELECT last_row, last_batch FROM report_folds ORDER BY last_row",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn loose_reports(&mut self, each: &mut dyn FnMut(StoredReport)) -> Result<(), StoreError> {
        self.each(
            &format!("SELECT {REPORT_COLUMNS} FROM reports_redelivered ORDER BY id"),
            &[],
            each,
        )
    }

    fn first_batched(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .query_one("SELECT min(id) FROM reports WHERE batch IS NOT NULL", &[])?
            .try_get(0)?)
    }

    fn reports_between(
        &mut self,
        after: i64,
        through: i64,
        each: &mut dyn FnMut(StoredReport),
    ) -> Result<(), StoreError> {
        self.each(
            &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id > $1 AND id <= $2 ORDER BY id"),
            &[after, through],
            each,
        )
    }

    fn batches_after(&mut self, after: i64, limit: usize) -> Result<Vec<StoredBatch>, StoreError> {
        let rows = self.0.query(
            "SELECT batch, reports, root, events_id, events_head, committed_ms, leaves,
                    prev_hash, hash
             FROM report_batches WHERE batch > $1 ORDER BY batch LIMIT $2",
            &[&after, &super::reports::limit_of(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredBatch {
                    batch: r.try_get(0)?,
                    reports: r.try_get(1)?,
                    root: r.try_get(2)?,
                    events_id: r.try_get(3)?,
                    events_head: r.try_get(4)?,
                    committed_ms: r.try_get(5)?,
                    leaves: r.try_get(6)?,
                    prev_hash: r.try_get(7)?,
                    hash: r.try_get(8)?,
                })
            })
            .collect()
    }

    fn event_hash(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_opt("SELECT hash FROM event_log WHERE id = $1", &[&id])?
            .map(|r| r.try_get(0))
            .transpose()?)
    }
}

/// Extends `frontiers` up to `head`, as [`crate::store::evidence_export::extend_frontiers`]
/// does from SQLite.
pub(super) fn extend_frontiers(
    c: &mut impl GenericClient,
    frontiers: &mut ChainFrontiers,
    head: &ChainHead,
) -> Result<(), StoreError> {
    for (sql, frontier, upto) in [
        (
            "SELECT hash FROM event_log WHERE id > $1 AND id <= $2 ORDER BY id",
            &mut frontiers.events,
            head.events,
        ),
        (
            "SELECT hash FROM report_batches WHERE batch > $1 AND batch <= $2 ORDER BY batch",
            &mut frontiers.batches,
            head.batches,
        ),
    ] {
        let upto = u64::try_from(upto).unwrap_or(0);
        if frontier.leaves() > upto {
            *frontier = Default::default();
        }
        let from = frontier.leaves() as i64;
        for row in c.query(sql, &[&from, &(upto as i64)])? {
            frontier.push(chain_leaf(row.try_get(0)?));
        }
    }
    Ok(())
}

/// A transit's records up to `head`, and the reports of `devices` between two device times
/// committed in batches up to `head` (as [`crate::store::evidence_export::export`]).
pub(super) fn export(
    c: &mut impl GenericClient,
    transit_id: &str,
    devices: &[String],
    (from_ms, to_ms): (i64, i64),
    head: &ChainHead,
) -> Result<ExportData, StoreError> {
    let mut out = ExportData::default();
    for r in c.query(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body,
                prev_hash, hash
         FROM event_log WHERE transit_id = $1 AND id <= $2 ORDER BY id",
        &[&transit_id, &head.events],
    )? {
        out.events.push(RawEvent {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            device_id: r.try_get(2)?,
            transit_id: r.try_get(3)?,
            occurred_ms: r.try_get(4)?,
            detected_ms: r.try_get(5)?,
            late: r.try_get(6)?,
            actor: r.try_get(7)?,
            body: r.try_get(8)?,
            prev_hash: r.try_get(9)?,
            hash: r.try_get(10)?,
        });
    }
    for device in devices {
        for r in c.query(
            &format!(
                "SELECT {REPORT_COLUMNS} FROM reports
                 WHERE device_id = $1 AND t_ms >= $2 AND t_ms <= $3 AND batch <= $4
                 ORDER BY t_ms, seq"
            ),
            &[device, &from_ms, &to_ms, &head.batches],
        )? {
            out.reports.push(stored_report(&r)?.try_into()?);
            if out.reports.len() > MAX_BUNDLE_REPORTS {
                return Err(StoreError::Corrupt(serde::de::Error::custom(format!(
                    "the transit has more than {MAX_BUNDLE_REPORTS} reports; export a shorter period"
                ))));
            }
        }
    }
    let mut wanted: Vec<i64> = out.reports.iter().map(|r| r.batch).collect();
    wanted.sort_unstable();
    wanted.dedup();
    for batch in wanted {
        let Some(r) = c.query_opt(
            "SELECT batch, reports, root, events_id, events_head, committed_ms, leaves,
                    prev_hash, hash FROM report_batches WHERE batch = $1",
            &[&batch],
        )?
        else {
            continue;
        };
        let leaves: Vec<u8> = r.try_get(6)?;
        out.batches.push(RawBatch {
            batch: r.try_get(0)?,
            reports: r.try_get(1)?,
            root: r.try_get(2)?,
            events_id: r.try_get(3)?,
            events_head: r.try_get(4)?,
            committed_ms: r.try_get(5)?,
            leaves: leaves
                .chunks_exact(32)
                .filter_map(|c| c.try_into().ok())
                .collect(),
            prev_hash: r.try_get(7)?,
            hash: r.try_get(8)?,
        });
    }
    for (sql, upto, into) in [
        (
            "SELECT hash FROM event_log WHERE id <= $1 ORDER BY id",
            head.events,
            &mut out.event_leaves,
        ),
        (
            "SELECT hash FROM report_batches WHERE batch <= $1 ORDER BY batch",
            head.batches,
            &mut out.batch_leaves,
        ),
    ] {
        for row in c.query(sql, &[&upto])? {
            into.push(chain_leaf(row.try_get(0)?));
        }
    }
    Ok(out)
}
