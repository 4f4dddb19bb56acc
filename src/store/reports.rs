//! Every accepted report, as received: written to an unindexed tail, folded into the indexed
//! table in device order.
//!
//! `reports` has one index, by device and time, which serves a device's track and catches a
//! redelivered report (same device, device time and seq). Inserting into it message by
//! message put each report's index entry on its own device's page, so every group commit
//! rewrote about one 4 KiB page per report. A commit therefore appends reports to
//! `reports_recent`, which has no index, and about once a second (or every
//! [`FOLD_ROWS`] reports) [`Tail::fold`] moves them into `reports` sorted by device and
//! time, in one transaction: each device's page is then rewritten once for all its new
//! reports. Readers look at both tables, so a committed report is visible at once.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Statement};

use super::device_state;
use super::evidence::{report_leaf, ReportRow};
use super::StoreError;
use crate::evidence::merkle::Digest;
use crate::telemetry::{DeviceId, Fix, Report, ReportBody};

/// Most reports the tail holds before it is folded.
const FOLD_ROWS: usize = 32_768;
/// Longest a report waits in the tail while reports keep coming.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// The columns both tables share, as a literal so that the statements below are constants
/// (the insert runs once per report; its text need not be built each time).
macro_rules! columns {
    () => {
        "device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch"
    };
}

pub const INSERT: &str = concat!(
    "INSERT INTO reports_recent (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
);
const FOLD: &str = concat!(
    "INSERT OR IGNORE INTO reports (",
    columns!(),
    ") SELECT ",
    columns!(),
    " FROM reports_recent ORDER BY device_id, t_ms, seq"
);

/// The tail's reports that the fold did not store because an identical report (same device,
/// time, seq) from another batch already was.
const REDELIVERED: &str = concat!(
    "INSERT INTO reports_redelivered (",
    columns!(),
    ") SELECT ",
    columns!(),
    " FROM reports_recent r WHERE NOT EXISTS (SELECT 1 FROM reports p
       WHERE p.device_id = r.device_id AND p.t_ms = r.t_ms AND p.seq IS r.seq
         AND p.batch IS r.batch)"
);

