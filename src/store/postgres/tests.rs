//! The PostgreSQL store against the SQLite one: the same writes, the same answers. Each test
//! has a database of its own ([`super::test_db`]); without a server they skip.

use chrono::{DateTime, TimeZone, Utc};

use super::test_db::{self, TestDb};
use super::{open, PgReader, PgWriter};
use crate::auth::account::AccountKind;
use crate::auth::Role;
use crate::device::{Device, DeviceState};
use crate::store::{
    self, ChainFrontiers, ChainHead, DeadLetter, DeviceFilter, EventQuery, LoggedEvent, NewAccount,
    NewToken, SavedTracks, SqliteReader, SqliteWriter, StoreError, StoreReader, StoreWriter, Write,
};
use crate::telemetry::{DeviceId, Fix, GeoPoint, RejectReason, Report, ReportBody};

fn id(n: u32) -> DeviceId {
    DeviceId::parse(&format!("KG-TRK-{n:04}")).expect("a device id")
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_767_330 + seconds, 0)
        .single()
        .expect("a time")
}

fn device(n: u32) -> Write {
    Write::Device(Device {
        device_id: id(n),
        carrier: format!("carrier-{}", n % 2),
        plate: (n % 2 == 0).then(|| format!("0{n}KG")),
        registered_at: at(0),
    })
}

fn fix(n: u32, seq: u64) -> Write {
    Write::Report(Report {
        device_id: id(n),
        received_at: at(seq as i64 * 30 + 2),
        body: ReportBody::Fix(Fix {
            seq,
            t: at(seq as i64 * 30),
            point: GeoPoint {
                lat: 42.87 + f64::from(n) * 0.01,
                // Not round in binary: the stored bits must be the same in both stores.
                lon: 74.59 + seq as f64 * 0.000_123,
            },
            speed_kmh: Some(61.5),
            heading_deg: Some(270.0),
            hdop: None,
            sats: Some(9),
            alt_m: None,
        }),
    })
}

fn state(n: u32, seq: u64) -> Write {
    Write::DeviceState(
        id(n),
        Box::new(DeviceState {
            max_seq: Some(seq),
            last_seen_at: Some(at(seq as i64 * 30)),
            ..DeviceState::default()
        }),
    )
}

fn event(n: u32, kind: &str, seconds: i64) -> Write {
    Write::Event(LoggedEvent {
        kind: kind.into(),
        device_id: Some(id(n)),
        transit_id: Some(format!("T-{n}")),
        occurred_at: at(seconds),
        detected_at: at(seconds + 1),
        late: n % 2 == 1,
        actor: None,
        body: serde_json::json!({"zone": "Торугарт", "n": n, "x": 0.1}),
    })
}

/// Every kind of write the two stores take alike, in several commits.
fn history() -> Vec<Vec<Write>> {
    vec![
        vec![device(1), device(2), device(3)],
        vec![
            fix(1, 1),
            fix(1, 2),
            fix(2, 1),
            state(1, 2),
            state(2, 1),
            event(1, "zone.entered", 60),
        ],
        vec![
            Write::Token(NewToken {
                name: "coordinator".into(),
                role: Role::Coordinator,
                hash: "a".repeat(64),
                created_at: at(10),
                expires_at: None,
            }),
            Write::Token(NewToken {
                name: "short".into(),
                role: Role::Coordinator,
                hash: "b".repeat(64),
                created_at: at(11),
                expires_at: Some(at(12)),
            }),
            Write::Account(NewAccount {
                username: id(1).as_str().to_owned(),
                kind: AccountKind::Device,
                hash: "$6$salt$digest".into(),
                gateway: None,
                created_at: at(13),
            }),
            Write::DeadLetter(DeadLetter {
                received_at: at(14),
                reason: RejectReason::Malformed,
                detail: "missing field `lat`".into(),
                topic: "caravan/v1/dev/KG-TRK-0001/pos".into(),
                device_id: Some(id(1)),
                payload: b"{\"seq\":3}".to_vec(),
            }),
        ],
        vec![
            fix(1, 3),
            fix(2, 2),
            fix(3, 1),
            state(1, 3),
            state(1, 3),
            event(2, "seal.opened", 90),
            event(3, "zone.left", 95),
        ],
        vec![
            Write::RevokeToken { id: 1, at: at(200) },
            Write::RevokeAccount {
                username: id(1).as_str().to_owned(),
                at: at(201),
            },
        ],
        // A redelivery the in-memory window had forgotten, beside a new report.
        vec![fix(1, 2), fix(1, 4), state(1, 4)],
        vec![Write::SavedTracks(Box::new(SavedTracks {
            engine: "engine-1".into(),
            tracks: vec![(id(1), vec![1, 2, 3]), (id(2), vec![])],
        }))],
    ]
}

