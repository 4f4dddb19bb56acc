//! The dashboard in a real browser: Debian's Chromium, driven by tests/e2e/dashboard.mjs
//! (playwright-core), against the real server, with vehicles published over MQTT.
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
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, topic, TestApp};

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
    let obu = app.mqtt("e2e-others").await;
    let at_post = json!([
        {"seq": 1, "t": minutes_ago(6), "lat": 39.6792, "lon": 73.8868, "speed_kmh": 0.0},
        {"seq": 2, "t": minutes_ago(4), "lat": 39.6793, "lon": 73.8869, "speed_kmh": 0.0},
        {"seq": 3, "t": minutes_ago(2), "lat": 39.6792, "lon": 73.8867, "speed_kmh": 0.0},
    ]);
    obu.publish_json(&topic("e2e-at-bcp", "pos"), &at_post)
        .await;
    obu.publish_json(&topic("e2e-silent", "pos"), &fix(1, 180, 43.90, 78.90))
        .await;
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

struct Script {
    lines: Lines<BufReader<ChildStdout>>,
    stdin: ChildStdin,
}

impl Script {
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
}

#[tokio::test]
async fn a_coordinator_sees_a_vehicle_appear_and_move_on_the_live_map_in_english_and_russian() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    register(&app, "e2e-truck", "kg-trans", "01KG123ABC").await;
    publish_other_vehicles(&app).await;
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");

    let mut child = Command::new("node")
        .arg(e2e_dir().join("dashboard.mjs"))
        .env("CARAVAN_URL", &app.base)
        .env("CARAVAN_TOKEN", &app.token)
        .env("CARAVAN_DEVICE", "e2e-truck")
        .env("CARAVAN_PLATE", "01KG123ABC")
        .env("SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut script = Script {
        lines: BufReader::new(child.stdout.take().expect("stdout is piped")).lines(),
        stdin: child.stdin.take().expect("stdin is piped"),
    };

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

    let summary: Value =
        serde_json::from_str(&script.expect("DONE").await).expect("a JSON summary");
    let status = tokio::time::timeout(LINE_TIMEOUT, child.wait())
        .await
        .expect("the script ends")
        .expect("the script's status");
    assert!(status.success(), "the browser script exited with {status}");
    let shots = summary["screenshots"].as_array().map_or(0, Vec::len);
    assert!(shots >= 8, "only {shots} screenshots: {summary}");
    eprintln!("Screenshots in {}: {summary}", screenshots.display());
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
