//! The embedded SQLite store: WAL mode, one writer connection, a small pool of readers.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tracing::warn;

use super::accounts;
use super::checkpoint::{self, Checkpointer};
use super::dead_letters::{self, DeadLetterPolicy};
use super::device_state;
use super::event_log::{self, ChainReport, EventQuery, StoredEvent};
use super::evidence::{self, BatchChain, ChainHead, PositionsReport};
use super::migrations::migrate;
use super::reports::{self, Tail};
use super::{
    Committed, DeadLetter, DeviceFilter, Snapshot, StoreError, StoreReader, StoreWriter, Write,
};
use crate::auth::account::Account;
use crate::auth::{InvalidRole, Principal, TokenRecord};
use crate::device::{Device, DeviceState};
use crate::telemetry::{DeviceId, Fix, Report};
use crate::threads::side_by_side;
use crate::transit::TransitRules;

/// The store's file in the data directory.
pub const FILE_NAME: &str = "caravan.sqlite";

/// Opens (creating if needed) the store in `data_dir` and migrates it.
///
/// # Errors
/// The directory cannot be created, the file cannot be opened, or a migration fails.
/// Plans each statement once, whatever is bound to it. Without this SQLite plans a statement
/// again at the first step after a bound `LIMIT ?` is bound anew, even to the same value (and,
/// with the STAT4 the bundled build enables, a value compared to an indexed column once
/// `ANALYZE` has gathered statistics): a cached statement is then parsed and planned at every
/// use. A start after a crash runs two such statements per device.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

pub fn open(data_dir: &Path) -> Result<(SqliteWriter, SqliteReader), StoreError> {
    let path = data_dir.join(FILE_NAME);
    super::private::dir(data_dir)
        .and_then(|()| super::private::file(&path))
        .map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
    let mut conn = Connection::open(&path)?;
    stable_plans(&conn)?;
    // WAL lets readers run beside the writer; NORMAL sync is durable across a process crash
    // (the acknowledgement guarantee) and loses at most the last commits on power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Checkpoints run on their own thread (`Checkpointer`), not inside a group commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A log that grew under load is cut back to this size once it starts over.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // 8 MiB (the default is 2 MiB): folding the report tail dirties a page or two per
    // device, and a cache smaller than that spills to the log mid-transaction. It is
    // bounded memory, counted in BENCHMARKS.md's memory per device.
    conn.pragma_update(None, "cache_size", -8 * 1024)?;
    // Folding the report tail sorts it; in memory, not in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let rules = TransitRules::embedded()?;
    let before: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    migrate(&mut conn)?;
    if before > 0 && before < super::transits::EXPECTED_SINCE {
        let tx = conn.transaction()?;
        super::transits::expect_stored(&tx, &rules)?;
        tx.commit()?;
    }
    let chain = event_log::head(&conn)?;
    let batches = BatchChain::open(&conn)?;
    let tail = Tail::open(&mut conn)?;
    let checkpointer = Checkpointer::start(&path)?;
    let reader = SqliteReader {
        path,
        pool: Mutex::new(Pool::default()),
        returned: Condvar::new(),
    };
    let writer = SqliteWriter {
        conn,
        chain,
        batches,
        rules,
        tail,
        pending: device_state::Pending::default(),
        dead_letters: DeadLetterPolicy::default(),
        pruner: dead_letters::Pruner::new(),
        checkpointer,
    };
    Ok((writer, reader))
}

pub struct SqliteWriter {
    conn: Connection,
    /// Hash of the newest event-log row; advanced only when a commit succeeds.
    chain: String,
    /// Where the next batch of reports joins the evidence; advanced only on a commit.
    batches: BatchChain,
    /// What expected arrivals are ordered by (the ETA rules the API answers with).
    rules: TransitRules,
    /// Reports committed but not yet folded into the indexed table.
    tail: Tail,
    /// Device states committed as progress, written with the next fold of the tail.
    pending: device_state::Pending,
    dead_letters: DeadLetterPolicy,
    pruner: dead_letters::Pruner,
    /// Last, so the writer's connection is closed before the final checkpoint.
    checkpointer: Checkpointer,
}

impl SqliteWriter {
    /// How much of the dead letters to keep (the default until set).
    pub fn set_dead_letter_policy(&mut self, policy: DeadLetterPolicy) {
        self.dead_letters = policy;
    }

    /// Folds the report tail now, as the writer does once a second under load.
    #[cfg(test)]
    pub(crate) fn fold_reports(&mut self) -> Result<usize, StoreError> {
        self.fold()
    }

