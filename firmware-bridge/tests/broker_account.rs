//! The bridge's own account on the broker, TLS to the broker, and publishing only for the
//! devices in its registry. A real rumqttd broker that checks logins; a real TLS relay.

mod common;

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::devices::{jt808_exchange, read_exactly, teltonika_hello};
use common::harness::{
    assert_nothing_published, free_port, next_messages, settings, start_bridge, start_broker,
    start_broker_with_accounts, subscribe, subscribe_as,
};
use common::{hex_fixture, json_fixture, tls_relay};
use firmware_bridge::registry::Registry;
use firmware_bridge::server::Protocol;
use firmware_bridge::settings::{BrokerArgs, MqttSettings};
use tokio::io::AsyncWriteExt;

const BRIDGE: &str = "firmware-bridge";
const CREDENTIAL: &str = "cvg_3kQ9x7TestOnly";
const SUBSCRIBER: (&str, &str) = ("test-subscriber", "sub-password");

/// The binary's flags for a gateway account whose password is in a file.
fn account_args(url: String, dir: &std::path::Path, password: &str) -> BrokerArgs {
    let file = dir.join("mqtt-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    BrokerArgs {
        url,
        username: Some(BRIDGE.into()),
        password_file: Some(file),
        ..BrokerArgs::default()
    }
}

/// A registered Teltonika device sends the two-fix fixture and is acknowledged.
async fn send_two_fixes(addr: std::net::SocketAddr) {
    let (mut device, accepted) = teltonika_hello(addr, "356307042441013").await;
    assert_eq!(accepted, 0x01);
    device
        .write_all(&hex_fixture("teltonika/codec8_irkeshtam_two_fixes.hex"))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut device, 4).await, 2u32.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_logs_in_with_its_account_and_the_client_id_is_its_username() {
    let port = free_port();
    let logins =
        start_broker_with_accounts(port, &[(BRIDGE, CREDENTIAL), (SUBSCRIBER.0, SUBSCRIBER.1)]);
    let mut rx = subscribe_as(port, Some(SUBSCRIBER)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.mqtt = MqttSettings::from_args(&account_args(
        format!("mqtt://127.0.0.1:{port}"),
        dir.path(),
        CREDENTIAL,
    ))
    .unwrap();
    let (bridge, cancel) = start_bridge(s).await;

    send_two_fixes(bridge.teltonika.unwrap()).await;
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 4).await),
        expected
    );
    assert!(logins
        .lock()
        .unwrap()
        .contains(&(BRIDGE.to_owned(), BRIDGE.to_owned())));
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_wrong_credential_nothing_is_published_and_the_records_stay_queued() {
    let port = free_port();
    start_broker_with_accounts(port, &[(BRIDGE, CREDENTIAL), (SUBSCRIBER.0, SUBSCRIBER.1)]);
    let mut rx = subscribe_as(port, Some(SUBSCRIBER)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.mqtt = MqttSettings::from_args(&account_args(
        format!("mqtt://127.0.0.1:{port}"),
        dir.path(),
        "cvg_revoked",
    ))
    .unwrap();
    let (bridge, cancel) = start_bridge(s).await;

    send_two_fixes(bridge.teltonika.unwrap()).await;
    assert_nothing_published(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(bridge.metrics.mqtt_connected.load(Relaxed), 0);
    assert_eq!(
        bridge.metrics.queue_entries.load(Relaxed),
        4,
        "kept on disk"
    );
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtts_the_bridge_publishes_through_tls_and_refuses_an_untrusted_broker() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let (tls_port, handshakes) = tls_relay::start(port).await;

    // A CA that did not sign the broker's certificate: no session, nothing published.
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.mqtt = MqttSettings::from_args(&BrokerArgs {
        url: format!("mqtts://localhost:{tls_port}"),
        ca_file: Some(tls_relay::tls_fixture("other-ca.pem")),
        ..BrokerArgs::default()
    })
    .unwrap();
    let (bridge, cancel) = start_bridge(s).await;
    send_two_fixes(bridge.teltonika.unwrap()).await;
    assert_nothing_published(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(handshakes.load(SeqCst), 0);
    cancel.cancel();
    bridge.stopped().await;

    // The right CA: the queued records go out over TLS.
    let mut s = settings(port, dir.path());
    s.mqtt = MqttSettings::from_args(&BrokerArgs {
        url: format!("mqtts://localhost:{tls_port}"),
        ca_file: Some(tls_relay::tls_fixture("ca.pem")),
        ..BrokerArgs::default()
    })
    .unwrap();
    let (bridge, cancel) = start_bridge(s).await;
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 4).await),
        expected
    );
    assert!(handshakes.load(SeqCst) >= 1);
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_publishes_only_for_devices_in_its_registry() {
    let broker = free_port();
    start_broker(broker);
    let mut rx = subscribe(broker).await;
    let dir = tempfile::tempdir().unwrap();

    // Records of the Teltonika device are queued while the broker is unreachable...
    let (bridge, cancel) = start_bridge(settings(free_port(), dir.path())).await;
    send_two_fixes(bridge.teltonika.unwrap()).await;
    cancel.cancel();
    bridge.stopped().await;

    // ...then the device is removed from the registry, and the broker is reachable.
    let mut s = settings(broker, dir.path());
    s.registry = Arc::new(
        Registry::from_toml(
            r#"
            [[devices]]
            device_id = "13912345678"
            "#,
        )
        .unwrap(),
    );
    let (bridge, cancel) = start_bridge(s).await;
    let (_, refused) = teltonika_hello(bridge.teltonika.unwrap(), "356307042441013").await;
    assert_eq!(
        refused, 0x00,
        "no longer registered: refused at the handshake"
    );

    // An unregistered JT/T 808 terminal can neither register nor report.
    let mut stranger = tokio::net::TcpStream::connect(bridge.jt808.unwrap())
        .await
        .unwrap();
    let mut unknown = hex_fixture("jt808/register_2013.hex");
    unknown = retarget_terminal(&unknown, "013900000001");
    let reg = jt808_exchange(&mut stranger, &unknown).await;
    assert_eq!(reg.body.get(2), Some(&4), "result 4: no such terminal");

    // The registered terminal is published, and only it.
    let mut t = tokio::net::TcpStream::connect(bridge.jt808.unwrap())
        .await
        .unwrap();
    jt808_exchange(&mut t, &hex_fixture("jt808/register_2013.hex")).await;
    jt808_exchange(&mut t, &hex_fixture("jt808/auth_2013.hex")).await;
    jt808_exchange(&mut t, &hex_fixture("jt808/location_2013.hex")).await;
    let got = next_messages(&mut rx, 2).await;
    for m in &got {
        let topic = m["topic"].as_str().unwrap();
        assert!(topic.starts_with("caravan/v1/dev/13912345678/"), "{topic}");
    }
    assert_nothing_published(&mut rx, Duration::from_millis(500)).await;
    assert_eq!(bridge.metrics.unregistered_dropped.load(Relaxed), 4);
    assert_eq!(bridge.metrics.rejects(Protocol::Jt808, "unknown_device"), 1);
    cancel.cancel();
    bridge.stopped().await;
}

/// The same JT/T 808 message from another terminal.
fn retarget_terminal(frame: &[u8], phone_bcd: &str) -> Vec<u8> {
    let mut m = firmware_bridge::jt808::frame::decode(frame).unwrap();
    m.header.phone = phone_bcd.to_owned();
    firmware_bridge::jt808::frame::encode(&m.header, &m.body)
}
