//! The wire contract's fixture files: each valid one decodes to its reports and satisfies its
//! JSON Schema; each invalid one is refused with the reason it names.

use std::path::{Path, PathBuf};

use caravan::telemetry::{decode, Limits};
use serde_json::Value;

const NOW: &str = "2026-11-27T08:20:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let dir = root().join("tests/fixtures/wire").join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "too few fixtures in {}", dir.display());
    out
}

fn payload(fixture: &Value) -> Vec<u8> {
    match fixture.get("payload_text") {
        Some(text) => text.as_str().unwrap().as_bytes().to_vec(),
        None => fixture["payload"].to_string().into_bytes(),
    }
}

fn schema_for(topic: &str) -> jsonschema::Validator {
    let kind = topic.rsplit('/').next().unwrap();
    let dir = root().join("docs/wire");
    let path = dir.join(format!("{kind}.schema.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn instance(fixture: &Value) -> Value {
    match fixture.get("payload_text") {
        Some(text) => text.clone(),
        None => fixture["payload"].clone(),
    }
}

#[test]
fn every_valid_fixture_decodes_and_matches_its_schema() {
    let now = NOW.parse().unwrap();
    for (name, fixture) in fixtures("valid") {
        let topic = fixture["topic"].as_str().unwrap();
        let decoded = decode(topic, &payload(&fixture), now, &Limits::default());
        assert!(decoded.rejects.is_empty(), "{name}: {:?}", decoded.rejects);
        assert_eq!(
            decoded.reports.len() as u64,
            fixture["expect"]["reports"].as_u64().unwrap(),
            "{name}"
        );
        let schema = schema_for(topic);
        let errors: Vec<_> = schema
            .iter_errors(&instance(&fixture))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name} breaks its schema: {errors:?}");
    }
}

#[test]
fn every_invalid_fixture_is_refused_with_its_reason() {
    let now = NOW.parse().unwrap();
    for (name, fixture) in fixtures("invalid") {
        let topic = fixture["topic"].as_str().unwrap();
        let decoded = decode(topic, &payload(&fixture), now, &Limits::default());
        let expected = fixture["expect"]["reject"].as_str().unwrap();
        let reasons: Vec<_> = decoded
            .rejects
            .iter()
            .map(|(r, _)| r.reason.as_str())
            .collect();
        assert_eq!(reasons, [expected], "{name}: {:?}", decoded.rejects);
        let reports = fixture["expect"]
            .get("reports")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        assert_eq!(decoded.reports.len() as u64, reports, "{name}");
    }
}

#[test]
fn the_schemas_refuse_what_they_can_express() {
    for (name, fixture) in fixtures("invalid") {
        let reason = fixture["expect"]["reject"].as_str().unwrap();
        // Time windows and topics are outside a payload schema's reach.
        if !matches!(reason, "malformed" | "out_of_range")
            || fixture.get("payload_text").is_some() && reason != "malformed"
        {
            continue;
        }
        let topic = fixture["topic"].as_str().unwrap();
        if fixture.get("payload_text").is_some() && !topic.ends_with("/conn") {
            continue;
        }
        let schema = schema_for(topic);
        assert!(
            !schema.is_valid(&instance(&fixture)),
            "{name} passes its schema"
        );
    }
}
