//! Transits in PostgreSQL: one row per transit with its JSON, upserted on every change, and
//! the posts each open transit is expected at next. The stored columns and the
//! expectations are computed by [`crate::store::transits`] and [`crate::transit::eta`];
//! only the SQL is here.

use postgres::GenericClient;

use super::statements::Statements;

use crate::store::transits::{parse, Columns};
use crate::store::StoreError;
use crate::transit::eta::expectations;
use crate::transit::{Transit, TransitRules};

/// Stores the transit as it now stands, and where it is expected next.
///
/// # Errors
/// Database errors, or a transit that does not serialise.
pub(crate) fn upsert(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    t: &Transit,
    rules: &TransitRules,
) -> Result<(), StoreError> {
    let c = Columns::of(t)?;
    let upsert = statements.get(
        tx,
        "INSERT INTO transits (id, reference, issuing_country, carrier, stage, status, open,
             next_checkpoint, deadline_ms, declared_ms, updated_ms, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET stage = excluded.stage, status = excluded.status,
             open = excluded.open, next_checkpoint = excluded.next_checkpoint,
             updated_ms = excluded.updated_ms, body = excluded.body",
    )?;
    tx.execute(
        &upsert,
        &[
            &t.id.as_str(),
            &t.reference,
            &t.issuing_country.as_str(),
            &t.carrier,
            &c.stage,
            &c.status,
            &c.open,
            &c.next_checkpoint,
            &c.deadline_ms,
            &c.declared_ms,
            &c.updated_ms,
            &c.body,
        ],
    )?;
    expect(tx, statements, t, rules)
}

/// Rewrites the posts where `t` is expected next (none once it has arrived or closed).
fn expect(
    tx: &mut impl GenericClient,
    statements: &mut Statements,
    t: &Transit,
    rules: &TransitRules,
) -> Result<(), StoreError> {
    let delete = statements.get(tx, "DELETE FROM transit_expected WHERE transit_id = $1")?;
    tx.execute(&delete, &[&t.id.as_str()])?;
    let posts = expectations(t, rules);
    if posts.is_empty() {
        return Ok(());
    }
    let declared_ms = t.declared_at.timestamp_millis();
    // Every column is in the key: a post listed twice is one row, as SQLite's REPLACE makes it.
    let insert = statements.get(
        tx,
        "INSERT INTO transit_expected (post_id, eta_after_s, declared_ms, transit_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )?;
    for e in posts {
        tx.execute(
            &insert,
            &[
                &e.post_id,
                &e.after.num_seconds(),
                &declared_ms,
                &t.id.as_str(),
            ],
        )?;
    }
    Ok(())
}

/// # Errors
/// Database errors or a corrupt row.
pub(crate) fn get(c: &mut impl GenericClient, id: &str) -> Result<Option<Transit>, StoreError> {
    let row = c.query_opt("SELECT body FROM transits WHERE id = $1", &[&id])?;
    row.map(|row| parse(row.try_get(0)?)).transpose()
}

/// Transits, newest declared first; only open ones when `open_only`.
///
/// # Errors
/// Database errors or a corrupt row.
pub(crate) fn list(
    c: &mut impl GenericClient,
    open_only: bool,
    limit: usize,
) -> Result<Vec<Transit>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT body FROM transits WHERE (NOT $1 OR open)
         ORDER BY declared_ms DESC, id LIMIT $2",
        &[&open_only, &limit],
    )?;
    rows.iter().map(|row| parse(row.try_get(0)?)).collect()
}

/// The transits of one `half` (0 or 1) of the table, in no particular order, so the restore
/// at start can read and decode both halves side by side on two connections. PostgreSQL has
/// no rowid: the halves are split by a hash of the id instead.
///
/// # Errors
/// Database errors or a corrupt row.
pub(crate) fn bodies(c: &mut impl GenericClient, half: i64) -> Result<Vec<String>, StoreError> {
    let half = i32::try_from(half & 1).unwrap_or_default();
    let rows = c.query(
        "SELECT body FROM transits WHERE hashtext(id) & 1 = $1",
        &[&half],
    )?;
    rows.iter()
        .map(|row| row.try_get(0).map_err(StoreError::from))
        .collect()
}

/// Open transits expected next at `post_id`, soonest ETA first (then newest declared),
/// skipping `skip`.
///
/// # Errors
/// Database errors or a corrupt row.
pub(crate) fn expected_at(
    c: &mut impl GenericClient,
    post_id: &str,
    skip: usize,
    limit: usize,
) -> Result<Vec<Transit>, StoreError> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT t.body FROM transit_expected e JOIN transits t ON t.id = e.transit_id
         WHERE e.post_id = $1
         ORDER BY e.eta_after_s, e.declared_ms DESC, e.transit_id
         LIMIT $2 OFFSET $3",
        &[&post_id, &count(limit), &count(skip)],
    )?;
    rows.iter().map(|row| parse(row.try_get(0)?)).collect()
}

