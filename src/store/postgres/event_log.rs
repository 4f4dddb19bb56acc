//! The hash-chained event log in PostgreSQL. What a row holds and how it is hashed and
//! checked is [`crate::store::event_log`]'s; only the SQL is here. The schema's triggers
//! refuse UPDATE, DELETE and TRUNCATE, as SQLite's do.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::GenericClient;

use super::statements::Statements;

use crate::store::event_log::{
    body_text, hash, time, ChainReport, ChainWalk, EventQuery, LoggedEvent, Row, StoredEvent,
    GENESIS,
};
use crate::store::StoreError;
use crate::telemetry::DeviceId;

/// The newest hash, to continue the chain from.
pub(crate) fn head(c: &mut impl GenericClient) -> Result<String, StoreError> {
    let row = c.query_opt("SELECT hash FROM event_log ORDER BY id DESC LIMIT 1", &[])?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => GENESIS.to_owned(),
    })
}

/// Appends `event` after `chain`, moves `chain` to the new row's hash, and returns its id.
///
/// `chain` moves before the transaction commits: the caller keeps its own copy until then,
/// as `SqliteWriter` does.
pub(crate) fn append(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    event: &LoggedEvent,
    chain: &mut String,
) -> Result<i64, StoreError> {
    let body = body_text(event)?;
    let row = Row::of(event, &body);
    let new = hash(chain, &row);
    let insert = statements.get(
        tx,
        "INSERT INTO event_log (kind, device_id, transit_id, occurred_ms, detected_ms, late,
                                actor, body, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id",
    )?;
    let inserted = tx.query_one(
        &insert,
        &[
            &row.kind,
            &row.device_id,
            &row.transit_id,
            &row.occurred_ms,
            &row.detected_ms,
            &row.late,
            &row.actor,
            &row.body,
            &chain.as_str(),
            &new,
        ],
    )?;
    let id = inserted.try_get(0)?;
    *chain = new;
    Ok(id)
}

/// Reads events matching `query`, oldest first.
pub(crate) fn read(
    c: &mut impl GenericClient,
    query: &EventQuery,
) -> Result<Vec<StoredEvent>, StoreError> {
    let device_id = query.device_id.as_ref().map(DeviceId::as_str);
    let after = query.after.unwrap_or(0);
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body, hash
         FROM event_log
         WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR transit_id = $2)
           AND id > $3
         ORDER BY id LIMIT $4",
        &[&device_id, &query.transit_id, &after, &limit],
    )?;
    rows.iter()
        .map(|r| {
            Ok(StoredEvent {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                device_id: r.try_get(2)?,
                transit_id: r.try_get(3)?,
                occurred_at: time(r.try_get(4)?),
                detected_at: time(r.try_get(5)?),
                late: r.try_get(6)?,
                actor: r.try_get(7)?,
                body: serde_json::from_str(r.try_get(8)?)?,
                hash: r.try_get(9)?,
            })
        })
        .collect()
}

