//! The record as a customs service elsewhere relies on it: a real store written by the real
//! server (a declared transit, a seal cut that suspends it, 1,000 positions), then edited the
//! way someone holding the database file would, and `caravan audit verify` run on each copy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rusqlite::Connection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{eventually, spawn_app_in, topic};

const DEVICE: &str = "truck-ev";
const TRANSIT: &str = "CN-24CN0101-000888";
const FIXES: u64 = 1_000;

/// The untouched store: the data directory and, elsewhere, the checkpoint directory.
struct Pristine {
    data: tempfile::TempDir,
    checkpoints: tempfile::TempDir,
}

fn pristine() -> &'static Pristine {
    static STORE: OnceLock<Pristine> = OnceLock::new();
    STORE.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(record())
        })
        .join()
        .expect("the store is written")
    })
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn stored_reports(dir: &Path) -> i64 {
    let Ok(db) = Connection::open_with_flags(
        dir.join("caravan.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    db.query_row(
        "SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM reports_recent)",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Kashgar, as drawn in maps/corridors.geojson.
const KASHGAR: (f64, f64) = (75.98951, 39.47066);

async fn record() -> Pristine {
    let data = tempfile::tempdir().expect("tempdir");
    let checkpoints = tempfile::tempdir().expect("tempdir");
    let elsewhere = checkpoints.path().to_owned();
    let app = spawn_app_in(data.path(), move |s| {
        s.evidence.checkpoint_dir = Some(elsewhere);
    })
    .await;
    app.register(DEVICE).await;
    let start = Utc::now() - Duration::hours(20);
    let declaration = json!({
        "reference": "24CN0101-000888",
        "carrier": "kg-trans",
        "vehicle_plate": "01KG777ABC",
        "trailer_plates": [],
        "driver": {"name": "Bakyt Asanov", "document": "AC1234567"},
        "devices": [DEVICE],
        "seals": [{"id": "CN-S-0888"}],
        "goods": [{"hs_code": "845011", "description": "washing machines", "gross_kg": 12400.0,
                   "value": 48000.0, "currency": "USD"}],
        "departure_office": "kashgar",
        "itinerary": ["irkeshtam"],
        "destination_office": "osh",
        "deadline": rfc3339(Utc::now() + Duration::days(2)),
    });
    let (status, body) = app.post("/api/v1/transits", &declaration).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let device = app.mqtt(DEVICE).await;
    // 1,000 fixes a minute apart around the office, uploaded as backlogs of 100.
    let fixes: Vec<Value> = (1..=FIXES)
        .map(|seq| {
            let wobble = (seq % 10) as f64 * 0.0001;
            json!({"seq": seq, "t": rfc3339(start + Duration::minutes(seq as i64)),
                   "lat": KASHGAR.1 + wobble, "lon": KASHGAR.0 - wobble, "speed_kmh": 0.0})
        })
        .collect();
    for chunk in fixes.chunks(100) {
        device
            .publish_json(&topic(DEVICE, "pos"), &json!(chunk))
            .await;
    }
    let cut = json!({"seq": FIXES + 1, "t": rfc3339(start + Duration::minutes(FIXES as i64 + 1)),
                     "seal_id": "CN-S-0888", "event": "rope_cut", "battery_pct": 70,
                     "lat": KASHGAR.1, "lon": KASHGAR.0});
    device.publish_json(&topic(DEVICE, "seal"), &cut).await;
    eventually("the seal cut suspends the transit", || async {
        let (_, t) = app.get(&format!("/api/v1/transits/{TRANSIT}")).await;
        (t["status"] == "suspended").then_some(())
    })
    .await;
    let dir = app.data_dir.clone();
    eventually("every fix is stored", || async {
        (stored_reports(&dir) >= FIXES as i64).then_some(())
    })
    .await;
    let (status, key) = app.get("/api/v1/evidence/key").await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["public_key"].as_str().map(str::len), Some(64), "{key}");
    let _ = app.shutdown().await;
    // Opening the store folds what the tail still held, so every report is in `reports`.
    drop(caravan::store::open(data.path()).expect("the store opens"));
    Pristine { data, checkpoints }
}

/// A copy of the pristine store to edit: (keeps the copy alive, data dir, checkpoint dir).
fn copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let p = pristine();
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let checkpoints = root.path().join("checkpoints");
    copy_dir(p.data.path(), &data);
    copy_dir(p.checkpoints.path(), &checkpoints);
    (root, data, checkpoints)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            // fs::copy keeps the permission bits, so the key stays private.
            std::fs::copy(&path, to.join(entry.file_name())).expect("a copy");
        }
    }
}

fn verify(data: &Path, checkpoints: &Path) -> (bool, String) {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .env("CARAVAN__EVIDENCE__CHECKPOINT_DIR", checkpoints)
        .env("RUST_LOG", "warn")
        .output()
        .expect("caravan runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn open(data: &Path) -> Connection {
    let db = Connection::open(data.join("caravan.sqlite")).expect("the store");
    db.execute_batch(
        "DROP TRIGGER IF EXISTS event_log_no_update; DROP TRIGGER IF EXISTS event_log_no_delete;",
    )
    .expect("triggers dropped");
    db
}

fn newest_event(db: &Connection) -> i64 {
    db.query_row("SELECT max(id) FROM event_log", [], |r| r.get(0))
        .expect("events")
}

#[test]
fn the_untouched_record_verifies_with_its_signed_checkpoint() {
    let (_keep, data, checkpoints) = copy();
    let (ok, text) = verify(&data, &checkpoints);
    assert!(ok, "{text}");
    assert!(text.contains("The event log is intact"), "{text}");
    assert!(text.contains(&format!("Reports: {}", FIXES)), "{text}");
    assert!(text.contains("the newest that matches, signed by sha256:"), "{text}");
    assert!(text.contains("Transits: 1 rebuilt"), "{text}");
}

#[test]
fn one_changed_event_is_named() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let id = newest_event(&db) / 2;
    db.execute("UPDATE event_log SET late = 1 - late WHERE id = ?1", [id])
        .expect("edited");
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("broken at record {id}")), "{text}");
}

