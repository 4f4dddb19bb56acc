//! End to end with real device protocols: a tracker speaks Teltonika or JT/T 808 over TCP to
//! the firmware bridge, the bridge publishes to Caravan's embedded endpoint as its gateway
//! account, and the fixes are
//! visible through Caravan's API.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use firmware_bridge::framing::Framing;
use firmware_bridge::jt808::{self, msg, Batch, Header, Location};
use firmware_bridge::registry::Registry;
use firmware_bridge::settings::{Limits, MqttSettings, Settings};
use firmware_bridge::teltonika::{avl, AvlRecord, Codec, Gps};
use firmware_bridge::Bridge;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, spawn_app, TestApp};

const IMEI: &str = "356307042441013";
const TERMINAL: &str = "13912345678";

/// The bridge, in this process, publishing to the app's broker and allowing both devices.
async fn start_bridge(app: &TestApp, data_dir: &std::path::Path) -> (Bridge, CancellationToken) {
    let registry =
        format!("[[devices]]\ndevice_id = \"{IMEI}\"\n[[devices]]\ndevice_id = \"{TERMINAL}\"\n");
    let any = "127.0.0.1:0".parse().unwrap();
    // The bridge speaks for its trackers with its own gateway account.
    let secret = app.gateway("firmware-bridge").await;
    let url = format!(
        "mqtt://firmware-bridge:{secret}@{}:{}",
        app.mqtt_host, app.mqtt_port
    );
    let settings = Settings {
        teltonika: Some(any),
        jt808: Some(any),
        jt701: None,
        metrics: None,
        mqtt: MqttSettings::from_url(&url, "bridge-under-test").unwrap(),
        registry: Arc::new(Registry::from_toml(&registry).unwrap()),
        data_dir: data_dir.to_owned(),
        limits: Limits::default(),
        queue: Default::default(),
    };
    let cancel = CancellationToken::new();
    let bridge = firmware_bridge::run(settings, cancel.clone())
        .await
        .unwrap();
    (bridge, cancel)
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .expect("the bridge answers in time")
        .unwrap();
    buf
}

fn seconds_ago(seconds: i64) -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::seconds(seconds)).trunc_subsecs(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teltonika_fix_sent_to_the_bridge_is_the_device_position_in_caravan() {
    let app = spawn_app().await;
    app.register_via(IMEI, "firmware-bridge").await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(&app, dir.path()).await;

    let mut device = TcpStream::connect(bridge.teltonika.unwrap()).await.unwrap();
    device.write_all(&avl::encode_imei(IMEI)).await.unwrap();
    assert_eq!(read_exactly(&mut device, 1).await, [0x01], "IMEI accepted");

    let t = seconds_ago(30);
    let record = AvlRecord {
        timestamp_ms: u64::try_from(t.timestamp_millis()).unwrap(),
        priority: 0,
        gps: Gps {
            lon_e7: 739_215_000,
            lat_e7: 396_810_000,
            altitude_m: 2850,
            angle_deg: 112,
            satellites: 11,
            speed_kmh: 54,
        },
        event_io: 0,
        io: Vec::new(),
    };
    device
        .write_all(&avl::encode(Codec::Codec8, &[record]))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut device, 4).await,
        1u32.to_be_bytes(),
        "the ack is the record count"
    );

    let view = eventually("the fix is visible through the API", || async {
        let view = app.device(IMEI).await;
        (!view["position"].is_null()).then_some(view)
    })
    .await;
    let position = &view["position"];
    assert_eq!(position["lat"], 39.681);
    assert_eq!(position["lon"], 73.9215);
    assert_eq!(position["speed_kmh"], 54.0);
    let reported: DateTime<Utc> = position["t"].as_str().unwrap().parse().unwrap();
    assert_eq!(reported, t);

    cancel.cancel();
    bridge.stopped().await;
}