struct Both {
    _dir: tempfile::TempDir,
    sqlite: (SqliteWriter, SqliteReader),
    _db: TestDb,
    pg: (PgWriter, PgReader),
}

fn both(test: &str) -> Option<Both> {
    let db = test_db::fresh(test)?;
    let dir = tempfile::tempdir().expect("a directory");
    Some(Both {
        sqlite: store::open(dir.path()).expect("SQLite"),
        pg: open(&db.url).expect("PostgreSQL"),
        _dir: dir,
        _db: db,
    })
}

/// Both answers, as text (not every answer type is `PartialEq`).
macro_rules! same {
    ($both:expr, |$r:ident| $call:expr) => {{
        let $r = &$both.sqlite.1;
        let sqlite = format!("{:?}", $call);
        let $r = &$both.pg.1;
        let pg = format!("{:?}", $call);
        assert_eq!(sqlite, pg, "{}", stringify!($call));
    }};
}

/// A snapshot with its saved tracks in order (they are a `HashMap`).
fn snapshot(r: &dyn StoreReader, engine: &str) -> impl std::fmt::Debug {
    r.snapshot(8, 3, engine).map(|s| {
        let mut saved: Vec<_> = s.saved.into_iter().collect();
        saved.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        (s.devices, s.recent_seqs, s.recent_reports, saved)
    })
}

