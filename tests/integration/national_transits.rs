//! National transits through the real server: a transit that ends at a post of exit, one
//! that begins at a post of entry, and one between two offices of one country, declared
//! over HTTP and driven over MQTT on corridor 5 of the shipped maps.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, topic, TestApp};

/// Corridor c5-kashgar-irkeshtam-osh as drawn in maps/corridors.geojson (lon, lat), from
/// Osh: Osh, Gulcha, Sary-Tash, Irkeshtam, Kashgar.
const FROM_OSH: [(f64, f64); 5] = [
    (72.80826, 40.51506),
    (73.44418, 40.3138),
    (73.25, 39.73),
    (73.91, 39.68),
    (75.98951, 39.47066),
];

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Fixes every 5 minutes along `FROM_OSH` between `(segment, fraction)` positions, about
/// `step_km` apart, in the direction given.
fn drive(from: (usize, f64), to: (usize, f64), step_km: f64, start: DateTime<Utc>) -> Vec<Value> {
    let at = |(i, f): (usize, f64)| {
        let (a, b) = (FROM_OSH[i], FROM_OSH[(i + 1).min(4)]);
        (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
    };
    let pos = |p: (usize, f64)| p.0 as f64 + p.1;
    let (p0, p1) = (pos(from), pos(to));
    // Segments are 55–80 km: a fraction of a segment per step.
    let steps = ((p1 - p0).abs() * 70.0 / step_km).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|k| {
            let p = p0 + (p1 - p0) * k as f64 / steps as f64;
            let i = (p.floor() as usize).min(3);
            let (lon, lat) = at((i, p - i as f64));
            let t = start + Duration::minutes(5 * k as i64);
            json!({"seq": k + 1, "t": rfc3339(t), "lat": lat, "lon": lon, "speed_kmh": 50.0})
        })
        .collect()
}

fn declaration(reference: &str, device: &str, from: &str, bcps: &[&str], to: &str) -> Value {
    json!({
        "reference": reference,
        "carrier": "kg-trans",
        "vehicle_plate": "01KG123ABC",
        "driver": {"name": "Bakyt Asanov"},
        "devices": [device],
        "seals": [{"id": format!("KG-S-{reference}")}],
        "goods": [{"hs_code": "845011", "description": "washing machines", "gross_kg": 12400.0,
                   "value": 48000.0, "currency": "USD"}],
        "departure_office": from,
        "itinerary": bcps,
        "destination_office": to,
        "deadline": rfc3339(Utc::now() + Duration::days(2)),
    })
}

async fn declare(app: &TestApp, decl: &Value) -> Value {
    let (status, body) = app.post("/api/v1/transits", decl).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn arrived(app: &TestApp, id: &str) -> Value {
    eventually(&format!("{id} arrives"), || async {
        let (_, t) = app.get(&format!("/api/v1/transits/{id}")).await;
        (t["stage"] == "arrived").then_some(t)
    })
    .await
}

fn steps(t: &Value) -> Vec<(String, String)> {
    t["transitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|tr| {
                    let s = |k: &str| tr[k].as_str().unwrap_or("").to_owned();
                    (s("to"), s("place"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_inland_office_to_a_post_of_exit_departs_and_arrives_at_the_post() {
    let app = spawn_app().await;
    app.register("truck-exit").await;
    let t = declare(
        &app,
        &declaration("24KG0101-000901", "truck-exit", "osh", &[], "irkeshtam-kg"),
    )
    .await;
    assert_eq!(
        t["id"], "KG-24KG0101-000901",
        "Kyrgyz customs issue it: {t}"
    );
    let checkpoints: Vec<_> = t["itinerary"]["checkpoints"]
        .as_array()
        .expect("checkpoints")
        .iter()
        .map(|c| (c["id"].clone(), c["kind"].clone()))
        .collect();
    assert_eq!(
        checkpoints,
        [
            (json!("osh"), json!("office")),
            (json!("irkeshtam-kg"), json!("post"))
        ]
    );
    let legs = t["itinerary"]["legs"].as_array().expect("legs");
    assert_eq!(legs.len(), 1);
    assert_eq!(legs[0]["country"], "KG");
    let device = app.mqtt("truck-exit").await;
    let start = Utc::now() - Duration::hours(10);
    for fix in drive((0, 0.0), (2, 0.97), 4.0, start) {
        device.publish_json(&topic("truck-exit", "pos"), &fix).await;
    }
    let t = arrived(&app, "KG-24KG0101-000901").await;
    let steps = steps(&t);
    assert_eq!(
        steps.first().map(|s| s.1.as_str()),
        Some("osh"),
        "{steps:?}"
    );
    assert_eq!(
        steps.last(),
        Some(&("arrived".to_owned(), "irkeshtam-kg".to_owned())),
        "{steps:?}"
    );
    assert_eq!(t["alerts"], json!([]), "{:#}", t["alerts"]);
}

#[tokio::test]
async fn a_post_of_entry_to_an_inland_office_departs_at_the_post_and_arrives_inland() {
    let app = spawn_app().await;
    app.register("truck-entry").await;
    let t = declare(
        &app,
        &declaration("24KG0101-000902", "truck-entry", "irkeshtam-kg", &[], "osh"),
    )
    .await;
    assert_eq!(t["id"], "KG-24KG0101-000902");
    let device = app.mqtt("truck-entry").await;
    let start = Utc::now() - Duration::hours(10);
    // From the Chinese side through Irkeshtam, to Osh.
    for fix in drive((3, 0.08), (0, 0.0), 4.0, start) {
        device
            .publish_json(&topic("truck-entry", "pos"), &fix)
            .await;
    }
    let t = arrived(&app, "KG-24KG0101-000902").await;
    let steps = steps(&t);
    assert_eq!(
        steps.first(),
        Some(&("departed".to_owned(), "irkeshtam-kg".to_owned())),
        "{steps:?}"
    );
    assert_eq!(
        steps.last(),
        Some(&("arrived".to_owned(), "osh".to_owned())),
        "{steps:?}"
    );
    let kinds: Vec<_> = t["alerts"]
        .as_array()
        .map(|a| a.iter().map(|x| x["kind"].clone()).collect())
        .unwrap_or_default();
    assert!(
        !kinds.contains(&json!("skipped_bcp")) && !kinds.contains(&json!("wrong_direction")),
        "entering at its own BCP is neither skipping nor going back: {kinds:?}"
    );
}

#[tokio::test]
async fn offices_of_one_country_are_a_transit_and_a_place_to_itself_is_refused_with_why() {
    let app = spawn_app().await;
    app.register("truck-dom").await;
    let t = declare(
        &app,
        &declaration("24KG0101-000903", "truck-dom", "naryn", &[], "bishkek"),
    )
    .await;
    assert_eq!(t["itinerary"]["legs"][0]["country"], "KG");

    let refused = |from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let decl = declaration("24KG0101-000904", "truck-dom", from, &[], to);
            let (status, body) = app.post("/api/v1/transits", &decl).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            body["error"]["fields"].clone()
        }
    };
    let same = refused("osh", "osh").await;
    assert!(
        same.to_string().contains("both departure and destination"),
        "{same}"
    );
    let bare = refused("osh", "irkeshtam").await;
    assert!(
        bare.to_string().contains("irkeshtam-kg or irkeshtam-cn")
            || bare.to_string().contains("irkeshtam-cn or irkeshtam-kg"),
        "{bare}"
    );
    let abroad = refused("osh", "irkeshtam-cn").await;
    assert!(abroad.to_string().contains("ends in KG"), "{abroad}");
}
