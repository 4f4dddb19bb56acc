//! Prepared statements kept for the life of a connection.
//!
//! Given SQL text, the `postgres` client prepares a statement, runs it and closes it again:
//! an extra round trip, and a parse and plan on the server, at every execution. The writer
//! runs the same few statements at every commit, so it prepares each once per connection
//! and keeps it.

use std::collections::HashMap;

use postgres::{GenericClient, Statement};

/// The statements prepared on one connection, by their SQL text. Only `'static` text is
/// kept, so there are never more than the store's own statements; a new connection starts
/// with none (a statement belongs to the session that prepared it).
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// The statement for `sql`, prepared on `c` the first time it is asked for.
    ///
    /// # Errors
    /// Preparing it failed.
    pub(super) fn get(
        &mut self,
        c: &mut impl GenericClient,
        sql: &'static str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = c.prepare(sql)?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}