#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};

    use super::*;
    use crate::store::postgres::test_db::{self, TestDb};
    use crate::store::{SqliteReader, SqliteWriter, StoreReader, StoreWriter, Write};
    use crate::transit::fixtures::{book, kashgar_almaty, minutes_in};
    use crate::transit::{Action, Actor, OfficerAction, TransitBook, TransitId};

    /// Every change written to PostgreSQL and, for comparison, to SQLite.
    struct Fixture {
        _db: TestDb,
        client: Client,
        _dir: tempfile::TempDir,
        writer: SqliteWriter,
        reader: SqliteReader,
        book: TransitBook,
        rules: TransitRules,
    }

    impl Fixture {
        fn new(test: &str) -> Option<Self> {
            let db = test_db::fresh(test)?;
            let mut client = Client::connect(&db.url, NoTls).unwrap();
            crate::store::postgres::migrate::migrate(&mut client).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (writer, reader) = crate::store::open(dir.path()).unwrap();
            Some(Self {
                _db: db,
                client,
                _dir: dir,
                writer,
                reader,
                book: book(),
                rules: TransitRules::embedded().unwrap(),
            })
        }

        fn store(&mut self, t: &Transit) {
            let mut tx = self.client.transaction().unwrap();
            upsert(&mut tx, &mut Statements::default(), t, &self.rules).unwrap();
            tx.commit().unwrap();
            self.writer
                .commit(&[Write::Transit(Box::new(t.clone()))])
                .unwrap();
        }

        fn declare(&mut self, reference: &str, device: &str, minute: i64) -> TransitId {
            let decl = kashgar_almaty(reference, device);
            let change = self
                .book
                .declare(decl, &Actor::system(), minutes_in(minute), &|id| {
                    Some(id.clone())
                })
                .unwrap();
            self.store(&change.transit);
            change.transit.id
        }

        fn act(&mut self, id: &TransitId, action: OfficerAction, minute: i64) {
            let by = Actor("customs:KG".into());
            let change = self
                .book
                .act(id, Action::Lifecycle(action), &by, minutes_in(minute))
                .unwrap();
            self.store(&change.transit);
        }

        /// The ids PostgreSQL lists as expected at the post, checked against SQLite's.
        fn expected_at(&mut self, post_id: &str) -> Vec<String> {
            let postgres = ids(expected_at(&mut self.client, post_id, 0, 100).unwrap());
            let sqlite = ids(self.reader.transits_expected_at(post_id, 0, 100).unwrap());
            assert_eq!(postgres, sqlite, "expected at {post_id}");
            postgres
        }
    }

    fn ids(transits: Vec<Transit>) -> Vec<String> {
        transits.into_iter().map(|t| t.id.to_string()).collect()
    }

    #[test]
    fn a_transit_is_expected_at_both_posts_of_its_next_bcp_and_moves_on_when_it_exits() {
        let Some(mut f) = Fixture::new("a_transit_is_expected_at_both_posts") else {
            return;
        };
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
    fn a_cancelled_transit_is_expected_nowhere_and_listed_only_among_all() {
        let Some(mut f) = Fixture::new("a_cancelled_transit_is_expected_nowhere") else {
            return;
        };
        let id = f.declare("24CN0101-000002", "truck-2", 0);
        let open = f.declare("24CN0101-000008", "truck-8", 1);
        let cancel = OfficerAction::Cancel {
            reason: "declared twice".into(),
        };
        f.act(&id, cancel, 5);
        assert!(f.expected_at("torugart-cn").len() == 1);
        assert!(f.expected_at("torugart-kg").len() == 1);
        assert_eq!(ids(list(&mut f.client, true, 10).unwrap()), [open.as_str()]);
        assert_eq!(
            ids(list(&mut f.client, false, 10).unwrap()),
            [open.as_str(), id.as_str()],
            "newest declared first"
        );
        let stored = get(&mut f.client, id.as_str()).unwrap().unwrap();
        assert_eq!(
            Some(&stored),
            f.reader.transit(id.as_str()).unwrap().as_ref()
        );
        assert!(get(&mut f.client, "24CN0101-999999").unwrap().is_none());
    }

    #[test]
    fn transits_with_the_same_eta_come_newest_declared_first_and_page_by_skip() {
        let Some(mut f) = Fixture::new("transits_with_the_same_eta") else {
            return;
        };
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
        let page = expected_at(&mut f.client, "torugart-cn", 1, 1).unwrap();
        assert_eq!(ids(page), [newer.as_str()]);
        assert_eq!(f.expected_at("akzhol-kg"), [far.as_str()]);
    }

    #[test]
    fn both_halves_together_are_every_transit_once() {
        let Some(mut f) = Fixture::new("both_halves_together") else {
            return;
        };
        let mut declared: Vec<String> = (0..12)
            .map(|n| {
                let reference = format!("24CN0101-1000{n:02}");
                f.declare(&reference, &format!("truck-h{n}"), n).to_string()
            })
            .collect();
        let mut half = |n| {
            let bodies = bodies(&mut f.client, n).unwrap();
            ids(bodies.iter().map(|b| parse(b).unwrap()).collect())
        };
        let mut read = half(0);
        let odd = half(1);
        assert!(!read.is_empty() && !odd.is_empty(), "{read:?} {odd:?}");
        read.extend(odd);
        read.sort();
        declared.sort();
        assert_eq!(read, declared);
    }
}
