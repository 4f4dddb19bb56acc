//! The PostgreSQL store.

pub mod lease;
#[cfg(test)]
pub(crate) mod test_db;