    /// Writes the waiting device states and folds the report tail, in one transaction.
    fn fold(&mut self) -> Result<usize, StoreError> {
        let pending = &self.pending;
        let duplicates = self.tail.fold(&mut self.conn, |tx| pending.write_all(tx))?;
        self.pending.clear();
        Ok(duplicates)
    }
}

impl StoreWriter for SqliteWriter {
    fn commit(&mut self, writes: &[Write]) -> Result<Committed, StoreError> {
        let tx = self.conn.transaction()?;
        let mut committed = Committed::default();
        let mut saved = None;
        let mut chain = self.chain.clone();
        let mut leaves = Vec::new();
        // The two statements that run once per report and once per device, prepared once
        // per commit rather than looked up in the cache for every write, and one buffer for
        // the JSON they store.
        let mut insert_report = None;
        let mut upsert_state = None;
        let mut json = Vec::with_capacity(1024);
        // What becomes of each device's waiting state once this commits, in order: kept
        // (progress, written with the next fold) or forgotten (a newer state was written).
        let mut states = Vec::new();
        let saving = writes.iter().any(|w| matches!(w, Write::SavedTracks(_)));
        if saving {
            self.pending.write_all(&tx)?;
        }
        for write in writes {
            match write {
                Write::Device(d) => {
                    tx.prepare_cached(
                        "INSERT INTO devices (device_id, carrier, plate, registered_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        d.device_id.as_str(),
                        d.carrier,
                        d.plate,
                        d.registered_at.to_rfc3339(),
                    ])?;
                }
                Write::Report(report) => {
                    let insert = match &mut insert_report {
                        Some(statement) => statement,
                        None => insert_report.insert(tx.prepare_cached(reports::INSERT)?),
                    };
                    let batch = self.batches.next;
                    leaves.push(self.tail.insert(insert, report, batch, &mut json)?);
                    committed.reports += 1;
                }
                // Progress waits for the next fold, except at a clean stop (the save of the
                // tracks), after which there may be none.
                Write::DeviceProgress(id, state) if !saving => {
                    states.push((id, Some(&**state)));
                }
                Write::DeviceState(id, state) | Write::DeviceProgress(id, state) => {
                    let upsert = match &mut upsert_state {
                        Some(statement) => statement,
                        None => upsert_state.insert(tx.prepare_cached(device_state::UPSERT)?),
                    };
                    device_state::write(upsert, id, state, &mut json)?;
                    states.push((id, None));
                }
                Write::DeadLetter(d) => {
                    if dead_letters::insert(&tx, d, &self.dead_letters)? {
                        committed.trimmed.payloads_cut += 1;
                    }
                }
                Write::Event(e) => committed
                    .event_ids
                    .push(event_log::append(&tx, e, &mut chain)?),
                Write::Token(t) => {
                    tx.prepare_cached(
                        "INSERT INTO access_tokens (name, role, hash, created_at, expires_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        t.name,
                        t.role.to_string(),
                        t.hash,
                        t.created_at.to_rfc3339(),
                        t.expires_at.map(|at| at.timestamp_millis()),
                    ])?;
                }
                Write::Transit(t) => super::transits::upsert(&tx, t, &self.rules)?,
                Write::Account(a) => accounts::upsert(&tx, a)?,
                Write::RevokeAccount { username, at } => accounts::revoke(&tx, username, *at)?,
                Write::SavedTracks(s) => saved = Some(s),
                Write::Outbox(m) => super::exchange::queue(&tx, m)?,
                Write::Delivered {
                    peer,
                    seq,
                    taken,
                    at,
                } => super::exchange::delivered(&tx, peer, *seq, taken, at.timestamp_millis())?,
                Write::Applied { peer_key, seq, at } => {
                    super::exchange::applied(&tx, peer_key, *seq, at.timestamp_millis())?;
                }
                Write::RevokeToken { id, at } => {
                    tx.prepare_cached(
                        "UPDATE access_tokens SET revoked_at = ?2
                         WHERE id = ?1 AND revoked_at IS NULL",
                    )?
                    .execute(params![id, at.to_rfc3339()])?;
                }
            }
        }
        // They borrow the transaction, which is committed below.
        drop((insert_report, upsert_state));
        let events_id = committed
            .event_ids
            .last()
            .copied()
            .unwrap_or(self.batches.events_id);
        let bound = if leaves.is_empty() {
            None
        } else {
            let now = chrono::Utc::now().timestamp_millis();
            let events = (events_id, chain.as_str());
            Some(evidence::bind(
                &tx,
                &self.batches,
                &mut leaves,
                events,
                now,
            )?)
        };
        if let Some(saved) = saved {
            let batch = self.batches.next - i64::from(bound.is_none());
            super::saved_tracks::replace(&tx, saved, events_id, batch)?;
        }
        tx.commit()?;
        if saving {
            self.pending.clear();
        }
        for (id, state) in states {
            match state {
                Some(state) => self.pending.keep(id, state),
                None => self.pending.forget(id),
            }
        }
        self.chain = chain;
        self.batches.events_id = events_id;
        if let Some(hash) = bound {
            self.batches.head = hash;
            self.batches.next += 1;
        }
        match self
            .pruner
            .prune_if_due(&self.conn, &self.dead_letters, Utc::now())
        {
            Ok(pruned) => {
                committed.trimmed.expired += pruned.expired;
                committed.trimmed.over_budget += pruned.over_budget;
            }
            Err(e) => warn!(error = %e, "Pruning dead letters failed; retrying in a minute."),
        }
        if self.tail.is_due() {
            // The reports are committed in the tail already; a failed fold is tried again.
            match self.fold() {
                Ok(duplicates) => committed.duplicates += duplicates,
                Err(e) => {
                    warn!(error = %e, "Moving new reports into the indexed table failed; retrying in a second.")
                }
            }
        }
        if self.checkpointer.log_is_long() {
            checkpoint::checkpoint(&self.conn, "PASSIVE");
        }
        Ok(committed)
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        // The tail itself may wait for the next start, which folds it; only the states that
        // waited for it would be older there than they were here.
        if !self.pending.is_empty() {
            self.fold()?;
        }
        Ok(())
    }
}

