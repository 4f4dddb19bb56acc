//! `spawn_app()` and the tools tests use to act as a device and as an API client.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caravan::app::App;
use caravan::auth::Role;
use caravan::settings::Settings;
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

pub struct TestApp {
    app: Option<App>,
    pub base: String,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    mqtt_tls: Option<std::net::SocketAddr>,
    pub data_dir: PathBuf,
    /// The settings the app started with: what a test opens the same store with.
    pub settings: Settings,
    /// Keeps the temporary data directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    /// A coordinator's token: the first-start token, or one made for the test.
    pub token: String,
    /// MQTT secrets of the devices this test registered or rotated, by device id.
    credentials: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Starts the real server: embedded broker, HTTP on port 0, a fresh data directory.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let mut app = spawn_app_in(&path, |_| {}).await;
    app._dir = Some(dir);
    app
}

/// Starts the real server on `data_dir` (and, on PostgreSQL, that directory's database), with
/// `adjust` applied to the test settings.
pub async fn spawn_app_in(data_dir: &Path, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(data_dir);
    adjust(&mut settings);
    let app = App::start(settings.clone()).await.expect("the app starts");
    let base = format!("http://{}", app.http);
    let token = match &app.bootstrap_token {
        Some(token) => token.clone(),
        None => caravan::tokens::create_in(&settings, "test coordinator", Role::Coordinator)
            .expect("a token"),
    };
    let test_app = TestApp {
        base,
        mqtt_host: app.mqtt.host.clone(),
        mqtt_port: app.mqtt.port,
        mqtt_tls: app.mqtt_tls,
        data_dir: data_dir.to_owned(),
        settings,
        app: Some(app),
        _dir: None,
        http: reqwest::Client::new(),
        token,
        credentials: std::sync::Mutex::default(),
    };
    test_app.wait_until_healthy().await;
    test_app
}

/// A test's settings on `data_dir`: ports 0, and the store the suite runs on
/// ([`crate::test_store`]).
pub fn test_settings(data_dir: &Path) -> Settings {
    let mut settings = Settings::default();
    settings.http.listen = "127.0.0.1:0".parse().expect("addr");
    settings.mqtt.listen = "127.0.0.1:0".parse().expect("addr");
    settings.store.data_dir = data_dir.to_owned();
    settings.store.url = crate::test_store::url_for(data_dir);
    settings
}

impl TestApp {
    /// Opens the app's store beside it, as a CLI command would.
    pub fn open_store(&self) -> caravan::store::Opened {
        caravan::store::open_from(&self.settings.store, self.settings.dead_letters.policy())
            .expect("the store opens")
    }

    /// The port of the endpoint's TLS listener, when it has one.
    pub fn mqtt_tls_port(&self) -> Option<u16> {
        self.mqtt_tls.map(|a| a.port())
    }

    /// Keeps `dir` (the app's data directory) alive as long as the app.
    pub fn keep_dir(mut self, dir: tempfile::TempDir) -> Self {
        self._dir = Some(dir);
        self
    }

    async fn wait_until_healthy(&self) {
        eventually("the app reports healthy", || async {
            let (status, _) = self.get("/healthz").await;
            (status == StatusCode::OK).then_some(())
        })
        .await;
    }

    pub async fn shutdown(mut self) -> Option<tempfile::TempDir> {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        self._dir.take()
    }

    /// A token for another principal, e.g. `customs:KG`.
    pub fn token_for(&self, role: &str) -> String {
        let role: Role = role.parse().expect("a valid role");
        caravan::tokens::create_in(&self.settings, "test", role).expect("a token")
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(&self.token, path).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_as(&self.token, path, body).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one sample line of /metrics, e.g. `caravan_duplicates_total`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
    }

