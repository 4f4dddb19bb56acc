//! Persistence. Only this module speaks SQL.
//!
//! The pipeline's committer is the one writer ([`StoreWriter`]); the API reads through
//! [`StoreReader`], on other connections, and so only ever sees committed data. SQLite is the
//! embedded default; the traits are the seam for a PostgreSQL implementation.

mod accounts;
mod checkpoint;
mod dead_letters;
mod device_state;
mod event_log;
mod evidence;
mod evidence_export;
mod exchange;
mod location;
mod migrations;
pub mod postgres;
pub mod private;
mod reports;
#[cfg(test)]
mod reports_tests;
mod saved_tracks;
mod sqlite;
mod transits;

use chrono::{DateTime, Utc};

use crate::auth::account::Account;
use crate::auth::{Principal, Role, TokenRecord};
use crate::device::{Device, DeviceState};
use crate::telemetry::{DeviceId, Fix, RejectReason, Report};

pub use dead_letters::{DeadLetterPolicy, Trimmed};
pub use event_log::record_hash;
pub use event_log::{ChainReport, EventQuery, LoggedEvent, StoredEvent};
pub use evidence::{exported_batch_hash, report_leaf, ChainHead, PositionsReport, ReportRow};
pub use evidence_export::{chain_leaf, ChainFrontiers, ExportData, RawBatch, RawEvent, RawReport};
pub use exchange::{ExchangeCursors, OutboxDepth, OutboxMessage, Taken, TransitExchange};
pub use location::{masked, open_from, Location, Opened, StoreUrl};
pub use sqlite::{open, SqliteReader, SqliteWriter, FILE_NAME as SQLITE_FILE};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres_reason(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("stored JSON is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the database schema is version {found}, newer than this build knows ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("the embedded transit rules: {0}")]
    Rules(#[from] crate::transit::rules::RulesError),
    #[error("the store is closed")]
    Closed,
    #[error("a stored record is invalid: {0}")]
    Invalid(String),
    /// The writer's lease epoch is no longer the one in the store: another instance took
    /// over, and this one must not write again (src/store/postgres/lease.rs).
    #[error("fenced: the lease of epoch {epoch} was taken over by another instance")]
    Fenced { epoch: i64 },
    #[error("this store has no lease: only one instance may use it")]
    NoLease,
    #[error("cannot start a thread of the store: {0}")]
    Thread(std::io::Error),
    #[error("the store URL {0} is of no known kind: use postgres://USER:PASSWORD@HOST:PORT/DATABASE, or no URL for the embedded SQLite in the data directory")]
    UnknownScheme(String),
}

/// What the server said, not only "db error": the client's own text for an error the server
/// reported leaves the reason (a refused edit of the event log, a lost lease) in its source.
fn postgres_reason(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// A message refused at the edge, kept as a dead letter.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub received_at: DateTime<Utc>,
    pub reason: RejectReason,
    pub detail: String,
    pub topic: String,
    pub device_id: Option<DeviceId>,
    pub payload: Vec<u8>,
}

/// One change, applied in order inside a group commit.
#[derive(Clone, Debug)]
pub enum Write {
    Device(Device),
    Report(Report),
    /// A device's state, written in this commit. Boxed: the state is far larger than the
    /// other writes.
    DeviceState(DeviceId, Box<DeviceState>),
    /// A device's state after reports that changed nothing but what the reports themselves
    /// record (seq, last seen, position, readings, seal) and its progress along its corridor.
    /// It may wait for the next fold of the report tail (about a second), which writes each
    /// device's newest such state once: until then readers apply the tail's reports to the
    /// stored state, and a start after a crash rebuilds it from them (`store::reports`).
    DeviceProgress(DeviceId, Box<DeviceState>),
    DeadLetter(DeadLetter),
    /// Appended to the hash-chained event log.
    Event(LoggedEvent),
    /// A new API token, by the hash of its text.
    Token(NewToken),
    RevokeToken {
        id: i64,
        at: DateTime<Utc>,
    },
    /// A transit as it stands after a change (boxed: it carries its whole history).
    Transit(Box<crate::transit::Transit>),
    /// A new MQTT account, or a new secret for an existing one (rotation).
    Account(NewAccount),
    /// The account's secret stops working.
    RevokeAccount {
        username: String,
        at: DateTime<Utc>,
    },
    /// Every device's tracking state at a clean stop, replacing the previous save. Written
    /// last: it stands for the store as it is once its transaction commits.
    SavedTracks(Box<SavedTracks>),
    /// A message owed to a peer instance, queued with the change it reports.
    Outbox(Box<OutboxMessage>),
    /// A peer has taken every message up to `seq`, among them `taken`.
    Delivered {
        peer: String,
        seq: i64,
        taken: Vec<Taken>,
        at: DateTime<Utc>,
    },
    /// The message `seq` from the peer with key fingerprint `peer_key` was applied or refused
    /// for good: it is not applied again.
    Applied {
        peer_key: String,
        seq: i64,
        at: DateTime<Utc>,
    },
}

/// The pipeline's per-device state in a compact form (see `pipeline::saved`).
#[derive(Clone, Debug, Default)]
pub struct SavedTracks {
    /// The geofence index the tracks hold indices into ([`crate::geofence::GeofenceIndex::fingerprint`]).
    pub engine: String,
    pub tracks: Vec<(DeviceId, Vec<u8>)>,
}

/// An MQTT account to store: everything but the secret.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub username: String,
    pub kind: crate::auth::account::AccountKind,
    pub hash: String,
    pub gateway: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A token to store: everything but the token text.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    /// After this the token no longer authenticates; `None`: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which devices a listing returns; `None` fields do not narrow it.
#[derive(Clone, Debug, Default)]
pub struct DeviceFilter {
    pub carrier: Option<String>,
    /// ISO alpha-2 code of the country the device was last seen in.
    pub country: Option<String>,
}

/// What a committed batch did that the caller counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    pub reports: usize,
    /// Reports already stored (a redelivery the in-memory window could not see).
    pub duplicates: usize,
    /// The event-log ids given to the batch's `Write::Event`s, in order.
    pub event_ids: Vec<i64>,
    /// Dead letters cut or deleted to stay within their budget.
    pub trimmed: Trimmed,
}

/// The single writer. Calls are blocking: the committer runs them on its own thread.
pub trait StoreWriter: Send + 'static {
    /// Applies all writes in one transaction: all or nothing.
    ///
    /// # Errors
    /// Any database error; nothing of the batch is then stored.
    fn commit(&mut self, writes: &[Write]) -> Result<Committed, StoreError>;

    /// Writes what was left to write later (device states waiting for the next fold), at a
    /// stop.
    ///
    /// # Errors
    /// Any database error; what waited is then rebuilt from the reports at the next start.
    fn finish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes every later commit check, inside its transaction, that the lease is still at
    /// `epoch`, and fail with [`StoreError::Fenced`] otherwise: the writer of an active
    /// instance among several on one database (src/store/postgres/lease.rs). Only a store
    /// several instances share has a lease.
    ///
    /// # Errors
    /// [`StoreError::NoLease`] from a store without one (SQLite).
    fn fence(&mut self, epoch: i64) -> Result<(), StoreError> {
        let _ = epoch;
        Err(StoreError::NoLease)
    }
}

