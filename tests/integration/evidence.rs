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
use crate::test_store::{sqlite_only, SqliteOnly};

const DEVICE: &str = "truck-ev";
const TRANSIT: &str = "CN-24CN0101-000888";
const FIXES: u64 = 1_000;
/// The last fixes, sent after the declaration one by one.
const LIVE: u64 = 10;

/// The untouched store: the data directory and, elsewhere, the checkpoint directory.
struct Pristine {
    data: tempfile::TempDir,
    checkpoints: tempfile::TempDir,
    /// The bundle a coordinator downloaded from the API while the transit was open.
    downloaded: Vec<u8>,
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

/// A device time to the millisecond: the live fixes come within a second of the declaration.
fn millis(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn stored_reports(dir: &Path) -> i64 {
    // PostgreSQL's store has no unindexed tail: a commit writes straight into `reports`.
    let query = if crate::test_store::on_postgres() {
        "SELECT count(*) FROM reports"
    } else {
        "SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM reports_recent)"
    };
    crate::test_store::count(dir, query)
}

/// Half way from Kashgar to Irkeshtam on corridor c5 of the shipped maps (lon, lat).
const ROAD: (f64, f64) = (74.9498, 39.5753);

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
    // 1,000 fixes a minute apart on the road, from before the declaration, uploaded as
    // backlogs of 100; then ten live ones and a seal cut, after it.
    // The live fixes fall in the last second; the declaration is older than that.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = Utc::now();
    let fixes: Vec<Value> = (1..=FIXES)
        .map(|seq| {
            let t = if seq + LIVE > FIXES {
                now - Duration::milliseconds(100 * (FIXES - seq) as i64)
            } else {
                start + Duration::minutes(seq as i64)
            };
            let wobble = (seq % 10) as f64 * 0.0001;
            json!({"seq": seq, "t": millis(t), "lat": ROAD.1 + wobble, "lon": ROAD.0 - wobble,
                   "speed_kmh": 0.0})
        })
        .collect();
    let (backlog, live) = fixes.split_at((FIXES - LIVE) as usize);
    for chunk in backlog.chunks(100) {
        device
            .publish_json(&topic(DEVICE, "pos"), &json!(chunk))
            .await;
    }
    for fix in live {
        device.publish_json(&topic(DEVICE, "pos"), fix).await;
    }
    let cut = json!({"seq": FIXES + 1, "t": millis(now + Duration::milliseconds(200)),
                     "seal_id": "CN-S-0888", "event": "rope_cut", "battery_pct": 70,
                     "lat": ROAD.1, "lon": ROAD.0});
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
    let response = app
        .http
        .get(format!("{}/api/v1/transits/{TRANSIT}/evidence", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::OK);
    let downloaded = response.bytes().await.expect("a bundle").to_vec();
    // Customs of a country the transit does not touch learn nothing of it.
    let kz = app.token_for("customs:KZ");
    let (status, _) = app
        .get_as(&kz, &format!("/api/v1/transits/{TRANSIT}/evidence"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let _ = app.shutdown().await;
    // Opening the store folds what the tail still held, so every report is in `reports`.
    let settings = crate::helpers::test_settings(data.path());
    drop(
        caravan::store::open_from(&settings.store, settings.dead_letters.policy())
            .expect("the store opens"),
    );
    Pristine {
        data,
        checkpoints,
        downloaded,
    }
}

/// A copy of the pristine store to edit: (keeps the copy alive, data dir, checkpoint dir).
fn copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let p = pristine();
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let checkpoints = root.path().join("checkpoints");
    copy_dir(p.data.path(), &data);
    copy_dir(p.checkpoints.path(), &checkpoints);
    crate::test_store::copy_store(p.data.path(), &data);
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
        .envs(crate::test_store::env_for(data))
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

/// Edits the event log of the store in `data` around its append-only triggers, as someone
/// holding the database would: `sqlite` and `postgres` are the same edit in each one's SQL.
fn edit_events(data: &Path, sqlite: &str, postgres: &str) {
    crate::test_store::execute(
        data,
        &format!("DROP TRIGGER IF EXISTS event_log_no_update; DROP TRIGGER IF EXISTS event_log_no_delete; {sqlite}"),
        &format!("ALTER TABLE event_log DISABLE TRIGGER USER; {postgres}"),
    );
}

fn newest_event_in(data: &Path) -> i64 {
    crate::test_store::count(data, "SELECT max(id) FROM event_log")
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
    // The fixes and the seal report.
    assert!(
        text.contains(&format!("Reports: {} in", FIXES + 1)),
        "{text}"
    );
    assert!(
        text.contains("the newest that matches, signed by sha256:"),
        "{text}"
    );
    assert!(text.contains("Transits: 1 rebuilt"), "{text}");
}

#[test]
fn one_changed_event_is_named() {
    let (_keep, data, checkpoints) = copy();
    let id = newest_event_in(&data) / 2;
    edit_events(
        &data,
        &format!("UPDATE event_log SET late = 1 - late WHERE id = {id}"),
        &format!("UPDATE event_log SET late = NOT late WHERE id = {id}"),
    );
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("broken at record {id}")), "{text}");
}

#[test]
fn one_deleted_middle_event_is_named() {
    let (_keep, data, checkpoints) = copy();
    let id = newest_event_in(&data) / 2;
    let delete = format!("DELETE FROM event_log WHERE id = {id}");
    edit_events(&data, &delete, &delete);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("broken at record {}", id + 1)),
        "{text}"
    );
}

