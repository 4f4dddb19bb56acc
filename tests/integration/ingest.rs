//! Bad input is refused with a reason, counted, kept as a dead letter, and never stops good
//! input.

use serde_json::json;

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, topic, Mqtt, TestApp};

/// The newest `n` dead letters, once there are that many.
async fn dead_letters(app: &TestApp, n: usize) -> Vec<serde_json::Value> {
    eventually("the dead letters are stored", || async {
        let (_, body) = app.get("/api/v1/dead-letters").await;
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        (letters.len() >= n).then_some(letters)
    })
    .await
}

#[tokio::test]
async fn a_redelivered_seq_is_dropped_and_counted() {
    let app = spawn_app().await;
    app.register("dup-1").await;
    let device = app.mqtt("dup-1").await;
    let first = fix(5, 3, 39.0, 73.0);
    device.publish_json(&topic("dup-1", "pos"), &first).await;
    // The same seq again (a retry after a lost PUBACK), then a new one.
    let mut again = fix(5, 2, 40.0, 74.0);
    again["seq"] = json!(5);
    device.publish_json(&topic("dup-1", "pos"), &again).await;
    device
        .publish_json(&topic("dup-1", "pos"), &fix(6, 1, 39.5, 73.5))
        .await;

    eventually("the new fix arrives", || async {
        (app.device("dup-1").await["position"]["seq"] == 6).then_some(())
    })
    .await;
    assert_eq!(app.metric("caravan_duplicates_total").await, 1.0);
    assert_eq!(
        app.metric("caravan_messages_total{kind=\"pos\"}").await,
        2.0
    );
    let (_, track) = app.get("/api/v1/devices/dup-1/track").await;
    assert_eq!(
        track["properties"]["fixes"], 2,
        "the duplicate is not in the track"
    );
    assert_eq!(
        track["features"][1]["geometry"]["coordinates"],
        json!([73.0, 39.0])
    );
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_by_reason_and_good_input_still_flows() {
    let app = spawn_app().await;
    app.register("bad-1").await;
    let device = app.mqtt("bad-1").await;
    let pos = topic("bad-1", "pos");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"{\"seq\": 1, \"t\": ".to_vec()),
        ("malformed", vec![0xff, 0xfe, 0x00]),
        (
            "out_of_range",
            json!({"seq": 2, "t": minutes_ago(1), "lat": 95.0, "lon": 73.0})
                .to_string()
                .into_bytes(),
        ),
        (
            "future_time",
            json!({"seq": 3, "t": minutes_ago(-60), "lat": 39.0, "lon": 73.0})
                .to_string()
                .into_bytes(),
        ),
        (
            "too_old",
            json!({"seq": 4, "t": minutes_ago(60 * 24 * 40), "lat": 39.0, "lon": 73.0})
                .to_string()
                .into_bytes(),
        ),
        ("oversize", {
            let mut big = b"[".to_vec();
            big.extend(std::iter::repeat_n(b' ', 300 * 1024));
            big.push(b']');
            big
        }),
    ];
    for (_, payload) in &cases {
        device.publish(&pos, payload.clone()).await;
    }
    device
        .publish(&topic("bad-1", "weather"), b"{}".to_vec())
        .await;
    device.publish_json(&pos, &fix(9, 1, 39.5, 73.5)).await;

    let letters = dead_letters(&app, cases.len() + 1).await;
    let mut reasons = Vec::new();
    for letter in &letters {
        assert!(!letter["detail"].as_str().unwrap().is_empty(), "{letter}");
        reasons.push(letter["reason"].as_str().unwrap().to_owned());
    }
    let oversize = letters.iter().find(|l| l["reason"] == "oversize").unwrap();
    assert!(
        oversize["detail"].as_str().unwrap().contains("payload cut"),
        "a large refused payload is kept as a prefix and a hash: {oversize}"
    );
    let mut expected: Vec<_> = cases.iter().map(|(r, _)| r.to_string()).collect();
    expected.push("bad_topic".into());
    reasons.sort();
    expected.sort();
    assert_eq!(reasons, expected);

    eventually("the good fix after the bad ones arrives", || async {
        (app.device("bad-1").await["position"]["seq"] == 9).then_some(())
    })
    .await;
    assert_eq!(
        app.metric("caravan_rejects_total{reason=\"malformed\"}")
            .await,
        2.0
    );
    assert_eq!(
        app.metric("caravan_rejects_total{reason=\"oversize\"}")
            .await,
        1.0
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{health}");
}

