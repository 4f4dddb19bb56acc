//! Versioned schema migrations, the version kept in `caravan_schema`.

use postgres::Client;

use crate::store::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_lease.sql"),
];

/// Any constant both instances agree on: it serialises migrations run by several instances
/// starting at once against the same database.
const MIGRATION_LOCK: i64 = 0x0063_6172_6176_616e;

/// Brings the database to the newest schema this build knows, one transaction per
/// migration.
///
/// # Errors
/// A failed migration (rolled back), or a database newer than this build.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS caravan_schema (
             id      BIGINT PRIMARY KEY CHECK (id = 1),
             version BIGINT NOT NULL
         )",
    )?;
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let found: i64 = tx
            .query_opt("SELECT version FROM caravan_schema WHERE id = 1", &[])?
            .map(|row| row.try_get(0))
            .transpose()?
            .unwrap_or(0);
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        let Some(sql) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO caravan_schema (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&(found + 1)],
        )?;
        tx.commit()?;
    }
}

/// The schema version stored now (0 before any migration).
#[cfg(test)]
pub(super) fn version(client: &mut Client) -> Result<i64, StoreError> {
    Ok(client
        .query_opt("SELECT version FROM caravan_schema WHERE id = 1", &[])?
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};

    use super::*;
    use crate::store::postgres::test_db;

    #[test]
    fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused() {
        let Some(db) = test_db::fresh("migrating_twice") else {
            return;
        };
        let mut client = Client::connect(&db.url, NoTls).expect("the test database");
        migrate(&mut client).expect("the newest schema");
        migrate(&mut client).expect("a second run changes nothing");
        assert_eq!(
            version(&mut client).expect("version"),
            MIGRATIONS.len() as i64
        );

        let newer = MIGRATIONS.len() as i64 + 1;
        client
            .execute("UPDATE caravan_schema SET version = $1", &[&newer])
            .expect("a newer version");
        match migrate(&mut client) {
            Err(StoreError::TooNew { found, known }) => {
                assert_eq!((found, known), (newer, MIGRATIONS.len() as i64));
            }
            other => panic!("a newer schema was not refused: {other:?}"),
        }
    }
}
