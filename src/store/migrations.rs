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
    include_str!("migrations/0007_tail_without_foreign_key.sql"),
    include_str!("migrations/0008_mqtt_accounts.sql"),
    include_str!("migrations/0009_evidence.sql"),
    include_str!("migrations/0010_token_expiry.sql"),
    include_str!("migrations/0011_saved_tracks.sql"),
    include_str!("migrations/0012_exchange.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("user_version")
    }

    #[test]
    fn a_store_of_an_older_schema_keeps_what_its_tail_held() {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("pragma");
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).expect("an older migration");
        }
        conn.pragma_update(None, "user_version", 6)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO devices (device_id, carrier, registered_at) VALUES ('d1', 'c1', 0);
             INSERT INTO reports_recent (device_id, seq, kind, t_ms, received_ms, lat, lon, body)
             VALUES ('d1', 7, 'pos', 1000, 1000, 41.0, 72.0, '{}');",
        )
        .expect("a report in the tail");

        migrate(&mut conn).expect("the newest schema");
        migrate(&mut conn).expect("a second run changes nothing");

        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        let kept: (String, i64) = conn
            .query_row("SELECT device_id, seq FROM reports_recent", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("the tail's report");
        assert_eq!(kept, ("d1".to_owned(), 7));
    }
}
