//! Reports bound into the evidence: one chained `report_batches` row per group commit, and
//! the walk that checks every stored report against the batch it was committed in.
//!
//! A report's leaf is SHA-256 over exactly the columns stored (device, seq, kind, device and
//! receive times, latitude and longitude, body), so a fix whose row is edited no longer
//! matches any leaf of its batch. A batch's row carries the sorted leaves, their Merkle root,
//! and a hash over the row before it and the event log's head at that commit: the two chains
//! are one history, and a signed checkpoint of both heads pins every report and event before
//! it.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::event_log::GENESIS;
use super::StoreError;
use crate::evidence::merkle::{self, to_hex, Digest};

/// The columns of a report that its leaf covers, as stored.
pub struct ReportRow<'a> {
    pub device_id: &'a str,
    pub seq: Option<i64>,
    pub kind: &'a str,
    pub t_ms: i64,
    pub received_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub body: &'a str,
}

/// The leaf of one stored report.
pub fn report_leaf(r: &ReportRow<'_>) -> Digest {
    use std::io::Write as _;
    let mut bytes = Vec::with_capacity(r.body.len() + 96);
    // The numbers are written in decimal straight into the buffer (a `String` each cost three
    // allocations per committed report); writing to a `Vec` cannot fail.
    let number = |bytes: &mut Vec<u8>, n: Option<i64>| {
        if let Some(n) = n {
            let _ = write!(bytes, "{n}");
        }
        bytes.push(0x1f);
    };
    bytes.extend_from_slice(r.device_id.as_bytes());
    bytes.push(0x1f);
    number(&mut bytes, r.seq);
    bytes.extend_from_slice(r.kind.as_bytes());
    bytes.push(0x1f);
    number(&mut bytes, Some(r.t_ms));
    number(&mut bytes, Some(r.received_ms));
    let mut part = |p: &[u8]| {
        bytes.extend_from_slice(p);
        bytes.push(0x1f);
    };
    // The exact bits: a position moved by a millionth of a degree is a different leaf.
    part(&r.lat.map(f64::to_bits).unwrap_or(u64::MAX).to_be_bytes());
    part(&r.lon.map(f64::to_bits).unwrap_or(u64::MAX).to_be_bytes());
    part(r.body.as_bytes());
    merkle::leaf(&bytes)
}

/// The heads of both chains: what a checkpoint signs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChainHead {
    /// Records in the event log (their ids run from 1 without gaps).
    pub events: i64,
    pub events_head: String,
    /// Report batches (numbered from 1 without gaps).
    pub batches: i64,
    pub batches_head: String,
}

/// The writer's position in both chains.
pub struct BatchChain {
    pub next: i64,
    pub head: String,
    pub events_id: i64,
}

impl BatchChain {
    pub fn open(conn: &Connection) -> Result<Self, StoreError> {
        let last: Option<(i64, String)> = conn
            .query_row(
                "SELECT batch, hash FROM report_batches ORDER BY batch DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let events_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM event_log", [], |r| {
                r.get(0)
            })?;
        let (last, head) = last.unwrap_or((0, GENESIS.to_owned()));
        Ok(Self {
            next: last + 1,
            head,
            events_id,
        })
    }
}

struct BatchRow<'a> {
    prev: &'a str,
    batch: i64,
    reports: i64,
    root: &'a str,
    events_id: i64,
    events_head: &'a str,
    committed_ms: i64,
}

fn batch_hash(b: &BatchRow<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        b.prev,
        &b.batch.to_string(),
        &b.reports.to_string(),
        b.root,
        &b.events_id.to_string(),
        b.events_head,
        &b.committed_ms.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    to_hex(&h.finalize())
}

/// The hash of an exported batch row, recomputed.
pub fn exported_batch_hash(b: &super::evidence_export::RawBatch) -> String {
    batch_hash(&BatchRow {
        prev: &b.prev_hash,
        batch: b.batch,
        reports: b.reports,
        root: &b.root,
        events_id: b.events_id,
        events_head: &b.events_head,
        committed_ms: b.committed_ms,
    })
}

