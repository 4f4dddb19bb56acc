//! The live event stream (server-sent events): what happens, as it happens, within scope.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, topic, TestApp};

/// An open SSE connection, parsed into (event, id, data) messages.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<i64>) -> Sse {
        let mut request = app
            .http
            .get(format!("{}/api/v1/stream", app.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next message that is not a keep-alive comment, within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((
                    event,
                    id,
                    serde_json::from_str(&data).unwrap_or(Value::Null),
                ));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.ok()??));
        }
    }

    /// Messages until `wait` passes without one.
    async fn drain(&mut self, wait: Duration) -> Vec<(String, Option<String>, Value)> {
        let mut out = Vec::new();
        while let Some(message) = self.next(wait).await {
            out.push(message);
        }
        out
    }
}

#[tokio::test]
async fn a_coordinator_sees_positions_and_alarms_live() {
    let app = spawn_app().await;
    app.register("live-1").await;
    let mut sse = Sse::open(&app, &app.token, None).await;
    let device = app.mqtt("live-1").await;
    device
        .publish_json(&topic("live-1", "pos"), &fix(1, 2, 39.6, 73.9))
        .await;
    let cut = json!({"seq": 2, "t": minutes_ago(1), "seal_id": "S-1", "event": "rope_cut", "lat": 39.6, "lon": 73.9});
    device.publish_json(&topic("live-1", "seal"), &cut).await;

    let messages = sse.drain(Duration::from_secs(3)).await;
    let position = messages
        .iter()
        .find(|(e, _, _)| e == "position")
        .expect("a position");
    assert_eq!(position.2["device_id"], "live-1");
    assert_eq!(position.2["position"]["lat"], 39.6);
    let alarm = messages
        .iter()
        .find(|(e, _, _)| e == "seal_alarm")
        .expect("the seal alarm");
    assert!(alarm.1.is_some(), "events carry their log id for resuming");
    assert_eq!(alarm.2["body"]["seal_id"], "S-1");
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_after_its_last_event_id() {
    let app = spawn_app().await;
    app.register("resume-1").await;
    let device = app.mqtt("resume-1").await;
    for (seq, event) in [(1u64, "armed"), (2, "rope_cut"), (3, "case_breach")] {
        let seal = json!({"seq": seq, "t": minutes_ago(10 - seq as i64), "seal_id": "S-2", "event": event});
        device.publish_json(&topic("resume-1", "seal"), &seal).await;
    }
    let events = eventually("three events", || async {
        let (_, body) = app.get("/api/v1/devices/resume-1/events").await;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        (events.len() >= 3).then_some(events)
    })
    .await;
    let first = events[0]["id"].as_i64().unwrap();
    let mut sse = Sse::open(&app, &app.token, Some(first)).await;
    let replayed: Vec<i64> = sse
        .drain(Duration::from_secs(2))
        .await
        .into_iter()
        .filter_map(|(_, id, _)| id?.parse().ok())
        .collect();
    let expected: Vec<i64> = events[1..]
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(replayed, expected);
}

#[tokio::test]
async fn another_carrier_hears_nothing_of_a_device_it_does_not_own() {
    let app = spawn_app().await;
    app.register("private-1").await;
    let stranger = app.token_for("carrier:tj-cargo");
    let owner = app.token_for("carrier:kg-trans");
    let mut theirs = Sse::open(&app, &stranger, None).await;
    let mut ours = Sse::open(&app, &owner, None).await;
    let device = app.mqtt("private-1").await;
    let cut = json!({"seq": 1, "t": minutes_ago(1), "seal_id": "S-3", "event": "rope_cut"});
    device.publish_json(&topic("private-1", "seal"), &cut).await;

    let owner_saw = ours.drain(Duration::from_secs(2)).await;
    assert!(
        owner_saw.iter().any(|(e, _, _)| e == "seal_alarm"),
        "{owner_saw:?}"
    );
    let stranger_saw = theirs.drain(Duration::from_millis(500)).await;
    assert!(stranger_saw.is_empty(), "{stranger_saw:?}");
}

#[tokio::test]
async fn the_stream_needs_a_token() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/api/v1/stream", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
