//! Transits in SQLite: one row per transit with its JSON, upserted on every change, and the
//! posts each open transit is expected at next.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::StoreError;
use crate::transit::eta::expectations;
use crate::transit::{Transit, TransitRules};

/// The schema version that added `transit_expected`; stores migrated from before it have
/// their expectations filled from the stored transits.
pub const EXPECTED_SINCE: i64 = 5;

/// Stores the transit as it now stands.
///
/// # Errors
/// Database errors, or a transit that does not serialise.
pub fn upsert(tx: &Transaction<'_>, t: &Transit, rules: &TransitRules) -> Result<(), StoreError> {
    let c = Columns::of(t)?;
    tx.prepare_cached(
        "INSERT INTO transits (id, reference, issuing_country, carrier, stage, status, open,
             next_checkpoint, deadline_ms, declared_ms, updated_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET stage = excluded.stage, status = excluded.status,
             open = excluded.open, next_checkpoint = excluded.next_checkpoint,
             updated_ms = excluded.updated_ms, body = excluded.body",
    )?
    .execute(params![
        t.id.as_str(),
        t.reference,
        t.issuing_country.as_str(),
        t.carrier,
        c.stage,
        c.status,
        c.open,
        c.next_checkpoint,
        c.deadline_ms,
        c.declared_ms,
        c.updated_ms,
        c.body,
    ])?;
    expect(tx, t, rules)
}

/// The stored columns of a transit that are not plain fields of it: what listings filter
/// and sort on, and the JSON. Shared with the PostgreSQL store, so both store the same.
pub(crate) struct Columns {
    pub(crate) stage: String,
    pub(crate) status: &'static str,
    pub(crate) open: bool,
    pub(crate) next_checkpoint: Option<String>,
    pub(crate) deadline_ms: i64,
    pub(crate) declared_ms: i64,
    pub(crate) updated_ms: i64,
    pub(crate) body: String,
}

impl Columns {
    pub(crate) fn of(t: &Transit) -> Result<Self, StoreError> {
        let stage = serde_json::to_value(t.stage)?;
        Ok(Self {
            stage: stage.as_str().unwrap_or("").to_owned(),
            status: t.status().as_str(),
            open: t.is_open(),
            next_checkpoint: t.next_checkpoint().map(str::to_owned),
            deadline_ms: t.deadline.timestamp_millis(),
            declared_ms: t.declared_at.timestamp_millis(),
            updated_ms: chrono::Utc::now().timestamp_millis(),
            body: serde_json::to_string(t)?,
        })
    }
}

/// Rewrites the posts where `t` is expected next (none once it has arrived or closed).
fn expect(tx: &Transaction<'_>, t: &Transit, rules: &TransitRules) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM transit_expected WHERE transit_id = ?1")?
        .execute([t.id.as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO transit_expected (post_id, eta_after_s, declared_ms, transit_id)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for e in expectations(t, rules) {
        insert.execute(params![
            e.post_id,
            e.after.num_seconds(),
            t.declared_at.timestamp_millis(),
            t.id.as_str(),
        ])?;
    }
    Ok(())
}

/// Fills `transit_expected` from the open transits already stored.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn expect_stored(tx: &Transaction<'_>, rules: &TransitRules) -> Result<(), StoreError> {
    let mut stmt = tx.prepare("SELECT body FROM transits WHERE open = 1")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        expect(tx, &parse(&row.get::<_, String>(0)?)?, rules)?;
    }
    Ok(())
}

pub(crate) fn parse(body: &str) -> Result<Transit, StoreError> {
    Ok(serde_json::from_str(body)?)
}

/// # Errors
/// Database errors or a corrupt row.
pub fn get(conn: &Connection, id: &str) -> Result<Option<Transit>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM transits WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    body.as_deref().map(parse).transpose()
}

/// Transits, newest declared first; only open ones when `open_only`.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn list(conn: &Connection, open_only: bool, limit: usize) -> Result<Vec<Transit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM transits WHERE (?1 = 0 OR open = 1)
         ORDER BY declared_ms DESC, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![open_only, limit as i64], |row| {
        row.get::<_, String>(0)
    })?;
    rows.map(|body| parse(&body?)).collect()
}

/// The transits of one `half` (0 or 1) of the table, in no particular order: the restore at
/// start reads both halves side by side, and has no use for an order (at 100,000 transits,
/// sorting them with their bodies took seconds).
///
/// # Errors
/// Database errors or a corrupt row.
pub fn all(
    conn: &Connection,
    half: i64,
    take_in: &dyn Fn(&mut Transit),
) -> Result<Vec<Transit>, StoreError> {
    let mut stmt = conn.prepare("SELECT body FROM transits WHERE rowid % 2 = ?1")?;
    let rows = stmt.query_map([half], |row| row.get::<_, String>(0))?;
    rows.map(|body| {
        let mut t = parse(&body?)?;
        take_in(&mut t);
        Ok(t)
    })
    .collect()
}