/// What the pipeline needs to resume after a restart.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub devices: Vec<(Device, DeviceState)>,
    /// Per device, the stored seqs within the duplicate window below its highest seq.
    pub recent_seqs: Vec<(DeviceId, Vec<u64>)>,
    /// Per device, its last reports, to rebuild the geofence state.
    pub recent_reports: Vec<(DeviceId, Vec<Report>)>,
    /// Per device, its state as saved at the last clean stop, when nothing was committed
    /// since and it was saved with the same geofence index; such devices have no seqs or
    /// reports above.
    pub saved: std::collections::HashMap<DeviceId, Vec<u8>>,
}

impl Snapshot {
    /// The snapshot of `devices`, the same on every store: a device with a saved track
    /// (`saved`, when it could be read) is taken up from it; every other one is rebuilt from
    /// its reports, whatever its stored state says (a state may lag the reports it was built
    /// from), with `windows` reading, for each device and its stored `max_seq`, its
    /// duplicate-window seqs and its last reports, in the order given.
    fn gather<W>(
        devices: Vec<(Device, DeviceState)>,
        saved: Result<std::collections::HashMap<DeviceId, Vec<u8>>, StoreError>,
        windows: W,
    ) -> Result<Self, StoreError>
    where
        W: FnOnce(&[(DeviceId, Option<u64>)]) -> Result<Vec<Window>, StoreError>,
    {
        // The save only saves time: one that cannot be read (an edited store) is replayed.
        let saved = saved.unwrap_or_else(|error| {
            tracing::warn!(%error, "The tracking state saved at the last stop cannot be read; replaying every device's reports.");
            Default::default()
        });
        let replayed: Vec<(DeviceId, Option<u64>)> = devices
            .iter()
            .filter(|(device, _)| !saved.contains_key(&device.device_id))
            .map(|(device, state)| (device.device_id.clone(), state.max_seq))
            .collect();
        let read = windows(&replayed)?;
        if read.len() != replayed.len() {
            return Err(StoreError::Invalid(format!(
                "{} devices' reports read for {} devices to replay",
                read.len(),
                replayed.len()
            )));
        }
        let (recent_seqs, recent_reports) = replayed
            .into_iter()
            .zip(read)
            .map(|((id, _), (seqs, reports))| ((id.clone(), seqs), (id, reports)))
            .unzip();
        Ok(Self {
            devices,
            recent_seqs,
            recent_reports,
            saved,
        })
    }
}

