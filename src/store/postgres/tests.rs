//! Tests of the PostgreSQL store against the SQLite one.
