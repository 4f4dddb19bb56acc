//! Intake never stops silently: floods of refused messages do not stall it, a stall shows in
//! `/healthz` and `/metrics`, and dead letters stay within their budget.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{eventually, fix, spawn_app_in, topic, Mqtt, TestApp};

async fn app_with(adjust: impl FnOnce(&mut caravan::settings::Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    spawn_app_in(&path, adjust).await.keep_dir(dir)
}

/// Sends every kind of refused message, without waiting between them, then one valid fix.
async fn flood_then_one_good_fix(app: &TestApp, publisher: &Mqtt, device: &str, foreign: &str) {
    for n in 0..2_000u32 {
        let (t, payload): (String, Vec<u8>) = match n % 5 {
            0 => (topic(device, "pos"), b"{\"seq\": ".to_vec()),
            1 => (topic(device, "pos"), vec![b'x'; 300 * 1024]),
            2 => (format!("caravan/v1/dev/{device}/weather"), b"{}".to_vec()),
            3 => (
                topic(foreign, "pos"),
                fix(1, 1, 39.0, 73.0).to_string().into_bytes(),
            ),
            _ => (
                topic(device, "pos"),
                json!({"seq": 1, "t": "2026-01-01T00:00:00", "lat": 1, "lon": 1})
                    .to_string()
                    .into_bytes(),
            ),
        };
        // The oversize ones are few: they are large.
        if n % 5 == 1 && n > 100 {
            continue;
        }
        publisher.publish(&t, payload).await;
    }
    publisher
        .publish_json(&topic(device, "pos"), &fix(10_000, 1, 39.5, 73.5))
        .await;
    eventually("the valid fix after the flood is applied", || async {
        (app.device(device).await["position"]["seq"] == 10_000).then_some(())
    })
    .await;
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_messages_never_stops_intake() {
    let app = app_with(|_| {}).await;
    app.register("flooder").await;
    app.register("victim").await;
    let publisher = app.mqtt("flooder").await;
    flood_then_one_good_fix(&app, &publisher, "flooder", "victim").await;
    let refused = app
        .metric("caravan_rejects_total{reason=\"malformed\"}")
        .await
        + app
            .metric("caravan_rejects_total{reason=\"bad_topic\"}")
            .await
        + app
            .metric("caravan_rejects_total{reason=\"foreign_device\"}")
            .await
        + app
            .metric("caravan_rejects_total{reason=\"oversize\"}")
            .await;
    assert_eq!(refused, 1_620.0, "every refused message was counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_through_mosquitto_never_stops_intake() {
    let Some(url) = crate::mosquitto::url() else {
        return;
    };
    let client_id = format!("caravan-flood-{}", std::process::id());
    let app = app_with(|s| {
        s.mqtt.url = Some(url.clone());
        s.mqtt.client_id = client_id.clone();
    })
    .await;
    let id = format!("mflood-{}", std::process::id());
    app.register(&id).await;
    let publisher = Mqtt::connect(&app.mqtt_host, app.mqtt_port, &format!("{id}-pub")).await;
    flood_then_one_good_fix(&app, &publisher, &id, "not-registered-anywhere").await;
    assert!(
        app.metric("caravan_rejects_total{reason=\"unknown_device\"}")
            .await
            >= 300.0
    );
}

#[tokio::test]
async fn a_store_that_takes_nothing_shows_as_a_stall() {
    let app = app_with(|s| s.ingest.stall_after_s = 1).await;
    app.register("stuck-1").await;
    let device = app.mqtt("stuck-1").await;
    // Another process holds the database's write lock, as a full disk or a stuck backup
    // would stop commits.
    let lock = crate::test_store::hold_write_lock(&app.data_dir);
    device
        .publish_json(&topic("stuck-1", "pos"), &fix(1, 1, 39.0, 73.0))
        .await;
    let health = eventually("healthz reports the stall", || async {
        let (status, health) = app.get("/healthz").await;
        (status == StatusCode::SERVICE_UNAVAILABLE
            && health["intake"]
                .as_str()
                .is_some_and(|i| i.starts_with("stalled")))
        .then_some(health)
    })
    .await;
    assert!(
        health["intake"]
            .as_str()
            .unwrap()
            .contains("1 messages wait"),
        "{health}"
    );
    eventually("the metric shows it", || async {
        (app.metric("caravan_intake_stalled").await == 1.0).then_some(())
    })
    .await;
    lock.release();
    eventually("the fix is applied once the store takes it", || async {
        (app.device("stuck-1").await["position"]["seq"] == 1).then_some(())
    })
    .await;
    eventually("healthy again", || async {
        let (status, _) = app.get("/healthz").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
