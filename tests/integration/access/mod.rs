//! Jurisdiction, exhaustively: a fleet across six countries, a token for every kind of role,
//! and for every role × every GET endpoint × every record (then every write action, then the
//! live stream) the answer compared with the table of `docs/access.md`. The expectation is
//! computed by `rule`, written for these tests from the table, from the records as the
//! coordinator sees them; it does not call the server's own rules.

mod fleet;
mod reads;
mod rule;
mod streams;
mod tokens;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;

use caravan::geofence::{GeofenceConfig, GeofenceIndex};
use caravan::settings::MapsSettings;
use caravan::telemetry::GeoPoint;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};
use fleet::{track_path, DEVICES};
use reads::{parse_time, Check};
use rule::Who;

/// One stored fix: seq, device time, the country it lies in.
pub type StoredFix = (u64, DateTime<Utc>, Option<String>);

/// Everything in the fleet, as the coordinator sees it.
pub struct Truth {
    pub transits: Vec<Value>,
    pub devices: Vec<Value>,
    /// Per device: (seq, device time, country) of each stored fix.
    fixes: HashMap<String, Vec<StoredFix>>,
    events: HashMap<String, Vec<Value>>,
    pub expected_arrivals: Vec<(String, Vec<Value>)>,
    pub passages: Vec<(String, Vec<Value>)>,
    index: Arc<GeofenceIndex>,
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

impl Truth {
    pub async fn gather(app: &TestApp) -> Truth {
        let (_, index) = caravan::atlas::load(&MapsSettings::default(), GeofenceConfig::default())
            .expect("the shipped maps");
        let (_, body) = app.get("/api/v1/transits?limit=1000").await;
        let transits = list(&body["transits"]);
        let (_, body) = app.get("/api/v1/devices?limit=1000").await;
        let devices = list(&body["devices"]);
        let mut truth = Truth {
            transits,
            devices,
            fixes: HashMap::new(),
            events: HashMap::new(),
            expected_arrivals: Vec::new(),
            passages: Vec::new(),
            index,
        };
        for (id, _) in DEVICES {
            let (_, track) = app.get(&track_path(id)).await;
            let fixes = list(&track["features"])
                .into_iter()
                .filter(|f| f["properties"]["kind"] == "fix")
                .filter_map(|f| {
                    let seq = f["properties"]["seq"].as_u64()?;
                    let at = parse_time(&f["properties"]["t"])?;
                    let c = &f["geometry"]["coordinates"];
                    let country = truth.country(c[1].as_f64()?, c[0].as_f64()?);
                    Some((seq, at, country))
                })
                .collect();
            truth.fixes.insert(id.to_owned(), fixes);
            let (_, events) = app
                .get(&format!("/api/v1/devices/{id}/events?limit=1000"))
                .await;
            truth.events.insert(id.to_owned(), list(&events["events"]));
        }
        let mut posts = Vec::new();
        let mut bcps = Vec::new();
        for t in &truth.transits {
            for cp in list(&t["itinerary"]["checkpoints"]) {
                for p in list(&cp["posts"]) {
                    posts.push(p["id"].as_str().unwrap_or_default().to_owned());
                }
                if cp["kind"] == "bcp" {
                    bcps.push(cp["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        posts.sort();
        posts.dedup();
        bcps.sort();
        bcps.dedup();
        for post in posts {
            let (_, body) = app
                .get(&format!("/api/v1/posts/{post}/expected-arrivals?limit=200"))
                .await;
            truth
                .expected_arrivals
                .push((post, list(&body["expected"])));
        }
        for bcp in bcps {
            let (_, body) = app.get(&format!("/api/v1/stats/bcps/{bcp}")).await;
            truth.passages.push((bcp, list(&body["passages"])));
        }
        truth
    }

    pub fn country(&self, lat: f64, lon: f64) -> Option<String> {
        self.index
            .locate(GeoPoint { lat, lon })
            .country
            .map(|c| c.to_string())
    }

    pub fn now_in<'a>(&self, d: &'a Value) -> Option<&'a str> {
        d["geo"]["country"].as_str()
    }

    pub fn fixes(&self, id: &str) -> Vec<StoredFix> {
        self.fixes.get(id).cloned().unwrap_or_default()
    }

    pub fn device_events(&self, id: &str) -> &[Value] {
        self.events.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn device(&self, id: &str) -> Option<&Value> {
        self.devices.iter().find(|d| d["device_id"] == id)
    }

    /// Whether a logged event (as stored: id, kind, device_id, transit_id, body) is shown.
    pub fn event_shown(&self, who: &Who, e: &Value, _stream: bool) -> bool {
        if *who == Who::Coordinator {
            return true;
        }
        if let Some(tid) = e["transit_id"].as_str() {
            let kind = e["kind"].as_str().unwrap_or_default();
            return self
                .transits
                .iter()
                .find(|t| t["id"] == tid)
                .is_some_and(|t| rule::transit_event(who, t, kind, &e["body"]));
        }
        let Some(d) = e["device_id"].as_str().and_then(|id| self.device(id)) else {
            return false;
        };
        let Some(at) = parse_time(&e["occurred_at"]) else {
            return false;
        };
        let point = &e["body"]["point"];
        let country = match (point["lat"].as_f64(), point["lon"].as_f64()) {
            (Some(lat), Some(lon)) => self.country(lat, lon),
            _ => None,
        };
        rule::shows(who, d, &self.transits, at, country.as_deref())
    }
}

#[tokio::test]
async fn every_role_sees_exactly_its_jurisdiction_on_every_get_endpoint_and_the_stream() {
    let app = spawn_app().await;
    // Every fix is stored once `build` returns; its connections close here, so that the
    // stream check's new connection of each device is that device's only session.
    drop(fleet::build(&app).await);
    let truth = Truth::gather(&app).await;
    fleet::preconditions(&truth);
    let mut problems = Vec::new();
    for (role, who) in reads::roles() {
        let mut c = Check {
            role,
            who,
            token: app.token_for(role),
            problems: &mut problems,
        };
        reads::transits(&app, &truth, &mut c).await;
        reads::alerts(&app, &truth, &mut c).await;
        reads::devices(&app, &truth, &mut c).await;
        reads::posts_and_stats(&app, &truth, &mut c).await;
    }
    streams::matrix(&app, &truth, &mut problems).await;
    assert!(
        problems.is_empty(),
        "{} answers differ from docs/access.md:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
