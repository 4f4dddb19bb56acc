//! The PostgreSQL store: the same [`StoreWriter`](super::StoreWriter) and
//! [`StoreReader`](super::StoreReader) as the SQLite one, for instances that share one
//! database (active and standby).
//!
//! The SQL differs; what is hashed, serialised and decided is the SQLite modules' own code,
//! called from here, so both stores give the same answers and the same evidence.

//!
//! Every connection lives on a thread the store owns ([`worker`]): the blocking `postgres`
//! client cannot be called from inside a tokio runtime, and the store's callers include
//! async code. The writer is one such thread with one connection; readers share a pool of
//! at most [`MAX_READERS`], opened on demand.

mod accounts;
mod dead_letters;
mod devices;
mod event_log;
mod evidence;
mod exchange;
pub mod lease;
mod migrate;
mod reports;
mod saved_tracks;
mod statements;
#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
mod tokens;
mod transits;
mod worker;
mod writer;

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls};

use super::dead_letters::DeadLetterPolicy;
use super::event_log::{ChainReport, EventQuery, StoredEvent};
use super::evidence::{ChainHead, PositionsReport};
use super::{
    ChainFrontiers, Committed, DeadLetter, DeviceFilter, ExchangeCursors, ExportData, OutboxDepth,
    OutboxMessage, Snapshot, StoreError, StoreReader, StoreWriter, TransitExchange, Write,
};
use crate::auth::account::Account;
use crate::auth::{Principal, TokenRecord};
use crate::device::{Device, DeviceState};
use crate::telemetry::{DeviceId, Fix, RejectReason, Report};
use crate::threads::side_by_side;
use crate::transit::Transit;
use worker::{Pool, Worker};
use writer::WriterState;

/// The most read connections open at once, as for SQLite
/// ([`crate::store::sqlite::MAX_READERS`]): each is a server process, and a burst of
/// requests must not open one each; readers past this wait for a connection.
pub const MAX_READERS: usize = 16;

/// Connects to the database at `url` (`postgres://user@host:port/db`), brings its schema to
/// this build's, and returns the writer and the readers. Readers connect on first use.
///
/// # Errors
/// The server cannot be reached, a migration fails, or the schema is newer than this build.
pub fn open(url: &str) -> Result<(PgWriter, PgReader), StoreError> {
    let writer_url = url.to_owned();
    let writer = Worker::start("pg-writer", move || WriterState::open(writer_url))?;
    let reader = PgReader {
        url: url.to_owned(),
        pool: Pool::new(MAX_READERS),
    };
    Ok((PgWriter { worker: writer }, reader))
}

/// The single writer: one connection on its own thread.
pub struct PgWriter {
    worker: Worker<WriterState>,
}

impl PgWriter {
    /// How much of the dead letters to keep (the default until set).
    ///
    /// # Errors
    /// The writer's thread is gone.
    pub fn set_dead_letter_policy(&mut self, policy: DeadLetterPolicy) -> Result<(), StoreError> {
        self.worker.run(move |state| {
            state.dead_letters = policy;
            Ok(())
        })
    }
}

impl StoreWriter for PgWriter {
    fn commit(&mut self, writes: &[Write]) -> Result<Committed, StoreError> {
        // The writes cross to the writer's thread; the caller waits for the commit anyway.
        let writes = writes.to_vec();
        self.worker.run(move |state| state.commit(&writes))
    }

    fn fence(&mut self, epoch: i64) -> Result<(), StoreError> {
        self.worker.run(move |state| state.fence(epoch))
    }
}

/// Read connections, each on its own thread, at most [`MAX_READERS`].
pub struct PgReader {
    url: String,
    pool: Pool<Client>,
}

impl PgReader {
    fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let url = self.url.clone();
        self.pool.run(
            move || Worker::start("pg-reader", move || Ok(Client::connect(&url, NoTls)?)),
            f,
        )
    }

    /// Read connections open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        self.pool.open_connections()
    }
}

impl StoreReader for PgReader {
    fn device(&self, id: &DeviceId) -> Result<Option<(Device, DeviceState)>, StoreError> {
        let id = id.clone();
        self.with_conn(move |c| devices::one(c, &id))
    }

    fn devices(
        &self,
        filter: &DeviceFilter,
        after: Option<&DeviceId>,
        limit: usize,
    ) -> Result<Vec<(Device, DeviceState)>, StoreError> {
        let (filter, after) = (filter.clone(), after.cloned());
        self.with_conn(move |c| devices::list(c, &filter, after.as_ref(), limit))
    }