/// A batch of report leaves as it is stored: its row and its hash. Both stores store
/// exactly this, so the same commits make the same chain in either.
pub struct SealedBatch {
    pub batch: i64,
    pub reports: i64,
    pub root: String,
    pub events_id: i64,
    pub events_head: String,
    pub committed_ms: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// Sorts a commit's leaves and seals them as the batch after `chain`, following event
/// `events` (id and hash) at `committed_ms`.
pub fn seal(
    chain: &BatchChain,
    leaves: &mut [Digest],
    events: (i64, &str),
    committed_ms: i64,
) -> SealedBatch {
    leaves.sort_unstable();
    let root = to_hex(&merkle::root(leaves));
    let row = BatchRow {
        prev: &chain.head,
        batch: chain.next,
        reports: leaves.len() as i64,
        root: &root,
        events_id: events.0,
        events_head: events.1,
        committed_ms,
    };
    let hash = batch_hash(&row);
    SealedBatch {
        batch: row.batch,
        reports: row.reports,
        events_id: row.events_id,
        events_head: row.events_head.to_owned(),
        committed_ms,
        prev_hash: chain.head.clone(),
        hash,
        root,
    }
}

/// Records a committed batch of report leaves; returns the batch's hash.
pub fn bind(
    tx: &Transaction<'_>,
    chain: &BatchChain,
    leaves: &mut [Digest],
    events: (i64, &str),
    committed_ms: i64,
) -> Result<String, StoreError> {
    let sealed = seal(chain, leaves, events, committed_ms);
    tx.prepare_cached(
        "INSERT INTO report_batches (batch, reports, root, events_id, events_head,
                                     committed_ms, leaves, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        sealed.batch,
        sealed.reports,
        sealed.root,
        sealed.events_id,
        sealed.events_head,
        sealed.committed_ms,
        leaves.as_flattened(),
        sealed.prev_hash,
        sealed.hash,
    ])?;
    Ok(sealed.hash)
}

/// The heads of both chains as stored now.
pub fn head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let (events, events_head) = conn
        .query_row(
            "SELECT id, hash FROM event_log ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_owned()));
    let (batches, batches_head) = conn
        .query_row(
            "SELECT batch, hash FROM report_batches ORDER BY batch DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_owned()));
    Ok(ChainHead {
        events,
        events_head,
        batches,
        batches_head,
    })
}

/// The stored hash of event `id` and of batch `batch` (`None` where the row is missing; the
/// genesis hash for 0).
pub fn hashes_at(
    conn: &Connection,
    id: i64,
    batch: i64,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let event = if id == 0 {
        Some(GENESIS.to_owned())
    } else {
        conn.query_row("SELECT hash FROM event_log WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?
    };
    let batch = if batch == 0 {
        Some(GENESIS.to_owned())
    } else {
        conn.query_row(
            "SELECT hash FROM report_batches WHERE batch = ?1",
            [batch],
            |r| r.get(0),
        )
        .optional()?
    };
    Ok((event, batch))
}

/// A stored report as the verifier names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Ident {
    device_id: String,
    seq: Option<i64>,
    t_ms: i64,
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = chrono::DateTime::from_timestamp_millis(self.t_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| self.t_ms.to_string());
        match self.seq {
            Some(seq) => write!(f, "device {} seq {} at {t}", self.device_id, seq),
            None => write!(f, "device {} at {t}", self.device_id),
        }
    }
}

/// The outcome of checking every stored report against its batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PositionsReport {
    pub batches: i64,
    pub reports: u64,
    /// Reports stored before batches existed (no batch), which nothing covers.
    pub not_covered: u64,
    /// The last batch whose chain link, root and reports all checked, and its commit time.
    pub verified_through: Option<(i64, i64)>,
    /// Every difference found, in batch order (the first [`MAX_PROBLEMS`]).
    pub problems: Vec<String>,
    /// Problems found beyond those listed.
    pub more_problems: u64,
}

/// Most differences listed one by one.
pub const MAX_PROBLEMS: usize = 200;

impl PositionsReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }
}

type Pending = HashMap<i64, Vec<(Digest, Ident)>>;

/// The columns of [`StoredReport`], in its order.
pub const REPORT_COLUMNS: &str = "device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch";

/// A stored report's columns ([`REPORT_COLUMNS`]), as the verifier and the export read them.
pub struct StoredReport {
    pub device_id: String,
    pub seq: Option<i64>,
    pub kind: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub body: String,
    pub batch: Option<i64>,
}

/// A stored `report_batches` row.
pub struct StoredBatch {
    pub batch: i64,
    pub reports: i64,
    pub root: String,
    pub events_id: i64,
    pub events_head: String,
    pub committed_ms: i64,
    pub leaves: Vec<u8>,
    pub prev_hash: String,
    pub hash: String,
}

