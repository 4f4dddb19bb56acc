//! The PostgreSQL store: the same [`StoreWriter`](super::StoreWriter) and
//! [`StoreReader`](super::StoreReader) as the SQLite one, for instances that share one
//! database (active and standby).
//!
//! The SQL differs; what is hashed, serialised and decided is the SQLite modules' own code,
//! called from here, so both stores give the same answers and the same evidence.

// The parts are wired together by `open` in the next change.
#![allow(dead_code)]

mod accounts;
mod dead_letters;
mod event_log;
mod exchange;
pub mod lease;
mod migrate;
#[cfg(test)]
pub(crate) mod test_db;
mod transits;
mod worker;
