//! Hostile connections over real TCP: slow frames, connections that never identify
//! themselves, and a flood of anonymous sockets while a registered tracker connects.

mod common;

use std::time::{Duration, Instant};

use common::devices::{jt808_exchange, read_exactly, teltonika_hello};
use common::harness::{free_port, next_messages, settings, start_bridge, start_broker, subscribe};
use common::{hex_fixture, json_fixture};
use firmware_bridge::server::Protocol;
use firmware_bridge::settings::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the bridge closes the connection; returns when that happened.
async fn closed_at(stream: &mut TcpStream, within: Duration) -> Instant {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    });
    read.await
        .expect("the bridge closed the connection in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_trickling_one_byte_a_second_is_closed_at_the_frame_deadline() {
    let port = free_port();
    start_broker(port);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.limits = Limits {
        frame_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let (bridge, cancel) = start_bridge(s).await;
    let (mut device, accepted) =
        teltonika_hello(bridge.teltonika.unwrap(), "356307042441013").await;
    assert_eq!(accepted, 0x01);

    // Each byte arrives well within the idle timeout; the frame never completes.
    let packet = hex_fixture("teltonika/codec8_irkeshtam_two_fixes.hex");
    let (mut reader, mut writer) = device.split();
    let started = Instant::now();
    let trickle = async {
        for byte in &packet {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await;
    };
    let closed = tokio::select! {
        at = async {
            let mut buf = [0u8; 8];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return Instant::now(),
                    Ok(_) => {}
                }
            }
        } => at,
        _ = trickle => unreachable!(),
        _ = tokio::time::sleep(Duration::from_secs(15)) => panic!("still open after 15 s"),
    };
    let held = closed - started;
    assert!(
        held >= Duration::from_millis(2500) && held < Duration::from_secs(6),
        "closed after {held:?}, the frame deadline is 3 s"
    );
    assert_eq!(
        bridge.metrics.rejects(Protocol::Teltonika, "frame_timeout"),
        1
    );
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_chats_without_authenticating_is_closed_at_the_identify_deadline() {
    let port = free_port();
    start_broker(port);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.limits = Limits {
        identify_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let (bridge, cancel) = start_bridge(s).await;
    let mut t = TcpStream::connect(bridge.jt808.unwrap()).await.unwrap();
    let started = Instant::now();
    // Heartbeats are answered, and each is a whole frame: only identification ends this.
    let beat = hex_fixture("jt808/heartbeat_2013.hex");
    let chat = async move {
        loop {
            jt808_exchange(&mut t, &beat).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if started.elapsed() > Duration::from_secs(10) {
                panic!("still served after 10 s without authenticating");
            }
        }
    };
    let outcome = tokio::spawn(chat);
    let err = outcome
        .await
        .expect_err("the exchange fails once the bridge closes");
    assert!(err.is_panic());
    let held = started.elapsed();
    assert!(held < Duration::from_secs(5), "closed after {held:?}");
    assert_eq!(
        bridge.metrics.rejects(Protocol::Jt808, "identify_timeout"),
        1
    );
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_anonymous_connections_do_not_keep_registered_trackers_out() {
    let port = free_port();
    start_broker(port);
    let mut rx = subscribe(port).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    // Room for the three registered devices only: the anonymous sockets must not take it.
    s.limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let (bridge, cancel) = start_bridge(s).await;
    let (teltonika, jt808) = (bridge.teltonika.unwrap(), bridge.jt808.unwrap());
    let jt701 = bridge.jt701.unwrap();

    let mut flood = Vec::with_capacity(1000);
    for i in 0..1000 {
        let addr = [teltonika, jt808, jt701][i % 3];
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Half of them start a frame they never finish.
        if i % 4 < 2 {
            let _ = s.write_all(&[0x00, 0x0F, b'3', 0x7E, 0x00]).await;
        }
        flood.push(s);
    }

    let (mut device, accepted) = teltonika_hello(teltonika, "356307042441013").await;
    assert_eq!(
        accepted, 0x01,
        "the registered Teltonika device is accepted"
    );
    device
        .write_all(&hex_fixture("teltonika/codec8_irkeshtam_two_fixes.hex"))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut device, 4).await, 2u32.to_be_bytes());
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    assert_eq!(
        serde_json::Value::Array(next_messages(&mut rx, 4).await),
        expected
    );

    let mut t = TcpStream::connect(jt808).await.unwrap();
    jt808_exchange(&mut t, &hex_fixture("jt808/register_2013.hex")).await;
    let auth = jt808_exchange(&mut t, &hex_fixture("jt808/auth_2013.hex")).await;
    assert_eq!(auth.body.last(), Some(&0), "authenticated");
    let loc = jt808_exchange(&mut t, &hex_fixture("jt808/location_2013.hex")).await;
    assert_eq!(loc.body.last(), Some(&0), "the fix is acknowledged");
    let got = next_messages(&mut rx, 2).await;
    assert_eq!(got[0]["topic"], "caravan/v1/dev/13912345678/pos");

    let mut lock = TcpStream::connect(jt701).await.unwrap();
    lock.write_all(&hex_fixture("jt701/v16_locked_ack.hex"))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut lock, 5).await,
        b"(P35)",
        "the lock is served"
    );
    let got = next_messages(&mut rx, 1).await;
    assert_eq!(got[0]["topic"], "caravan/v1/dev/7520150926/pos");

    // The flood was held to the small pool: all but 64 of it evicted, not served.
    let evicted = || -> u64 {
        Protocol::ALL
            .iter()
            .map(|p| bridge.metrics.rejects(*p, "evicted_unidentified"))
            .sum()
    };
    let waited = Instant::now();
    while evicted() < 1000 - 64 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(evicted() >= 1000 - 64, "{}", bridge.metrics.render());
    let open: i64 = Protocol::ALL
        .iter()
        .map(|p| {
            bridge.metrics.connections_open[p.index()].load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(open <= 64 + 3, "{open} connections open");
    drop(flood);
    cancel.cancel();
    bridge.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_identifying_beyond_the_connection_cap_is_refused() {
    let port = free_port();
    start_broker(port);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(port, dir.path());
    s.limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let (bridge, cancel) = start_bridge(s).await;
    let addr = bridge.teltonika.unwrap();
    let (_first, accepted) = teltonika_hello(addr, "356307042441013").await;
    assert_eq!(accepted, 0x01);
    let (mut second, refused) = teltonika_hello(addr, "356307042441013").await;
    assert_eq!(refused, 0x00, "no slot left");
    closed_at(&mut second, Duration::from_secs(5)).await;
    assert_eq!(
        bridge
            .metrics
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    cancel.cancel();
    bridge.stopped().await;
}