/// The most read connections open at once. Each holds its own page cache, so an unbounded
/// pool grew with every burst of concurrent requests (hundreds of idle connections after a
/// burst of streams) and never shrank; readers past this wait for a connection.
pub const MAX_READERS: usize = 16;

#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

/// Read connections, opened on demand and kept for reuse, at most [`MAX_READERS`].
pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Pool>,
    returned: Condvar,
}

impl SqliteReader {
    /// An idle connection, or the right to open one; waits while all are in use.
    fn checkout(&self) -> Result<Option<Connection>, StoreError> {
        let mut pool = self.pool.lock().map_err(|_| StoreError::Closed)?;
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(Some(conn));
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                return Ok(None);
            }
            pool = self.returned.wait(pool).map_err(|_| StoreError::Closed)?;
        }
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        stable_plans(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match self.checkout()? {
            Some(conn) => conn,
            None => match self.open_reader() {
                Ok(conn) => conn,
                Err(e) => {
                    if let Ok(mut pool) = self.pool.lock() {
                        pool.open -= 1;
                    }
                    self.returned.notify_one();
                    return Err(e);
                }
            },
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(conn);
        }
        self.returned.notify_one();
        result
    }

    /// Read connections open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        self.pool.lock().map(|p| p.open).unwrap_or(0)
    }
}

const DEVICE_COLUMNS: &str = "d.device_id, d.carrier, d.plate, d.registered_at, s.state";

/// device_id, carrier, plate, registered_at, state JSON.
pub(super) type DeviceRow = (String, String, Option<String>, String, Option<String>);

fn device_row(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

pub(super) fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(serde::de::Error::custom(what))
}

pub(super) fn to_device(row: DeviceRow) -> Result<(Device, DeviceState), StoreError> {
    let (id, carrier, plate, registered_at, state) = row;
    let device = Device {
        device_id: DeviceId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        carrier,
        plate,
        registered_at: registered_at
            .parse()
            .map_err(|e| corrupt(format!("registered_at of {id}: {e}")))?,
    };
    let state = match state {
        Some(json) => serde_json::from_str(&json)?,
        None => DeviceState::default(),
    };
    Ok((device, state))
}