#[test]
fn the_same_writes_give_the_same_answers_from_sqlite_and_postgresql() {
    let Some(mut both) = both("the_same_writes_give_the_same_answers") else {
        return;
    };
    let mut duplicates = (0, 0);
    for writes in history() {
        let s = both.sqlite.0.commit(&writes).expect("SQLite commit");
        let p = both.pg.0.commit(&writes).expect("PostgreSQL commit");
        assert_eq!((s.reports, &s.event_ids), (p.reports, &p.event_ids));
        duplicates.0 += s.duplicates;
        duplicates.1 += p.duplicates;
    }
    duplicates.0 += both.sqlite.0.fold_reports().expect("fold");
    assert_eq!(
        duplicates,
        (1, 1),
        "the redelivered report, counted once by each"
    );

    same!(both, |r| r.devices(&DeviceFilter::default(), None, 10));
    same!(both, |r| r.devices(
        &DeviceFilter {
            carrier: Some("carrier-1".into()),
            country: None
        },
        Some(&id(1)),
        10
    ));
    for n in 1..=3 {
        same!(both, |r| r.device(&id(n)));
        same!(both, |r| r.track(&id(n), at(0), at(10_000), 100));
        same!(both, |r| r.recent_reports(&id(n), 2));
        same!(both, |r| r.device_window(&id(n), Some(4), 3, 2));
    }
    same!(both, |r| snapshot(r, "engine-1"));
    same!(both, |r| snapshot(r, "another engine"));
    same!(both, |r| r.events(&EventQuery {
        limit: 100,
        ..EventQuery::default()
    }));
    same!(both, |r| r.events(&EventQuery {
        device_id: Some(id(2)),
        limit: 100,
        ..EventQuery::default()
    }));
    same!(both, |r| r.verify_event_log());
    same!(both, |r| r.tokens());
    same!(both, |r| r.principal(&"a".repeat(64)));
    same!(both, |r| r.principal(&"b".repeat(64)));
    same!(both, |r| r.account(id(1).as_str()));
    same!(both, |r| r.accounts());
    same!(both, |r| r.dead_letters(None, 10));
    same!(both, |r| r.transits(false, 10));
    same!(both, |r| r.exchange_cursors());
    same!(both, |r| r.hashes_at(2, 0));
    same!(both, |r| r.ping());

    // Batches are sealed at their commit time, so their hashes differ between two stores;
    // everything else of the evidence is the same bytes.
    let heads = (
        both.sqlite.1.chain_head().expect("head"),
        both.pg.1.chain_head().expect("head"),
    );
    let without_time = |h: &ChainHead| (h.events, h.events_head.clone(), h.batches);
    assert_eq!(without_time(&heads.0), without_time(&heads.1));
    assert_eq!(heads.1.batches, 3);
    let positions = |r: &dyn StoreReader| {
        let mut told = Vec::new();
        let report = r
            .verify_positions(&mut |b, n| told.push((b, n)))
            .expect("verify");
        (
            report.batches,
            report.reports,
            report.not_covered,
            report.verified_through.map(|(b, _)| b),
            report.problems,
            told.last().copied(),
        )
    };
    assert_eq!(positions(&both.sqlite.1), positions(&both.pg.1));
    assert_eq!(positions(&both.pg.1).3, Some(3), "every batch verifies");

    let export = |r: &dyn StoreReader, head: &ChainHead| {
        let devices = vec![id(1).as_str().to_owned(), id(2).as_str().to_owned()];
        let data = r
            .export("T-1", &devices, (0, i64::MAX), head)
            .expect("export");
        let batches: Vec<_> = data
            .batches
            .iter()
            .map(|b| {
                (
                    b.batch,
                    b.reports,
                    b.root.clone(),
                    b.events_id,
                    b.leaves.clone(),
                )
            })
            .collect();
        (
            format!("{:?}", data.events),
            format!("{:?}", data.reports),
            batches,
            data.event_leaves,
        )
    };
    assert_eq!(
        export(&both.sqlite.1, &heads.0),
        export(&both.pg.1, &heads.1)
    );
    // The event tree's root is the same; the checkpoint writer's incremental roots agree
    // with the whole walk.
    let (s_roots, p_roots) = (
        both.sqlite.1.chain_roots(&heads.0).expect("roots"),
        both.pg.1.chain_roots(&heads.1).expect("roots"),
    );
    assert_eq!(s_roots.0, p_roots.0);
    let mut frontiers = ChainFrontiers::default();
    both.pg
        .1
        .extend_chain_frontiers(&mut frontiers, &heads.1)
        .expect("frontiers");
    assert_eq!(frontiers.roots(), p_roots);
}

#[test]
fn a_failing_write_rolls_back_the_whole_commit() {
    let Some(mut both) = both("a_failing_write_rolls_back") else {
        return;
    };
    for writes in history().into_iter().take(2) {
        both.pg.0.commit(&writes).expect("commit");
    }
    let before = both.pg.1.chain_head().expect("head");
    // A second registration of device 1 fails, after a report, an event and a token.
    let failing = vec![
        fix(1, 9),
        event(1, "zone.left", 300),
        Write::Token(NewToken {
            name: "lost".into(),
            role: Role::Coordinator,
            hash: "c".repeat(64),
            created_at: at(300),
            expires_at: None,
        }),
        device(1),
    ];
    assert!(matches!(
        both.pg.0.commit(&failing),
        Err(StoreError::Postgres(_))
    ));
    assert_eq!(both.pg.1.chain_head().expect("head"), before);
    assert!(both.pg.1.tokens().expect("tokens").is_empty());
    let seqs: Vec<_> = (both.pg.1.track(&id(1), at(0), at(10_000), 100))
        .expect("track")
        .iter()
        .map(|f| f.seq)
        .collect();
    assert_eq!(seqs, [1, 2]);
    // The writer goes on from where the last good commit left it: ids without a gap.
    let next = both
        .pg
        .0
        .commit(&[event(1, "zone.left", 300), fix(1, 3)])
        .expect("the next commit");
    assert_eq!(next.event_ids, [before.events + 1]);
    let report = both.pg.1.verify_positions(&mut |_, _| {}).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.verified_through.map(|(b, _)| b), Some(2));
}

