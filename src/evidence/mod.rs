//! Evidence that holds elsewhere: the instance key, signed checkpoints kept outside the
//! store, the Merkle tree that binds reports into the chain, transits rebuilt from the log,
//! and the audit that checks all of it (`caravan audit verify`). `docs/evidence.md` says what
//! is proven and what an operator keeps where.

pub mod audit;
pub mod bundle;
pub mod checkpoint;
pub mod key;
pub mod merkle;
pub mod rebuild;
pub mod writer;

pub use audit::{audit, AuditReport};
pub use checkpoint::Checkpoint;
pub use key::InstanceKey;
pub use writer::start;