/// What [`verify`] reads, from either store: only the SQL differs.
pub trait PositionsSource {
    /// Where each fold (SQLite) or commit (PostgreSQL) of reports ended: (last report id,
    /// last batch), by report id.
    fn folds(&mut self) -> Result<Vec<(i64, i64)>, StoreError>;
    /// Reports that may belong to any batch: the unfolded tail and the redelivered copies.
    fn loose_reports(&mut self, each: &mut dyn FnMut(StoredReport)) -> Result<(), StoreError>;
    /// The id of the first report stored with a batch.
    fn first_batched(&mut self) -> Result<Option<i64>, StoreError>;
    /// Reports with `after < id <= through`, by id.
    fn reports_between(
        &mut self,
        after: i64,
        through: i64,
        each: &mut dyn FnMut(StoredReport),
    ) -> Result<(), StoreError>;
    /// At most `limit` batches numbered above `after`, in order.
    fn batches_after(&mut self, after: i64, limit: usize) -> Result<Vec<StoredBatch>, StoreError>;
    /// The hash of event record `id`.
    fn event_hash(&mut self, id: i64) -> Result<Option<String>, StoreError>;
}

/// Takes one report into `pending` by batch. Below `done_below` batches are complete, and
/// a report without a batch is one stored before batches existed only while it is 0.
fn gather(r: StoredReport, pending: &mut Pending, report: &mut PositionsReport, done_below: i64) {
    report.reports += 1;
    let Some(batch) = r.batch else {
        if done_below > 0 {
            report.problem(format!(
                "a report of device {} at {} ms has no batch among reports that all have one: it was added",
                r.device_id, r.t_ms
            ));
        } else {
            report.not_covered += 1;
        }
        return;
    };
    let leaf = report_leaf(&ReportRow {
        device_id: &r.device_id,
        seq: r.seq,
        kind: &r.kind,
        t_ms: r.t_ms,
        received_ms: r.received_ms,
        lat: r.lat,
        lon: r.lon,
        body: &r.body,
    });
    let ident = Ident {
        device_id: r.device_id,
        seq: r.seq,
        t_ms: r.t_ms,
    };
    if batch < done_below {
        report.problem(format!(
            "the report of {ident} claims batch {batch}, which was already complete: it was added later"
        ));
        return;
    }
    pending.entry(batch).or_default().push((leaf, ident));
}

/// The batches in order, read a page at a time.
struct Batches {
    page: std::collections::VecDeque<StoredBatch>,
    after: i64,
}

impl Batches {
    const PAGE: usize = 1024;

    fn next(
        &mut self,
        source: &mut dyn PositionsSource,
    ) -> Result<Option<StoredBatch>, StoreError> {
        if self.page.is_empty() {
            self.page = source.batches_after(self.after, Self::PAGE)?.into();
        }
        let next = self.page.pop_front();
        if let Some(b) = &next {
            self.after = b.batch;
        }
        Ok(next)
    }
}

/// Walks every batch in order and checks its chain link, its root, its link to the event
/// log, and that its reports are exactly the stored ones. `progress` is told after each fold
/// of reports (batches verified, reports read).
///
/// # Errors
/// Database errors only; differences are the report.
pub fn verify(
    conn: &Connection,
    progress: &mut dyn FnMut(i64, u64),
) -> Result<PositionsReport, StoreError> {
    verify_from(&mut SqliteSource(conn), progress)
}

