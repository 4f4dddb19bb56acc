//! Only a registered device can speak for itself on the embedded endpoint: anonymous, wrong
//! and revoked credentials are refused, a device cannot publish or read as another, and a
//! gateway speaks only for the devices bound to it.

use std::time::Duration;

use reqwest::StatusCode;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS,
    SubscribeReasonCode,
};
use serde_json::{json, Value};

use crate::helpers::{eventually, fix, spawn_app, topic, TestApp};

/// What the endpoint answered to a CONNECT.
async fn connect_outcome(
    app: &TestApp,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<(), ConnectReturnCode> {
    let mut options = MqttOptions::new(client_id, &app.mqtt_host, app.mqtt_port);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (_client, mut eventloop) = AsyncClient::new(options, 10);
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                Ok(_) => {}
                Err(e) => panic!("unexpected connection error: {e}"),
            }
        }
    })
    .await;
    outcome.expect("the endpoint answers the CONNECT")
}

#[tokio::test]
async fn anonymous_wrong_and_revoked_credentials_are_refused() {
    let app = spawn_app().await;
    app.register("trust-a").await;
    let secret = app.credential("trust-a").await;

    assert_eq!(
        connect_outcome(&app, "anon", None).await,
        Err(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        connect_outcome(&app, "trust-a", Some(("trust-a", "cvd_wrong"))).await,
        Err(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        connect_outcome(&app, "nobody", Some(("nobody", &secret))).await,
        Err(ConnectReturnCode::BadUserNamePassword),
        "a real secret under another name"
    );
    assert_eq!(
        connect_outcome(&app, "trust-a", Some(("trust-a", &secret))).await,
        Ok(())
    );

    // Revoked: the live session is cut and the secret no longer opens one.
    let device = app.mqtt("trust-a").await;
    let (status, _) = app
        .http
        .delete(format!("{}/api/v1/devices/trust-a/credential", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("the API answers");
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        connect_outcome(&app, "trust-a", Some(("trust-a", &secret))).await,
        Err(ConnectReturnCode::BadUserNamePassword)
    );
    device
        .publish_json(&topic("trust-a", "pos"), &fix(1, 1, 39.0, 73.0))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.device("trust-a").await["position"],
        Value::Null,
        "the cut session delivered nothing"
    );

    // Rotation gives a working secret again, and the old one stays dead.
    let (status, rotated) = app
        .post("/api/v1/devices/trust-a/credential", &Value::Null)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let fresh = rotated["password"].as_str().expect("a new secret");
    assert_ne!(fresh, secret);
    assert_eq!(
        connect_outcome(&app, "trust-a", Some(("trust-a", fresh))).await,
        Ok(())
    );
    assert_eq!(
        connect_outcome(&app, "trust-a", Some(("trust-a", &secret))).await,
        Err(ConnectReturnCode::BadUserNamePassword)
    );

    // Each issue and revocation is in the event log with who did it.
    let (_, events) = app.get("/api/v1/devices/trust-a/events").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"mqtt_credential_revoked"), "{kinds:?}");
    assert!(kinds.contains(&"mqtt_credential_issued"), "{kinds:?}");
    let revoked = events["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "mqtt_credential_revoked"))
        .expect("the revocation");
    assert!(
        revoked["actor"]
            .as_str()
            .is_some_and(|a| a.contains("coordinator")),
        "{revoked}"
    );
}

#[tokio::test]
async fn a_device_publishing_as_another_changes_nothing_about_it_and_is_dead_lettered() {
    let app = spawn_app().await;
    app.register("truck-a").await;
    app.register("truck-b").await;
    let b = app.mqtt("truck-b").await;
    b.publish_json(&topic("truck-b", "pos"), &fix(1, 5, 42.87, 74.6))
        .await;
    eventually("B's own fix is applied", || async {
        (app.device("truck-b").await["position"]["seq"] == 1).then_some(())
    })
    .await;

    // A, with valid credentials of its own, moves B to Dushanbe and cuts B's seal rope.
    let a = app.mqtt("truck-a").await;
    a.publish_json(&topic("truck-b", "pos"), &fix(2, 1, 38.56, 68.77))
        .await;
    let seal = json!({"seq": 3, "t": crate::helpers::minutes_ago(1), "seal_id": "S-B", "event": "rope_cut"});
    a.publish_json(&topic("truck-b", "seal"), &seal).await;

    eventually("both forgeries are counted", || async {
        (app.metric("caravan_rejects_total{reason=\"foreign_device\"}")
            .await
            == 2.0)
            .then_some(())
    })
    .await;
    let b_now = app.device("truck-b").await;
    assert_eq!(b_now["position"]["seq"], 1, "B did not move: {b_now}");
    assert_eq!(b_now["seal"], Value::Null, "B's seal is untouched: {b_now}");
    let (_, events) = app.get("/api/v1/devices/truck-b/events").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        !kinds
            .iter()
            .any(|k| k.contains("seal") || k.contains("border") || k.contains("crossing")),
        "no evidence against B: {kinds:?}"
    );
    let (status, letters) = app.get("/api/v1/dead-letters?reason=foreign_device").await;
    assert_eq!(status, StatusCode::OK, "{letters}");
    let letters = letters["dead_letters"].as_array().expect("dead letters");
    assert_eq!(letters.len(), 2);
    assert!(letters
        .iter()
        .all(|l| l["detail"].as_str().is_some_and(|d| d.contains("truck-a"))));
    assert_eq!(
        app.metric("caravan_messages_total{kind=\"seal\"}").await,
        0.0
    );
}

