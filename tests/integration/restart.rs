//! What was acknowledged survives a restart, and the state reads the same afterwards.

use serde_json::json;

use crate::helpers::{eventually, fix, minutes_ago, spawn_app, spawn_app_in, topic, TestApp};
use crate::test_store::{sqlite_only, SqliteOnly};

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

/// A one-second allowance for a device without a reporting period of its own. (The test's
/// points are outside the coverage-gap zones, whose allowance is longer.)
fn quick_silence(settings: &mut caravan::settings::Settings) {
    settings.geofence.reporting_period_s = 1;
    settings.geofence.silence_periods = 1;
}

async fn signal_lost_count(app: &TestApp, device: &str) -> usize {
    let (_, body) = app
        .get(&format!("/api/v1/devices/{device}/events?limit=1000"))
        .await;
    body["events"].as_array().map_or(0, |events| {
        events.iter().filter(|e| e["kind"] == "signal_lost").count()
    })
}

/// The silence check runs at every start. A loss raised before a restart stays raised, and a
/// device heard since its loss is not lost again, so a restart raises nothing new for either.
#[tokio::test]
async fn a_restart_raises_no_second_signal_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_in(dir.path(), quick_silence).await;
    for id in ["silent-1", "heard-1", "late-1"] {
        app.register(id).await;
    }
    let silent = app.mqtt("silent-1").await;
    silent
        .publish_json(&topic("silent-1", "pos"), &fix(1, 60, 39.50, 73.50))
        .await;
    let heard = app.mqtt("heard-1").await;
    heard
        .publish_json(&topic("heard-1", "pos"), &fix(1, 50, 39.60, 73.60))
        .await;
    eventually("both fixes are committed", || async {
        let a = app.device("silent-1").await["position"]["seq"] == 1;
        let b = app.device("heard-1").await["position"]["seq"] == 1;
        (a && b).then_some(())
    })
    .await;
    app.shutdown().await;
    // Whole seconds of silence, past the one-second allowance.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    // Both are silent past their allowance: the first check of this start raises both.
    let app = spawn_app_in(dir.path(), quick_silence).await;
    eventually("both losses are raised", || async {
        let a = signal_lost_count(&app, "silent-1").await == 1;
        let b = signal_lost_count(&app, "heard-1").await == 1;
        (a && b).then_some(())
    })
    .await;
    // `heard-1` reports again, every ten minutes of device time: its period is now ten
    // minutes, and its signal is restored.
    let heard = app.mqtt("heard-1").await;
    for (seq, ago) in [(2, 40), (3, 30), (4, 20), (5, 10)] {
        let payload = fix(seq, ago, 39.60 + seq as f64 / 1000.0, 73.60);
        heard.publish_json(&topic("heard-1", "pos"), &payload).await;
    }
    // `late-1` is heard once, after this start's check: the next start's check raises its
    // loss, which shows that check has run.
    let late = app.mqtt("late-1").await;
    late.publish_json(&topic("late-1", "pos"), &fix(1, 5, 39.55, 73.55))
        .await;
    eventually("the reports are committed", || async {
        let (_, body) = app.get("/api/v1/devices/heard-1/events?limit=1000").await;
        let restored = body["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "signal_restored"));
        let late = app.device("late-1").await["position"]["seq"] == 1;
        (restored && late).then_some(())
    })
    .await;
    // Whole seconds of silence, past the one-second allowance.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    app.shutdown().await;

    let app = spawn_app_in(dir.path(), quick_silence).await;
    eventually("this start's check has run", || async {
        (signal_lost_count(&app, "late-1").await == 1).then_some(())
    })
    .await;
    assert_eq!(
        signal_lost_count(&app, "silent-1").await,
        1,
        "still silent: its loss stands, and is not raised again"
    );
    assert_eq!(
        signal_lost_count(&app, "heard-1").await,
        1,
        "heard within its allowance: not lost again"
    );
    // The loss that stands is closed by the next message, as before the restart.
    let silent = app.mqtt("silent-1").await;
    silent
        .publish_json(&topic("silent-1", "pos"), &fix(2, 1, 39.51, 73.50))
        .await;
    eventually("the signal of the silent device is restored", || async {
        let (_, body) = app.get("/api/v1/devices/silent-1/events?limit=1000").await;
        body["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "signal_restored"))
            .then_some(())
    })
    .await;
    app.shutdown().await;
}

/// What the next start finds of the state saved at a clean stop.
#[derive(Clone, Copy, Debug)]
enum Saved {
    AsLeft,
    /// Something was committed after the save (a start that then crashed, say).
    Overtaken,
    /// The device's record was overwritten with bytes that are no saved state.
    Edited,
    /// The record was overwritten with text: the column's type no longer holds.
    Retyped,
    /// The marker's engine was overwritten with a number.
    MarkerRetyped,
}

/// A clean stop saves every device's state and the next start takes it up instead of
/// replaying reports; a save the store has moved past, or a record edited into nonsense, is
/// not taken up, and the device is rebuilt from its reports. Either way the device goes on
/// as before: a redelivered message is still a duplicate, and its position is its last.
#[tokio::test]
async fn a_clean_stop_saves_the_tracking_state_and_the_next_start_takes_it_up_only_while_it_stands()
{
    for saved in [
        Saved::AsLeft,
        Saved::Overtaken,
        Saved::Edited,
        Saved::Retyped,
        Saved::MarkerRetyped,
    ] {
        if matches!(saved, Saved::Retyped | Saved::MarkerRetyped)
            && sqlite_only(SqliteOnly::RetypesAColumn)
        {
            continue;
        }
        let app = spawn_app().await;
        app.register("s-1").await;
        let device = app.mqtt("s-1").await;
        for seq in 1..=3u64 {
            let payload = fix(seq, 10 - seq as i64, 39.0 + seq as f64 / 100.0, 73.0);
            device.publish_json(&topic("s-1", "pos"), &payload).await;
        }
        eventually("the fixes are committed", || async {
            (app.device("s-1").await["position"]["seq"] == 3).then_some(())
        })
        .await;
        let dir = app.data_dir.clone();
        let keep = app.shutdown().await;

        let rows = crate::test_store::count(&dir, "SELECT count(*) FROM saved_tracks");
        assert_eq!(rows, 1, "{saved:?}: the stop saved the device's state");
        // (SQLite, PostgreSQL): the same edit in each one's SQL.
        let (sqlite, postgres) = match saved {
            Saved::AsLeft => ("SELECT 1", "SELECT 1"),
            Saved::Overtaken => (
                "UPDATE saved_tracks_at SET events_id = events_id - 1",
                "UPDATE saved_tracks_at SET events_id = events_id - 1",
            ),
            Saved::Edited => (
                "UPDATE saved_tracks SET body = x'ff01ff01ff'",
                "UPDATE saved_tracks SET body = '\\xff01ff01ff'::bytea",
            ),
            Saved::Retyped => ("UPDATE saved_tracks SET body = 'a text'", ""),
            Saved::MarkerRetyped => ("UPDATE saved_tracks_at SET engine = 42", ""),
        };
        crate::test_store::execute(&dir, sqlite, postgres);

        let app = spawn_app_in(&dir, |_| {}).await;
        eventually("the state is restored", || async {
            let (_, health) = app.get("/healthz").await;
            (health["tracking"] == "ok").then_some(())
        })
        .await;
        let taken_up = app.metric(r#"caravan_tracks_restored{from="saved"}"#).await;
        let replayed = app
            .metric(r#"caravan_tracks_restored{from="replayed"}"#)
            .await;
        let expected = match saved {
            Saved::AsLeft => (1.0, 0.0),
            _ => (0.0, 1.0),
        };
        assert_eq!((taken_up, replayed), expected, "{saved:?}");
        let device = app.mqtt("s-1").await;
        device
            .publish_json(&topic("s-1", "pos"), &fix(3, 7, 41.0, 75.0))
            .await;
        device
            .publish_json(&topic("s-1", "pos"), &fix(4, 1, 39.04, 73.0))
            .await;
        eventually("the next fix is committed", || async {
            (app.device("s-1").await["position"]["seq"] == 4).then_some(())
        })
        .await;
        assert_eq!(
            app.metric("caravan_duplicates_total").await,
            1.0,
            "{saved:?}: the redelivered fix is a duplicate"
        );
        assert_eq!(
            app.device("s-1").await["position"]["lat"],
            json!(39.04),
            "{saved:?}"
        );
        app.shutdown().await;
        drop(keep);
    }
}
