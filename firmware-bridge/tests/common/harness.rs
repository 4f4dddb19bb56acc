//! A real broker (rumqttd), a subscriber, and a bridge on free ports.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firmware_bridge::queue::QueueLimits;
use firmware_bridge::registry::Registry;
use firmware_bridge::settings::{Limits, MqttSettings, Settings};
use firmware_bridge::Bridge;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const REGISTRY: &str = r#"
    [models.FMB920]
    inputs = [{ din = 2, high = "closed", low = "opened" }]
    [[devices]]
    device_id = "356307042441013"
    model = "FMB920"
    seal_id = "KG-ES-000123"
    [[devices]]
    device_id = "13912345678"
    seal_id = "KG-ES-000200"
    [[devices]]
    device_id = "7520150926"
    seal_id = "LOCK-7520150926"
"#;

/// A port that was free a moment ago (rumqttd cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts rumqttd on `port` in a thread of its own (its `start` blocks forever).
pub fn start_broker(port: u16) {
    run_broker(broker_config(port));
}

/// Who logged in to a broker started by [`start_broker_with_accounts`]: `(client id,
/// username)` of every accepted login.
pub type Logins = Arc<Mutex<Vec<(String, String)>>>;

/// A broker that accepts only these `(username, password)` accounts, each with the client
/// id equal to its username (as Caravan's broker binds them).
pub fn start_broker_with_accounts(port: u16, accounts: &[(&str, &str)]) -> Logins {
    let accounts: HashMap<String, String> = accounts
        .iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    let logins = Logins::default();
    let mut config = broker_config(port);
    let recorded = logins.clone();
    if let Some(server) = config.v4.as_mut().and_then(|v4| v4.get_mut("1")) {
        server.set_auth_handler(move |client_id: String, user: String, password: String| {
            let ok = accounts.get(&user) == Some(&password) && client_id == user;
            if ok {
                recorded.lock().unwrap().push((client_id, user));
            }
            async move { ok }
        });
    }
    run_broker(config);
    logins
}

fn run_broker(config: rumqttd::Config) {
    std::thread::spawn(move || {
        let _ = rumqttd::Broker::new(config).start();
    });
}

fn broker_config(port: u16) -> rumqttd::Config {
    let config = format!(
        r#"
        id = 0
        [router]
        max_connections = 100
        max_outgoing_packet_count = 200
        max_segment_size = 10485760
        max_segment_count = 10
        [v4.1]
        name = "v4-1"
        listen = "127.0.0.1:{port}"
        next_connection_delay_ms = 1
        [v4.1.connections]
        connection_timeout_ms = 5000
        max_payload_size = 262144
        max_inflight_count = 100
        dynamic_filters = true
        "#
    );
    toml::from_str(&config).unwrap()
}

/// Subscribes to every contract topic; returns `(topic, payload JSON)` as they arrive.
pub async fn subscribe(port: u16) -> mpsc::UnboundedReceiver<(String, serde_json::Value)> {
    subscribe_as(port, None).await
}

/// As [`subscribe`], logging in with `(username, password)`; the client id is the username.
pub async fn subscribe_as(
    port: u16,
    account: Option<(&str, &str)>,
) -> mpsc::UnboundedReceiver<(String, serde_json::Value)> {
    let client_id = match account {
        Some((user, _)) => user.to_owned(),
        None => format!("test-sub-{port}"),
    };
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    if let Some((user, password)) = account {
        options.set_credentials(user, password);
    }
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .subscribe("caravan/v1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = serde_json::from_slice(&p.payload).unwrap();
                    let _ = tx.send((p.topic, payload));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .unwrap()
        .unwrap();
    rx
}

pub fn settings(mqtt_port: u16, data_dir: &Path) -> Settings {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Settings {
        teltonika: Some(any),
        jt808: Some(any),
        jt701: Some(any),
        metrics: Some(any),
        mqtt: MqttSettings::from_url(
            &format!("mqtt://127.0.0.1:{mqtt_port}"),
            &format!("bridge-{mqtt_port}"),
        )
        .unwrap(),
        registry: Arc::new(Registry::from_toml(REGISTRY).unwrap()),
        data_dir: data_dir.to_path_buf(),
        limits: Limits {
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        queue: QueueLimits::default(),
    }
}

pub async fn start_bridge(settings: Settings) -> (Bridge, CancellationToken) {
    let cancel = CancellationToken::new();
    let bridge = firmware_bridge::run(settings, cancel.clone())
        .await
        .unwrap();
    (bridge, cancel)
}

/// The next `n` messages, or a panic naming what did arrive.
pub async fn next_messages(
    rx: &mut mpsc::UnboundedReceiver<(String, serde_json::Value)>,
    n: usize,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
            Ok(Some((topic, payload))) => {
                out.push(serde_json::json!({ "topic": topic, "payload": payload }))
            }
            _ => panic!("expected {n} messages, got {out:#?}"),
        }
    }
    out
}

/// Nothing arrives on `rx` for `quiet`.
pub async fn assert_nothing_published(
    rx: &mut mpsc::UnboundedReceiver<(String, serde_json::Value)>,
    quiet: Duration,
) {
    if let Ok(Some(got)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("expected nothing published, got {got:?}");
    }
}