/// [`verify`] over any store.
///
/// # Errors
/// Database errors only; differences are the report.
pub fn verify_from(
    source: &mut dyn PositionsSource,
    progress: &mut dyn FnMut(i64, u64),
) -> Result<PositionsReport, StoreError> {
    let mut report = PositionsReport::default();
    let mut pending = Pending::new();
    let mut walk = Walk {
        expected_prev: GENESIS.to_owned(),
        next: 1,
        broken: false,
    };
    let mut batches = Batches {
        page: Default::default(),
        after: i64::MIN,
    };
    let folds = source.folds()?;
    // What the tail and the redelivered copies hold belongs to any batch; both stay small.
    source.loose_reports(&mut |r| gather(r, &mut pending, &mut report, 0))?;
    let mut prev_row = match folds.first() {
        // Reports stored before the first fold with batches were never bound.
        Some(_) => {
            let start = source.first_batched()?.unwrap_or(1) - 1;
            source.reports_between(0, start, &mut |r| {
                gather(r, &mut pending, &mut report, 0);
            })?;
            start
        }
        None => 0,
    };
    for (last_row, last_batch) in folds.iter().copied().chain([(i64::MAX, i64::MAX)]) {
        let done_below = walk.next;
        source.reports_between(prev_row, last_row, &mut |r| {
            gather(r, &mut pending, &mut report, done_below);
        })?;
        prev_row = last_row;
        while walk.next <= last_batch {
            let Some(row) = batches.next(source)? else {
                break;
            };
            walk.check(row, source, &mut pending, &mut report)?;
        }
        progress(report.batches, report.reports);
    }
    let mut left: Vec<_> = pending.into_iter().collect();
    left.sort_by_key(|(batch, _)| *batch);
    for (batch, reports) in left {
        for (_, ident) in reports {
            report.problem(format!(
                "the report of {ident} claims batch {batch}, which does not exist: it was added"
            ));
        }
    }
    Ok(report)
}

struct SqliteSource<'a>(&'a Connection);

/// A row of [`REPORT_COLUMNS`].
pub(super) fn stored_report(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredReport> {
    Ok(StoredReport {
        device_id: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        t_ms: r.get(3)?,
        received_ms: r.get(4)?,
        lat: r.get(5)?,
        lon: r.get(6)?,
        body: r.get(7)?,
        batch: r.get(8)?,
    })
}

impl SqliteSource<'_> {
    fn each(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        each: &mut dyn FnMut(StoredReport),
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query(args)?;
        while let Some(r) = rows.next()? {
            each(stored_report(r)?);
        }
        Ok(())
    }
}

