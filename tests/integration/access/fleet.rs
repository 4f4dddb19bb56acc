//! The fixture fleet: seven devices of four carriers, five transits across six countries
//! (KG, KZ, CN, UZ, TJ and, for a declaration, TM), with fixes before, during and after their
//! transits, seal breaches, an escalation, inspections and a cancellation.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, topic, Mqtt, TestApp};

/// City coordinates well inside each country (lat, lon), from the shipped offices.
pub const BISHKEK: (f64, f64) = (42.87, 74.59);
pub const OSH: (f64, f64) = (40.51, 72.81);
pub const ALMATY: (f64, f64) = (43.24, 76.89);
pub const KASHGAR: (f64, f64) = (39.47, 75.99);
pub const TASHKENT: (f64, f64) = (41.30, 69.24);
pub const SAMARKAND: (f64, f64) = (39.65, 66.96);
pub const DUSHANBE: (f64, f64) = (38.56, 68.77);
/// Away from any office or post, for seal breaches that are not openings at a control place.
const KG_ROADSIDE: (f64, f64) = (42.80, 75.00);
const CN_ROADSIDE: (f64, f64) = (39.60, 75.60);
const OSH_ROADSIDE: (f64, f64) = (40.45, 73.00);

/// (device, carrier)
pub const DEVICES: [(&str, &str); 7] = [
    ("acc-d1", "kg-trans"),
    ("acc-d2", "cn-cargo"),
    ("acc-d3", "kg-trans"),
    ("acc-d4", "uz-auto"),
    ("acc-d5", "kz-trans"),
    ("acc-d6", "sim-carrier"),
    ("acc-d7", "sim-carrier"),
];

/// Every kind of role, with the places of the fleet and some that see nothing of it.
pub const ROLES: [&str; 19] = [
    "coordinator",
    "customs:KG",
    "customs:KZ",
    "customs:CN",
    "customs:UZ",
    "customs:TJ",
    "customs:TM",
    "post:akzhol:KG",
    "post:akzhol:KZ",
    "post:irkeshtam:KG",
    "post:irkeshtam:CN",
    "post:karasuu:UZ",
    "post:khorgos:KZ",
    "post:jartepa:TJ",
    "carrier:kg-trans",
    "carrier:cn-cargo",
    "carrier:uz-auto",
    "carrier:sim-carrier",
    "carrier:other",
];

/// Office of departure, BCPs, office of destination.
pub type Route<'a> = (&'a str, &'a [&'a str], &'a str);

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn declaration(
    reference: &str,
    carrier: &str,
    device: &str,
    route: Route<'_>,
    deadline: DateTime<Utc>,
) -> Value {
    let (from, bcps, to) = route;
    json!({
        "reference": reference, "carrier": carrier, "vehicle_plate": "01KG123ABC",
        "driver": {"name": "Bakyt Asanov"}, "devices": [device],
        "seals": [{"id": format!("S-{reference}")}],
        "goods": [{"hs_code": "845011", "description": "washing machines", "gross_kg": 12400.0,
                   "value": 48000.0, "currency": "USD"}],
        "departure_office": from, "itinerary": bcps, "destination_office": to,
        "deadline": rfc3339(deadline),
    })
}

/// A device publishing numbered fixes and seal events at chosen times.
pub struct Unit {
    pub id: &'static str,
    mqtt: Mqtt,
    seq: u64,
    pub published: usize,
}

impl Unit {
    /// The same device on a new connection, numbering on past what it sent before.
    pub async fn reconnect(app: &TestApp, id: &'static str) -> Unit {
        Unit {
            id,
            mqtt: app.mqtt(id).await,
            seq: 1000,
            published: 0,
        }
    }

    pub async fn fix(&mut self, at: DateTime<Utc>, (lat, lon): (f64, f64)) {
        self.seq += 1;
        let body =
            json!({"seq": self.seq, "t": rfc3339(at), "lat": lat, "lon": lon, "speed_kmh": 40.0});
        self.mqtt.publish_json(&topic(self.id, "pos"), &body).await;
        self.published += 1;
    }