#[test]
fn the_newest_events_deleted_are_found_by_the_checkpoint() {
    let (_keep, data, checkpoints) = copy();
    let newest = newest_event_in(&data);
    let cut = newest.min(20);
    let delete = format!("DELETE FROM event_log WHERE id > {}", newest - cut);
    edit_events(&data, &delete, &delete);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(text.contains("the store was cut back"), "{text}");
    assert!(
        text.contains(&format!("covers {newest} event records")),
        "{text}"
    );
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
    let parts = [
        prev.to_owned(),
        text(1),
        text(2),
        text(3),
        text(4),
        text(5),
        text(6),
        text(7),
        text(8),
    ];
    for part in parts {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    format!("{:x}", h.finalize())
}

#[test]
fn a_deleted_event_with_every_later_hash_recomputed_is_found_by_the_signature() {
    if sqlite_only(SqliteOnly::EditsACopiedSqliteFile) {
        return;
    }
    let (_keep, data, checkpoints) = copy();
    let db = open(&data);
    let id = newest_event(&db) / 2;
    db.execute("DELETE FROM event_log WHERE id = ?1", [id])
        .expect("deleted");
    let mut prev: String = db
        .query_row("SELECT hash FROM event_log WHERE id = ?1", [id - 1], |r| {
            r.get(0)
        })
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
    if sqlite_only(SqliteOnly::EditsACopiedSqliteFile) {
        return;
    }
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
        text.contains(&format!(
            "transit {TRANSIT}: status is arrived in the table, suspended by the log"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("transit {TRANSIT}: deadline is 2030-01-01")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "alert {TRANSIT}.1: \"resolved\" / \"false_alarm\" in the table, \"open\""
        )),
        "{text}"
    );
}

#[test]
fn positions_moved_by_a_degree_are_named() {
    if sqlite_only(SqliteOnly::EditsACopiedSqliteFile) {
        return;
    }
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
    // Within a batch, differences are listed in the order of their hashes, and only the first
    // 200: which of the moved fixes are named depends on how many batches they were
    // committed in, so only that they are named, and all counted.
    assert!(
        text.contains(&format!("the report of device {DEVICE} seq ")),
        "{text}"
    );
    assert!(text.contains("is not as committed"), "{text}");
    assert!(text.contains("1000 problems"), "{text}");
}

