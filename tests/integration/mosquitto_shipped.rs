//! The rogue-device drills against a real Mosquitto running exactly `deploy/mosquitto`'s
//! configuration (only ports and file paths moved into a temporary directory), with the
//! password file exported from Caravan's own store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use caravan::auth::account::{self, Account, AccountKind};
use serde_json::Value;

use crate::helpers::{eventually, fix, minutes_ago, spawn_app_in, tool, topic, Mqtt, TestApp};

pub(crate) struct Broker {
    child: Child,
    pub(crate) plain: u16,
    tls: u16,
    cert: PathBuf,
    passwd: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/mosquitto")
        .join(name)
}

/// Starts Mosquitto from the shipped files. Returns `None` (or fails under CI) without it.
pub(crate) fn start_broker(passwd_lines: &[String]) -> Option<Broker> {
    let (mosquitto, openssl) = (tool("mosquitto")?, tool("openssl")?);
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, tls) = (free_port(), free_port());
    let (cert, key) = (dir.path().join("broker.crt"), dir.path().join("broker.key"));
    let made = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=broker",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success());
    let config = std::fs::read_to_string(shipped("mosquitto.conf")).expect("shipped config");
    let path = |p: &Path| p.display().to_string();
    let moved = config
        .replace(
            "listener 1883 0.0.0.0",
            &format!("listener {plain} 127.0.0.1"),
        )
        .replace(
            "listener 8883 0.0.0.0",
            &format!("listener {tls} 127.0.0.1"),
        )
        .replace("/etc/mosquitto/passwd", &path(&dir.path().join("passwd")))
        .replace("/etc/mosquitto/acl", &path(&shipped("acl")))
        .replace("/etc/mosquitto/certs/broker.crt", &path(&cert))
        .replace("/etc/mosquitto/certs/broker.key", &path(&key))
        .replace(
            "persistence_location /var/lib/mosquitto/",
            &format!("persistence_location {}/", path(dir.path())),
        );
    assert!(
        moved.contains(&format!("listener {plain} "))
            && moved.contains(&format!("listener {tls} "))
    );
    // As root, Mosquitto would switch to the `mosquitto` user, who cannot read the temporary
    // directory: keep the current user.
    let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
        .unwrap_or_default();
    let moved = format!("{moved}\nuser {}\n", user.trim());
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, moved).expect("config written");
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, passwd_lines.join("\n") + "\n").expect("passwd written");
    let mut child = Command::new(mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", plain)).is_ok() {
            return Some(Broker {
                child,
                plain,
                tls,
                cert,
                passwd,
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("mosquitto did not listen on {plain}");
}

/// A password-file line for a service account, hashed the way Caravan hashes.
pub(crate) fn service_line(username: &str) -> (String, String) {
    let issued = account::issue(AccountKind::Gateway).expect("random");
    let account = Account {
        username: username.to_owned(),
        kind: AccountKind::Gateway,
        hash: Some(issued.hash),
        gateway: None,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    (
        account::mosquitto_passwd_line(&account).expect("a line"),
        issued.secret,
    )
}

/// The device accounts of `app`'s store as `caravan device mosquitto-passwd` prints them.
fn exported(app: &TestApp) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .envs(crate::test_store::env_for(&app.data_dir))
        .args(["device", "mosquitto-passwd"])
        .output()
        .expect("caravan runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shipped_mosquitto_no_device_can_pose_as_another_or_as_caravan() {
    // Caravan first on its embedded endpoint, only to issue the devices' credentials.
    let issuing = tempfile::tempdir().expect("tempdir");
    let issuer = spawn_app_in(issuing.path(), |_| {}).await;
    issuer.register("dev-a").await;
    issuer.register("dev-b").await;
    let (a_secret, b_secret) = (
        issuer.credential("dev-a").await,
        issuer.credential("dev-b").await,
    );
    let mut lines = exported(&issuer);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (ingest_line, ingest_secret) = service_line("caravan-ingest");
    lines.push(ingest_line);
    let Some(broker) = start_broker(&lines) else {
        return;
    };
    assert!(std::fs::read_to_string(&broker.passwd).is_ok_and(|p| p.contains("dev-a:$6$")));
    let data_dir = issuer.data_dir.clone();
    issuer.shutdown().await;

    // The same store, now behind the shipped Mosquitto.
    let url = format!("mqtt://127.0.0.1:{}", broker.plain);
    let app = spawn_app_in(&data_dir, |s| {
        s.mqtt.url = Some(url.clone());
        s.mqtt.username = Some("caravan-ingest".into());
        s.mqtt.password = Some(caravan::settings::Secret(ingest_secret.clone()));
    })
    .await;
    let port = broker.plain;
    let a = Mqtt::connect_as("127.0.0.1", port, "dev-a", Some(("dev-a", &a_secret))).await;
    let b = Mqtt::connect_as("127.0.0.1", port, "dev-b", Some(("dev-b", &b_secret))).await;
    b.publish_json(&topic("dev-b", "pos"), &fix(1, 3, 42.87, 74.6))
        .await;
    eventually("B's own fix arrives through Mosquitto", || async {
        (app.device("dev-b").await["position"]["seq"] == 1).then_some(())
    })
    .await;

    // A forges B's position and seal; A takes Caravan's client id, then B's.
    a.publish_json(&topic("dev-b", "pos"), &fix(2, 2, 38.56, 68.77))
        .await;
    let seal =
        serde_json::json!({"seq": 3, "t": minutes_ago(2), "seal_id": "S", "event": "rope_cut"});
    a.publish_json(&topic("dev-b", "seal"), &seal).await;
    let _posing_as_ingest = Mqtt::connect_as(
        "127.0.0.1",
        port,
        "caravan-ingest",
        Some(("dev-a", &a_secret)),
    )
    .await;
    let mut posing_as_b = rumqttc::MqttOptions::new("dev-b", "127.0.0.1", port);
    posing_as_b.set_credentials("dev-a", a_secret.clone());
    posing_as_b.set_last_will(rumqttc::LastWill::new(
        topic("dev-b", "conn"),
        "offline",
        rumqttc::QoS::AtLeastOnce,
        true,
    ));
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(posing_as_b, 10);
    // Connected or refused, it then vanishes without a DISCONNECT, as a dropped device does:
    // the broker must not publish that will.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    drop(eventloop);

    // Caravan is still connected and B is still B: a later fix of B's arrives, nothing else.
    b.publish_json(&topic("dev-b", "pos"), &fix(4, 1, 42.88, 74.61))
        .await;
    eventually(
        "B's next fix arrives: neither Caravan nor B was cut off",
        || async { (app.device("dev-b").await["position"]["seq"] == 4).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_now = app.device("dev-b").await;
    assert_eq!(b_now["seal"], Value::Null, "no forged seal event: {b_now}");
    assert_ne!(b_now["conn"]["value"], "offline", "no forged will: {b_now}");
    let (_, track) = app.get("/api/v1/devices/dev-b/track").await;
    assert_eq!(
        track["properties"]["fixes"], 2,
        "only B's own two fixes: {track}"
    );

    // A reads nothing of B's.
    let mut snoop = Mqtt::connect_as("127.0.0.1", port, "dev-a", Some(("dev-a", &a_secret))).await;
    snoop.subscribe("caravan/v1/#").await;
    b.publish_json(&topic("dev-b", "pos"), &fix(5, 1, 42.88, 74.62))
        .await;
    let peeked = tokio::time::timeout(Duration::from_secs(1), snoop.next_message()).await;
    assert!(peeked.is_err(), "A read a message it may not read");

    // The TLS listener, with a real client.
    if let Some(mosquitto_pub) = tool("mosquitto_pub") {
        let payload = fix(6, 1, 42.88, 74.63).to_string();
        let sent = tokio::process::Command::new(mosquitto_pub)
            .args(["-h", "127.0.0.1", "-p", &broker.tls.to_string(), "-q", "1"])
            .arg("--cafile")
            .arg(&broker.cert)
            .args([
                "-u",
                "dev-b",
                "-P",
                &b_secret,
                "-t",
                &topic("dev-b", "pos"),
                "-m",
                &payload,
            ])
            .output()
            .await
            .expect("mosquitto_pub runs");
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        eventually(
            "the fix sent over Mosquitto's TLS listener arrives",
            || async { (app.device("dev-b").await["position"]["seq"] == 6).then_some(()) },
        )
        .await;
    }
    app.shutdown().await;
}
