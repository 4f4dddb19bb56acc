//! The geofence engine at work inside the server: a truck along a shipped corridor, over the
//! border at Irkeshtam, and a few things that must raise alarms.

use chrono::{DateTime, Duration, Utc};
use geo::{Distance, Haversine, InterpolatePoint, Point};
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_app_in, topic, TestApp};

/// Points every `step_m` along the Kashgar – Irkeshtam – Osh corridor, from Kashgar.
fn kashgar_to_osh(step_m: f64) -> Vec<(f64, f64)> {
    let atlas = caravan::maps::Atlas::embedded().unwrap();
    let corridor = atlas
        .corridors
        .iter()
        .find(|c| c.id == "c5-kashgar-irkeshtam-osh")
        .expect("the shipped corridor");
    let mut out = Vec::new();
    for pair in corridor.route.0.windows(2) {
        let (a, b) = (Point::from(pair[0]), Point::from(pair[1]));
        let length = Haversine.distance(a, b);
        let steps = (length / step_m).ceil() as usize;
        for i in 0..steps {
            let p = Haversine.point_at_ratio_between(a, b, i as f64 / steps as f64);
            out.push((p.y(), p.x()));
        }
    }
    out
}

/// Fixes at 40 km/h ending a minute ago, `step_m` apart.
fn fixes_along(points: &[(f64, f64)], step_m: f64, first_seq: u64) -> Vec<Value> {
    let interval = Duration::milliseconds((step_m / (40_000.0 / 3_600_000.0)) as i64);
    let end: DateTime<Utc> = Utc::now() - Duration::minutes(1);
    let start = end - interval * (points.len() as i32 - 1);
    points
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| {
            let t = start + interval * i as i32;
            json!({"seq": first_seq + i as u64, "t": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                   "lat": lat, "lon": lon, "speed_kmh": 40.0})
        })
        .collect()
}