    pub async fn seal_cut(&mut self, at: DateTime<Utc>, (lat, lon): (f64, f64), seal: &str) {
        self.seq += 1;
        let body = json!({"seq": self.seq, "t": rfc3339(at), "seal_id": seal, "event": "rope_cut",
                          "lat": lat, "lon": lon});
        self.mqtt.publish_json(&topic(self.id, "seal"), &body).await;
    }
}

/// Fixes `n` apart by `step_ms`, ending just before now.
pub fn times(n: usize, step_ms: i64) -> Vec<DateTime<Utc>> {
    let now = Utc::now();
    (0..n)
        .map(|k| now - chrono::Duration::milliseconds(step_ms * (n - k) as i64))
        .collect()
}

async fn expect(app: &TestApp, path: &str, body: &Value, status: StatusCode) -> Value {
    let (got, answer) = app.post(path, body).await;
    assert_eq!(got, status, "POST {path}: {answer}");
    answer
}

/// Builds the fleet on `app` as a coordinator; returns once every fix is stored, with the
/// devices' connections (kept open for the test's duration).
pub async fn build(app: &TestApp) -> Vec<Unit> {
    let mut units = Vec::new();
    for (id, carrier) in DEVICES {
        let body = json!({"device_id": id, "carrier": carrier});
        expect(app, "/api/v1/devices", &body, StatusCode::CREATED).await;
        units.push(Unit {
            id,
            mqtt: app.mqtt(id).await,
            seq: 0,
            published: 0,
        });
    }
    let hour_ago = Utc::now() - chrono::Duration::minutes(60);
    let earlier = |m: i64| hour_ago + chrono::Duration::minutes(m);
    // Before any transit: d1 in UZ, d2 in KZ (time in a third country), d6 idle in KG,
    // d7 idle in TJ.
    units[0].fix(earlier(0), TASHKENT).await;
    units[0].fix(earlier(1), TASHKENT).await;
    units[1].fix(earlier(0), ALMATY).await;
    units[1].fix(earlier(1), ALMATY).await;
    units[5].fix(earlier(0), BISHKEK).await;
    units[5].fix(earlier(1), BISHKEK).await;
    units[6].fix(earlier(0), DUSHANBE).await;
    units[6].fix(earlier(1), DUSHANBE).await;
    wait_for_fixes(app, &units).await;

    let deadline = Utc::now() + chrono::Duration::days(3);
    let transits: [(&str, &str, &str, Route<'_>); 5] = [
        (
            "ACC-T1",
            "kg-trans",
            "acc-d1",
            ("bishkek", &["akzhol"], "almaty"),
        ),
        (
            "ACC-T2",
            "cn-cargo",
            "acc-d2",
            ("kashgar", &["irkeshtam"], "osh"),
        ),
        (
            "ACC-T3",
            "kg-trans",
            "acc-d3",
            ("kashgar", &["irkeshtam", "karasuu"], "andijan"),
        ),
        (
            "ACC-T4",
            "uz-auto",
            "acc-d4",
            ("samarkand", &["jartepa"], "dushanbe"),
        ),
        (
            "ACC-T5",
            "kz-trans",
            "acc-d5",
            ("almaty", &["khorgos"], "urumqi"),
        ),
    ];
    for (reference, carrier, device, route) in transits {
        let body = declaration(reference, carrier, device, route, deadline);
        expect(app, "/api/v1/transits", &body, StatusCode::CREATED).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // During the transits.
    let t = times(4, 100);
    units[0].fix(t[0], BISHKEK).await;
    units[0].seal_cut(t[1], KG_ROADSIDE, "S-ACC-T1").await;
    units[0].fix(t[2], ALMATY).await;
    units[0].fix(t[3], ALMATY).await;
    units[1].fix(t[0], KASHGAR).await;
    units[1].seal_cut(t[1], CN_ROADSIDE, "S-ACC-T2").await;
    units[1].fix(t[2], OSH).await;
    units[1].fix(t[3], OSH).await;
    units[2].fix(t[0], KASHGAR).await;
    units[2].fix(t[1], OSH).await;
    units[2].seal_cut(t[2], OSH_ROADSIDE, "S-ACC-T3").await;
    units[3].fix(t[0], SAMARKAND).await;
    units[3].fix(t[1], SAMARKAND).await;
    units[4].fix(t[0], ALMATY).await;
    units[4].fix(t[1], ALMATY).await;
    wait_for_fixes(app, &units).await;

    // T4 is cancelled; its truck then drives on into TJ, off any transit.
    let cancel = json!({"action": "cancel", "reason": "goods withdrawn"});
    expect(
        app,
        "/api/v1/transits/UZ-ACC-T4/actions",
        &cancel,
        StatusCode::OK,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = times(2, 100);
    units[3].fix(t[0], DUSHANBE).await;
    units[3].fix(t[1], DUSHANBE).await;
    wait_for_fixes(app, &units).await;

    // Inspections: at the KG post of Akzhol (seen by KG and KZ), at the KG post of
    // Irkeshtam on the CN → KG → UZ transit (seen by KG and UZ, not CN).
    let inspect = |place: &str| json!({"place": place, "result": "cleared"});
    expect(
        app,
        "/api/v1/transits/KG-ACC-T1/inspections",
        &inspect("akzhol-kg"),
        StatusCode::OK,
    )
    .await;
    expect(
        app,
        "/api/v1/transits/CN-ACC-T3/inspections",
        &inspect("irkeshtam-kg"),
        StatusCode::OK,
    )
    .await;
    // KG escalates T1's seal breach to KZ.
    let t1 = transit(app, "KG-ACC-T1").await;
    let breach = seal_alert(&t1);
    let kg = app.token_for("customs:KG");
    let escalate = json!({"action": "escalate", "notes": "truck has left for KZ"});
    let (status, body) = app
        .post_as(&kg, &format!("/api/v1/alerts/{breach}/actions"), &escalate)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    units
}

pub async fn transit(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/transits/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The id of a transit's seal-breach alert.
pub fn seal_alert(t: &Value) -> String {
    t["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "seal_breach"))
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("{} has no seal breach alert: {t}", t["id"]))
        .to_owned()
}

pub fn track_path(device: &str) -> String {
    let from = rfc3339(Utc::now() - chrono::Duration::days(1));
    let to = rfc3339(Utc::now() + chrono::Duration::hours(1));
    format!("/api/v1/devices/{device}/track?from={from}&to={to}&limit=1000")
}

async fn wait_for_fixes(app: &TestApp, units: &[Unit]) {
    for unit in units {
        let path = track_path(unit.id);
        eventually(&format!("{} stores its fixes", unit.id), || async {
            let (_, body) = app.get(&path).await;
            let n = body["properties"]["fixes"].as_u64().unwrap_or(0) as usize;
            (n >= unit.published).then_some(())
        })
        .await;
    }
}

/// The records the findings are about exist, so the matrix cannot pass vacuously.
pub fn preconditions(truth: &super::Truth) {
    let t = |id: &str| {
        truth
            .transits
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no transit {id}"))
    };
    let visible_to = |t: &Value, key: &str, kind: Option<&str>| -> Vec<Value> {
        t[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| kind.is_none_or(|k| r["kind"] == k))
            .map(|r| r["visible_to"].clone())
            .collect()
    };
    let breach = Some("seal_breach");
    assert_eq!(
        visible_to(t("KG-ACC-T1"), "alerts", breach),
        vec![json!(["KG", "KZ"])]
    );
    assert_eq!(
        visible_to(t("CN-ACC-T2"), "alerts", breach),
        vec![json!(["CN"])]
    );
    assert_eq!(
        visible_to(t("KG-ACC-T1"), "inspections", None),
        vec![json!(["KG", "KZ"])]
    );
    assert_eq!(
        visible_to(t("CN-ACC-T3"), "inspections", None),
        vec![json!(["KG", "UZ"])]
    );
    assert_eq!(t("UZ-ACC-T4")["stage"], "cancelled");
    let countries = |id: &str| -> Vec<Option<String>> {
        truth.fixes(id).into_iter().map(|(_, _, c)| c).collect()
    };
    let s = |c: &str| Some(c.to_owned());
    assert_eq!(
        countries("acc-d1"),
        vec![s("UZ"), s("UZ"), s("KG"), s("KZ"), s("KZ")]
    );
    assert_eq!(
        countries("acc-d2"),
        vec![s("KZ"), s("KZ"), s("CN"), s("KG"), s("KG")]
    );
    assert_eq!(
        countries("acc-d4"),
        vec![s("UZ"), s("UZ"), s("TJ"), s("TJ")]
    );
}
