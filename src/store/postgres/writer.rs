//! The one writer: a group commit in one PostgreSQL transaction, on the writer's thread.

use chrono::Utc;
use postgres::{Client, NoTls};
use tracing::warn;

use super::statements::Statements;
use super::{
    accounts, dead_letters, devices, event_log, evidence, exchange, reports, saved_tracks, tokens,
    transits,
};
use crate::store::dead_letters::DeadLetterPolicy;
use crate::store::evidence::BatchChain;
use crate::store::reports::utf8;
use crate::store::{Committed, StoreError, Write};
use crate::transit::TransitRules;

/// What the writer's thread owns.
pub(super) struct WriterState {
    pub(super) url: String,
    pub(super) client: Client,
    /// The commit's statements, prepared on `client`; emptied with each new connection.
    statements: Statements,
    /// Hash of the newest event-log row; advanced only when a commit succeeds.
    pub(super) chain: String,
    /// Where the next batch of reports joins the evidence; advanced only on a commit.
    pub(super) batches: BatchChain,
    /// What expected arrivals are ordered by.
    pub(super) rules: TransitRules,
    pub(super) dead_letters: DeadLetterPolicy,
    pruner: dead_letters::Pruner,
    /// The lease epoch every commit checks first, once this is the writer of the active
    /// instance among several (src/store/postgres/lease.rs).
    fence: Option<i64>,
    /// The last commit failed. A connection the server ended can fail a commit before the
    /// client has seen it close, so the next commit checks it first rather than failing on
    /// it again.
    suspect: bool,
}

/// How long the check of a suspect connection may take before it counts as lost.
const CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// A fenced writer's session ends after this long idle inside a transaction: a process
/// frozen mid-commit (SIGSTOP, a paused VM) would otherwise hold its lock on the lease row,
/// and keep a takeover waiting, for as long as it is frozen. Its transaction rolls back; none
/// of it was acknowledged, so the broker delivers it again to the new holder.
pub(super) const FENCED_IDLE_IN_TRANSACTION: &str =
    "SET idle_in_transaction_session_timeout = 2000";

impl WriterState {
    pub(super) fn open(url: String) -> Result<Self, StoreError> {
        let mut client = Client::connect(&url, NoTls)?;
        super::migrate::migrate(&mut client)?;
        let chain = event_log::head(&mut client)?;
        let batches = evidence::chain(&mut client)?;
        Ok(Self {
            url,
            client,
            statements: Statements::default(),
            chain,
            batches,
            rules: TransitRules::embedded()?,
            dead_letters: DeadLetterPolicy::default(),
            pruner: dead_letters::Pruner::new(),
            fence: None,
            suspect: false,
        })
    }

    /// Fences every later commit with the lease's `epoch` (see [`super::lease::hold`]).
    pub(super) fn fence(&mut self, epoch: i64) -> Result<(), StoreError> {
        self.client.batch_execute(FENCED_IDLE_IN_TRANSACTION)?;
        self.fence = Some(epoch);
        Ok(())
    }

    /// A lost connection is opened again before the next commit, and both chains are read
    /// back: a commit whose answer was lost may or may not have been applied.
    fn reconnect_if_closed(&mut self) -> Result<(), StoreError> {
        let suspect = std::mem::take(&mut self.suspect);
        if self.client.is_closed() || (suspect && self.client.is_valid(CHECK).is_err()) {
            warn!("The connection to PostgreSQL was lost; opening it again.");
            let mut client = Client::connect(&self.url, NoTls)?;
            if self.fence.is_some() {
                client.batch_execute(FENCED_IDLE_IN_TRANSACTION)?;
            }
            self.chain = event_log::head(&mut client)?;
            self.batches = evidence::chain(&mut client)?;
            self.client = client;
            self.statements = Statements::default();
        }
        Ok(())
    }

    /// Applies all writes in one transaction: all or nothing.
    pub(super) fn commit(&mut self, writes: &[Write]) -> Result<Committed, StoreError> {
        self.reconnect_if_closed()?;
        let committed = self.apply(writes);
        self.suspect = committed.is_err();
        committed
    }

