//! A device's PUBACK means its message is committed, and PUBACKs come back on each connection
//! in the order of its messages, also when bursts from several devices are taken, committed
//! and acknowledged together.

use std::time::Duration;

use bytes::BytesMut;
use reqwest::StatusCode;
use rumqttc::{Connect, ConnectReturnCode, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{fix, spawn_app, topic, TestApp};

const DEVICES: usize = 4;
const BURST: u16 = 200;

/// A device connection without a client library, so that a whole burst leaves in one write
/// and every PUBACK is seen as it arrives.
async fn connect(app: &TestApp, device: &str) -> TcpStream {
    let secret = app.credential(device).await;
    let mut stream = TcpStream::connect((app.mqtt_host.as_str(), app.mqtt_port))
        .await
        .expect("connect");
    let mut connect = Connect::new(device);
    connect.keep_alive = 30;
    connect.set_login(device, secret);
    let mut out = BytesMut::new();
    Packet::Connect(connect)
        .write(&mut out, 1 << 20)
        .expect("CONNECT");
    stream.write_all(&out).await.expect("send CONNECT");
    let mut buf = BytesMut::new();
    loop {
        match Packet::read(&mut buf, 1 << 20) {
            Ok(Packet::ConnAck(ack)) => {
                assert_eq!(ack.code, ConnectReturnCode::Success, "{device}");
                return stream;
            }
            Ok(other) => panic!("{device}: {other:?} instead of a CONNACK"),
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(e) => panic!("{device}: {e}"),
        }
        assert!(stream.read_buf(&mut buf).await.expect("CONNACK") > 0);
    }
}

/// Sends `BURST` fixes in one write and returns the packet ids of the PUBACKs in the order
/// they came, checking at each device's last PUBACK that all its fixes are stored.
async fn burst(app: &TestApp, device: &str) -> Vec<u16> {
    let mut stream = connect(app, device).await;
    let mut out = BytesMut::new();
    for pkid in 1..=BURST {
        let body = fix(u64::from(pkid), 5, 39.0 + f64::from(pkid) * 1e-4, 73.0);
        let mut publish = Publish::new(
            topic(device, "pos"),
            QoS::AtLeastOnce,
            body.to_string().into_bytes(),
        );
        publish.pkid = pkid;
        Packet::Publish(publish)
            .write(&mut out, 1 << 20)
            .expect("PUBLISH");
    }
    stream.write_all(&out).await.expect("send the burst");
    let mut acked = Vec::new();
    let mut buf = BytesMut::new();
    while acked.len() < usize::from(BURST) {
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_buf(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "{device}: {} PUBACKs, then nothing",
            acked.len()
        );
        while let Ok(packet) = Packet::read(&mut buf, 1 << 20) {
            if let Packet::PubAck(ack) = packet {
                acked.push(ack.pkid);
            }
        }
    }
    // Read at once, not eventually: the last PUBACK says every fix is committed.
    let (status, track) = app.get(&format!("/api/v1/devices/{device}/track")).await;
    assert_eq!(status, StatusCode::OK, "{track}");
    assert_eq!(track["properties"]["fixes"], BURST, "{device}");
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_from_several_devices_are_acknowledged_in_order_once_committed() {
    let app = std::sync::Arc::new(spawn_app().await);
    let devices: Vec<String> = (0..DEVICES).map(|n| format!("burst-{n}")).collect();
    for device in &devices {
        app.register(device).await;
    }
    let sending: Vec<_> = devices
        .iter()
        .map(|device| {
            let (app, device) = (app.clone(), device.clone());
            tokio::spawn(async move { burst(&app, &device).await })
        })
        .collect();
    let in_order: Vec<u16> = (1..=BURST).collect();
    for (device, sent) in devices.iter().zip(sending) {
        let acked = sent.await.expect("the device's task");
        assert_eq!(acked, in_order, "{device}'s PUBACKs");
    }
}
