//! Versioned schema migrations, tracked in SQLite's `user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_event_log.sql"),
    include_str!("migrations/0003_access_tokens.sql"),
    include_str!("migrations/0004_transits.sql"),
    include_str!("migrations/0005_transit_expected.sql"),
    include_str!("migrations/0006_reports_one_index.sql"),
];

/// Brings the database to the newest schema this build knows.
///
/// # Errors
/// A failed migration (rolled back), or a database newer than this build.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