#[test]
fn one_deleted_middle_event_is_named() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let id = newest_event(&db) / 2;
    db.execute("DELETE FROM event_log WHERE id = ?1", [id])
        .expect("deleted");
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("broken at record {}", id + 1)), "{text}");
}

#[test]
fn the_newest_events_deleted_are_found_by_the_checkpoint() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let newest = newest_event(&db);
    let cut = newest.min(20);
    db.execute("DELETE FROM event_log WHERE id > ?1", [newest - cut])
        .expect("deleted");
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains("the store was cut back"), "{text}");
    assert!(text.contains(&format!("covers {newest} event records")), "{text}");
}

/// The event log's hash, as docs/evidence.md describes it.
fn event_hash(prev: &str, row: &rusqlite::Row<'_>) -> String {
    let mut h = Sha256::new();
    let text = |i: usize| -> String {
        match row.get_ref(i).expect("a column") {
            rusqlite::types::ValueRef::Null => String::new(),
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => panic!("unexpected {other:?}"),
        }
    };
    let parts = [prev.to_owned(), text(1), text(2), text(3), text(4), text(5), text(6), text(7), text(8)];
    for part in parts {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    format!("{:x}", h.finalize())
}

#[test]
fn a_deleted_event_with_every_later_hash_recomputed_is_found_by_the_signature() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let id = newest_event(&db) / 2;
    db.execute("DELETE FROM event_log WHERE id = ?1", [id])
        .expect("deleted");
    let mut prev: String = db
        .query_row("SELECT hash FROM event_log WHERE id = ?1", [id - 1], |r| r.get(0))
        .expect("the record before");
    // (id, prev_hash, hash) of every later record, chained anew over the gap.
    let mut rehashed: Vec<(i64, String, String)> = Vec::new();
    {
        let mut stmt = db
            .prepare(
                "SELECT id, kind, device_id, transit_id, occurred_ms, detected_ms, late, actor,
                        body FROM event_log WHERE id > ?1 ORDER BY id",
            )
            .expect("a query");
        let mut rows = stmt.query([id]).expect("rows");
        while let Some(row) = rows.next().expect("a row") {
            let hash = event_hash(&prev, row);
            rehashed.push((row.get(0).expect("id"), prev.clone(), hash.clone()));
            prev = hash;
        }
    }
    for (row_id, prev_hash, hash) in rehashed {
        db.execute(
            "UPDATE event_log SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
            rusqlite::params![row_id, prev_hash, hash],
        )
        .expect("rehashed");
    }
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    // The recomputed chain links up; only the signed head gives it away.
    assert!(text.contains("The event log is intact"), "{text}");
    assert!(text.contains("the chain was rewritten"), "{text}");
}

#[test]
fn the_transits_table_edited_is_named_field_by_field() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let alerts: i64 = db
        .query_row(
            "SELECT json_array_length(body, '$.alerts') FROM transits WHERE id = ?1",
            [TRANSIT],
            |r| r.get(0),
        )
        .expect("the transit");
    assert!(alerts >= 1);
    for i in 0..alerts {
        db.execute(
            &format!(
                "UPDATE transits SET body = json_set(body, '$.alerts[{i}].state', 'resolved',
                                                     '$.alerts[{i}].outcome', 'false_alarm')
                 WHERE id = ?1"
            ),
            [TRANSIT],
        )
        .expect("alert edited");
    }
    db.execute(
        "UPDATE transits SET status = 'arrived', deadline_ms = 1893456000000,
             body = json_set(body, '$.stage', 'arrived', '$.deadline', '2030-01-01T00:00:00Z')
         WHERE id = ?1",
        [TRANSIT],
    )
    .expect("transit edited");
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("transit {TRANSIT}: status is arrived in the table, suspended by the log")),
        "{text}"
    );
    assert!(text.contains(&format!("transit {TRANSIT}: deadline is 2030-01-01")), "{text}");
    assert!(
        text.contains(&format!("alert {TRANSIT}.1: \"resolved\" / \"false_alarm\" in the table, \"open\"")),
        "{text}"
    );
}

#[test]
fn positions_moved_by_a_degree_are_named() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let moved = db
        .execute(
            "UPDATE reports SET lat = lat + 1.0,
                 body = json_set(body, '$.lat', json_extract(body, '$.lat') + 1.0)
             WHERE id IN (SELECT id FROM reports WHERE kind = 'pos' ORDER BY id LIMIT 1000)",
            [],
        )
        .expect("moved");
    assert_eq!(moved, 1000);
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("the report of device {DEVICE} seq 1 at")),
        "{text}"
    );
    assert!(text.contains("is not as committed"), "{text}");
}

#[test]
fn a_deleted_and_an_added_position_are_named() {
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    db.execute(
        "DELETE FROM reports WHERE device_id = ?1 AND seq = 500",
        [DEVICE],
    )
    .expect("deleted");
    db.execute(
        "INSERT INTO reports (device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch)
         SELECT device_id, 5000, kind, t_ms + 1, received_ms, lat, lon, body, batch
         FROM reports WHERE device_id = ?1 AND seq = 700",
        [DEVICE],
    )
    .expect("added");
    drop(db);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains("committed reports are no longer stored (deleted)"), "{text}");
    assert!(text.contains(&format!("device {DEVICE} seq 5000")), "{text}");
}
