//! The bridge as deployed: devices over TCP on one side, a real MQTT broker on the other.

mod common;

use std::time::Duration;

use common::devices::{assert_silent, jt808_exchange, read_exactly, teltonika_hello};
use common::harness::{free_port, next_messages, settings, start_bridge, start_broker, subscribe};
use common::{hex_fixture, json_fixture};
use firmware_bridge::jt808::msg;
use firmware_bridge::server::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teltonika_device_is_acknowledged_and_its_records_published_exactly() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(settings(port, dir.path())).await;
    let addr = bridge.teltonika.unwrap();

    let (_, refused) = teltonika_hello(addr, "123456789012345").await;
    assert_eq!(refused, 0x00, "an unknown IMEI is refused");

    let (mut device, accepted) = teltonika_hello(addr, "356307042441013").await;
    assert_eq!(accepted, 0x01);
    device
        .write_all(&hex_fixture("teltonika/codec8_irkeshtam_two_fixes.hex"))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut device, 4).await,
        2u32.to_be_bytes(),
        "the ack is the record count"
    );
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 4).await),
        expected
    );

    let mut corrupt = hex_fixture("teltonika/codec8_example2.hex");
    corrupt[30] ^= 0x40;
    device.write_all(&corrupt).await.unwrap();
    assert_silent(&mut device).await;
    assert_eq!(bridge.metrics.rejects(Protocol::Teltonika, "bad_crc"), 1);

    // The connection survives a bad packet: the resent good one is acknowledged.
    device
        .write_all(&hex_fixture("teltonika/codec8_example2.hex"))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut device, 4).await, 1u32.to_be_bytes());
    let status = next_messages(&mut rx, 1).await;
    assert_eq!(
        status[0]["payload"]["seq"],
        5 + 1,
        "seq continues per device"
    );

    let scrape = http_get(bridge.metrics_addr.unwrap(), "/metrics").await;
    assert!(
        scrape.contains("bridge_rejects_total{protocol=\"teltonika\",reason=\"bad_crc\"} 1"),
        "{scrape}"
    );
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jt808_terminal_registers_authenticates_and_its_backlog_is_one_array() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(settings(port, dir.path())).await;
    let mut t = TcpStream::connect(bridge.jt808.unwrap()).await.unwrap();

    let early = jt808_exchange(&mut t, &hex_fixture("jt808/location_2013.hex")).await;
    assert_eq!(
        early.body.last(),
        Some(&1),
        "a location before authentication fails"
    );

    let reg = jt808_exchange(&mut t, &hex_fixture("jt808/register_2013.hex")).await;
    assert_eq!(reg.header.msg_id, msg::REGISTER_RESPONSE);
    assert_eq!(
        reg.body,
        [&[0, 1, 0][..], b"CV13912345678"].concat(),
        "serial 1, success, the auth code"
    );

    let auth = jt808_exchange(&mut t, &hex_fixture("jt808/auth_2013.hex")).await;
    assert_eq!(
        (auth.header.msg_id, auth.body.as_slice()),
        (msg::PLATFORM_RESPONSE, &[0, 2, 0x01, 0x02, 0][..])
    );
    let beat = jt808_exchange(&mut t, &hex_fixture("jt808/heartbeat_2013.hex")).await;
    assert_eq!(beat.body, [0, 3, 0x00, 0x02, 0]);

    let loc = jt808_exchange(&mut t, &hex_fixture("jt808/location_2013.hex")).await;
    assert_eq!(
        loc.body,
        [0, 0x7E, 0x02, 0x00, 0],
        "success for serial 0x007E"
    );
    let batch = jt808_exchange(&mut t, &hex_fixture("jt808/batch_2013.hex")).await;
    assert_eq!(batch.body, [0, 5, 0x07, 0x04, 0]);

    let got = next_messages(&mut rx, 4).await;
    let single = &json_fixture("jt808/location_2013.expected.json")[0];
    assert_eq!(got[0], *single);
    assert_eq!(
        got[1],
        serde_json::json!({"topic": "caravan/v1/dev/13912345678/status",
        "payload": {"seq": 2, "t": "2026-11-27T08:15:30Z", "gsm_rssi": -69}})
    );
    // The batch's fixture numbers its messages from 1; here they follow seq 2.
    let mut backlog = json_fixture("jt808/batch_2013.expected.json");
    for (i, fix) in backlog[0]["payload"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        fix["seq"] = serde_json::json!(3 + i);
    }
    backlog[1]["payload"]["seq"] = serde_json::json!(5);
    assert_eq!(serde_json::Value::Array(got[2..].to_vec()), backlog);
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_with_a_runaway_extra_item_and_impossible_values_is_kept_and_acknowledged() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(settings(port, dir.path())).await;
    let mut t = TcpStream::connect(bridge.jt808.unwrap()).await.unwrap();
    jt808_exchange(&mut t, &hex_fixture("jt808/register_2013.hex")).await;
    jt808_exchange(&mut t, &hex_fixture("jt808/auth_2013.hex")).await;

    let fixture = hex_fixture("jt808/location_out_of_contract_2013.hex");
    let reply = jt808_exchange(&mut t, &fixture).await;
    assert_eq!(
        reply.body,
        [0x00, 0x80, 0x02, 0x00, 0],
        "success for serial 0x0080, not \"message error\""
    );
    let expected = json_fixture("jt808/location_out_of_contract_2013.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 3).await),
        expected
    );
    let dropped = |field| bridge.metrics.dropped_fields(Protocol::Jt808, field);
    assert_eq!(
        (
            dropped("extra_item"),
            dropped("speed_kmh"),
            dropped("alt_m")
        ),
        (1, 1, 1)
    );
    let scrape = http_get(bridge.metrics_addr.unwrap(), "/metrics").await;
    assert!(
        scrape.contains("bridge_fields_dropped_total{protocol=\"jt808\",field=\"extra_item\"} 1"),
        "{scrape}"
    );
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jt701_lock_is_acknowledged_after_queueing_and_an_unknown_lock_is_closed() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(settings(port, dir.path())).await;
    let addr = bridge.jt701.unwrap();

    let mut stranger = TcpStream::connect(addr).await.unwrap();
    stranger
        .write_all(&hex_fixture("jt701/v19_west.hex"))
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let end = tokio::time::timeout(Duration::from_secs(5), stranger.read(&mut byte)).await;
    assert!(
        matches!(end, Ok(Ok(0)) | Ok(Err(_))),
        "an unregistered lock is closed, not answered: {end:?}"
    );
    assert_eq!(bridge.metrics.rejects(Protocol::Jt701, "unknown_device"), 1);

    let mut lock = TcpStream::connect(addr).await.unwrap();
    lock.write_all(b"(7520150926,@JT)").await.unwrap();
    lock.write_all(&hex_fixture("jt701/v16_locked_ack.hex"))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut lock, 5).await, b"(P35)");
    let expected = json_fixture("jt701/v16_locked_ack.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 2).await),
        expected
    );
    assert_eq!(bridge.metrics.rejects(Protocol::Jt701, "unsupported"), 1);
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_records_are_queued_acknowledged_and_published_later() {
    let broker = free_port();
    start_broker(broker);
    let mut rx = subscribe(broker).await;
    // The bridge talks to the broker through a port that nothing listens on yet.
    let gate = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(settings(gate, dir.path())).await;

    let (mut device, _) = teltonika_hello(bridge.teltonika.unwrap(), "356307042441013").await;
    device
        .write_all(&hex_fixture("teltonika/codec8_irkeshtam_two_fixes.hex"))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut device, 4).await,
        2u32.to_be_bytes(),
        "acknowledged while the broker is down"
    );
    assert_eq!(
        bridge
            .metrics
            .queue_entries
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv())
        .await
        .is_err());

    tokio::spawn(forward(gate, broker));
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 4).await),
        expected
    );
    cancel.cancel();
    bridge.stopped().await;
}

/// A TCP relay from `from` to `to`: "the broker comes back".
async fn forward(from: u16, to: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", from))
        .await
        .unwrap();
    loop {
        let (mut inbound, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut outbound = TcpStream::connect(("127.0.0.1", to)).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
