//! The dashboard in a real browser: Debian's Chromium, driven by the scripts in tests/e2e
//! (playwright-core), against the real server, with vehicles published over MQTT:
//! dashboard.mjs for the live map and the views in both languages, officers.mjs for the
//! alert desk, the border post board and what a post of another country cannot see.
//!
//! Needs /usr/bin/chromium (Debian package `chromium`), Node.js, and `npm ci --prefix
//! tests/e2e`. Without them the test says so and passes, except under `CI=true`, where it
//! fails. Screenshots of every view land in `target/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, spawn_app_in, topic, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium's first start on a busy two-core machine can take a while.
const LINE_TIMEOUT: Duration = Duration::from_secs(90);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Whether the browser, Node.js and playwright-core are here; under CI their absence fails.
fn browser_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
    }
    if !node {
        missing.push("node".to_owned());
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        missing.push("playwright-core (npm ci --prefix tests/e2e)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("the dashboard browser test needs {}", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("Skipped: {message}.");
    false
}

async fn register(app: &TestApp, device_id: &str, carrier: &str, plate: &str) {
    let body = json!({"device_id": device_id, "carrier": carrier, "plate": plate});
    let (status, body) = app.post("/api/v1/devices", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Other vehicles, so that the map shows each status: at a BCP, silent, and with a cut seal.
async fn publish_other_vehicles(app: &TestApp) {
    register(app, "e2e-at-bcp", "kg-trans", "08KG512BB").await;
    register(app, "e2e-silent", "kz-cargo", "KZ777ABC02").await;
    register(app, "e2e-seal", "cn-xinjiang", "XINA12345").await;
    let at_post = json!([
        {"seq": 1, "t": minutes_ago(6), "lat": 39.6792, "lon": 73.8868, "speed_kmh": 0.0},
        {"seq": 2, "t": minutes_ago(4), "lat": 39.6793, "lon": 73.8869, "speed_kmh": 0.0},
        {"seq": 3, "t": minutes_ago(2), "lat": 39.6792, "lon": 73.8867, "speed_kmh": 0.0},
    ]);
    let at_bcp = app.mqtt("e2e-at-bcp").await;
    at_bcp
        .publish_json(&topic("e2e-at-bcp", "pos"), &at_post)
        .await;
    let silent = app.mqtt("e2e-silent").await;
    silent
        .publish_json(&topic("e2e-silent", "pos"), &fix(1, 180, 43.90, 78.90))
        .await;
    let obu = app.mqtt("e2e-seal").await;
    obu.publish_json(&topic("e2e-seal", "pos"), &fix(1, 5, 39.55, 75.40))
        .await;
    let cut = json!({"seq": 2, "t": minutes_ago(3), "seal_id": "CN-ES-004411", "event": "rope_cut", "battery_pct": 64});
    obu.publish_json(&topic("e2e-seal", "seal"), &cut).await;
    eventually("the other vehicles have positions", || async {
        let (_, body) = app.get("/api/v1/devices").await;
        let devices = body["devices"].as_array().cloned().unwrap_or_default();
        let placed = devices.iter().filter(|d| !d["position"].is_null()).count();
        (placed >= 3).then_some(())
    })
    .await;
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
}

/// A browser script in tests/e2e, talking to the test one line at a time.
struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: ChildStdin,
}

impl Script {
    /// Starts `tests/e2e/{file}` with `vars`, the screenshot directory and the browser.
    fn start(file: &str, vars: &[(&str, &str)]) -> Script {
        let mut child = Command::new("node")
            .arg(e2e_dir().join(file))
            .envs(vars.iter().copied())
            .env("SCREENSHOT_DIR", screenshot_dir())
            .env("CHROMIUM", CHROMIUM)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        Script {
            lines: BufReader::new(child.stdout.take().expect("stdout is piped")).lines(),
            stdin: child.stdin.take().expect("stdin is piped"),
            child,
        }
    }

    /// The next line the script prints that starts with `word`; its `FAIL` line fails the test.
    async fn expect(&mut self, word: &str) -> String {
        loop {
            let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("the browser script did not say {word} in time"))
                .expect("the script's output is readable")
                .unwrap_or_else(|| panic!("the browser script ended before saying {word}"));
            eprintln!("browser: {line}");
            assert!(
                !line.starts_with("FAIL"),
                "the browser script failed: {line}"
            );
            if let Some(rest) = line.strip_prefix(word) {
                return rest.trim().to_owned();
            }
        }
    }

    async fn go(&mut self) {
        self.stdin
            .write_all(b"GO\n")
            .await
            .expect("the script reads stdin");
        self.stdin.flush().await.expect("stdin flushes");
    }

    /// The script's `DONE` summary, once it has exited successfully with at least `shots`
    /// screenshots.
    async fn finish(mut self, shots: usize) -> Value {
        let summary: Value =
            serde_json::from_str(&self.expect("DONE").await).expect("a JSON summary");
        let status = tokio::time::timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .expect("the script ends")
            .expect("the script's status");
        assert!(status.success(), "the browser script exited with {status}");
        let taken = summary["screenshots"].as_array().map_or(0, Vec::len);
        assert!(taken >= shots, "only {taken} screenshots: {summary}");
        eprintln!("Screenshots in {}: {summary}", screenshot_dir().display());
        summary
    }
}

#[tokio::test]
async fn a_coordinator_sees_a_vehicle_appear_and_move_on_the_live_map_in_english_and_russian() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    register(&app, "e2e-truck", "kg-trans", "01KG123ABC").await;
    publish_other_vehicles(&app).await;
    let mut script = Script::start(
        "dashboard.mjs",
        &[
            ("CARAVAN_URL", &app.base),
            ("CARAVAN_TOKEN", &app.token),
            ("CARAVAN_DEVICE", "e2e-truck"),
            ("CARAVAN_PLATE", "01KG123ABC"),
        ],
    );

    script.expect("READY").await;
    let truck = app.mqtt("e2e-truck").await;
    let near_irkeshtam = json!({"seq": 1, "t": minutes_ago(2), "lat": 39.70, "lon": 73.60, "speed_kmh": 48.0, "heading_deg": 275});
    truck
        .publish_json(&topic("e2e-truck", "pos"), &near_irkeshtam)
        .await;
    script.go().await;
    let seen = script.expect("SEEN").await;

    let sary_tash = json!({"seq": 2, "t": minutes_ago(1), "lat": 39.73, "lon": 73.25, "speed_kmh": 55.0, "heading_deg": 280});
    truck
        .publish_json(&topic("e2e-truck", "pos"), &sary_tash)
        .await;
    script.go().await;
    let moved = script.expect("MOVED").await;
    assert_ne!(seen, moved, "the marker did not move");

    script.finish(10).await;
}