    fn track(
        &self,
        id: &DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Fix>, StoreError> {
        let id = id.clone();
        self.with_conn(move |c| reports::track(c, &id, from, to, limit))
    }

    fn snapshot(
        &self,
        seq_window: u64,
        recent_reports: usize,
        engine: &str,
    ) -> Result<Snapshot, StoreError> {
        let engine = engine.to_owned();
        // One connection for the whole snapshot: a checkout per device cost more than its
        // queries.
        self.with_conn(move |c| {
            let devices = devices::list(c, &DeviceFilter::default(), None, usize::MAX >> 1)?;
            let saved = saved_tracks::read_current(c, &engine);
            Snapshot::gather(devices, saved, |replayed| {
                replayed
                    .iter()
                    .map(|(id, max_seq)| {
                        reports::window(c, id, *max_seq, seq_window, recent_reports)
                    })
                    .collect()
            })
        })
    }

    fn device_window(
        &self,
        id: &DeviceId,
        max_seq: Option<u64>,
        seq_window: u64,
        recent_reports: usize,
    ) -> Result<(Vec<u64>, Vec<Report>), StoreError> {
        let id = id.clone();
        self.with_conn(move |c| reports::window(c, &id, max_seq, seq_window, recent_reports))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let query = query.clone();
        self.with_conn(move |c| event_log::read(c, &query))
    }

    fn recent_reports(&self, id: &DeviceId, limit: usize) -> Result<Vec<Report>, StoreError> {
        let id = id.clone();
        self.with_conn(move |c| reports::recent(c, &id, limit))
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
        self.with_conn(move |c| evidence::hashes_at(c, events, batches))
    }

    fn verify_positions(
        &self,
        progress: &mut dyn FnMut(i64, u64),
    ) -> Result<PositionsReport, StoreError> {
        // The walk runs on the connection's thread; its progress comes back over a channel
        // and is handed to `progress` here, on the caller's thread.
        let (told, heard) = std::sync::mpsc::channel();
        let walk = std::thread::scope(|scope| {
            let walk = scope.spawn(|| {
                self.with_conn(move |c| {
                    let mut tell = |batches, reports| {
                        let _ = told.send((batches, reports));
                    };
                    super::evidence::verify_from(&mut evidence::Source(c), &mut tell)
                })
            });
            for (batches, reports) in heard {
                progress(batches, reports);
            }
            walk.join()
        });
        walk.map_err(|_| StoreError::Closed)?
    }

    fn chain_roots(&self, head: &ChainHead) -> Result<(String, String), StoreError> {
        let mut frontiers = ChainFrontiers::default();
        self.extend_chain_frontiers(&mut frontiers, head)?;
        Ok(frontiers.roots())
    }

    fn extend_chain_frontiers(
        &self,
        frontiers: &mut ChainFrontiers,
        head: &ChainHead,
    ) -> Result<(), StoreError> {
        let (mut extended, head) = (std::mem::take(frontiers), head.clone());
        let extended = self.with_conn(move |c| {
            evidence::extend_frontiers(c, &mut extended, &head)?;
            Ok(extended)
        });
        // On an error the frontiers are rebuilt from the start at the next call.
        *frontiers = extended?;
        Ok(())
    }

    fn export(
        &self,
        transit_id: &str,
        devices: &[String],
        window_ms: (i64, i64),
        head: &ChainHead,
    ) -> Result<ExportData, StoreError> {
        let (transit_id, devices, head) = (transit_id.to_owned(), devices.to_vec(), head.clone());
        self.with_conn(move |c| evidence::export(c, &transit_id, &devices, window_ms, &head))
    }

    fn principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.with_conn(move |c| tokens::principal(c, &token_hash))
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with_conn(tokens::all)
    }

    fn dead_letters(
        &self,
        reason: Option<RejectReason>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.with_conn(move |c| dead_letters::newest(c, reason, limit))
    }

    fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let username = username.to_owned();
        self.with_conn(move |c| accounts::one(c, &username))
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with_conn(accounts::all)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.simple_query("SELECT 1")?;
            Ok(())
        })
    }

    fn transit(&self, id: &str) -> Result<Option<Transit>, StoreError> {
        let id = id.to_owned();
        self.with_conn(move |c| transits::get(c, &id))
    }

    fn all_transits(
        &self,
        take_in: &(dyn Fn(&mut Transit) + Sync),
    ) -> Result<Vec<Transit>, StoreError> {
        // The worker threads only fetch the rows: the bodies are decoded here.
        let half = |n| {
            let bodies = self.with_conn(move |c| transits::bodies(c, n))?;
            bodies
                .iter()
                .map(|body| {
                    let mut t = super::transits::parse(body)?;
                    take_in(&mut t);
                    Ok(t)
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        // Decoding is most of the work: two halves on two connections, side by side.
        let (even, odd) = side_by_side(|| half(0), || half(1));
        let mut all = even?;
        all.extend(odd?);
        Ok(all)
    }

    fn transits(&self, open_only: bool, limit: usize) -> Result<Vec<Transit>, StoreError> {
        self.with_conn(move |c| transits::list(c, open_only, limit))
    }

    fn transits_expected_at(
        &self,
        post_id: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Transit>, StoreError> {
        let post_id = post_id.to_owned();
        self.with_conn(move |c| transits::expected_at(c, &post_id, skip, limit))
    }

    fn exchange_cursors(&self) -> Result<ExchangeCursors, StoreError> {
        self.with_conn(exchange::cursors)
    }

    fn exchange_waiting(
        &self,
        peer: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let peer = peer.to_owned();
        self.with_conn(move |c| exchange::waiting(c, &peer, after, limit))
    }

    fn exchange_depth(&self, peer: &str) -> Result<OutboxDepth, StoreError> {
        let peer = peer.to_owned();
        self.with_conn(move |c| exchange::depth(c, &peer))
    }

    fn exchange_of_transit(&self, transit_id: &str) -> Result<Vec<TransitExchange>, StoreError> {
        let transit_id = transit_id.to_owned();
        self.with_conn(move |c| exchange::of_transit(c, &transit_id))
    }
}
