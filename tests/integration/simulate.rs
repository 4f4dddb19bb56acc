//! `caravan simulate` against the real server: everything the fleet publishes is committed,
//! and a fleet driving transits gets exactly the alerts of the incidents it injects.

use std::collections::BTreeSet;
use std::time::Duration;

use caravan::ingest::BrokerAddr;
use caravan::simulate::{
    self, IncidentKind, IncidentRates, Options, OutgoingKind, Reporting, Summary, Truth, Verdict,
};
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, spawn_app, TestApp};

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
        accelerated: None,
        reporting: Reporting::Interval(10),
        rates: IncidentRates::none(),
        transits: false,
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

/// Waits until the server has committed every fix, seal event and status the run published.
async fn everything_committed(app: &TestApp, summary: &Summary) {
    let pos = summary.fixes() as f64;
    let seal = summary.count(OutgoingKind::Seal) as f64;
    let status = summary.count(OutgoingKind::Status) as f64;
    eventually("every published message is committed", || async {
        let committed = (
            app.metric(r#"caravan_messages_total{kind="pos"}"#).await,
            app.metric(r#"caravan_messages_total{kind="seal"}"#).await,
            app.metric(r#"caravan_messages_total{kind="status"}"#).await,
        );
        (committed == (pos, seal, status)).then_some(())
    })
    .await;
}

fn describe(verdict: &Verdict<'_>, truth: &Truth, alerts: &[simulate::SeenAlert]) -> String {
    let mut text = String::new();
    for e in &verdict.missed {
        text.push_str(&format!(
            "missed {} for {} on {:?} at {}..{:?} {:?}\n",
            e.alert.alert,
            e.incident.kind,
            e.incident.transit_id,
            e.incident.at,
            e.incident.until,
            e.incident.bcp
        ));
        let on = |t: &Option<String>| t == &e.incident.transit_id;
        for a in alerts.iter().filter(|a| on(&Some(a.transit_id.clone()))) {
            text.push_str(&format!(
                "    alert {} {} at {}\n",
                a.id, a.kind, a.occurred_at
            ));
        }
        for i in truth.incidents.iter().filter(|i| on(&i.transit_id)) {
            text.push_str(&format!(
                "    truth {} at {}..{:?}\n",
                i.kind, i.at, i.until
            ));
        }
    }
    for a in &verdict.unexpected {
        text.push_str(&format!(
            "unexpected {} {} at {}\n",
            a.id, a.kind, a.occurred_at
        ));
    }
    text
}

#[tokio::test]
async fn caravan_raises_exactly_the_alerts_of_the_incidents_a_fleet_on_transits_injects() {
    let app = spawn_app().await;
    let truth_file = tempfile::NamedTempFile::new().unwrap();
    let mut rates = IncidentRates::none();
    for kind in IncidentKind::ALL {
        rates.set(kind, 1.5);
    }
    let options = Options {
        vehicles: 16,
        broker: BrokerAddr {
            host: app.mqtt_host.clone(),
            port: app.mqtt_port,
        },
        api: app.base.clone(),
        token: Some(app.token.clone()),
        // Twenty wall seconds at 6480x: 36 simulated hours, ending now.
        speedup: 6480.0,
        seed: 5,
        duration: Some(Duration::from_secs(20)),
        accelerated: None,
        reporting: Reporting::Teltonika,
        rates,
        transits: true,
        truth: Some(truth_file.path().to_owned()),
        device_prefix: Some("itransit".into()),
        connections: 2,
        progress: false,
    };
    let summary = simulate::run(options, CancellationToken::new())
        .await
        .expect("the simulated run completes");
    assert_eq!(summary.acknowledged, summary.messages());
    let t = summary.transits;
    assert!(t.declared >= 16, "{t:?}");
    assert!(t.closed > 0, "no transit was completed and closed: {t:?}");
    assert_eq!((t.refused, t.not_closed), (0, 0), "{:?}", summary.refusals);
    everything_committed(&app, &summary).await;

    let truth = Truth::read(truth_file.path()).expect("the truth file reads back");
    assert_eq!(truth.transits.len() as u64, t.declared);
    assert_eq!(truth.closed.len() as u64, t.closed);
    assert!(truth.end.is_some());
    let injected: BTreeSet<IncidentKind> = truth.incidents.iter().map(|i| i.kind).collect();
    for kind in IncidentKind::ALL {
        assert!(injected.contains(&kind), "no {kind} injected: {injected:?}");
    }
    let all = simulate::fetch_alerts(&app.http, &app.base, Some(&app.token))
        .await
        .expect("the alerts");
    let alerts = truth.alerts_of_run(all);
    let verdict = truth.verdict(&alerts);
    assert!(verdict.exact(), "{}", describe(&verdict, &truth, &alerts));
    assert!(!verdict.matched.is_empty());
    app.shutdown().await;
}

/// `caravan serve --demo`'s own fleet, as a visitor sees it after its first minute and a bit:
/// every truck on a declared transit with a current position, most of them on the road, and
/// no alert that the incidents it injected do not explain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fleet_is_alive_and_current_within_its_first_minutes() {
    let app = spawn_app().await;
    let truth_file = tempfile::NamedTempFile::new().unwrap();
    let mut options = Options::demo(
        BrokerAddr {
            host: app.mqtt_host.clone(),
            port: app.mqtt_port,
        },
        app.base.clone(),
        Some(app.token.clone()),
    );
    options.truth = Some(truth_file.path().to_owned());
    let vehicles = options.vehicles;
    let stop = CancellationToken::new();
    let run = tokio::spawn(simulate::run(options, stop.clone()));
    // The accelerated minute, then a quarter of a minute at the clock's pace.
    tokio::time::sleep(simulate::DEMO_LEAD_IN + Duration::from_secs(15)).await;

    let (_, devices) = app.get("/api/v1/devices").await;
    let devices = devices["devices"].as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), vehicles, "every demo truck is registered");
    let now = chrono::Utc::now();
    let age = |device: &serde_json::Value, field: &str| {
        let t = device
            .pointer(field)
            .and_then(|t| t.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("a demo truck without {field}: {device}"));
        (now - t.with_timezone(&chrono::Utc)).num_minutes()
    };
    for device in &devices {
        // Heard within minutes (status and battery come every few), a moving truck's
        // position current, and a standing one's within its tracker's hourly stop schedule.
        assert!(
            age(device, "/last_seen_at") < 5,
            "a silent demo truck: {device}"
        );
        let moving = device["position"]["speed_kmh"].as_f64().unwrap_or(0.0) > 5.0;
        let limit = if moving { 10 } else { 61 };
        assert!(
            age(device, "/position/t") < limit,
            "a demo truck's position is {} minutes old: {device}",
            age(device, "/position/t")
        );
    }
    let (_, transits) = app.get("/api/v1/transits").await;
    let transits = transits["transits"].as_array().cloned().unwrap_or_default();
    assert!(
        transits.len() >= vehicles,
        "every truck declared its transit"
    );
    let moving = transits.iter().filter(|t| t["stage"] != "declared").count();
    assert!(
        moving * 2 >= vehicles,
        "within the first minute most trucks have left their office: {moving} of {vehicles}"
    );

    stop.cancel();
    let summary = run
        .await
        .expect("the demo task")
        .expect("the demo fleet ran");
    assert_eq!(summary.transits.refused, 0, "{:?}", summary.refusals);
    let truth = Truth::read(truth_file.path()).expect("the truth file reads back");
    let all = simulate::fetch_alerts(&app.http, &app.base, Some(&app.token))
        .await
        .expect("the alerts");
    let alerts = truth.alerts_of_run(all);
    let verdict = truth.verdict(&alerts);
    assert!(
        verdict.unexpected.is_empty(),
        "the demo raised alerts its incidents do not explain: {}",
        describe(&verdict, &truth, &alerts)
    );
    app.shutdown().await;
}