/// JSON that serde_json wrote, as text (it writes only UTF-8; this never fails).
pub fn utf8(json: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(json).map_err(|e| StoreError::Invalid(format!("JSON not UTF-8: {e}")))
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The columns a report is stored as (and its leaf covers), its body serialised into `json`.
/// Both stores store exactly these, so a report has the same leaf in either.
///
/// # Errors
/// The body cannot be serialised.
pub fn row<'a>(report: &'a Report, json: &'a mut Vec<u8>) -> Result<ReportRow<'a>, StoreError> {
    let point = report.point();
    json.clear();
    serde_json::to_writer(&mut *json, &report.body)?;
    Ok(ReportRow {
        device_id: report.device_id.as_str(),
        seq: report.seq().map(|s| s as i64),
        kind: report.kind().as_str(),
        t_ms: millis(report.occurred_at()),
        received_ms: millis(report.received_at),
        lat: point.map(|p| p.lat),
        lon: point.map(|p| p.lon),
        body: utf8(json)?,
    })
}

/// The fix a stored body holds, if it is one.
///
/// # Errors
/// The body is not a report.
pub fn fix_of(body: &str) -> Result<Option<Fix>, StoreError> {
    Ok(match serde_json::from_str(body)? {
        ReportBody::Fix(fix) => Some(fix),
        _ => None,
    })
}

/// A stored report of device `id`, from its body and receive time.
///
/// # Errors
/// The body is not a report.
pub fn report_of(id: &DeviceId, body: &str, received_ms: i64) -> Result<Report, StoreError> {
    Ok(Report {
        device_id: id.clone(),
        received_at: DateTime::from_timestamp_millis(received_ms).unwrap_or_default(),
        body: serde_json::from_str(body)?,
    })
}

/// How many of a device's newest reports its duplicate window reads. Seqs follow device
/// time, so the window's seqs are among the newest reports; twice the window leaves room for
/// reports recorded out of order. One that is still missed is caught by the unique index if
/// it comes again.
pub fn window_reads(seq_window: u64) -> u64 {
    seq_window.saturating_mul(2)
}

/// The duplicate window's seqs, ascending: those of `newest_first` (a device's newest stored
/// seqs, [`window_reads`] of them) within `seq_window` below the highest of them and
/// `max_seq` (the stored state's). The reports are the record: a state that lags them (or is
/// missing) must not shrink the window.
pub fn seqs_in_window(
    newest_first: impl IntoIterator<Item = i64>,
    max_seq: Option<u64>,
    seq_window: u64,
) -> Vec<u64> {
    let mut seqs: Vec<u64> = newest_first.into_iter().map(|s| s as u64).collect();
    seqs.sort_unstable();
    if let Some(newest) = seqs.last().copied().max(max_seq) {
        let floor = newest.saturating_sub(seq_window.saturating_sub(1));
        seqs.retain(|s| *s >= floor);
    }
    seqs
}

/// The writer's count of what waits in `reports_recent`.
pub struct Tail {
    rows: usize,
    /// When the last fold was tried, and whether it failed: a failing fold is retried once
    /// per [`FOLD_EVERY`], not after every commit.
    tried_at: Instant,
    failed: bool,
}

impl Tail {
    /// Folds whatever a previous run left in the tail, so a fresh writer starts empty. A run
    /// that stopped without folding (a crash) also left device states unwritten that those
    /// reports are the record of: they are brought up to date first, in the same transaction.
    ///
    /// # Errors
    /// The fold fails.
    pub fn open(conn: &mut Connection) -> Result<Self, StoreError> {
        let mut tail = Self {
            rows: 0,
            tried_at: Instant::now(),
            failed: false,
        };
        tail.fold(conn, |tx| device_state::rebuild_from_tail(tx).map(drop))?;
        Ok(tail)
    }

    /// Appends one report to the tail, in `batch`, with `insert` (a statement of [`INSERT`]);
    /// returns its leaf. `json` is a buffer the caller keeps from one report to the next, so
    /// a commit of many reports does not allocate one for each body.
    pub fn insert(
        &mut self,
        insert: &mut Statement<'_>,
        report: &Report,
        batch: i64,
        json: &mut Vec<u8>,
    ) -> Result<Digest, StoreError> {
        let row = row(report, json)?;
        insert.execute(params![
            row.device_id,
            row.seq,
            row.kind,
            row.t_ms,
            row.received_ms,
            row.lat,
            row.lon,
            row.body,
            batch,
        ])?;
        self.rows += 1;
        Ok(report_leaf(&row))
    }

    /// True when the tail should be folded now.
    pub fn is_due(&self) -> bool {
        self.rows > 0
            && (self.tried_at.elapsed() >= FOLD_EVERY || (!self.failed && self.rows >= FOLD_ROWS))
    }

    /// Moves the tail into `reports` in one transaction, after `first` (which writes the device
    /// states the tail's reports are part of, so that readers never see the reports leave the
    /// tail before the states that hold them are stored); returns how many of its reports were
    /// already there (redeliveries), which are dropped.
    ///
    /// # Errors
    /// The transaction fails; the tail is then left as it was, to be folded later.
    pub fn fold(
        &mut self,
        conn: &mut Connection,
        first: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        self.tried_at = Instant::now();
        self.failed = true;
        let tx = conn.transaction()?;
        first(&tx)?;
        let waiting: i64 = tx.query_row("SELECT count(*) FROM reports_recent", [], |r| r.get(0))?;
        let moved = tx.execute(FOLD, [])?;
        if usize::try_from(waiting).unwrap_or(0) > moved {
            // Redeliveries: kept beside the table so the batch each came in stays complete.
            tx.execute(REDELIVERED, [])?;
        }
        if waiting > 0 {
            tx.execute(
                "INSERT OR REPLACE INTO report_folds (last_row, last_batch)
                 SELECT (SELECT coalesce(max(id), 0) FROM reports), max(batch)
                 FROM reports_recent WHERE batch IS NOT NULL HAVING count(*) > 0",
                [],
            )?;
        }
        tx.execute("DELETE FROM reports_recent", [])?;
        tx.commit()?;
        self.rows = 0;
        self.failed = false;
        Ok(usize::try_from(waiting).unwrap_or(0).saturating_sub(moved))
    }
}

/// Both tables, as one, for the reads below. A report folded and then delivered again can
/// be in both for up to a second; `UNION` shows it once.
fn both(columns: &str, filter: &str) -> String {
    format!(
        "SELECT {columns} FROM reports WHERE {filter}
         UNION SELECT {columns} FROM reports_recent WHERE {filter}"
    )
}

/// A device's fixes between two device times, oldest first.
pub fn track(
    conn: &Connection,
    id: &DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Fix>, StoreError> {
    let sql = format!(
        "{} ORDER BY t_ms, seq LIMIT ?4",
        both(
            "body, t_ms, seq",
            "device_id = ?1 AND kind = 'pos' AND t_ms >= ?2 AND t_ms <= ?3"
        )
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![id.as_str(), millis(from), millis(to), limit as i64],
        |row| row.get::<_, String>(0),
    )?;
    let mut fixes = Vec::new();
    for body in rows {
        fixes.extend(fix_of(&body?)?);
    }
    Ok(fixes)
}

/// A device's newest reports other than connection changes ([`recent`]); built once, so the
/// two statements a start runs for every device are looked up, not formatted, each time.
pub(super) static RECENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ORDER BY t_ms DESC LIMIT ?2",
        both(
            "body, received_ms, t_ms, seq",
            "device_id = ?1 AND kind != 'conn'"
        )
    )
});

/// A device's newest seqs ([`recent_seqs`]).
pub(super) static RECENT_SEQS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ORDER BY t_ms DESC LIMIT ?2",
        both("seq, t_ms", "device_id = ?1 AND seq IS NOT NULL")
    )
});

/// A device's newest `limit` reports other than connection changes, oldest first.
pub fn recent(conn: &Connection, id: &DeviceId, limit: usize) -> Result<Vec<Report>, StoreError> {
    let mut stmt = conn.prepare_cached(&RECENT)?;
    let rows = stmt.query_map(params![id.as_str(), limit as i64], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut reports = Vec::new();
    for row in rows {
        let (body, received_ms) = row?;
        reports.push(report_of(id, &body, received_ms)?);
    }
    reports.reverse();
    Ok(reports)
}

/// The seqs of a device's newest `newest` reports, newest first.
pub fn recent_seqs(conn: &Connection, id: &DeviceId, newest: u64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(&RECENT_SEQS)?;
    let newest = i64::try_from(newest).unwrap_or(i64::MAX);
    let newest_first = stmt
        .query_map(params![id.as_str(), newest], |row| row.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(newest_first)
}
