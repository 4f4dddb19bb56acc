//! A newcomer's first hour with the command line: errors that say what is wrong and what to
//! do, and the check of an edited rules file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::spawn_app;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn caravan() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
    command.env("RUST_LOG", "warn");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_said_to_be_refused() {
    let app = spawn_app().await;
    let output = caravan()
        .args(["device", "list", "--api", &app.base, "--token", "cvn_wrong"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused the token"), "{stderr}");
    let output = caravan()
        .args(["device", "list", "--api", &app.base])
        .env_remove("CARAVAN_TOKEN")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pass --token"), "{stderr}");
}

#[test]
fn maps_check_outside_the_repository_says_there_is_no_maps_folder() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let output = caravan()
        .current_dir(elsewhere.path())
        .args(["maps", "check"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no maps folder"), "{stderr}");
    assert!(!stderr.contains("problem(s)"), "{stderr}");
}

#[test]
fn rules_check_accepts_the_shipped_files_and_names_the_problem_in_an_edited_one() {
    for file in ["rules/transit.toml", "rules/risk.toml"] {
        let output = caravan()
            .args(["rules", "check"])
            .arg(repo(file))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{file}: {stdout}");
        assert!(stdout.contains("valid"), "{stdout}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let edited = dir.path().join("transit.toml");
    let shipped = std::fs::read_to_string(repo("rules/transit.toml")).expect("shipped");
    std::fs::write(
        &edited,
        shipped.replace("with_delay_kmh = 23.4", "with_delay_kmh = -1"),
    )
    .expect("written");
    let output = caravan()
        .args(["rules", "check"])
        .arg(&edited)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("transit.toml") && stderr.contains("positive"),
        "{stderr}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(data.path().join("rules")).expect("mkdir");
    std::fs::write(data.path().join("rules/transit.toml"), &shipped).expect("written");
    let output = caravan()
        .args(["rules", "check", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("risk rules: built in"), "{stdout}");
    assert!(stdout.contains("rules/transit.toml"), "{stdout}");
}

#[test]
fn a_first_start_on_a_busy_port_says_so_once_and_the_next_start_shows_the_token() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let busy_port = busy.local_addr().expect("address").port();
    let data = tempfile::tempdir().expect("tempdir");
    let serve = |http: &str| {
        let mut command = caravan();
        command
            .arg("--data-dir")
            .arg(data.path())
            .envs(crate::test_store::env_for(data.path()))
            .args(["serve", "--http", http, "--mqtt-listen", "127.0.0.1:0"])
            .env("RUST_BACKTRACE", "0")
            .stdin(std::process::Stdio::null());
        command
    };
    let output = serve(&format!("127.0.0.1:{busy_port}"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "the cause once, no panic: {stderr}"
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{busy_port}")),
        "{stderr}"
    );
    drop(busy);

    // The token of the first successful start is shown then, not lost with the failed one.
    let mut child = serve("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let token = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .find(|l| l.trim_start().starts_with("cvn_"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(token.is_some(), "the next start shows the first token");
}