#[test]
fn the_database_refuses_to_change_or_delete_evidence() {
    let Some(db) = test_db::fresh("the_database_refuses_to_change_evidence") else {
        return;
    };
    let (mut writer, reader) = open(&db.url).expect("open");
    for writes in history().into_iter().take(2) {
        writer.commit(&writes).expect("commit");
    }
    drop((writer, reader));
    let url = db.url.clone();
    let refused = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        [
            "UPDATE event_log SET body = '{}'",
            "DELETE FROM event_log",
            "TRUNCATE event_log",
            "UPDATE report_batches SET root = 'x'",
            "DELETE FROM report_batches",
            "TRUNCATE report_batches",
        ]
        .map(|sql| {
            client
                .batch_execute(sql)
                .err()
                .map(|e| crate::store::StoreError::from(e).to_string())
        })
    })
    .join()
    .expect("the client's thread");
    for message in refused {
        // The store's error names the server's reason, not only "db error".
        let message = message.unwrap_or_default();
        assert!(message.contains("append-only ("), "{message}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_store_answers_from_inside_a_current_thread_runtime() {
    let Some(db) = test_db::fresh("the_store_answers_inside_a_runtime") else {
        return;
    };
    let (mut writer, reader) = open(&db.url).expect("open");
    writer.commit(&history()[0]).expect("commit");
    writer.commit(&history()[1]).expect("commit");
    reader.ping().expect("ping");
    assert_eq!(
        reader
            .track(&id(1), at(0), at(10_000), 10)
            .expect("track")
            .len(),
        2
    );
    let mut told = 0;
    reader
        .verify_positions(&mut |_, _| told += 1)
        .expect("verify");
    assert!(told > 0);
    drop((writer, reader));
}

#[test]
fn readers_beyond_the_pool_wait_for_a_connection() {
    let Some(db) = test_db::fresh("readers_beyond_the_pool_wait") else {
        return;
    };
    let (_writer, reader) = open(&db.url).expect("open");
    std::thread::scope(|scope| {
        for _ in 0..super::MAX_READERS * 2 {
            scope.spawn(|| reader.ping().expect("ping"));
        }
    });
    assert!(reader.open_connections() <= super::MAX_READERS);
}

#[test]
fn a_writer_whose_connection_was_lost_prepares_its_statements_again() {
    let Some(db) = test_db::fresh("a_writer_whose_connection_was_lost") else {
        return;
    };
    let (mut writer, reader) = open(&db.url).expect("open");
    let history = history();
    for writes in history.iter().take(2) {
        writer.commit(writes).expect("commit");
    }
    let url = db.url.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .expect("terminate the writer's session");
    })
    .join()
    .expect("the client's thread");
    // The commit that finds the connection gone fails; the next one opens a new connection,
    // where the statements the old one had prepared do not exist.
    let retried = (0..2).find_map(|_| writer.commit(&history[2]).ok());
    assert!(retried.is_some(), "no commit after the connection was lost");
    for writes in history.iter().skip(3) {
        writer.commit(writes).expect("commit on the new connection");
    }
    let report = reader.verify_positions(&mut |_, _| {}).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
