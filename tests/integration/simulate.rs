//! `caravan simulate` against the real server: everything the fleet publishes is committed.

use std::time::Duration;

use caravan::ingest::BrokerAddr;
use caravan::simulate::{self, IncidentRates, Options, OutgoingKind, Reporting};
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, spawn_app};

#[tokio::test]
async fn every_message_a_small_fleet_publishes_is_committed() {
    let app = spawn_app().await;
    let truth = tempfile::NamedTempFile::new().unwrap();
    let options = Options {
        vehicles: 6,
        broker: BrokerAddr {
            host: app.mqtt_host.clone(),
            port: app.mqtt_port,
        },
        api: app.base.clone(),
        token: Some(app.token.clone()),
        // Three wall seconds at 120x: six simulated minutes, ending now.
        speedup: 120.0,
        seed: 42,
        duration: Some(Duration::from_secs(3)),
        reporting: Reporting::Interval(10),
        rates: IncidentRates::none(),
        truth: Some(truth.path().to_owned()),
        device_prefix: Some("itest".into()),
        connections: 2,
        progress: false,
    };
    let summary = simulate::run(options, CancellationToken::new())
        .await
        .expect("the simulated run completes");
    assert_eq!(summary.registration.created, 6);
    assert!(summary.fixes() >= 6 * 30, "{summary:?}");
    assert_eq!(summary.acknowledged, summary.messages());

    let pos = summary.fixes() as f64;
    let seal = summary.count(OutgoingKind::Seal) as f64;
    let status = summary.count(OutgoingKind::Status) as f64;
    eventually("every published fix is committed", || async {
        let committed = app.metric(r#"caravan_messages_total{kind="pos"}"#).await;
        (committed == pos).then_some(())
    })
    .await;
    assert_eq!(
        app.metric(r#"caravan_messages_total{kind="seal"}"#).await,
        seal
    );
    assert_eq!(
        app.metric(r#"caravan_messages_total{kind="status"}"#).await,
        status
    );
    // Devices that spent the whole run in a coverage gap still hold their fixes.
    let devices = app.get("/api/v1/devices?limit=100").await.1;
    let devices = devices["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 6);
    assert!(devices.iter().any(|d| !d["position"].is_null()));
    app.shutdown().await;
}