const TRANSIT: &str = "CN-24CN0101-000777";
const REFERENCE: &str = "24CN0101-000777";
const SEAL: &str = "CN-S-0777";
const NEW_SEAL: &str = "KG-S-1201";
const OUTCOME: &str = "resolved_on_site";
const NOTES: &str = "Rope replaced under escort; load matches the declaration.";

/// Kashgar → Irkeshtam → Osh for `truck-c5`, under one seal.
fn declaration() -> Value {
    let deadline = chrono::Utc::now() + chrono::Duration::days(2);
    json!({
        "reference": REFERENCE,
        "carrier": "kg-trans",
        "vehicle_plate": "01KG123ABC",
        "trailer_plates": ["01KG456DEF"],
        "driver": {"name": "Bakyt Asanov", "document": "AC1234567"},
        "devices": ["truck-c5"],
        "seals": [{"id": SEAL}],
        "goods": [{"hs_code": "845011", "description": "washing machines", "gross_kg": 12400.0,
                   "value": 48000.0, "currency": "USD"}],
        "departure_office": "kashgar",
        "itinerary": ["irkeshtam"],
        "destination_office": "osh",
        "deadline": deadline.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

/// Declares the transit, drives it onto the road to Irkeshtam and cuts its seal there;
/// answers the id of the alert the cut raised.
async fn declare_a_transit_and_cut_its_seal(app: &TestApp) -> String {
    register(app, "truck-c5", "kg-trans", "01KG123ABC").await;
    let (status, body) = app.post("/api/v1/transits", &declaration()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], TRANSIT);
    let truck = app.mqtt("truck-c5").await;
    let (lat, lon) = (39.575, 74.95);
    truck
        .publish_json(&topic("truck-c5", "pos"), &fix(1, 3, lat, lon))
        .await;
    let cut = json!({"seq": 2, "t": minutes_ago(2), "seal_id": SEAL, "event": "rope_cut",
                     "battery_pct": 70, "lat": lat, "lon": lon});
    truck.publish_json(&topic("truck-c5", "seal"), &cut).await;
    eventually("the seal cut raises an alert", || async {
        let (_, body) = app.get("/api/v1/alerts").await;
        let alerts = body["alerts"].as_array()?;
        let alert = alerts
            .iter()
            .find(|a| a["transit_id"] == TRANSIT && a["kind"] == "seal_breach")?;
        alert["id"].as_str().map(str::to_owned)
    })
    .await
}

fn assert_resolved_with_outcome_and_notes(transit: &Value, alert_id: &str) {
    let alerts = transit["alerts"].as_array().expect("alerts");
    let alert = alerts
        .iter()
        .find(|a| a["id"] == alert_id)
        .expect("the alert");
    assert_eq!(alert["state"], "resolved", "{alert:#}");
    assert_eq!(alert["outcome"], OUTCOME, "{alert:#}");
    let steps: Vec<_> = alert["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|s| (s["action"].as_str().unwrap_or(""), s["note"].as_str()))
        .collect();
    assert_eq!(
        steps,
        [("acknowledged", None), ("resolved", Some(NOTES))],
        "{alert:#}"
    );
}

fn assert_inspected_with_the_seal_replaced(transit: &Value) {
    let inspections = transit["inspections"].as_array().expect("inspections");
    assert_eq!(inspections.len(), 1, "{inspections:#?}");
    let inspection = &inspections[0];
    assert_eq!(inspection["place"], "irkeshtam-kg");
    assert_eq!(inspection["country"], "KG");
    assert_eq!(inspection["result"], "cleared");
    assert_eq!(inspection["seals_removed"], json!([SEAL]));
    assert_eq!(inspection["seals_applied"], json!([NEW_SEAL]));
    assert_eq!(
        inspection["checklist"],
        json!([{"item": "Pallet count as declared", "ok": true}, {"item": "Load secured", "ok": false}]),
        "the load checklist as the post filled it in"
    );
    let current: Vec<_> = transit["seals"]
        .as_array()
        .expect("seals")
        .iter()
        .filter(|s| s["state"] != "removed")
        .map(|s| s["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(current, [NEW_SEAL], "{:#}", transit["seals"]);
}

async fn assert_hidden_from(app: &TestApp, token: &str) {
    let (status, body) = app
        .get_as(token, &format!("/api/v1/transits/{TRANSIT}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, listed) = app.get_as(token, "/api/v1/transits?limit=1000").await;
    assert_eq!(listed["transits"], json!([]), "{listed}");
    let (_, resolved) = app.get_as(token, "/api/v1/alerts?state=resolved").await;
    assert_eq!(resolved["alerts"], json!([]), "{resolved}");
}

#[tokio::test]
async fn officers_resolve_an_alert_and_inspect_at_their_post_and_another_country_sees_nothing() {
    if !browser_available() {
        return;
    }
    // This instance shares its transits with China's, which cannot be reached: the
    // transit's detail says what waits for it.
    let dir = tempfile::tempdir().expect("a temp dir");
    let app = spawn_app_in(dir.path(), |s| {
        s.exchange.countries = vec!["KG".parse().expect("a country")];
        s.exchange.peers = vec![caravan::exchange::PeerSettings {
            name: "cn-customs".into(),
            // Nothing listens on the discard port.
            url: "http://127.0.0.1:9".into(),
            countries: vec!["CN".parse().expect("a country")],
            key: "11".repeat(32),
        }];
    })
    .await
    .keep_dir(dir);
    let alert_id = declare_a_transit_and_cut_its_seal(&app).await;
    register(&app, "kz-truck", "kz-cargo", "KZ777ABC02").await;
    let kz_truck = app.mqtt("kz-truck").await;
    kz_truck
        .publish_json(&topic("kz-truck", "pos"), &fix(1, 2, 43.5, 77.5))
        .await;
    eventually("the truck in Kazakhstan has a position", || async {
        let (_, body) = app.get("/api/v1/devices/kz-truck").await;
        (!body["position"].is_null()).then_some(())
    })
    .await;
    let post = app.token_for("post:irkeshtam:KG");
    let foreign = app.token_for("post:khorgos:KZ");

    let mut script = Script::start(
        "officers.mjs",
        &[
            ("CARAVAN_URL", &app.base),
            ("CARAVAN_TOKEN", &app.token),
            ("CARAVAN_POST_TOKEN", &post),
            ("CARAVAN_FOREIGN_TOKEN", &foreign),
            ("CARAVAN_TRANSIT", TRANSIT),
            ("CARAVAN_REFERENCE", REFERENCE),
            ("CARAVAN_PLATE", "01KG123ABC"),
            ("CARAVAN_DEVICE", "truck-c5"),
            ("CARAVAN_LOCAL_DEVICE", "kz-truck"),
            ("CARAVAN_ALERT", &alert_id),
            ("CARAVAN_OUTCOME", OUTCOME),
            ("CARAVAN_NOTES", NOTES),
            ("CARAVAN_RESULT", "cleared"),
            ("CARAVAN_SEAL", SEAL),
            ("CARAVAN_NEW_SEAL", NEW_SEAL),
        ],
    );
    assert_eq!(script.expect("RESOLVED").await, alert_id);
    assert_eq!(script.expect("INSPECTED").await, TRANSIT);
    script.expect("HIDDEN").await;
    script.finish(10).await;

    let (status, transit) = app.get(&format!("/api/v1/transits/{TRANSIT}")).await;
    assert_eq!(status, StatusCode::OK, "{transit}");
    assert_resolved_with_outcome_and_notes(&transit, &alert_id);
    assert_inspected_with_the_seal_replaced(&transit);
    let (status, seen_by_post) = app
        .get_as(&post, &format!("/api/v1/transits/{TRANSIT}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{seen_by_post}");
    assert_hidden_from(&app, &foreign).await;
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_without_a_token_with_types_and_revalidation() {
    let app = spawn_app().await;
    let get = |path: &'static str, etag: Option<String>| {
        let mut request = app.http.get(format!("{}{path}", app.base));
        if let Some(tag) = etag {
            request = request.header("if-none-match", tag);
        }
        request.send()
    };
    let page = get("/", None).await.expect("the page answers");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));

    let script = get("/assets/js/main.js", None)
        .await
        .expect("the script answers");
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["cache-control"], "no-cache");
    let etag = script.headers()["etag"]
        .to_str()
        .expect("an ASCII ETag")
        .to_owned();
    let again = get("/assets/js/main.js", Some(etag))
        .await
        .expect("it answers again");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let map = get("/assets/maps/bcps.geojson", None)
        .await
        .expect("the map answers");
    assert_eq!(map.headers()["content-type"], "application/geo+json");
    let map: Value = map.json().await.expect("GeoJSON");
    assert_eq!(map["type"], "FeatureCollection");

    let missing = get("/assets/nope.js", None).await.expect("it answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.expect("the error shape");
    assert_eq!(body["error"]["code"], "not_found");
}

/// The body of `path` with and without `Accept-Encoding: gzip`, and each answer's encoding,
/// as they come over the wire.
async fn both_encodings(app: &TestApp, path: &str) -> ((Option<String>, Vec<u8>), Vec<u8>) {
    // The client would otherwise decode gzip itself and drop the header.
    let http = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("a client");
    let fetch = |gzip: bool| {
        let mut request = http
            .get(format!("{}{path}", app.base))
            .bearer_auth(&app.token);
        if gzip {
            request = request.header("accept-encoding", "br;q=1.0, gzip;q=0.8");
        }
        request.send()
    };
    let packed = fetch(true).await.expect("it answers");
    assert_eq!(packed.status(), StatusCode::OK, "{path}");
    assert_eq!(packed.headers()["vary"], "accept-encoding", "{path}");
    let encoding = packed
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let packed = packed.bytes().await.expect("a body").to_vec();
    let plain = fetch(false).await.expect("it answers");
    assert!(plain.headers().get("content-encoding").is_none(), "{path}");
    let plain = plain.bytes().await.expect("a body").to_vec();
    ((encoding, packed), plain)
}

#[tokio::test]
async fn a_slow_post_gets_the_scripts_and_map_layers_gzipped_when_its_browser_accepts_it() {
    use std::io::Read;
    let app = spawn_app().await;
    for path in [
        "/assets/maps/countries.geojson",
        "/api/v1/maps/countries",
        "/assets/js/views/map.js",
        "/",
    ] {
        let ((encoding, packed), plain) = both_encodings(&app, path).await;
        assert_eq!(encoding.as_deref(), Some("gzip"), "{path}");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .expect("valid gzip");
        assert_eq!(unpacked, plain, "{path} decodes to the plain body");
        assert!(
            packed.len() * 2 < plain.len(),
            "{path}: {} bytes gzipped of {}",
            packed.len(),
            plain.len()
        );
    }
    // The countries layer was 794 KB on the wire (12 s at 512 kbit/s); gzipped it is about
    // 250 KB, under a third.
    let ((_, countries), plain) = both_encodings(&app, "/api/v1/maps/countries").await;
    assert!(
        countries.len() * 3 < plain.len(),
        "{} bytes",
        countries.len()
    );
    // A browser that refuses gzip gets the plain body.
    let refused = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("a client")
        .get(format!("{}/assets/maps/countries.geojson", app.base))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .expect("it answers");
    assert!(refused.headers().get("content-encoding").is_none());
}