    /// Registers a device (carrier `kg-trans`) and keeps its MQTT secret for [`Self::mqtt`].
    pub async fn register(&self, device_id: &str) {
        let body = serde_json::json!({"device_id": device_id, "carrier": "kg-trans", "plate": "01KG123ABC"});
        let (status, body) = self.post("/api/v1/devices", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.keep_credential(device_id, &body["credential"]);
    }

    /// Creates (or renews) a gateway account; returns its secret.
    pub async fn gateway(&self, name: &str) -> String {
        let (status, body) = self
            .post("/api/v1/gateways", &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["password"].as_str().unwrap_or_default().to_owned()
    }

    /// Registers a device (carrier `kg-trans`) that `gateway` may publish for.
    pub async fn register_via(&self, device_id: &str, gateway: &str) {
        let body =
            serde_json::json!({"device_id": device_id, "carrier": "kg-trans", "gateway": gateway});
        let (status, body) = self.post("/api/v1/devices", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.keep_credential(device_id, &body["credential"]);
    }

    /// Keeps a credential the API showed (`{"username", "password"}`).
    pub fn keep_credential(&self, device_id: &str, credential: &Value) {
        let secret = credential["password"]
            .as_str()
            .unwrap_or_else(|| panic!("no credential in {credential}"));
        self.credentials
            .lock()
            .expect("credentials")
            .insert(device_id.to_owned(), secret.to_owned());
    }

    /// The device's MQTT secret: the one kept at registration, or a new one (rotation) for a
    /// device registered some other way.
    pub async fn credential(&self, device_id: &str) -> String {
        if let Some(secret) = self.credentials.lock().expect("credentials").get(device_id) {
            return secret.clone();
        }
        let (status, body) = self
            .post(
                &format!("/api/v1/devices/{device_id}/credential"),
                &Value::Null,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "a credential for {device_id}: {body}"
        );
        self.keep_credential(device_id, &body);
        body["password"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn device(&self, device_id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/devices/{device_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// A registered device connected with its own credential (client id = device id).
    pub async fn mqtt(&self, device_id: &str) -> Mqtt {
        let secret = self.credential(device_id).await;
        Mqtt::connect_as(
            &self.mqtt_host,
            self.mqtt_port,
            device_id,
            Some((device_id, &secret)),
        )
        .await
    }
}

/// A plain MQTT client: a device publishing, or an observer subscribing.
pub struct Mqtt {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Mqtt {
    /// Connects without credentials (to an external broker that allows it).
    pub async fn connect(host: &str, port: u16, client_id: &str) -> Mqtt {
        Self::connect_as(host, port, client_id, None).await
    }

    /// Connects with a username and password, and waits for the broker to accept.
    pub async fn connect_as(
        host: &str,
        port: u16,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> Mqtt {
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        // A persistent session: after a reconnect, what has no PUBACK is sent again.
        options.set_clean_session(false);
        if let Some((username, password)) = login {
            options.set_credentials(username, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let (tx, messages) = mpsc::unbounded_channel();
        let (connected_tx, mut connected) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = connected_tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic, p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    // The client was dropped: close the connection rather than reconnect, so
                    // that a later connection of the same device is its only session.
                    Err(rumqttc::ConnectionError::RequestsDone) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), connected.recv())
            .await
            .expect("the MQTT client connects");
        Mqtt { client, messages }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
    }

    pub async fn publish_json(&self, topic: &str, payload: &Value) {
        self.publish(topic, payload.to_string()).await;
    }

    pub async fn subscribe(&self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        // Give the broker a moment to install the subscription before anything is published.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// The next message received, within 10 s.
    pub async fn next_message(&mut self) -> (String, Value) {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), self.messages.recv())
            .await
            .expect("a message within 10 s")
            .expect("the client is alive");
        let value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        (topic, value)
    }
}

/// Polls `check` until it yields a value, for up to 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An RFC 3339 time `minutes_ago` before now, whole seconds.
pub fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn fix(seq: u64, minutes_ago_: i64, lat: f64, lon: f64) -> Value {
    serde_json::json!({"seq": seq, "t": minutes_ago(minutes_ago_), "lat": lat, "lon": lon, "speed_kmh": 42.0})
}

/// The topic of a device's message kind.
pub fn topic(device_id: &str, kind: &str) -> String {
    format!("caravan/v1/dev/{device_id}/{kind}")
}

/// The path of a system tool the test needs, e.g. `mosquitto_pub`. Without it the test says
/// so and is skipped locally; under CI (`CI=true`) that is a failure, since `.ci/run` installs
/// every tool.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {name} is not installed: .ci/run must install it"
        );
        eprintln!("{name} is not installed; this test does not run.");
    }
    found
}
