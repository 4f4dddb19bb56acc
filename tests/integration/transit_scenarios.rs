//! A transit from declaration to destination through the real server: Kashgar → Irkeshtam →
//! Sary-Tash → Osh along corridor 5 of the shipped maps, with the Alay valley coverage gap
//! uploaded as a backlog, a seal cut in the gap, and a restart before closing.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_app_in, topic, Mqtt};

/// Corridor c5-kashgar-irkeshtam-osh as drawn in maps/corridors.geojson (lon, lat): Kashgar,
/// Irkeshtam, Sary-Tash, Gulcha, Osh.
const C5: [(f64, f64); 5] = [
    (75.98951, 39.47066),
    (73.91, 39.68),
    (73.25, 39.73),
    (73.44418, 40.3138),
    (72.80826, 40.51506),
];

/// The point `f` of the way along segment `i` of the corridor.
fn along(i: usize, f: f64) -> (f64, f64) {
    let (a, b) = (C5[i], C5[i + 1]);
    (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A device's reports, numbered and timed as it produces them.
struct Truck {
    seq: u64,
    t: DateTime<Utc>,
}

impl Truck {
    fn fix(&mut self, (lon, lat): (f64, f64), speed: f64, minutes: i64) -> Value {
        self.seq += 1;
        self.t += Duration::minutes(minutes);
        json!({"seq": self.seq, "t": rfc3339(self.t), "lat": lat, "lon": lon, "speed_kmh": speed})
    }

    /// Fixes every 5 minutes from `f0` to `f1` of segment `i` in `n` steps.
    fn leg(&mut self, i: usize, f0: f64, f1: f64, n: usize, speed: f64) -> Vec<Value> {
        (0..=n)
            .map(|k| {
                let f = f0 + (f1 - f0) * k as f64 / n as f64;
                self.fix(along(i, f), speed, 5)
            })
            .collect()
    }

    fn stay(&mut self, at: (f64, f64), minutes: i64) -> Vec<Value> {
        (0..minutes / 5).map(|_| self.fix(at, 0.0, 5)).collect()
    }
}

async fn publish_each(device: &Mqtt, fixes: Vec<Value>) {
    for fix in fixes {
        device.publish_json(&topic("truck-c5", "pos"), &fix).await;
    }
}

fn declaration(deadline: DateTime<Utc>) -> Value {
    json!({
        "reference": "24CN0101-000777",
        "carrier": "kg-trans",
        "vehicle_plate": "01KG123ABC",
        "trailer_plates": ["01KG456DEF"],
        "driver": {"name": "Bakyt Asanov", "document": "AC1234567"},
        "devices": ["truck-c5"],
        "seals": [{"id": "CN-S-0777"}],
        "goods": [{"hs_code": "845011", "description": "washing machines", "gross_kg": 12400.0,
                   "value": 48000.0, "currency": "USD"}],
        "departure_office": "kashgar",
        "itinerary": ["irkeshtam"],
        "destination_office": "osh",
        "deadline": rfc3339(deadline),
    })
}

const ID: &str = "CN-24CN0101-000777";

async fn transit(app: &crate::helpers::TestApp) -> Value {
    let (status, body) = app.get(&format!("/api/v1/transits/{ID}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn statuses(t: &Value) -> Vec<String> {
    t["transitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|tr| tr["to"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_transit_tracked_from_kashgar_to_osh_arrives_with_its_bcp_time_and_alerts() {
    let app = spawn_app().await;
    app.register("truck-c5").await;
    let (status, declared) = app
        .post(
            "/api/v1/transits",
            &declaration(Utc::now() + Duration::days(2)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{declared}");
    assert_eq!(declared["id"], ID);

    let (status, duplicate) = app
        .post(
            "/api/v1/transits",
            &declaration(Utc::now() - Duration::days(1)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<_> = duplicate["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("devices[0]"), json!("deadline"), json!("reference")]
    );

    let (_, expected) = app
        .get("/api/v1/posts/irkeshtam-kg/expected-arrivals")
        .await;
    assert_eq!(expected["expected"][0]["transit_id"], ID, "{expected}");
    assert!(expected["expected"][0]["eta"]["local"]
        .as_str()
        .is_some_and(|t| t.ends_with("+06:00")));
    // Kazakh customs have no part in this transit: nothing expected for them to see.
    let kz = app.token_for("customs:KZ");
    let (_, theirs) = app
        .get_as(&kz, "/api/v1/posts/irkeshtam-kg/expected-arrivals")
        .await;
    assert_eq!(theirs["expected"], json!([]), "{theirs}");
    // A carrier reads its transit but records no inspection.
    let carrier = app.token_for("carrier:kg-trans");
    let inspection = json!({"place": "irkeshtam-kg", "result": "cleared"});
    let (status, _) = app
        .post_as(
            &carrier,
            &format!("/api/v1/transits/{ID}/inspections"),
            &inspection,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let device = app.mqtt("truck-c5").await;
    let mut truck = Truck {
        seq: 0,
        t: Utc::now() - Duration::hours(20),
    };
    let kashgar = C5[0];
    let mut live = truck.stay(kashgar, 15);
    live.extend(truck.leg(0, 0.0, 0.96, 50, 60.0));
    live.extend(truck.leg(0, 0.965, 0.995, 12, 10.0));
    live.extend(truck.stay(along(0, 0.995), 120));
    live.extend(truck.leg(1, 0.0, 0.04, 10, 8.0));
    live.extend(truck.stay(along(1, 0.04), 60));
    publish_each(&device, live).await;
    // Out of coverage in the Alay valley: buffered, with a seal cut, then uploaded at once.
    let mut backlog = truck.leg(1, 0.06, 1.0, 16, 50.0);
    let cut = json!({"seq": truck.seq + 1, "t": rfc3339(truck.t + Duration::minutes(1)),
                     "seal_id": "CN-S-0777", "event": "rope_cut", "battery_pct": 70,
                     "lat": C5[2].1, "lon": C5[2].0});
    truck.seq += 1;
    backlog.reverse();
    device
        .publish_json(&topic("truck-c5", "pos"), &json!(backlog))
        .await;
    device.publish_json(&topic("truck-c5", "seal"), &cut).await;
    let mut rest = truck.leg(2, 0.02, 1.0, 20, 50.0);
    rest.extend(truck.leg(3, 0.0, 1.0, 20, 50.0));
    rest.extend(truck.stay(C5[4], 10));
    publish_each(&device, rest).await;

    let t = eventually("the transit arrives in Osh", || async {
        let t = transit(&app).await;
        statuses(&t).contains(&"arrived".to_owned()).then_some(t)
    })
    .await;
    assert_eq!(
        statuses(&t),
        [
            "departed",
            "in_transit",
            "at_bcp",
            "in_transit",
            "suspended",
            "arrived"
        ],
        "{:#}",
        t["transitions"]
    );
    assert_eq!(t["status"], "suspended", "the seal cut is still open");
    let passage = &t["passages"][0];
    assert_eq!(passage["entered_post"], "irkeshtam-cn");
    assert_eq!(passage["left_post"], "irkeshtam-kg");
    let alert = &t["alerts"][0];
    assert_eq!(
        (alert["kind"].as_str(), alert["eaeu_code"].as_str()),
        (Some("seal_breach"), Some("01"))
    );
    assert_eq!(alert["jurisdiction"], "KG");

    let (_, stats) = app.get("/api/v1/stats/bcps/irkeshtam").await;
    assert_eq!(stats["time_at_bcp"]["count"], 1, "{stats}");
    let hours = stats["time_at_bcp"]["median_s"].as_f64().unwrap_or(0.0) / 3600.0;
    // About 1 h crawling through the Chinese zone, 2 h there, 1 h at the Kyrgyz post.
    assert!((3.5..5.5).contains(&hours), "{hours} h at Irkeshtam");
    let (_, kz_stats) = app.get_as(&kz, "/api/v1/stats/bcps/irkeshtam").await;
    assert_eq!(
        kz_stats["passages"],
        json!([]),
        "another country's passages stay hidden"
    );

    let (_, sections) = app.get("/api/v1/stats/sections").await;
    let rows = sections["sections"].as_array().cloned().unwrap_or_default();
    let into = rows
        .iter()
        .find(|r| r["from"] == "kashgar" && r["to"] == "irkeshtam")
        .unwrap_or_else(|| panic!("no Kashgar - Irkeshtam section in {sections}"));
    let with_delay = into["speed_with_delay_kmh"].as_f64().unwrap();
    let without = into["speed_without_delay_kmh"].as_f64().unwrap();
    assert!(with_delay > 0.0 && without >= with_delay, "{into}");

    let kg = app.token_for("customs:KG");
    let (_, kg_alerts) = app.get_as(&kg, "/api/v1/alerts").await;
    assert_eq!(kg_alerts["alerts"][0]["id"], alert["id"]);
    let cn = app.token_for("customs:CN");
    let (_, cn_alerts) = app.get_as(&cn, "/api/v1/alerts").await;
    assert_eq!(cn_alerts["alerts"], json!([]), "the cut happened in KG");

    // Everything survives a restart, and the restored book still takes actions.
    let dir = app.data_dir.clone();
    let keep = app.shutdown().await;
    let app = spawn_app_in(&dir, |_| {}).await;
    assert_eq!(transit(&app).await["transitions"], t["transitions"]);
    let alert_id = alert["id"].as_str().expect("an id");
    let resolve = json!({"action": "resolve", "outcome": "resolved_on_site", "notes": "rope replaced at Osh"});
    let (status, body) = app
        .post(&format!("/api/v1/alerts/{alert_id}/actions"), &resolve)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, closed) = app
        .post(
            &format!("/api/v1/transits/{ID}/actions"),
            &json!({"action": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(transit(&app).await["status"], "closed");
    drop(keep);
}

#[tokio::test]
async fn transits_are_listed_with_filters_and_a_cursor_within_scope() {
    let app = spawn_app().await;
    let deadline = Utc::now() + Duration::days(3);
    for (n, plate) in [(1, "01KG111AAA"), (2, "01KG222BBB"), (3, "08KG333CCC")] {
        let device = format!("truck-l{n}");
        app.register(&device).await;
        let mut body = declaration(deadline);
        body["reference"] = json!(format!("24CN0101-00010{n}"));
        body["vehicle_plate"] = json!(plate);
        body["devices"] = json!([device]);
        let (status, made) = app.post("/api/v1/transits", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
    }
    let ids = |page: &Value| -> Vec<String> {
        page["transits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let (_, first) = app.get("/api/v1/transits?limit=2").await;
    assert_eq!(ids(&first).len(), 2);
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, rest) = app
        .get(&format!("/api/v1/transits?limit=2&after={next}"))
        .await;
    assert_eq!(ids(&rest).len(), 1);
    assert!(rest["next"].is_null());

    let (_, by_plate) = app.get("/api/v1/transits?q=333ccc").await;
    assert_eq!(ids(&by_plate), ["CN-24CN0101-000103"]);
    let (_, declared) = app
        .get("/api/v1/transits?status=declared&country=KG&lane=green&has_open_alert=false")
        .await;
    assert_eq!(ids(&declared).len(), 3, "{declared}");
    let (_, none) = app.get("/api/v1/transits?country=KZ").await;
    assert!(ids(&none).is_empty());
    let (status, bad) = app.get("/api/v1/transits?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // Kazakh customs see none of these transits, however they ask.
    let kz = app.token_for("customs:KZ");
    let (_, theirs) = app.get_as(&kz, "/api/v1/transits").await;
    assert!(ids(&theirs).is_empty());
    let (status, _) = app.get_as(&kz, "/api/v1/transits/CN-24CN0101-000101").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn carriers_declare_only_for_themselves_and_posts_act_only_at_their_own_post() {
    let app = spawn_app().await;
    app.register("truck-c5").await;
    let deadline = Utc::now() + Duration::days(3);
    let mut foreign = declaration(deadline);
    foreign["carrier"] = json!("tj-cargo");
    let kg = app.token_for("carrier:kg-trans");
    let (status, body) = app.post_as(&kg, "/api/v1/transits", &foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .post_as(&kg, "/api/v1/transits", &declaration(deadline))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let post = app.token_for("post:irkeshtam:KG");
    let path = format!("/api/v1/transits/{ID}/actions");
    let elsewhere = json!({"action": "confirm_arrival", "place": "irkeshtam-cn"});
    let (status, body) = app.post_as(&post, &path, &elsewhere).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let at_home = json!({"action": "confirm_arrival", "place": "irkeshtam-kg"});
    let (status, body) = app.post_as(&post, &path, &at_home).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{body}");
    let close = json!({"action": "close"});
    assert_eq!(
        app.post_as(&post, &path, &close).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_alert_is_read_by_id_paged_and_escalated_to_the_next_country() {
    let app = spawn_app().await;
    app.register("truck-c5").await;
    let (status, body) = app
        .post(
            "/api/v1/transits",
            &declaration(Utc::now() + Duration::days(3)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let depart = json!({"action": "confirm_departure"});
    let (status, body) = app
        .post(&format!("/api/v1/transits/{ID}/actions"), &depart)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let device = app.mqtt("truck-c5").await;
    // A rope cut in China, on the way to Irkeshtam.
    let cut = json!({"seq": 1, "t": rfc3339(Utc::now() - Duration::minutes(2)), "seal_id": "CN-S-0777",
                     "event": "rope_cut", "lat": 39.58, "lon": 74.95});
    device.publish_json(&topic("truck-c5", "seal"), &cut).await;
    let alert = crate::helpers::eventually("the seal alert", || async {
        let (_, list) = app.get("/api/v1/alerts?limit=1").await;
        list["alerts"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    let (status, one) = app.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], alert["id"]);

    // Kyrgyz customs do not see a Chinese alert until it is escalated to them.
    let kg = app.token_for("customs:KG");
    assert_eq!(
        app.get_as(&kg, &format!("/api/v1/alerts/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let cn = app.token_for("customs:CN");
    let escalate = json!({"action": "escalate", "notes": "seal checked at Irkeshtam"});
    let (status, body) = app
        .post_as(&cn, &format!("/api/v1/alerts/{id}/actions"), &escalate)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, seen) = app.get_as(&kg, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["outcome"], "escalated", "{seen}");
}