/// Open transits expected next at `post_id`, soonest ETA first (then newest declared),
/// skipping `skip`.
///
/// # Errors
/// Database errors or a corrupt row.
pub fn expected_at(
    conn: &Connection,
    post_id: &str,
    skip: usize,
    limit: usize,
) -> Result<Vec<Transit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.body FROM transit_expected e JOIN transits t ON t.id = e.transit_id
         WHERE e.post_id = ?1
         ORDER BY e.eta_after_s, e.declared_ms DESC, e.transit_id
         LIMIT ?2 OFFSET ?3",
    )?;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![post_id, count(limit), count(skip)], |row| {
        row.get::<_, String>(0)
    })?;
    rows.map(|body| parse(&body?)).collect()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::store::{open, SqliteReader, SqliteWriter, StoreReader, StoreWriter, Write};
    use crate::transit::fixtures::{book, kashgar_almaty, minutes_in};
    use crate::transit::{Action, Actor, OfficerAction, TransitBook, TransitId};

    struct Fixture {
        _dir: tempfile::TempDir,
        book: TransitBook,
        writer: SqliteWriter,
        reader: SqliteReader,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let (writer, reader) = open(dir.path()).unwrap();
            Self {
                _dir: dir,
                book: book(),
                writer,
                reader,
            }
        }

        fn declare(&mut self, reference: &str, device: &str, minute: i64) -> TransitId {
            let decl = kashgar_almaty(reference, device);
            let change = self
                .book
                .declare(decl, &Actor::system(), minutes_in(minute), &|id| {
                    Some(id.clone())
                })
                .unwrap();
            self.writer
                .commit(&[Write::Transit(change.transit.clone())])
                .unwrap();
            change.transit.id
        }

        fn act(&mut self, id: &TransitId, action: OfficerAction, minute: i64) {
            let by = Actor("customs:KG".into());
            let change = self
                .book
                .act(id, Action::Lifecycle(action), &by, minutes_in(minute))
                .unwrap();
            self.writer
                .commit(&[Write::Transit(change.transit)])
                .unwrap();
        }

        fn expected_at(&self, post_id: &str) -> Vec<String> {
            let transits = self.reader.transits_expected_at(post_id, 0, 100).unwrap();
            transits.into_iter().map(|t| t.id.to_string()).collect()
        }
    }

    #[test]
    fn a_transit_is_expected_at_both_posts_of_its_next_bcp_and_moves_on_when_it_exits() {
        let mut f = Fixture::new();
        let id = f.declare("24CN0101-000001", "truck-1", 0);
        assert_eq!(f.expected_at("torugart-cn"), [id.as_str()]);
        assert_eq!(f.expected_at("torugart-kg"), [id.as_str()]);
        assert!(f.expected_at("akzhol-kg").is_empty());

        f.act(&id, OfficerAction::ConfirmDeparture, 10);
        let arrive = OfficerAction::ConfirmArrival {
            place: "torugart-cn".into(),
        };
        f.act(&id, arrive, 600);
        assert_eq!(f.expected_at("torugart-kg"), [id.as_str()], "at the BCP");
        let exit = OfficerAction::ConfirmExit {
            place: "torugart-kg".into(),
        };
        f.act(&id, exit, 900);

        assert!(f.expected_at("torugart-cn").is_empty());
        assert!(f.expected_at("torugart-kg").is_empty());
        assert_eq!(f.expected_at("akzhol-kg"), [id.as_str()]);
        assert_eq!(f.expected_at("akzhol-kz"), [id.as_str()]);
    }

    #[test]
    fn a_cancelled_transit_is_expected_nowhere() {
        let mut f = Fixture::new();
        let id = f.declare("24CN0101-000002", "truck-2", 0);
        let cancel = OfficerAction::Cancel {
            reason: "declared twice".into(),
        };
        f.act(&id, cancel, 5);
        assert!(f.expected_at("torugart-cn").is_empty());
        assert!(f.expected_at("torugart-kg").is_empty());
    }

    #[test]
    fn transits_with_the_same_eta_come_newest_declared_first_and_page_by_skip() {
        let mut f = Fixture::new();
        let older = f.declare("24CN0101-000003", "truck-3", 0);
        let newer = f.declare("24CN0101-000004", "truck-4", 5);
        let far = f.declare("24CN0101-000005", "truck-5", 10);
        f.act(&far, OfficerAction::ConfirmDeparture, 20);
        let arrive = OfficerAction::ConfirmArrival {
            place: "torugart-cn".into(),
        };
        f.act(&far, arrive, 30);
        let exit = OfficerAction::ConfirmExit {
            place: "torugart-kg".into(),
        };
        f.act(&far, exit, 40);
        let near = f.declare("24CN0101-000006", "truck-6", 50);
        assert_eq!(
            f.expected_at("torugart-cn"),
            [near.as_str(), newer.as_str(), older.as_str()]
        );
        let page = f.reader.transits_expected_at("torugart-cn", 1, 1).unwrap();
        assert_eq!(page[0].id, newer);
        assert_eq!(f.expected_at("akzhol-kg"), [far.as_str()]);
    }

    #[test]
    fn a_store_from_before_the_expectations_gets_them_from_its_transits() {
        let mut f = Fixture::new();
        let id = f.declare("24CN0101-000007", "truck-7", 0);
        let dir = f._dir.path().to_owned();
        let conn = Connection::open(dir.join("caravan.sqlite")).unwrap();
        // Back to version 4: what later migrations added goes, so they run again.
        conn.execute_batch(
            "DROP TABLE transit_expected; DROP TABLE mqtt_accounts; DROP TABLE report_batches;
             DROP TABLE report_folds; DROP TABLE saved_tracks; DROP TABLE saved_tracks_at;
             DROP TABLE reports_redelivered; DROP TABLE exchange_outbox;
             DROP TABLE exchange_delivered; DROP TABLE exchange_applied;
             DROP TABLE exchange_receipts;
             ALTER TABLE reports DROP COLUMN batch;
             ALTER TABLE reports_recent DROP COLUMN batch;
             ALTER TABLE access_tokens DROP COLUMN expires_ms; PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);
        let (_, reader) = open(&dir).unwrap();
        let found = reader.transits_expected_at("torugart-kg", 0, 10).unwrap();
        assert_eq!(found[0].id, id);
    }
}