/// A device's duplicate-window seqs and its last reports, as a restore replays them.
pub type Window = (Vec<u64>, Vec<Report>);

/// Readers for the API. Blocking: call them from `spawn_blocking`.
pub trait StoreReader: Send + Sync + 'static {
    /// # Errors
    /// Database errors.
    fn device(&self, id: &DeviceId) -> Result<Option<(Device, DeviceState)>, StoreError>;
    /// Devices ordered by id, starting after `after`, narrowed by `filter`.
    ///
    /// # Errors
    /// Database errors.
    fn devices(
        &self,
        filter: &DeviceFilter,
        after: Option<&DeviceId>,
        limit: usize,
    ) -> Result<Vec<(Device, DeviceState)>, StoreError>;
    /// Fixes of a device between two device times, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    fn track(
        &self,
        id: &DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Fix>, StoreError>;
    /// # Errors
    /// Database errors.
    fn snapshot(
        &self,
        seq_window: u64,
        recent_reports: usize,
        engine: &str,
    ) -> Result<Snapshot, StoreError>;
    /// One device's stored seqs within the duplicate window below `max_seq` and its last
    /// `recent_reports` reports: what rebuilds its state when no saved state can be used.
    ///
    /// # Errors
    /// Database errors.
    fn device_window(
        &self,
        id: &DeviceId,
        max_seq: Option<u64>,
        seq_window: u64,
        recent_reports: usize,
    ) -> Result<(Vec<u64>, Vec<Report>), StoreError>;
    /// Events of the log, oldest first.
    ///
    /// # Errors
    /// Database errors.
    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// The last `limit` reports of a device by device time, oldest first.
    ///
    /// # Errors
    /// Database errors.
    fn recent_reports(&self, id: &DeviceId, limit: usize) -> Result<Vec<Report>, StoreError>;
    /// Walks the event log's hash chain.
    ///
    /// # Errors
    /// Database errors.
    fn verify_event_log(&self) -> Result<ChainReport, StoreError>;
    /// The heads of the event log and of the report batches: what a checkpoint signs.
    ///
    /// # Errors
    /// Database errors.
    fn chain_head(&self) -> Result<ChainHead, StoreError>;
    /// The stored hashes of event record `events` and report batch `batches` (0: genesis).
    ///
    /// # Errors
    /// Database errors.
    fn hashes_at(
        &self,
        events: i64,
        batches: i64,
    ) -> Result<(Option<String>, Option<String>), StoreError>;
    /// Checks every stored report against the batch it was committed in; `progress` hears
    /// (batches, reports) as the walk goes.
    ///
    /// # Errors
    /// Database errors.
    fn verify_positions(
        &self,
        progress: &mut dyn FnMut(i64, u64),
    ) -> Result<PositionsReport, StoreError>;
    /// The Merkle roots (hex) over the event hashes and the batch hashes up to `head`.
    ///
    /// # Errors
    /// Database errors.
    fn chain_roots(&self, head: &ChainHead) -> Result<(String, String), StoreError>;
    /// Extends `frontiers` with what both chains gained up to `head`: the checkpoint writer's
    /// incremental [`chain_roots`](Self::chain_roots).
    ///
    /// # Errors
    /// Database errors.
    fn extend_chain_frontiers(
        &self,
        frontiers: &mut ChainFrontiers,
        head: &ChainHead,
    ) -> Result<(), StoreError>;
    /// What a transit's evidence bundle is cut from: its records up to `head`, and the
    /// reports of `devices` between two device times (ms) committed up to `head`.
    ///
    /// # Errors
    /// Database errors, or too many reports for one bundle.
    fn export(
        &self,
        transit_id: &str,
        devices: &[String],
        window_ms: (i64, i64),
        head: &ChainHead,
    ) -> Result<ExportData, StoreError>;
    /// The live (not revoked) token with this hash, as a principal.
    ///
    /// # Errors
    /// Database errors, or a stored role this build cannot read.
    fn principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError>;
    /// Every token, revoked ones included, oldest first.
    ///
    /// # Errors
    /// Database errors.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// The newest dead letters, optionally of one reason.
    ///
    /// # Errors
    /// Database errors.
    fn dead_letters(
        &self,
        reason: Option<RejectReason>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    /// The MQTT account of `username`, live or revoked.
    ///
    /// # Errors
    /// Database errors.
    fn account(&self, username: &str) -> Result<Option<Account>, StoreError>;
    /// Every MQTT account, by username.
    ///
    /// # Errors
    /// Database errors.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// A cheap query that proves the database answers.
    ///
    /// # Errors
    /// Database errors.
    fn ping(&self) -> Result<(), StoreError>;
    /// # Errors
    /// Database errors or a corrupt row.
    fn transit(&self, id: &str) -> Result<Option<crate::transit::Transit>, StoreError>;
    /// Every transit, open or closed, in no particular order. Each is passed through
    /// `take_in` as soon as it is decoded, on the thread that read it: a start shares the
    /// itineraries there, so that the copies decoded from the rows never all live at once.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    fn all_transits(
        &self,
        take_in: &(dyn Fn(&mut crate::transit::Transit) + Sync),
    ) -> Result<Vec<crate::transit::Transit>, StoreError>;
    /// Transits, newest declared first; only open ones when `open_only`.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    fn transits(
        &self,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::transit::Transit>, StoreError>;
    /// Open transits whose next checkpoint is the BCP of `post_id`, soonest ETA first (then
    /// newest declared), from the `skip`th on, at most `limit`.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    fn transits_expected_at(
        &self,
        post_id: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<crate::transit::Transit>, StoreError>;
    /// Where the exchange with peer instances stands.
    ///
    /// # Errors
    /// Database errors.
    fn exchange_cursors(&self) -> Result<ExchangeCursors, StoreError>;
    /// A peer's waiting messages after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    fn exchange_waiting(
        &self,
        peer: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// # Errors
    /// Database errors.
    fn exchange_depth(&self, peer: &str) -> Result<OutboxDepth, StoreError>;
    /// Every peer's messages about one transit, taken and waiting.
    ///
    /// # Errors
    /// Database errors.
    fn exchange_of_transit(&self, transit_id: &str) -> Result<Vec<TransitExchange>, StoreError>;
}
