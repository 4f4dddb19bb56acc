//! Interoperability with a real external broker, Mosquitto, started by `.ci/run`.
//!
//! `CARAVAN_TEST_MOSQUITTO_URL` names it (mqtt://127.0.0.1:PORT). Without it the tests say so
//! and pass locally, but fail under CI (`CI=true`), where the broker must be there.

use crate::helpers::{eventually, fix, spawn_app_in, topic, Mqtt};

fn mosquitto() -> Option<(String, String, u16)> {
    let Ok(url) = std::env::var("CARAVAN_TEST_MOSQUITTO_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CARAVAN_TEST_MOSQUITTO_URL is not set: .ci/run must start Mosquitto"
        );
        eprintln!(
            "CARAVAN_TEST_MOSQUITTO_URL is not set; the Mosquitto interop test does not run."
        );
        return None;
    };
    let addr = caravan::ingest::BrokerAddr::parse(&url).expect("a valid mqtt:// URL");
    Some((url, addr.host, addr.port))
}

/// The CI broker's URL, for tests elsewhere that also run through Mosquitto.
pub fn url() -> Option<String> {
    mosquitto().map(|(url, _, _)| url)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

#[tokio::test]
async fn caravan_ingests_through_mosquitto() {
    let Some((url, host, port)) = mosquitto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client_id = unique("caravan");
    let app = spawn_app_in(dir.path(), |s| {
        s.mqtt.url = Some(url.clone());
        s.mqtt.client_id = client_id.clone();
    })
    .await;
    let device_id = unique("mq");
    app.register(&device_id).await;
    let device = Mqtt::connect(&host, port, &device_id).await;
    device
        .publish_json(&topic(&device_id, "pos"), &fix(1, 1, 42.87, 74.59))
        .await;
    let view = eventually("the fix arrives through Mosquitto", || async {
        let view = app.device(&device_id).await;
        (!view["position"].is_null()).then_some(view)
    })
    .await;
    assert_eq!(view["position"]["lat"], 42.87);
    app.shutdown().await;
}

#[tokio::test]
async fn messages_sent_while_caravan_is_down_arrive_when_it_returns() {
    let Some((url, host, port)) = mosquitto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client_id = unique("caravan");
    let settings = |s: &mut caravan::settings::Settings| {
        s.mqtt.url = Some(url.clone());
        s.mqtt.client_id = client_id.clone();
    };
    let app = spawn_app_in(dir.path(), settings).await;
    let device_id = unique("down");
    app.register(&device_id).await;
    app.shutdown().await;

    // The broker keeps Caravan's persistent session and queues for it while it is away.
    let device = Mqtt::connect(&host, port, &device_id).await;
    for seq in 1..=5 {
        device
            .publish_json(
                &topic(&device_id, "pos"),
                &fix(seq, 10 - seq as i64, 40.0, 72.0 + seq as f64 / 10.0),
            )
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let app = spawn_app_in(dir.path(), settings).await;
    let track = eventually("the queued fixes arrive", || async {
        let (_, track) = app.get(&format!("/api/v1/devices/{device_id}/track")).await;
        (track["properties"]["fixes"] == 5).then_some(track)
    })
    .await;
    assert_eq!(track["features"][5]["properties"]["seq"], 5);
    app.shutdown().await;
}
