//! What was acknowledged survives a restart, and the state reads the same afterwards.

use serde_json::json;

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, spawn_app_in, topic};

#[tokio::test]
async fn a_restart_shows_the_same_state_and_track() {
    let app = spawn_app().await;
    app.register("r-1").await;
    let device = app.mqtt("r-1").await;
    for seq in 1..=20u64 {
        let payload = fix(seq, 60 - seq as i64, 39.0 + seq as f64 / 100.0, 73.0);
        device.publish_json(&topic("r-1", "pos"), &payload).await;
    }
    let seal = json!({"seq": 21, "t": minutes_ago(1), "seal_id": "S-1", "event": "closed"});
    device.publish_json(&topic("r-1", "seal"), &seal).await;
    let before = eventually("everything is committed", || async {
        let view = app.device("r-1").await;
        (view["position"]["seq"] == 20 && !view["seal"].is_null()).then_some(view)
    })
    .await;
    let (_, track_before) = app.get("/api/v1/devices/r-1/track").await;
    let dir = app.data_dir.clone();
    let keep = app.shutdown().await;

    let app = spawn_app_in(&dir, |_| {}).await;
    assert_eq!(app.device("r-1").await, before);
    let (_, track_after) = app.get("/api/v1/devices/r-1/track").await;
    assert_eq!(track_after["features"], track_before["features"]);
    assert_eq!(track_after["properties"]["fixes"], 20);
    drop(keep);
}

#[tokio::test]
async fn a_message_redelivered_after_a_restart_is_still_a_duplicate() {
    let app = spawn_app().await;
    app.register("r-2").await;
    let device = app.mqtt("r-2").await;
    device
        .publish_json(&topic("r-2", "pos"), &fix(100, 5, 39.0, 73.0))
        .await;
    eventually("the fix is committed", || async {
        (app.device("r-2").await["position"]["seq"] == 100).then_some(())
    })
    .await;
    let dir = app.data_dir.clone();
    let keep = app.shutdown().await;

    let app = spawn_app_in(&dir, |_| {}).await;
    let device = app.mqtt("r-2").await;
    device
        .publish_json(&topic("r-2", "pos"), &fix(100, 5, 41.0, 75.0))
        .await;
    device
        .publish_json(&topic("r-2", "pos"), &fix(101, 4, 39.1, 73.1))
        .await;
    eventually("the next fix is committed", || async {
        (app.device("r-2").await["position"]["seq"] == 101).then_some(())
    })
    .await;
    assert_eq!(app.metric("caravan_duplicates_total").await, 1.0);
    let (_, track) = app.get("/api/v1/devices/r-2/track").await;
    assert_eq!(
        track["features"][1]["geometry"]["coordinates"],
        json!([73.0, 39.0])
    );
    drop(keep);
}
