//! The `caravan` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{spawn_app, spawn_app_in};

fn caravan() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
    command.env("RUST_LOG", "warn");
    command
}

// Multi-threaded: the command blocks this thread while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_add_registers_through_the_running_server() {
    let app = spawn_app().await;
    let output = caravan()
        .args([
            "device",
            "add",
            "356307042441013",
            "--carrier",
            "kg-trans",
            "--plate",
            "01KG123ABC",
        ])
        .args(["--api", &app.base])
        .env("CARAVAN_TOKEN", &app.token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let view = app.device("356307042441013").await;
    assert_eq!(view["plate"], "01KG123ABC");

    let again = caravan()
        .args([
            "device",
            "add",
            "356307042441013",
            "--carrier",
            "kg-trans",
            "--api",
            &app.base,
        ])
        .env("CARAVAN_TOKEN", &app.token)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already registered"));
}

#[tokio::test]
async fn device_add_without_a_server_writes_the_store_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = caravan()
        .args(["device", "add", "offline-1", "--carrier", "tj-cargo"])
        .args(["--api", "http://127.0.0.1:9", "--data-dir"])
        .arg(dir.path())
        .envs(crate::test_store::env_for(dir.path()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let app = spawn_app_in(dir.path(), |_| {}).await;
    assert_eq!(app.device("offline-1").await["carrier"], "tj-cargo");
}

#[test]
fn serve_prints_its_addresses_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = caravan()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .envs(crate::test_store::env_for(dir.path()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mqtt = lines.next().unwrap().unwrap();
    let http = lines.next().unwrap().unwrap();
    assert!(
        mqtt.starts_with("MQTT  127.0.0.1:") && !mqtt.contains(":0 "),
        "{mqtt}"
    );
    assert!(
        http.starts_with("HTTP  http://127.0.0.1:") && !http.ends_with(":0"),
        "{http}"
    );
    let url = format!("{}/healthz", http.trim_start_matches("HTTP  "));
    let health = reqwest::blocking_get(&url);
    assert!(
        health.contains("\"status\":\"ok\"") || health.contains("connected"),
        "{health}"
    );

    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

/// A tiny blocking GET, to keep this test free of an async runtime.
mod reqwest {
    pub fn blocking_get(url: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                if let Ok(response) = ::reqwest::get(url).await {
                    return response.text().await.unwrap_or_default();
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            String::new()
        })
    }
}

#[test]
fn exchange_identity_prints_the_entry_a_peer_adds_as_it_is() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let identity = |countries: &str| {
        caravan()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["exchange", "identity", "--name", "kg-customs"])
            .args(["--url", "https://caravan.customs.example.kg"])
            .env("CARAVAN__EXCHANGE__COUNTRIES", countries)
            .output()
            .expect("caravan runs")
    };
    let refused = identity("[]");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("countries"), "{why}");

    let out = identity("[\"KG\"]");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    // The other side pastes it under its own [exchange]: it must load and pass the checks.
    let theirs = format!("[exchange]\ncountries = [\"KZ\"]\n{text}");
    let settings: caravan::settings::Settings = toml::from_str(&theirs).expect("valid TOML");
    let peers = settings
        .exchange
        .peers("sha256:00000000000000000000000000000000")
        .expect("an accepted peer");
    let key = caravan::evidence::InstanceKey::load_or_create(dir.path()).expect("the key");
    assert_eq!(peers[0].name, "kg-customs");
    assert_eq!(peers[0].url, "https://caravan.customs.example.kg");
    assert_eq!(peers[0].countries, vec!["KG".parse().expect("a country")]);
    assert_eq!(peers[0].fingerprint, key.fingerprint(), "{text}");
}

#[test]
fn a_store_url_of_an_unknown_kind_is_refused_naming_it_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = caravan()
        .args(["token", "list", "--data-dir"])
        .arg(dir.path())
        .args(["--store", "mysql://caravan:hunter2@db.example/caravan"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mysql://caravan:***@db.example/caravan"),
        "{stderr}"
    );
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        !dir.path().join(caravan::store::SQLITE_FILE).exists(),
        "no SQLite store was made instead"
    );
}
