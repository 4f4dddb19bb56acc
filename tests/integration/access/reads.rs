//! Every role × every GET endpoint × every record of the fleet, against the table.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use super::fleet::{track_path, ROLES};
use super::rule::{self, Who};
use super::Truth;
use crate::helpers::TestApp;

fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What one role may see, by the table, and what the server answered, side by side.
pub struct Check<'a> {
    pub role: &'a str,
    pub who: Who,
    pub token: String,
    pub problems: &'a mut Vec<String>,
}

impl Check<'_> {
    fn same<T: std::fmt::Debug + PartialEq>(&mut self, what: &str, got: T, expected: T) {
        if got != expected {
            self.problems.push(format!(
                "{}: {what}: got {got:?}, expected {expected:?}",
                self.role
            ));
        }
    }

    fn found(&mut self, what: &str, status: StatusCode, expected: bool) {
        let ok = if expected {
            status == StatusCode::OK
        } else {
            status == StatusCode::NOT_FOUND
        };
        if !ok {
            let want = if expected { "200" } else { "404" };
            self.problems.push(format!(
                "{}: {what}: got {status}, expected {want}",
                self.role
            ));
        }
    }
}

pub async fn transits(app: &TestApp, truth: &Truth, c: &mut Check<'_>) {
    let (_, list) = app.get_as(&c.token, "/api/v1/transits?limit=1000").await;
    let expected: BTreeSet<String> = truth
        .transits
        .iter()
        .filter(|t| rule::transit(&c.who, t))
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    c.same("GET /transits", ids(&list["transits"], "id"), expected);
    for t in &truth.transits {
        let id = t["id"].as_str().unwrap_or_default();
        let (status, body) = app
            .get_as(&c.token, &format!("/api/v1/transits/{id}"))
            .await;
        c.found(
            &format!("GET /transits/{id}"),
            status,
            rule::transit(&c.who, t),
        );
        if status != StatusCode::OK {
            continue;
        }
        for (key, what) in [("alerts", "alerts"), ("inspections", "inspections")] {
            let expected: BTreeSet<String> = t[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| rule::addressed_record(&c.who, t, r))
                        .filter_map(|r| r["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            c.same(
                &format!("{what} inside /transits/{id}"),
                ids(&body[key], "id"),
                expected,
            );
        }
    }
}

pub async fn alerts(app: &TestApp, truth: &Truth, c: &mut Check<'_>) {
    let all: Vec<(&Value, &Value)> = truth
        .transits
        .iter()
        .flat_map(|t| {
            t["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| (t, a))
        })
        .collect();
    for state in ["open", "acknowledged", "resolved"] {
        let (_, list) = app
            .get_as(
                &c.token,
                &format!("/api/v1/alerts?state={state}&limit=1000"),
            )
            .await;
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|(t, a)| a["state"] == state && rule::addressed_record(&c.who, t, a))
            .filter_map(|(_, a)| a["id"].as_str().map(str::to_owned))
            .collect();
        c.same(
            &format!("GET /alerts?state={state}"),
            ids(&list["alerts"], "id"),
            expected,
        );
    }
    for (t, a) in all {
        let id = a["id"].as_str().unwrap_or_default();
        let (status, _) = app.get_as(&c.token, &format!("/api/v1/alerts/{id}")).await;
        c.found(
            &format!("GET /alerts/{id}"),
            status,
            rule::addressed_record(&c.who, t, a),
        );
    }
}

pub async fn devices(app: &TestApp, truth: &Truth, c: &mut Check<'_>) {
    let (_, list) = app.get_as(&c.token, "/api/v1/devices?limit=1000").await;
    let who = c.who.clone();
    let visible = |d: &Value| rule::device(&who, d, &truth.transits, truth.now_in(d));
    let expected: BTreeSet<String> = truth
        .devices
        .iter()
        .filter(|d| visible(d))
        .filter_map(|d| d["device_id"].as_str().map(str::to_owned))
        .collect();
    c.same("GET /devices", ids(&list["devices"], "device_id"), expected);
    for d in &truth.devices {
        let id = d["device_id"].as_str().unwrap_or_default();
        let exists = visible(d);
        let (status, body) = app.get_as(&c.token, &format!("/api/v1/devices/{id}")).await;
        c.found(&format!("GET /devices/{id}"), status, exists);
        let (track_status, track) = app.get_as(&c.token, &track_path(id)).await;
        c.found(&format!("GET /devices/{id}/track"), track_status, exists);
        let (events_status, events) = app
            .get_as(&c.token, &format!("/api/v1/devices/{id}/events?limit=1000"))
            .await;
        c.found(&format!("GET /devices/{id}/events"), events_status, exists);
        if !exists {
            continue;
        }
        // The current position only where the latest fix is shown.
        let latest = truth.fixes(id).last().cloned();
        let position_shown = latest
            .is_some_and(|(_, at, cc)| rule::shows(&c.who, d, &truth.transits, at, cc.as_deref()));
        c.same(
            &format!("position of /devices/{id} shown"),
            !body["position"].is_null(),
            position_shown,
        );
        let expected: BTreeSet<u64> = truth
            .fixes(id)
            .into_iter()
            .filter(|(_, at, cc)| rule::shows(&c.who, d, &truth.transits, *at, cc.as_deref()))
            .map(|(seq, _, _)| seq)
            .collect();
        let got: BTreeSet<u64> = track["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["properties"]["kind"] == "fix")
            .filter_map(|f| f["properties"]["seq"].as_u64())
            .collect();
        c.same(&format!("fixes of /devices/{id}/track"), got, expected);
        let expected: BTreeSet<i64> = truth
            .device_events(id)
            .iter()
            .filter(|e| truth.event_shown(&c.who, e, false))
            .filter_map(|e| e["id"].as_i64())
            .collect();
        let got: BTreeSet<i64> = events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_i64())
            .collect();
        c.same(&format!("GET /devices/{id}/events"), got, expected);
    }
}

pub async fn posts_and_stats(app: &TestApp, truth: &Truth, c: &mut Check<'_>) {
    for (post, rows) in &truth.expected_arrivals {
        let (_, body) = app
            .get_as(
                &c.token,
                &format!("/api/v1/posts/{post}/expected-arrivals?limit=200"),
            )
            .await;
        let got: Vec<Value> = body["expected"].as_array().cloned().unwrap_or_default();
        let find_transit = |id: &str| truth.transits.iter().find(|t| t["id"] == id);
        let expected: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r["transit_id"].as_str())
            .filter(|id| find_transit(id).is_some_and(|t| rule::transit(&c.who, t)))
            .map(str::to_owned)
            .collect();
        c.same(
            &format!("expected arrivals at {post}"),
            ids(&body["expected"], "transit_id"),
            expected,
        );
        for row in got {
            let Some(t) = row["transit_id"].as_str().and_then(find_transit) else {
                continue;
            };
            for (key, source) in [("open_alerts", "alerts"), ("inspections", "inspections")] {
                let expected: BTreeSet<String> = t[source]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| key != "open_alerts" || r["state"] != "resolved")
                    .filter(|r| rule::addressed_record(&c.who, t, r))
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect();
                c.same(
                    &format!("{key} of {} at {post}", t["id"]),
                    ids(&row[key], "id"),
                    expected,
                );
            }
        }
    }
    for (bcp, passages) in &truth.passages {
        let (_, body) = app
            .get_as(&c.token, &format!("/api/v1/stats/bcps/{bcp}"))
            .await;
        let expected: BTreeSet<String> = passages
            .iter()
            .filter(|p| {
                let t = truth.transits.iter().find(|t| t["id"] == p["transit_id"]);
                t.is_some_and(|t| rule::passage(&c.who, t, bcp))
            })
            .filter_map(|p| p["transit_id"].as_str().map(str::to_owned))
            .collect();
        c.same(
            &format!("passages at {bcp}"),
            ids(&body["passages"], "transit_id"),
            expected,
        );
    }
}

pub fn roles() -> impl Iterator<Item = (&'static str, Who)> {
    ROLES.iter().map(|r| (*r, Who::parse(r)))
}

pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| s.parse().ok())
}