#[test]
fn a_deleted_and_an_added_position_are_named() {
    let (_keep, data, checkpoints) = copy();
    // The same SQL on both stores: reports have no triggers.
    let edit = format!(
        "DELETE FROM reports WHERE device_id = '{DEVICE}' AND seq = 500;
         INSERT INTO reports (device_id, seq, kind, t_ms, received_ms, lat, lon, body, batch)
         SELECT device_id, 5000, kind, t_ms + 1, received_ms, lat, lon, body, batch
         FROM reports WHERE device_id = '{DEVICE}' AND seq = 700;"
    );
    crate::test_store::execute(&data, &edit, &edit);
    let (ok, text) = verify(&data, &checkpoints);
    assert!(!ok, "{text}");
    assert!(
        text.contains("committed reports are no longer stored (deleted)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("device {DEVICE} seq 5000")),
        "{text}"
    );
}

fn caravan(args: &[&str], data: &Path, checkpoints: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .envs(crate::test_store::env_for(data))
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

/// The instance's public key as `caravan audit key` prints it.
fn public_key(data: &Path, checkpoints: &Path) -> String {
    let (ok, text) = caravan(&["audit", "key"], data, checkpoints);
    assert!(ok, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("ed25519 "))
        .expect("a key line")
        .trim()
        .to_owned()
}

/// A bundle exported with the CLI: (keeps the copy alive, the file, the issuer's key).
fn exported() -> (tempfile::TempDir, PathBuf, String) {
    let (keep, data, checkpoints) = copy();
    let file = keep.path().join("bundle.json");
    let (ok, text) = caravan(
        &[
            "audit",
            "export",
            "--transit",
            TRANSIT,
            "--out",
            &file.to_string_lossy(),
        ],
        &data,
        &checkpoints,
    );
    assert!(ok, "{text}");
    let key = public_key(&data, &checkpoints);
    (keep, file, key)
}

fn verify_bundle(file: &Path, key: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(["audit", "verify-bundle"])
        .arg(file)
        .args(["--key", key])
        .output()
        .expect("caravan runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_bundle_of_an_open_transit_verifies_up_to_its_checkpoint_and_matches_its_schema() {
    let (_keep, file, key) = exported();
    let (ok, text) = verify_bundle(&file, &key);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("event records of transit {TRANSIT}")),
        "{text}"
    );
    // The live fixes and the seal report: those after the declaration.
    let positions = LIVE + 1;
    assert!(
        text.contains(&format!(
            "{positions} of {positions} positions were committed"
        )),
        "{text}"
    );
    assert!(
        text.contains("the transit view (status suspended,"),
        "{text}"
    );
    assert!(
        text.contains("NOT PROVEN: that the bundle holds every record"),
        "{text}"
    );

    let bundle: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("the bundle")).expect("JSON");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("docs/evidence-bundle.schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&bundle)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_bundle_downloaded_from_the_api_verifies_offline() {
    let (keep, data, checkpoints) = copy();
    let file = keep.path().join("downloaded.json");
    std::fs::write(&file, &pristine().downloaded).expect("written");
    let (ok, text) = verify_bundle(&file, &public_key(&data, &checkpoints));
    assert!(ok, "{text}");
    assert!(
        text.contains("the checkpoint is signed by Ed25519 key sha256:"),
        "{text}"
    );
}

/// The bundle with the byte after the first `marker` following `section` replaced.
fn with_one_byte_changed(file: &Path, section: &str, marker: &str) -> PathBuf {
    let mut bytes = std::fs::read(file).expect("the bundle");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let from = text.find(section).expect("the section");
    let at = from + text[from..].find(marker).expect("the marker") + marker.len();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    let changed = file.with_extension("changed.json");
    std::fs::write(&changed, bytes).expect("written");
    changed
}

#[test]
fn a_bundle_with_one_changed_byte_fails_and_names_what_broke() {
    let (_keep, file, key) = exported();
    let cases = [
        // A position's latitude digit.
        (
            "\"positions\"",
            "\"lat\": 39.5",
            "position of device truck-ev seq",
        ),
        // A digit in the text of the alert that was raised.
        (
            "\"transit.alert_raised\"",
            "\"occurred_ms\": 1",
            "event record",
        ),
        // The number of records the checkpoint covers.
        ("\"checkpoint\"", "\"events\": ", "is not signed by key"),
    ];
    for (section, marker, named) in cases {
        let changed = with_one_byte_changed(&file, section, marker);
        let (ok, text) = verify_bundle(&changed, &key);
        assert!(!ok, "{section}: {text}");
        assert!(text.contains("BROKEN: "), "{text}");
        assert!(text.contains(named), "{section}: {text}");
    }
}

#[test]
fn a_bundle_checked_with_another_key_fails() {
    let (keep, file, _key) = exported();
    let other = caravan::evidence::InstanceKey::load_or_create(&keep.path().join("other"))
        .expect("another key");
    let (ok, text) = verify_bundle(&file, &other.public_hex());
    assert!(!ok, "{text}");
    assert!(text.contains("but the key given is"), "{text}");
    assert!(text.contains("is not signed by key"), "{text}");
}