#[tokio::test]
async fn one_bad_fix_in_a_backlog_costs_only_itself() {
    let app = spawn_app().await;
    app.register("gap-1").await;
    let device = app.mqtt("gap-1").await;
    let mut bad = fix(2, 20, 39.0, 73.0);
    bad["lon"] = json!(200.0);
    let backlog = json!([fix(1, 30, 39.0, 73.0), bad, fix(3, 10, 39.2, 73.2)]);
    device.publish_json(&topic("gap-1", "pos"), &backlog).await;

    let letter = dead_letters(&app, 1).await.remove(0);
    assert_eq!(letter["reason"], "out_of_range");
    let refused: serde_json::Value =
        serde_json::from_str(letter["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        refused["seq"], 2,
        "the dead letter holds the refused fix alone"
    );
    let track = eventually("the good fixes are stored", || async {
        let (_, track) = app.get("/api/v1/devices/gap-1/track").await;
        (track["properties"]["fixes"] == 2).then_some(track)
    })
    .await;
    assert_eq!(track["features"][1]["properties"]["seq"], 1);
    assert_eq!(track["features"][2]["properties"]["seq"], 3);
}

#[tokio::test]
async fn metrics_expose_counts_queues_lag_and_commit_latency() {
    let app = spawn_app().await;
    let text = app.metrics().await;
    for name in [
        "caravan_messages_total{kind=\"pos\"}",
        "caravan_rejects_total{reason=\"unknown_device\"}",
        "caravan_rejects_total{reason=\"foreign_device\"}",
        "caravan_intake_stalled",
        "caravan_duplicates_total",
        "caravan_pipeline_lag_seconds",
        "caravan_store_commit_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    app.register("m-1").await;
    assert!(app.metric("caravan_store_commit_seconds_count").await >= 1.0);
    assert!(app
        .metrics()
        .await
        .contains("caravan_queue_depth{queue=\"ingest\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_many_devices_is_committed_whole_and_acknowledged() {
    let app = spawn_app().await;
    let devices: Vec<String> = (0..50).map(|n| format!("flood-{n}")).collect();
    let (status, gateway) = app
        .post("/api/v1/gateways", &json!({"name": "flood-gw"}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{gateway}");
    for id in &devices {
        let body = json!({"device_id": id, "carrier": "kg-trans", "gateway": "flood-gw"});
        let (status, body) = app.post("/api/v1/devices", &body).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }
    let secret = gateway["password"].as_str().unwrap();
    let publisher = Mqtt::connect_as(
        &app.mqtt_host,
        app.mqtt_port,
        "flood-gw",
        Some(("flood-gw", secret)),
    )
    .await;
    let per_device = 100u64;
    for seq in 1..=per_device {
        for id in &devices {
            let payload = fix(seq, 60 - (seq as i64 / 2), 39.0 + seq as f64 / 1000.0, 73.0);
            publisher.publish_json(&topic(id, "pos"), &payload).await;
        }
    }
    let total = (devices.len() as u64 * per_device) as f64;
    // Counted after the commit, not when the pipeline takes a message in: the tracks read
    // next must hold every fix.
    eventually("every fix is committed", || async {
        (app.metric("caravan_committed_reports_total").await == total).then_some(())
    })
    .await;
    for id in [&devices[0], &devices[49]] {
        let (_, track) = app.get(&format!("/api/v1/devices/{id}/track")).await;
        assert_eq!(track["properties"]["fixes"], per_device, "{id}");
    }
    assert_eq!(
        app.metric("caravan_duplicates_total").await,
        0.0,
        "nothing was redelivered"
    );
}