/// Walks the whole log and checks every link.
///
/// The rows stream from the server rather than being read into memory first: the log grows
/// without bound.
///
/// # Errors
/// Database errors only; a broken chain is a report, not an error.
pub(crate) fn verify_chain(c: &mut impl GenericClient) -> Result<ChainReport, StoreError> {
    let mut rows = c.query_raw(
        "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor, body,
                prev_hash, hash
         FROM event_log ORDER BY id",
        std::iter::empty::<&dyn ToSql>(),
    )?;
    let mut walk = ChainWalk::default();
    while let Some(r) = rows.next()? {
        let prev: &str = r.try_get(9)?;
        let row = Row {
            kind: r.try_get(1)?,
            device_id: r.try_get(2)?,
            transit_id: r.try_get(3)?,
            occurred_ms: r.try_get(4)?,
            detected_ms: r.try_get(5)?,
            late: r.try_get(6)?,
            actor: r.try_get(7)?,
            body: r.try_get(8)?,
        };
        if let Some(report) = walk.check(r.try_get(0)?, prev, &row, r.try_get(10)?) {
            return Ok(report);
        }
    }
    Ok(walk.finish())
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use postgres::{Client, NoTls};

    use super::*;
    use crate::store::postgres::test_db::{self, TestDb};

    fn event(n: i64) -> LoggedEvent {
        let t = DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap();
        LoggedEvent {
            kind: "seal_alarm".into(),
            device_id: (n % 3 == 0).then(|| DeviceId::parse("truck-7").unwrap()),
            transit_id: Some("KG-2026-1".into()),
            occurred_at: t,
            detected_at: t,
            late: n % 2 == 0,
            actor: None,
            body: serde_json::json!({"n": n, "where": "Торугарт"}),
        }
    }

    /// A migrated database holding events 1..=n, appended in two transactions so the chain
    /// continues across them.
    fn chain_of(test: &str, n: i64) -> Option<(TestDb, Client)> {
        let db = test_db::fresh(test)?;
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        crate::store::postgres::migrate::migrate(&mut client).unwrap();
        let mut statements = Statements::default();
        for range in [1..=n / 2, n / 2 + 1..=n] {
            let mut chain = head(&mut client).unwrap();
            let mut tx = client.transaction().unwrap();
            for i in range {
                append(&mut tx, &mut statements, &event(i), &mut chain).unwrap();
            }
            tx.commit().unwrap();
        }
        Some((db, client))
    }

    #[test]
    fn an_untouched_log_verifies() {
        let Some((_db, mut client)) = chain_of("an_untouched_log_verifies", 6) else {
            return;
        };
        let report = verify_chain(&mut client).unwrap();
        assert_eq!(
            report,
            ChainReport {
                rows: 6,
                first_broken: None
            }
        );
    }

    #[test]
    fn an_empty_log_starts_at_genesis_and_verifies() {
        let Some((_db, mut client)) = chain_of("an_empty_log_starts_at_genesis", 0) else {
            return;
        };
        assert_eq!(head(&mut client).unwrap(), GENESIS);
        assert_eq!(verify_chain(&mut client).unwrap().rows, 0);
    }

    #[test]
    fn the_database_refuses_edits_and_deletions_of_the_log() {
        let Some((_db, mut client)) = chain_of("the_database_refuses_edits", 2) else {
            return;
        };
        for sql in [
            "UPDATE event_log SET late = NOT late WHERE id = 1",
            "DELETE FROM event_log WHERE id = 1",
            "TRUNCATE event_log",
        ] {
            let err = client.batch_execute(sql).unwrap_err();
            let message = err.as_db_error().map(|e| e.message());
            assert_eq!(message, Some("the event log is append-only"), "{sql}");
        }
        assert_eq!(verify_chain(&mut client).unwrap().rows, 2);
    }

    #[test]
    fn a_body_edited_by_a_superuser_is_found_at_its_row() {
        let Some((_db, mut client)) = chain_of("a_body_edited_by_a_superuser", 6) else {
            return;
        };
        // Only a superuser (or the owner) can switch the triggers off; the chain still tells.
        client
            .batch_execute(
                "ALTER TABLE event_log DISABLE TRIGGER USER;
                 UPDATE event_log SET body = '{\"n\":40}' WHERE id = 4;
                 ALTER TABLE event_log ENABLE TRIGGER USER;",
            )
            .unwrap();
        let report = verify_chain(&mut client).unwrap();
        assert_eq!(report.rows, 4);
        let (id, why) = report.first_broken.unwrap();
        assert_eq!(id, 4);
        assert!(why.contains("edited"), "{why}");
    }

    #[test]
    fn a_deleted_record_is_found_at_the_next_one() {
        let Some((_db, mut client)) = chain_of("a_deleted_record_is_found", 6) else {
            return;
        };
        client
            .batch_execute(
                "ALTER TABLE event_log DISABLE TRIGGER USER;
                 DELETE FROM event_log WHERE id = 3;",
            )
            .unwrap();
        let report = verify_chain(&mut client).unwrap();
        assert_eq!(report.first_broken.map(|(id, _)| id), Some(4));
    }

    #[test]
    fn events_read_back_by_device_transit_and_after_oldest_first() {
        let Some((_db, mut client)) = chain_of("events_read_back", 9) else {
            return;
        };
        let all = read(
            &mut client,
            &EventQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all.len(), 9);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(
            all[2].body,
            serde_json::json!({"n": 3, "where": "Торугарт"})
        );
        assert_eq!(all.last().unwrap().hash, head(&mut client).unwrap());

        let of_device = read(
            &mut client,
            &EventQuery {
                device_id: Some(DeviceId::parse("truck-7").unwrap()),
                after: Some(all[2].id),
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(of_device.len(), 1);
        assert_eq!(of_device[0].id, all[5].id);
        let other_transit = read(
            &mut client,
            &EventQuery {
                transit_id: Some("KZ-2026-9".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(other_transit.is_empty());
    }

    /// The same events appended to SQLite and PostgreSQL give the same hashes: evidence
    /// exported from either verifies the same way.
    #[test]
    fn the_same_events_hash_the_same_in_sqlite_and_postgresql() {
        let Some((_db, mut client)) = chain_of("the_same_events_hash_the_same", 5) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = crate::store::open(dir.path()).unwrap();
        let writes: Vec<_> = (1..=5)
            .map(|n| crate::store::Write::Event(event(n)))
            .collect();
        crate::store::StoreWriter::commit(&mut writer, &writes).unwrap();
        let query = EventQuery {
            limit: 100,
            ..Default::default()
        };
        let sqlite = crate::store::StoreReader::events(&reader, &query).unwrap();
        let postgres = read(&mut client, &query).unwrap();
        assert_eq!(sqlite, postgres);
    }
}
