//! The README's "First steps", run as a newcomer runs them: every `sh` block of that section
//! in order, as written, against `caravan serve` started the README's way in an empty
//! directory. Only what differs on a test machine is replaced: the two ports (the server
//! listens on free ones), `cargo run --release --` (the built binary), and the placeholders of
//! the token and the credential (the ones this run printed). A `text` block after a command is
//! what that command must print (`...` stands for the rest of a secret). Dates in the commands
//! are relative to now, so the steps work on any day.
//!
//! Then `examples/first-steps.sh`, the same steps as one script, against a second server.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::helpers::tool;

/// One fenced block of the README.
struct Block {
    lang: String,
    text: String,
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The fenced blocks of the README's "## First steps" section.
fn first_steps() -> Vec<Block> {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let start = readme
        .find("\n## First steps\n")
        .expect("a First steps section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let text: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push(Block {
                lang: lang.to_owned(),
                text: text.join("\n"),
            });
        }
    }
    blocks
}

/// `caravan serve` in `dir`, as the README starts it (embedded defaults, `./caravan-data`),
/// on free ports; returns it with its HTTP address, MQTT port and first token.
fn serve(dir: &Path) -> (Child, String, u16, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .current_dir(dir)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .envs(crate::test_store::env_for(&dir.join("caravan-data")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("caravan serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut http, mut mqtt, mut token) = (None, None, None);
    for line in lines.by_ref().take(30).map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("HTTP  http://") {
            http = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("MQTT  127.0.0.1:") {
            mqtt = rest.split_whitespace().next().and_then(|p| p.parse().ok());
        } else if line.trim_start().starts_with("cvn_") {
            token = Some(line.trim().to_owned());
        }
        if http.is_some() && mqtt.is_some() && token.is_some() {
            break;
        }
    }
    // Keep reading, so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    match (http, mqtt, token) {
        (Some(http), Some(mqtt), Some(token)) => (child, http, mqtt, token),
        missing => {
            let _ = child.kill();
            panic!("the first start did not print its addresses and token: {missing:?}");
        }
    }
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of the repository's examples in `dir`, as a clone would have them.
fn with_examples(dir: &Path) {
    let examples = dir.join("examples");
    std::fs::create_dir_all(&examples).expect("examples dir");
    for entry in std::fs::read_dir(repo("examples")).expect("examples/") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), examples.join(entry.file_name())).expect("copied");
    }
}

/// Does `printed` match the README's `expected` output, line by line? A line ending in a
/// placeholder secret such as `cvd_9b0e...` matches any secret of that kind (`cvd_` and
/// hex digits).
fn matches(expected: &str, printed: &str) -> bool {
    let printed: Vec<&str> = printed.lines().collect();
    expected.lines().count() == printed.len()
        && expected.lines().zip(&printed).all(|(want, got)| {
            match want
                .strip_suffix("...")
                .and_then(|w| w.rfind('_').map(|i| &w[..=i]))
            {
                Some(kind) => got.strip_prefix(kind).is_some_and(|secret| {
                    secret.len() >= 32 && secret.chars().all(|c| c.is_ascii_hexdigit())
                }),
                None => want == *got,
            }
        })
}

/// The JSON documents a block of curl calls printed, back to back.
fn documents(printed: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(printed)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {printed}"))
}

#[test]
fn the_readme_first_steps_work_as_written() {
    let (Some(_), Some(_), Some(_)) = (tool("bash"), tool("curl"), tool("mosquitto_pub")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    with_examples(dir.path());
    let (child, http, mqtt, token) = serve(dir.path());
    let _server = Stop(child);

    let blocks = first_steps();
    assert!(blocks.iter().filter(|b| b.lang == "sh").count() >= 5);
    let mut env: Vec<(String, String)> = vec![("CARAVAN__HTTP__LISTEN".into(), http.clone())];
    env.extend(
        crate::test_store::env_for(&dir.path().join("caravan-data"))
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut credential = None::<String>;
    let mut outputs = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.lang != "sh" {
            continue;
        }
        let mut script = block
            .text
            .replace("cargo run --release --", env!("CARGO_BIN_EXE_caravan"))
            .replace("127.0.0.1:8080", &http)
            .replace("-p 1883", &format!("-p {mqtt}"))
            .replace("cvn_3f1c...", &token);
        if let Some(secret) = &credential {
            script = script.replace("cvd_9b0e...", secret);
        }
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("bash runs");
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "README step failed:\n{script}\n{printed}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in script.lines() {
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                env.push((name.to_owned(), value.to_owned()));
            }
        }
        if let Some(secret) = printed
            .lines()
            .find_map(|l| l.strip_prefix("MQTT password: "))
        {
            credential = Some(secret.trim().to_owned());
        }
        if let Some(next) = blocks.get(i + 1).filter(|b| b.lang == "text") {
            let expected = next.text.replace("127.0.0.1:8080", &http);
            assert!(
                matches(&expected, &printed),
                "the README says\n{expected}\nbut the step printed\n{printed}"
            );
        }
        if script.trim_start().starts_with("curl") || script.contains("\ncurl") {
            let docs = documents(&printed);
            assert!(
                docs.iter().all(|d| d.get("error").is_none()),
                "an API error in a README step:\n{script}\n{printed}"
            );
            outputs.push(docs);
        }
    }

    // What the newcomer reads back: the fix just published, in the device view and in the
    // track of the last hour; then the transit declared from the example.
    let reads = &outputs[0];
    assert_eq!(reads.len(), 3, "device, track, events");
    assert_eq!(reads[0]["position"]["seq"], 1, "{}", reads[0]);
    assert!(
        reads[1]["features"].to_string().contains("73.9215"),
        "the track of the last hour has the fix: {}",
        reads[1]
    );
    let transit = outputs.last().and_then(|d| d.last()).expect("the transit");
    assert_eq!(transit["id"], "CN-24CN0101-000123", "{transit}");
    assert_eq!(transit["status"], "declared", "{transit}");
}

#[test]
fn the_first_steps_script_runs_against_a_fresh_server() {
    let (Some(bash), Some(_), Some(_)) = (tool("bash"), tool("curl"), tool("mosquitto_pub")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, http, mqtt, token) = serve(dir.path());
    let _server = Stop(child);
    let output = Command::new(bash)
        .arg(repo("examples/first-steps.sh"))
        .current_dir(dir.path())
        .env("CARAVAN", env!("CARGO_BIN_EXE_caravan"))
        .envs(crate::test_store::env_for(&dir.path().join("caravan-data")))
        .env("CARAVAN_API", format!("http://{http}"))
        .env("CARAVAN_MQTT_PORT", mqtt.to_string())
        .env("CARAVAN_TOKEN", &token)
        .output()
        .expect("the script runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("\"id\":\"CN-24CN0101-000123\""),
        "{printed}"
    );
}