impl PositionsSource for SqliteSource<'_> {
    fn folds(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut stmt = self
            .0
            .prepare("SELECT last_row, last_batch FROM report_folds ORDER BY last_row")?;
        let folds = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(folds)
    }

    fn loose_reports(&mut self, each: &mut dyn FnMut(StoredReport)) -> Result<(), StoreError> {
        for table in ["reports_recent", "reports_redelivered"] {
            self.each(&format!("SELECT {REPORT_COLUMNS} FROM {table}"), [], each)?;
        }
        Ok(())
    }

    fn first_batched(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT min(id) FROM reports WHERE batch IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    fn reports_between(
        &mut self,
        after: i64,
        through: i64,
        each: &mut dyn FnMut(StoredReport),
    ) -> Result<(), StoreError> {
        self.each(
            &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id > ?1 AND id <= ?2"),
            params![after, through],
            each,
        )
    }

    fn batches_after(&mut self, after: i64, limit: usize) -> Result<Vec<StoredBatch>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT batch, reports, root, events_id, events_head, committed_ms, leaves,
                    prev_hash, hash
             FROM report_batches WHERE batch > ?1 ORDER BY batch LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(StoredBatch {
                batch: r.get(0)?,
                reports: r.get(1)?,
                root: r.get(2)?,
                events_id: r.get(3)?,
                events_head: r.get(4)?,
                committed_ms: r.get(5)?,
                leaves: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn event_hash(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT hash FROM event_log WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }
}

struct Walk {
    expected_prev: String,
    next: i64,
    broken: bool,
}

impl Walk {
    fn check(
        &mut self,
        b: StoredBatch,
        source: &mut dyn PositionsSource,
        pending: &mut Pending,
        report: &mut PositionsReport,
    ) -> Result<(), StoreError> {
        let StoredBatch {
            batch,
            reports,
            root,
            events_id,
            events_head,
            committed_ms,
            leaves,
            prev_hash: prev,
            hash: stored,
        } = b;
        report.batches += 1;
        let mut ok = true;
        if batch != self.next || prev != self.expected_prev {
            report.problem(format!(
                "batch {batch}: its previous-hash does not match the batch before it (batch {} was expected: a batch was removed or inserted)",
                self.next
            ));
            ok = false;
        }
        let row = BatchRow {
            prev: &prev,
            batch,
            reports,
            root: &root,
            events_id,
            events_head: &events_head,
            committed_ms,
        };
        if batch_hash(&row) != stored {
            report.problem(format!(
                "batch {batch}: its content does not match its hash (the batch was edited)"
            ));
            ok = false;
        }
        let linked: Option<String> = if events_id == 0 {
            Some(GENESIS.to_owned())
        } else {
            source.event_hash(events_id)?
        };
        if linked.as_deref() != Some(events_head.as_str()) {
            report.problem(format!(
                "batch {batch}: the event log's record {events_id} is not the one this batch was committed after"
            ));
            ok = false;
        }
        let mut committed: Vec<Digest> = leaves
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        if leaves.len() % 32 != 0
            || committed.len() as i64 != reports
            || to_hex(&merkle::root(&committed)) != root
        {
            report.problem(format!(
                "batch {batch}: its list of reports does not match its root (the list was edited)"
            ));
            ok = false;
        }
        committed.sort_unstable();
        let mut stored_reports = pending.remove(&batch).unwrap_or_default();
        stored_reports.sort_by_key(|r| r.0);
        ok &= compare(batch, &committed, &stored_reports, report);
        self.expected_prev = stored;
        self.next = batch + 1;
        if ok && !self.broken {
            report.verified_through = Some((batch, committed_ms));
        } else {
            self.broken = true;
        }
        Ok(())
    }
}

/// Both sorted by leaf: names every stored report that is not a committed one, and counts
/// committed ones with no stored report.
fn compare(
    batch: i64,
    committed: &[Digest],
    stored: &[(Digest, Ident)],
    report: &mut PositionsReport,
) -> bool {
    let (mut i, mut j) = (0, 0);
    let mut missing = 0usize;
    let mut changed = Vec::new();
    while i < committed.len() || j < stored.len() {
        match (committed.get(i), stored.get(j)) {
            (Some(c), Some((s, _))) if c == s => {
                i += 1;
                j += 1;
            }
            (Some(c), Some((s, _))) if c < s => {
                missing += 1;
                i += 1;
            }
            (Some(_), None) => {
                missing += 1;
                i += 1;
            }
            (_, Some((_, ident))) => {
                changed.push(ident);
                j += 1;
            }
            (None, None) => break,
        }
    }
    for ident in &changed {
        report.problem(format!(
            "batch {batch}: the report of {ident} is not as committed (edited, moved or added)"
        ));
    }
    let unexplained = missing.saturating_sub(changed.len());
    if unexplained > 0 {
        report.problem(format!(
            "batch {batch}: {unexplained} of its {} committed reports are no longer stored (deleted)",
            committed.len()
        ));
    }
    changed.is_empty() && missing == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaf as it was first defined, each number through a `String`: leaves already in
    /// stores were made this way, and `audit verify` recomputes them with [`report_leaf`].
    fn leaf_as_first_written(r: &ReportRow<'_>) -> Digest {
        let mut bytes = Vec::new();
        let mut part = |p: &[u8]| {
            bytes.extend_from_slice(p);
            bytes.push(0x1f);
        };
        part(r.device_id.as_bytes());
        part(r.seq.map(|s| s.to_string()).unwrap_or_default().as_bytes());
        part(r.kind.as_bytes());
        part(r.t_ms.to_string().as_bytes());
        part(r.received_ms.to_string().as_bytes());
        part(&r.lat.map(f64::to_bits).unwrap_or(u64::MAX).to_be_bytes());
        part(&r.lon.map(f64::to_bits).unwrap_or(u64::MAX).to_be_bytes());
        part(r.body.as_bytes());
        merkle::leaf(&bytes)
    }

    #[test]
    fn a_leaf_covers_the_same_bytes_as_it_always_did() {
        let rows = [
            ReportRow {
                device_id: "356307042441013",
                seq: Some(1),
                kind: "pos",
                t_ms: 1_796_000_000_123,
                received_ms: 1_796_000_000_456,
                lat: Some(39.681),
                lon: Some(73.9215),
                body: r#"{"kind":"pos","seq":1,"t":"2026-12-07T02:11:57Z","lat":39.681,"lon":73.9215}"#,
            },
            // No seq (a `conn` report), no position, and negative and extreme numbers.
            ReportRow {
                device_id: "gw-7",
                seq: None,
                kind: "conn",
                t_ms: -1,
                received_ms: i64::MAX,
                lat: None,
                lon: None,
                body: r#"{"kind":"conn","state":"offline"}"#,
            },
            ReportRow {
                device_id: "x",
                seq: Some(i64::MIN),
                kind: "status",
                t_ms: 0,
                received_ms: i64::MIN,
                lat: Some(-0.0),
                lon: Some(180.0),
                body: "",
            },
        ];
        for row in &rows {
            assert_eq!(report_leaf(row), leaf_as_first_written(row));
        }
    }
}
