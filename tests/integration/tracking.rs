//! A registered device's reports become its state and its track.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, topic};

#[tokio::test]
async fn a_published_fix_becomes_the_device_position() {
    let app = spawn_app().await;
    app.register("356307042441013").await;
    let device = app.mqtt("356307042441013").await;

    let started = std::time::Instant::now();
    device
        .publish_json(
            &topic("356307042441013", "pos"),
            &fix(1842, 1, 39.6810, 73.9215),
        )
        .await;
    let view = eventually("the fix is visible", || async {
        let view = app.device("356307042441013").await;
        (!view["position"].is_null()).then_some(view)
    })
    .await;
    eprintln!("publish to visible: {:?}", started.elapsed());

    assert_eq!(view["position"]["lat"], 39.6810);
    assert_eq!(view["position"]["lon"], 73.9215);
    assert_eq!(view["position"]["speed_kmh"], 42.0);
    assert_eq!(view["position"]["seq"], 1842);
    assert_eq!(view["carrier"], "kg-trans");
    assert_eq!(view["plate"], "01KG123ABC");
    assert!(view["last_seen_at"].is_string());
}

#[tokio::test]
async fn seal_and_status_reports_show_seal_state_and_battery() {
    let app = spawn_app().await;
    app.register("seal-7").await;
    let device = app.mqtt("seal-7").await;
    let seal = json!({"seq": 10, "t": minutes_ago(3), "seal_id": "KG-ES-000123", "event": "armed", "battery_pct": 90});
    let status = json!({"seq": 11, "t": minutes_ago(2), "battery_pct": 71, "ext_power_v": 27.9, "gsm_rssi": -91, "jamming": false});
    device.publish_json(&topic("seal-7", "seal"), &seal).await;
    device
        .publish_json(&topic("seal-7", "status"), &status)
        .await;

    let view = eventually("seal and status are visible", || async {
        let view = app.device("seal-7").await;
        (!view["seal"].is_null() && view["battery_pct"]["value"] == 71.0).then_some(view)
    })
    .await;
    assert_eq!(view["seal"]["seal_id"], "KG-ES-000123");
    assert_eq!(view["seal"]["event"], "armed");
    assert_eq!(view["ext_power_v"]["value"], 27.9);
    assert_eq!(view["gsm_rssi"]["value"], -91.0);
    assert_eq!(view["jamming"]["value"], false);
}

#[tokio::test]
async fn a_backlog_upload_gives_a_track_in_device_time_order() {
    let app = spawn_app().await;
    app.register("truck-1").await;
    let device = app.mqtt("truck-1").await;
    // Buffered over a coverage gap and uploaded at once, newest first.
    let backlog = json!([
        fix(3, 10, 39.72, 73.70),
        fix(1, 30, 39.68, 73.92),
        fix(2, 20, 39.70, 73.80),
    ]);
    device
        .publish_json(&topic("truck-1", "pos"), &backlog)
        .await;

    let track = eventually("the backlog is stored", || async {
        let (status, track) = app.get("/api/v1/devices/truck-1/track").await;
        assert_eq!(status, StatusCode::OK);
        (track["properties"]["fixes"] == 3).then_some(track)
    })
    .await;
    assert_eq!(track["type"], "FeatureCollection");
    let line = &track["features"][0];
    assert_eq!(line["geometry"]["type"], "LineString");
    assert_eq!(
        line["geometry"]["coordinates"],
        json!([[73.92, 39.68], [73.80, 39.70], [73.70, 39.72]])
    );
    let seqs: Vec<_> = track["features"].as_array().unwrap()[1..]
        .iter()
        .map(|f| f["properties"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // The newest fix by device time is the position, whatever the upload order.
    assert_eq!(app.device("truck-1").await["position"]["seq"], 3);
}

#[tokio::test]
async fn the_track_is_limited_to_the_requested_window() {
    let app = spawn_app().await;
    app.register("truck-2").await;
    let device = app.mqtt("truck-2").await;
    let backlog = json!([
        fix(1, 120, 39.0, 73.0),
        fix(2, 60, 39.1, 73.1),
        fix(3, 5, 39.2, 73.2)
    ]);
    device
        .publish_json(&topic("truck-2", "pos"), &backlog)
        .await;
    eventually("the backlog is stored", || async {
        (app.device("truck-2").await["position"]["seq"] == 3).then_some(())
    })
    .await;

    let from = minutes_ago(90);
    let to = minutes_ago(30);
    let (status, track) = app
        .get(&format!(
            "/api/v1/devices/truck-2/track?from={from}&to={to}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{track}");
    assert_eq!(track["properties"]["fixes"], 1);
    assert_eq!(track["features"][0]["properties"]["seq"], 2);
}

#[tokio::test]
async fn devices_are_listed_in_pages() {
    let app = spawn_app().await;
    for id in ["a-1", "a-2", "a-3"] {
        app.register(id).await;
    }
    let (status, page) = app.get("/api/v1/devices?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = page["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].clone())
        .collect();
    assert_eq!(ids, [json!("a-1"), json!("a-2")]);
    assert_eq!(page["next"], "a-2");
    let (_, rest) = app.get("/api/v1/devices?limit=2&after=a-2").await;
    assert_eq!(rest["devices"][0]["device_id"], "a-3");
    assert!(rest["next"].is_null());
}