async fn events(app: &TestApp, device: &str) -> Vec<Value> {
    let (_, body) = app
        .get(&format!("/api/v1/devices/{device}/events?limit=1000"))
        .await;
    body["events"].as_array().cloned().unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_truck_over_irkeshtam_enters_and_leaves_both_posts_and_crosses_the_border() {
    let app = spawn_app().await;
    app.register("truck-irk").await;
    let device = app.mqtt("truck-irk").await;
    let points = kashgar_to_osh(1000.0);
    let fixes = fixes_along(&points, 1000.0, 1);
    // Uploaded in backlog-sized chunks, as a tracker coming out of the mountains would.
    for chunk in fixes.chunks(50) {
        device
            .publish_json(&topic("truck-irk", "pos"), &Value::from(chunk.to_vec()))
            .await;
    }
    let last_seq = fixes.len() as u64;
    let view = eventually("the whole trip is evaluated", || async {
        let view = app.device("truck-irk").await;
        (view["position"]["seq"] == last_seq).then_some(view)
    })
    .await;
    assert_eq!(view["geo"]["country"], "KG", "{view}");
    assert_eq!(view["geo"]["corridor"]["id"], "c5-kashgar-irkeshtam-osh");

    let events = events(&app, "truck-irk").await;
    let kinds = kinds(&events);
    let entered = |zone: &str| {
        events
            .iter()
            .any(|e| e["kind"] == "enter" && e["body"]["zone_id"] == zone)
    };
    assert!(entered("irkeshtam-cn"), "{kinds:?}");
    assert!(entered("irkeshtam-kg"), "{kinds:?}");
    let crossed = events
        .iter()
        .find(|e| e["kind"] == "border_crossed")
        .expect("a crossing");
    assert_eq!(
        (
            crossed["body"]["from"].as_str(),
            crossed["body"]["to"].as_str()
        ),
        (Some("CN"), Some("KG"))
    );
    assert!(
        !kinds.contains(&"crossing_outside_bcp".to_owned()),
        "{kinds:?}"
    );
    // Every event is in device-time order and none of this trip was late.
    assert!(events.iter().all(|e| e["late"] == false));
}

#[tokio::test]
async fn a_border_crossed_far_from_any_post_raises_a_critical_alarm() {
    let app = spawn_app().await;
    app.register("smuggler").await;
    let device = app.mqtt("smuggler").await;
    // From Osh (KG) into the Fergana valley of Uzbekistan at Kara-Suu's latitude, but well
    // south of any crossing, at a plausible speed.
    let path = [
        (40.45, 72.95),
        (40.55, 72.60),
        (40.62, 72.35),
        (40.70, 72.10),
    ];
    let fixes = fixes_along(&path, 25_000.0, 1);
    device
        .publish_json(&topic("smuggler", "pos"), &Value::from(fixes))
        .await;
    let events = eventually("the alarm", || async {
        let events = events(&app, "smuggler").await;
        events
            .iter()
            .any(|e| e["kind"] == "crossing_outside_bcp")
            .then_some(events)
    })
    .await;
    let alarm = events
        .iter()
        .find(|e| e["kind"] == "crossing_outside_bcp")
        .unwrap();
    assert_eq!(alarm["body"]["severity"], "critical");
    assert_eq!(
        (alarm["body"]["from"].as_str(), alarm["body"]["to"].as_str()),
        (Some("KG"), Some("UZ"))
    );
}

#[tokio::test]
async fn a_seal_cut_buffered_in_a_gap_is_raised_late_with_its_true_time() {
    let app = spawn_app().await;
    app.register("sealed").await;
    let device = app.mqtt("sealed").await;
    let now = Utc::now();
    let at = |m: i64| {
        (now - Duration::minutes(m))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    device
        .publish_json(
            &topic("sealed", "pos"),
            &json!({"seq": 10, "t": at(2), "lat": 40.0, "lon": 73.3}),
        )
        .await;
    eventually("the recent fix", || async {
        (app.device("sealed").await["position"]["seq"] == 10).then_some(())
    })
    .await;
    // An hour-old seal event, buffered while out of coverage, arrives after the newer fix.
    let cut = json!({"seq": 3, "t": at(60), "seal_id": "KG-ES-1", "event": "rope_cut", "lat": 39.9, "lon": 73.5});
    device.publish_json(&topic("sealed", "seal"), &cut).await;
    let alarm = eventually("the seal alarm", || async {
        events(&app, "sealed")
            .await
            .into_iter()
            .find(|e| e["kind"] == "seal_alarm")
    })
    .await;
    assert_eq!(alarm["late"], true);
    assert_eq!(
        alarm["occurred_at"].as_str().unwrap().get(..16),
        Some(at(60).get(..16).unwrap())
    );
    assert_eq!(alarm["body"]["severity"], "critical");
    assert_eq!(alarm["body"]["seal_id"], "KG-ES-1");
}

#[tokio::test]
async fn after_a_restart_a_truck_inside_a_post_zone_is_not_entered_again() {
    let app = spawn_app().await;
    app.register("waiting").await;
    let device = app.mqtt("waiting").await;
    let points = kashgar_to_osh(1000.0);
    // Drive up to the first post and wait in its zone.
    let fixes = fixes_along(&points, 1000.0, 1);
    let view = {
        let mut inside = None;
        for fix in &fixes {
            device.publish_json(&topic("waiting", "pos"), fix).await;
            let sent = fix["seq"].clone();
            let view = eventually("the fix", || async {
                let v = app.device("waiting").await;
                (v["position"]["seq"] == sent).then_some(v)
            })
            .await;
            let zones = view["geo"]["zones"].as_array().cloned().unwrap_or_default();
            if zones.iter().any(|z| z == "irkeshtam-cn") {
                inside = Some(view);
                break;
            }
        }
        inside.expect("the truck reaches the Chinese post")
    };
    // Entries into the post zone the truck waits in (a neighbouring zone, such as the
    // coverage gap beside the post, may still be confirmed by the next fix).
    let entered = |events: Vec<Value>| {
        events
            .iter()
            .filter(|e| e["kind"] == "enter" && e["body"]["zone_id"] == "irkeshtam-cn")
            .count()
    };
    let entered_before = entered(events(&app, "waiting").await);
    let dir = app.data_dir.clone();
    let keep = app.shutdown().await;

    let app = spawn_app_in(&dir, |_| {}).await;
    let device = app.mqtt("waiting").await;
    let mut again = view["position"].clone();
    again["seq"] = json!(10_000);
    again["t"] = json!(Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    device.publish_json(&topic("waiting", "pos"), &again).await;
    eventually("the fix after the restart", || async {
        (app.device("waiting").await["position"]["seq"] == 10_000).then_some(())
    })
    .await;
    let entered_after = entered(events(&app, "waiting").await);
    assert_eq!(
        entered_after, entered_before,
        "the restart forgot the truck was inside"
    );
    drop(keep);
}

#[tokio::test]
async fn the_event_log_verifies_and_an_edited_record_is_named() {
    let app = spawn_app().await;
    app.register("evidence").await;
    let device = app.mqtt("evidence").await;
    let now = Utc::now();
    for (seq, event) in [(1u64, "armed"), (2, "rope_cut"), (3, "case_breach")] {
        let t = (now - Duration::minutes(10 - seq as i64))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let seal =
            json!({"seq": seq, "t": t, "seal_id": "S-9", "event": event, "lat": 39.5, "lon": 73.2});
        device.publish_json(&topic("evidence", "seal"), &seal).await;
    }
    let logged = eventually("three seal events", || async {
        let events = events(&app, "evidence").await;
        (events.len() >= 3).then_some(events)
    })
    .await;
    let dir = app.data_dir.clone();
    let keep = app.shutdown().await;

    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["audit", "verify", "--data-dir"])
            .arg(&dir)
            .envs(crate::test_store::env_for(&dir))
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));

    // Someone with the database softens the rope cut to a plain seal event.
    let target = logged
        .iter()
        .find(|e| e["body"]["seal_id"] == "S-9" && e["body"]["event"] == "rope_cut")
        .unwrap();
    let id = target["id"].as_i64().unwrap();
    let edit =
        format!("UPDATE event_log SET body = replace(body, 'rope_cut', 'armed') WHERE id = {id}");
    crate::test_store::execute(
        &dir,
        &format!("DROP TRIGGER event_log_no_update; {edit}"),
        &format!("ALTER TABLE event_log DISABLE TRIGGER event_log_no_update; {edit}"),
    );
    let broken = verify();
    assert!(!broken.status.success());
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(message.contains(&format!("record {id}")), "{message}");
    drop(keep);
}