    fn apply(&mut self, writes: &[Write]) -> Result<Committed, StoreError> {
        let statements = &mut self.statements;
        let mut tx = self.client.transaction()?;
        if let Some(epoch) = self.fence {
            super::lease::hold(&mut tx, epoch)?;
        }
        let mut committed = Committed::default();
        let mut saved = None;
        let mut chain = self.chain.clone();
        let mut leaves = Vec::new();
        let batch = self.batches.next;
        // Reports and device states are sent a statement per run of them, not one per
        // write. A run ends only before a device's registration, which its reports and
        // state refer to; no other write reads or refers to either table, so letting a run
        // span them stores the same rows in the same order, in a few statements a commit
        // instead of a pair per event.
        let mut pending = reports::Pending::default();
        let mut states: Vec<(String, String)> = Vec::new();
        let mut json = Vec::with_capacity(1024);
        for write in writes {
            if matches!(write, Write::Device(_)) {
                committed.duplicates += pending.flush(&mut tx, statements, batch)?;
                devices::upsert_states(&mut tx, statements, &mut states)?;
            }
            match write {
                Write::Device(d) => devices::insert(&mut tx, statements, d)?,
                Write::Report(report) => {
                    leaves.push(pending.push(report, &mut json)?);
                    committed.reports += 1;
                }
                // PostgreSQL has no report tail to wait for: a state that could wait is written
                // now, so readers need nothing but the stored state.
                Write::DeviceState(id, state) | Write::DeviceProgress(id, state) => {
                    json.clear();
                    serde_json::to_writer(&mut json, state)?;
                    states.push((id.as_str().to_owned(), utf8(&json)?.to_owned()));
                }
                Write::DeadLetter(d) => {
                    if dead_letters::insert(&mut tx, d, &self.dead_letters)? {
                        committed.trimmed.payloads_cut += 1;
                    }
                }
                Write::Event(e) => committed
                    .event_ids
                    .push(event_log::append(&mut tx, statements, e, &mut chain)?),
                Write::Token(t) => tokens::insert(&mut tx, t)?,
                Write::RevokeToken { id, at } => tokens::revoke(&mut tx, *id, *at)?,
                Write::Transit(t) => transits::upsert(&mut tx, statements, t, &self.rules)?,
                Write::Account(a) => accounts::upsert(&mut tx, a)?,
                Write::RevokeAccount { username, at } => {
                    accounts::revoke(&mut tx, username, *at)?;
                }
                Write::SavedTracks(s) => saved = Some(s),
                Write::Outbox(m) => exchange::queue(&mut tx, m)?,
                Write::Delivered {
                    peer,
                    seq,
                    taken,
                    at,
                } => exchange::delivered(&mut tx, peer, *seq, taken, at.timestamp_millis())?,
                Write::Applied { peer_key, seq, at } => {
                    exchange::applied(&mut tx, peer_key, *seq, at.timestamp_millis())?;
                }
            }
        }
        committed.duplicates += pending.flush(&mut tx, statements, batch)?;
        devices::upsert_states(&mut tx, statements, &mut states)?;
        let events_id = committed
            .event_ids
            .last()
            .copied()
            .unwrap_or(self.batches.events_id);
        let bound = if leaves.is_empty() {
            None
        } else {
            let now = Utc::now().timestamp_millis();
            let hash = evidence::bind(
                &mut tx,
                statements,
                &self.batches,
                &mut leaves,
                (events_id, chain.as_str()),
                now,
            )?;
            reports::mark_fold(&mut tx, statements, batch)?;
            Some(hash)
        };
        if let Some(saved) = saved {
            let batch = self.batches.next - i64::from(bound.is_none());
            saved_tracks::replace(&mut tx, saved, events_id, batch)?;
        }
        tx.commit()?;
        self.chain = chain;
        self.batches.events_id = events_id;
        if let Some(hash) = bound {
            self.batches.head = hash;
            self.batches.next += 1;
        }
        match self
            .pruner
            .prune_if_due(&mut self.client, &self.dead_letters, Utc::now())
        {
            Ok(pruned) => {
                committed.trimmed.expired += pruned.expired;
                committed.trimmed.over_budget += pruned.over_budget;
            }
            Err(e) => warn!(error = %e, "Pruning dead letters failed; retrying in a minute."),
        }
        Ok(committed)
    }
}
