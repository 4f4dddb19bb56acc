//! Caravan as an operator runs it: metrics a Prometheus server accepts, HTTP answers that
//! name what a client should do, owner-only files, a first token that is never lost or
//! logged, rules and maps from the data directory, and logs that a collector can read.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use crate::helpers::{spawn_app, spawn_app_in};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `promtool`, from Debian's `prometheus` package; under `CI=true` its absence fails.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let message = "promtool is not installed (Debian package `prometheus`)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
    }
    found.then_some("promtool")
}

fn run_promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let Some(tool) = promtool() else {
        return (true, String::new());
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("written");
    let output = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test]
async fn metrics_pass_promtool_in_seconds_with_counters_and_the_right_content_type() {
    let app = spawn_app().await;
    app.register("m-1").await;
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics answer");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("text");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");
    assert!(!text.contains("millisecond"), "{text}");
    assert!(
        text.contains("# TYPE caravan_messages_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE caravan_historian_written_lines_total counter"));
    assert!(text.contains("caravan_pipeline_lag_seconds "), "{text}");
    let (ok, said) = run_promtool(&["check", "metrics"], &text);
    assert!(ok, "promtool check metrics: {said}\n{text}");

    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .header(ACCEPT, "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("metrics answer");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(response.text().await.expect("text").ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_compose_prometheus_config_passes_and_the_health_dashboard_shows_real_metrics() {
    let config = repo("deploy/prometheus/prometheus.yml");
    let config = config.to_str().expect("a UTF-8 path");
    let (ok, said) = run_promtool(&["check", "config", "--syntax-only", config], "");
    assert!(ok, "promtool check config: {said}");

    let app = spawn_app().await;
    let exposed = app.metrics().await;
    let text = std::fs::read_to_string(repo("deploy/grafana/dashboards/caravan-health.json"))
        .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut named = 0;
    for expr in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
    {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("caravan_"))
        {
            named += 1;
            assert!(
                exposed.contains(&format!("\n{name} "))
                    || exposed.contains(&format!("\n{name}{{"))
                    || exposed.contains(&format!("# TYPE {name} ")),
                "the dashboard reads {name}, which /metrics does not have"
            );
        }
    }
    assert!(named >= 10, "{named}");
}

#[tokio::test]
async fn a_401_names_the_bearer_scheme_and_a_405_lists_the_methods() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/api/v1/transits", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .expect("a challenge");
    assert!(challenge.to_str().unwrap_or("").starts_with("Bearer"));
    let response = app
        .http
        .delete(format!("{}/api/v1/transits", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "GET, POST");
}

#[tokio::test]
async fn a_bad_query_value_names_its_parameter() {
    let app = spawn_app().await;
    app.register("q-1").await;
    let (status, body) = app.get("/api/v1/devices/q-1/track?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("from=yesterday"), "{body}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_the_store_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("caravan-data");
    let app = spawn_app_in(&data, |_| {}).await;
    app.register("p-1").await;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&data).ok(), Some(0o700));
    for entry in std::fs::read_dir(&data).expect("listed").flatten() {
        let path = entry.path();
        if path.is_file() {
            assert_eq!(mode(&path).ok(), Some(0o600), "{}", path.display());
        }
    }
}

#[tokio::test]
async fn a_broken_rules_file_in_the_data_directory_stops_the_start_naming_it() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(data.path().join("rules")).expect("mkdir");
    std::fs::write(
        data.path().join("rules/risk.toml"),
        "[lanes]\nyellow_from = 9\nred_from = 1\n",
    )
    .expect("written");
    let settings = crate::helpers::test_settings(data.path());
    let error = caravan::app::App::start(settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("risk.toml"), "{error:#}");
}

fn caravan() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
    command.env("RUST_LOG", "info");
    command
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID");
    command
}

fn serve(data: &Path, http: &str) -> Command {
    let mut command = caravan();
    command
        .args([
            "serve",
            "--http",
            http,
            "--mqtt-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .envs(crate::test_store::env_for(data))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads `child`'s stdout up to two lines past the HTTP line (where the first-start lines
/// are), then keeps draining it so the child never writes to a closed pipe.
fn first_lines(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut out: Vec<String> = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let done = out.iter().any(|l| l.starts_with("HTTP")) && out.len() >= 3;
        out.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    out
}

fn stop(child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("exits");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_first_start_that_fails_keeps_the_first_token_for_the_next_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").to_string();
    let failed = serve(data.path(), &port).output().expect("runs");
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("listening for HTTP"), "{stderr}");
    assert_eq!(
        stderr.matches("os error").count(),
        1,
        "the cause once: {stderr}"
    );
    drop(taken);

    let mut child = serve(data.path(), "127.0.0.1:0").spawn().expect("starts");
    let lines = first_lines(&mut child);
    let said = lines.join("\n");
    assert!(said.contains("First start"), "{said}");
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("cvn_")),
        "{said}"
    );
    stop(child);
}

#[cfg(unix)]
#[test]
fn under_systemd_the_first_token_goes_to_an_owner_only_file_and_logs_are_json() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = serve(data.path(), "127.0.0.1:0")
        .env("JOURNAL_STREAM", "8:12345")
        .args(["--log-format", "json"])
        .spawn()
        .expect("starts");
    let lines = first_lines(&mut child);
    let said = lines.join("\n");
    assert!(
        !said.contains("cvn_"),
        "the token is not in the journal: {said}"
    );
    let file = data.path().join("first-coordinator-token");
    assert!(said.contains(&file.display().to_string()), "{said}");
    let token = std::fs::read_to_string(&file).expect("the token file");
    assert!(token.trim().starts_with("cvn_"), "{token}");
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let http = lines
        .iter()
        .find_map(|l| l.strip_prefix("HTTP  "))
        .expect("the HTTP line")
        .to_owned();
    let me = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .arg(format!("{http}/api/v1/me"))
        .output();
    if let Ok(me) = me {
        assert_eq!(String::from_utf8_lossy(&me.stdout), "200");
    }
    let stderr = stop(child);
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes in a file: {stderr}"
    );
    let mut objects = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let object: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        assert!(object["level"].is_string(), "{line}");
        objects += 1;
    }
    assert!(objects >= 2, "{stderr}");
}
