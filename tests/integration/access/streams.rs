//! The live stream against the same table: the replay after `Last-Event-ID: 0`, and the
//! positions published while every role listens.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::fleet::{Unit, ALMATY, BISHKEK, DUSHANBE, OSH};
use super::reads::roles;
use super::rule;
use super::Truth;
use crate::helpers::TestApp;

/// An open SSE connection, parsed into (event, id, data) messages.
pub struct Sse {
    pub response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// Opens the stream with a bearer header; `None` when it is refused (the status then).
    pub async fn open(
        app: &TestApp,
        token: &str,
        last_event_id: Option<i64>,
    ) -> Result<Sse, reqwest::StatusCode> {
        let mut request = app
            .http
            .get(format!("{}/api/v1/stream", app.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        Self::from(request.send().await.expect("the API answers"))
    }

    pub fn from(response: reqwest::Response) -> Result<Sse, reqwest::StatusCode> {
        if response.status() != reqwest::StatusCode::OK {
            return Err(response.status());
        }
        Ok(Sse {
            response,
            buffer: String::new(),
        })
    }

    pub async fn next(&mut self, wait: Duration) -> Option<(String, Option<String>, Value)> {
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
                let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some((event, id, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.ok()??));
        }
    }

    pub async fn drain(&mut self, wait: Duration) -> Vec<(String, Option<String>, Value)> {
        let mut out = Vec::new();
        while let Some(message) = self.next(wait).await {
            out.push(message);
        }
        out
    }
}

pub async fn matrix(app: &TestApp, truth: &Truth, problems: &mut Vec<String>) {
    let coordinator = app.token_for("coordinator");
    let mut all = Sse::open(app, &coordinator, Some(0))
        .await
        .expect("a stream");
    let logged: Vec<Value> = all
        .drain(Duration::from_millis(1500))
        .await
        .into_iter()
        .filter(|(_, id, _)| id.is_some())
        .map(|(_, _, data)| data)
        .collect();
    assert!(
        logged.len() > 20,
        "the coordinator's replay: {}",
        logged.len()
    );
    let mut open = Vec::new();
    for (role, who) in roles() {
        let sse = Sse::open(app, &app.token_for(role), Some(0))
            .await
            .expect("a stream");
        open.push((role, who, sse));
    }
    // Live positions: one more fix per device, each in a known country.
    let places = [ALMATY, OSH, OSH, DUSHANBE, ALMATY, BISHKEK, DUSHANBE];
    let mut published = BTreeMap::new();
    for (k, (id, _)) in super::fleet::DEVICES.iter().enumerate() {
        let mut unit = Unit::reconnect(app, id).await;
        let at = Utc::now() - chrono::Duration::milliseconds(50);
        unit.fix(at, places[k]).await;
        published.insert(*id, (at, truth.country(places[k].0, places[k].1)));
    }
    for (role, who, mut sse) in open {
        let messages = sse.drain(Duration::from_millis(1500)).await;
        let got: BTreeSet<i64> = messages
            .iter()
            .filter_map(|(_, id, _)| id.as_deref().and_then(|i| i.parse().ok()))
            .collect();
        let expected: BTreeSet<i64> = logged
            .iter()
            .filter(|e| truth.event_shown(&who, e, true))
            .filter_map(|e| e["id"].as_i64())
            .collect();
        // Events the live fixes caused are not part of the replay compared here.
        let got_replayed: BTreeSet<i64> = got
            .into_iter()
            .filter(|id| logged.iter().any(|e| e["id"] == *id))
            .collect();
        if got_replayed != expected {
            problems.push(format!(
                "{role}: stream replay: got {got_replayed:?}, expected {expected:?}"
            ));
        }
        let positions: BTreeSet<String> = messages
            .iter()
            .filter(|(kind, _, _)| kind == "position")
            .filter_map(|(_, _, d)| d["device_id"].as_str().map(str::to_owned))
            .collect();
        let expected: BTreeSet<String> = published
            .iter()
            .filter(|(id, (at, cc))| {
                truth.device(id).is_some_and(|d| {
                    rule::device(&who, d, &truth.transits, cc.as_deref())
                        && rule::shows(&who, d, &truth.transits, *at, cc.as_deref())
                })
            })
            .map(|(id, _)| (*id).to_owned())
            .collect();
        if positions != expected {
            problems.push(format!(
                "{role}: live positions: got {positions:?}, expected {expected:?}"
            ));
        }
    }
}