impl StoreReader for SqliteReader {
    fn device(&self, id: &DeviceId) -> Result<Option<(Device, DeviceState)>, StoreError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d
                 LEFT JOIN device_state s USING (device_id) WHERE d.device_id = ?1"
            );
            // One read transaction for the state and the tail (`device_state::overlay`).
            let tx = conn.unchecked_transaction()?;
            let row = tx
                .prepare_cached(&sql)?
                .query_row([id.as_str()], device_row)
                .optional()?;
            let mut found: Vec<_> = row.map(to_device).transpose()?.into_iter().collect();
            device_state::overlay(&tx, &mut found, |d: &Device| &d.device_id)?;
            Ok(found.pop())
        })
    }

    fn devices(
        &self,
        filter: &DeviceFilter,
        after: Option<&DeviceId>,
        limit: usize,
    ) -> Result<Vec<(Device, DeviceState)>, StoreError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d
                 LEFT JOIN device_state s USING (device_id)
                 WHERE d.device_id > ?1
                   AND (?3 IS NULL OR d.carrier = ?3)
                   AND (?4 IS NULL OR json_extract(s.state, '$.geo.country') = ?4)
                 ORDER BY d.device_id LIMIT ?2"
            );
            let after = after.map_or("", DeviceId::as_str);
            // One read transaction for the states and the tail (`device_state::overlay`).
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![after, limit as i64, filter.carrier, filter.country],
                device_row,
            )?;
            let mut page = rows
                .map(|row| to_device(row?))
                .collect::<Result<Vec<_>, StoreError>>()?;
            drop(stmt);
            device_state::overlay(&tx, &mut page, |d: &Device| &d.device_id)?;
            Ok(page)
        })
    }

    fn track(
        &self,
        id: &DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Fix>, StoreError> {
        self.with_conn(|conn| reports::track(conn, id, from, to, limit))
    }

    fn snapshot(
        &self,
        seq_window: u64,
        recent_reports: usize,
        engine: &str,
    ) -> Result<Snapshot, StoreError> {
        let devices = self.devices(&DeviceFilter::default(), None, usize::MAX >> 1)?;
        let saved = self.with_conn(|conn| super::saved_tracks::read_current(conn, engine));
        Snapshot::gather(devices, saved, |replayed| {
            // One connection per half of the devices, the halves side by side: after a
            // crash every device is replayed, and its two queries and the decoding of its
            // reports are most of a start. Within a half, one connection for every device:
            // a checkout per query cost more than the query.
            let read = |half: &[(DeviceId, Option<u64>)]| {
                self.with_conn(|conn| {
                    half.iter()
                        .map(|(id, max_seq)| window(conn, id, *max_seq, seq_window, recent_reports))
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            };
            let (first, second) = replayed.split_at(replayed.len() / 2);
            let (first, second) = side_by_side(|| read(first), || read(second));
            let mut windows = first?;
            windows.extend(second?);
            Ok(windows)
        })
    }

    fn device_window(
        &self,
        id: &DeviceId,
        max_seq: Option<u64>,
        seq_window: u64,
        recent_reports: usize,
    ) -> Result<(Vec<u64>, Vec<Report>), StoreError> {
        self.with_conn(|conn| window(conn, id, max_seq, seq_window, recent_reports))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_conn(|conn| event_log::read(conn, query))
    }

    fn recent_reports(&self, id: &DeviceId, limit: usize) -> Result<Vec<Report>, StoreError> {
        self.with_conn(|conn| reports::recent(conn, id, limit))
    }

    fn verify_event_log(&self) -> Result<ChainReport, StoreError> {
        self.with_conn(event_log::verify_chain)
    }

    fn chain_head(&self) -> Result<ChainHead, StoreError> {
        self.with_conn(evidence::head)
    }

    fn hashes_at(
        &self,
        events: i64,
        batches: i64,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        self.with_conn(|conn| evidence::hashes_at(conn, events, batches))
    }

    fn verify_positions(
        &self,
        progress: &mut dyn FnMut(i64, u64),
    ) -> Result<PositionsReport, StoreError> {
        self.with_conn(|conn| evidence::verify(conn, progress))
    }

    fn chain_roots(&self, head: &ChainHead) -> Result<(String, String), StoreError> {
        self.with_conn(|conn| super::evidence_export::chain_roots(conn, head))
    }

    fn extend_chain_frontiers(
        &self,
        frontiers: &mut super::ChainFrontiers,
        head: &ChainHead,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| super::evidence_export::extend_frontiers(conn, frontiers, head))
    }

    fn export(
        &self,
        transit_id: &str,
        devices: &[String],
        window_ms: (i64, i64),
        head: &ChainHead,
    ) -> Result<super::ExportData, StoreError> {
        self.with_conn(|conn| {
            super::evidence_export::export(conn, transit_id, devices, window_ms, head)
        })
    }

    fn principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        self.with_conn(|conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, name, role FROM access_tokens
                     WHERE hash = ?1 AND revoked_at IS NULL
                       AND (expires_ms IS NULL OR expires_ms > ?2)",
                )?
                .query_row(params![token_hash, Utc::now().timestamp_millis()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()?;
            row.map(|(token_id, name, role)| principal_of(token_id, name, &role))
                .transpose()
        })
    }

    fn dead_letters(
        &self,
        reason: Option<crate::telemetry::RejectReason>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.with_conn(|conn| dead_letters::newest(conn, reason, limit))
    }

    fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.with_conn(|conn| accounts::one(conn, username))
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with_conn(accounts::all)
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, role, created_at, revoked_at, expires_ms
                 FROM access_tokens ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ),
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })?;
            rows.map(|row| {
                let ((id, name, role), created, revoked, expires) = row?;
                token_record(id, name, &role, &created, revoked.as_deref(), expires)
            })
            .collect()
        })
    }

    fn transit(&self, id: &str) -> Result<Option<crate::transit::Transit>, StoreError> {
        self.with_conn(|conn| super::transits::get(conn, id))
    }

    fn transits(
        &self,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::transit::Transit>, StoreError> {
        self.with_conn(|conn| super::transits::list(conn, open_only, limit))
    }

    fn all_transits(
        &self,
        take_in: &(dyn Fn(&mut crate::transit::Transit) + Sync),
    ) -> Result<Vec<crate::transit::Transit>, StoreError> {
        // Decoding is most of the work: two halves on two connections, side by side.
        let half = |parity| self.with_conn(|conn| super::transits::all(conn, parity, take_in));
        let (even, odd) = side_by_side(|| half(0), || half(1));
        let mut transits = even?;
        transits.extend(odd?);
        Ok(transits)
    }

    fn transits_expected_at(
        &self,
        post_id: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<crate::transit::Transit>, StoreError> {
        self.with_conn(|conn| super::transits::expected_at(conn, post_id, skip, limit))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn exchange_cursors(&self) -> Result<super::ExchangeCursors, StoreError> {
        self.with_conn(super::exchange::cursors)
    }

    fn exchange_waiting(
        &self,
        peer: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<super::OutboxMessage>, StoreError> {
        self.with_conn(|conn| super::exchange::waiting(conn, peer, after, limit))
    }

    fn exchange_depth(&self, peer: &str) -> Result<super::OutboxDepth, StoreError> {
        self.with_conn(|conn| super::exchange::depth(conn, peer))
    }

    fn exchange_of_transit(
        &self,
        transit_id: &str,
    ) -> Result<Vec<super::TransitExchange>, StoreError> {
        self.with_conn(|conn| super::exchange::of_transit(conn, transit_id))
    }
}

/// A stored token's row, read back.
pub(super) fn token_record(
    id: i64,
    name: String,
    role: &str,
    created: &str,
    revoked: Option<&str>,
    expires_ms: Option<i64>,
) -> Result<TokenRecord, StoreError> {
    let time = |t: &str| {
        t.parse::<DateTime<Utc>>()
            .map_err(|e| corrupt(format!("token {id}: {e}")))
    };
    Ok(TokenRecord {
        id,
        name,
        role: role
            .parse()
            .map_err(|e: InvalidRole| corrupt(e.to_string()))?,
        created_at: time(created)?,
        revoked_at: revoked.map(time).transpose()?,
        expires_at: expires_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
    })
}

/// The principal of a live token's row.
pub(super) fn principal_of(
    token_id: i64,
    name: String,
    role: &str,
) -> Result<Principal, StoreError> {
    let role = role
        .parse()
        .map_err(|e: InvalidRole| corrupt(e.to_string()))?;
    Ok(Principal {
        token_id,
        name,
        role,
    })
}

/// A device's stored seqs in the duplicate window below its highest seq, and its last reports.
///
/// The highest seq is the stored state's `max_seq` or the highest stored seq, whichever is
/// higher: the reports are the record, and a state that lags them (or is missing) must not
/// shrink the window.
fn window(
    conn: &Connection,
    id: &DeviceId,
    max_seq: Option<u64>,
    seq_window: u64,
    recent_reports: usize,
) -> Result<(Vec<u64>, Vec<Report>), StoreError> {
    let newest_first = reports::recent_seqs(conn, id, reports::window_reads(seq_window))?;
    let seqs = reports::seqs_in_window(newest_first, max_seq, seq_window);
    Ok((seqs, reports::recent(conn, id, recent_reports)?))
}