#[tokio::test]
async fn nobody_can_subscribe_so_nobody_reads_another_devices_messages() {
    let app = spawn_app().await;
    app.register("snoop").await;
    let secret = app.credential("snoop").await;
    let mut options = MqttOptions::new("snoop", &app.mqtt_host, app.mqtt_port);
    options.set_credentials("snoop", secret);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    for filter in [
        "caravan/v1/#",
        "caravan/v1/dev/other/pos",
        "caravan/v1/rejected/#",
        "#",
    ] {
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queued");
    }
    let mut refused = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while refused < 4 {
            if let Ok(Event::Incoming(Packet::SubAck(ack))) = eventloop.poll().await {
                assert_eq!(ack.return_codes, vec![SubscribeReasonCode::Failure]);
                refused += 1;
            }
        }
    })
    .await
    .expect("every subscription is answered");
    assert_eq!(refused, 4);
}

#[tokio::test]
async fn a_device_cannot_post_dead_letters_or_use_wildcard_topics() {
    let app = spawn_app().await;
    app.register("rogue").await;
    let secret = app.credential("rogue").await;
    // A client library refuses wildcards in a topic, so these are written by hand.
    let addr = format!("{}:{}", app.mqtt_host, app.mqtt_port);
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    let mut connect = rumqttc::Connect::new("rogue");
    connect.set_login("rogue", secret);
    let mut out = bytes::BytesMut::new();
    let _ = Packet::Connect(connect).write(&mut out, 1 << 20);
    for (pkid, t) in [
        (1, "caravan/v1/rejected/malformed"),
        (2, "caravan/v1/dev/+/pos"),
        (3, "caravan/v1/dev/rogue/#"),
    ] {
        let mut publish = rumqttc::Publish::new(t, QoS::AtLeastOnce, b"{}".to_vec());
        publish.pkid = pkid;
        let _ = Packet::Publish(publish).write(&mut out, 1 << 20);
    }
    use tokio::io::AsyncWriteExt;
    stream.write_all(&out).await.expect("written");
    eventually("each is counted as a bad topic", || async {
        (app.metric("caravan_rejects_total{reason=\"bad_topic\"}")
            .await
            == 3.0)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_gateway_speaks_only_for_the_devices_bound_to_it() {
    let app = spawn_app().await;
    let (status, gateway) = app
        .post("/api/v1/gateways", &json!({"name": "firmware-bridge"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{gateway}");
    let secret = gateway["password"].as_str().expect("a secret").to_owned();
    let body =
        json!({"device_id": "bridged-1", "carrier": "kg-trans", "gateway": "firmware-bridge"});
    let (status, body) = app.post("/api/v1/devices", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.register("direct-1").await;

    let bridge = crate::helpers::Mqtt::connect_as(
        &app.mqtt_host,
        app.mqtt_port,
        "firmware-bridge",
        Some(("firmware-bridge", &secret)),
    )
    .await;
    bridge
        .publish_json(&topic("bridged-1", "pos"), &fix(1, 1, 42.87, 74.6))
        .await;
    bridge
        .publish_json(&topic("direct-1", "pos"), &fix(1, 1, 42.87, 74.6))
        .await;
    eventually("the bound device's fix is applied", || async {
        (app.device("bridged-1").await["position"]["seq"] == 1).then_some(())
    })
    .await;
    eventually("the other is refused", || async {
        (app.metric("caravan_rejects_total{reason=\"foreign_device\"}")
            .await
            == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(app.device("direct-1").await["position"], Value::Null);

    // Only a coordinator manages gateways; a device may not take a service account's name.
    let carrier = app.token_for("carrier:kg-trans");
    let (status, _) = app
        .post_as(&carrier, "/api/v1/gateways", &json!({"name": "mine"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            "/api/v1/devices",
            &json!({"device_id": "caravan-ingest", "carrier": "kg-trans"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_connect_is_closed_and_does_not_lock_devices_out() {
    let app = spawn_app_with(|s| {
        s.mqtt.connect_timeout_s = 1;
        s.mqtt.max_unauthenticated = 8;
    })
    .await;
    app.register("patient").await;
    let addr = format!("{}:{}", app.mqtt_host, app.mqtt_port);
    // Twenty connections that say nothing, more than the unauthenticated gate holds.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connects"),
        );
    }
    // Once the deadline has passed they are closed, and a device gets in.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let device = app.mqtt("patient").await;
    device
        .publish_json(&topic("patient", "pos"), &fix(1, 1, 42.87, 74.6))
        .await;
    eventually("the device is served", || async {
        (app.device("patient").await["position"]["seq"] == 1).then_some(())
    })
    .await;
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), idle[0].read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection was closed"
    );
}

async fn spawn_app_with(adjust: impl FnOnce(&mut caravan::settings::Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let app = crate::helpers::spawn_app_in(&path, adjust).await;
    app.keep_dir(dir)
}