/// A terminal message with the 2013-edition header.
fn jt808_message(msg_id: u16, serial: u16, body: &[u8]) -> Vec<u8> {
    let header = Header {
        msg_id,
        version: None,
        phone: TERMINAL.to_owned(),
        serial,
        encryption: 0,
        subpackage: None,
    };
    jt808::frame::encode(&header, body)
}

/// Sends one message and returns the platform's reply.
async fn jt808_exchange(stream: &mut TcpStream, request: &[u8]) -> jt808::Message {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the bridge answers in time")
            .unwrap();
        assert!(n > 0, "the bridge closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Framing::Frame { len } = jt808::frame::frame(&buf, 4096) {
            return jt808::frame::decode(&buf[..len]).unwrap();
        }
    }
}

/// A positioned location report at `t` (the standard's clock is GMT+8).
fn located(t: DateTime<Utc>, lat: f64, lon: f64, speed_kmh: f64) -> Location {
    Location {
        alarm: 0,
        status: jt808::location::STATUS_POSITIONED,
        lat_e6: (lat * 1e6).round() as u32,
        lon_e6: (lon * 1e6).round() as u32,
        altitude_m: 2900,
        speed_dkmh: (speed_kmh * 10.0).round() as u16,
        direction_deg: 90,
        time_gmt8: (t + chrono::Duration::hours(8)).naive_utc(),
        extras: Vec::new(),
        truncated_extra: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jt808_backlog_sent_to_the_bridge_is_the_device_track_in_caravan() {
    let app = spawn_app().await;
    app.register_via(TERMINAL, "firmware-bridge").await;
    let dir = tempfile::tempdir().unwrap();
    let (bridge, cancel) = start_bridge(&app, dir.path()).await;
    let mut terminal = TcpStream::connect(bridge.jt808.unwrap()).await.unwrap();

    let registered = jt808_exchange(&mut terminal, &jt808_message(msg::REGISTER, 1, &[])).await;
    assert_eq!(registered.header.msg_id, msg::REGISTER_RESPONSE);
    let (result, code) = registered.body.split_at(3);
    assert_eq!(result, [0, 1, 0], "serial 1, success");
    let auth = jt808_exchange(&mut terminal, &jt808_message(msg::AUTHENTICATE, 2, code)).await;
    assert_eq!(auth.body, [0, 2, 0x01, 0x02, 0], "authenticated");

    let fixes = [
        (seconds_ago(180), 39.70, 73.80, 42.5),
        (seconds_ago(120), 39.72, 73.70, 51.0),
        (seconds_ago(60), 39.73, 73.60, 38.7),
    ];
    let batch = Batch {
        kind: 1,
        items: fixes
            .iter()
            .map(|&(t, lat, lon, speed)| located(t, lat, lon, speed))
            .collect(),
    };
    let uploaded = jt808_exchange(
        &mut terminal,
        &jt808_message(msg::BATCH_LOCATION, 3, &batch.encode()),
    )
    .await;
    assert_eq!(uploaded.body, [0, 3, 0x07, 0x04, 0], "the batch is taken");

    let path = format!("/api/v1/devices/{TERMINAL}/track");
    let track = eventually("the backlog is the track", || async {
        let (status, track) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{track}");
        (track["properties"]["fixes"] == fixes.len()).then_some(track)
    })
    .await;
    let points: Vec<_> = track["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["kind"] == "fix")
        .collect();
    assert_eq!(points.len(), fixes.len());
    for (point, (t, lat, lon, speed)) in points.iter().zip(fixes) {
        assert_eq!(
            point["geometry"]["coordinates"],
            serde_json::json!([lon, lat])
        );
        assert_eq!(point["properties"]["speed_kmh"], speed);
        let reported: DateTime<Utc> = point["properties"]["t"].as_str().unwrap().parse().unwrap();
        assert_eq!(reported, t);
    }

    cancel.cancel();
    bridge.stopped().await;
}
