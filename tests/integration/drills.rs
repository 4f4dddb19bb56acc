//! At-least-once drills: devices publish QoS 1 positions while Caravan is stopped (SIGTERM)
//! or killed (SIGKILL) mid-stream and started again; the devices reconnect at once and resend
//! what has no PUBACK. Afterwards every acknowledged `(device, seq)` must be in the store
//! exactly once. Each drill runs on the default setup (the devices talk to Caravan's own
//! endpoint, whose PUBACK follows the commit) and behind a real Mosquitto with
//! `deploy/mosquitto`'s configuration (the broker acknowledges the devices and keeps the
//! messages for Caravan's persistent session while Caravan is down).
//!
//! Slow (about a minute each), so ignored by default; `.ci/run` runs them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use caravan::auth::account::{self, AccountKind};
use caravan::device::Device;
use caravan::store::{self, NewAccount, StoreWriter, Write};
use caravan::telemetry::DeviceId;
use rumqttc::{Connect, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::mosquitto_shipped::{service_line, start_broker};
use crate::server::{free_port, Server};

const TRIALS: usize = 10;
const DEVICES: usize = 10;
/// Each device's rate: 10 devices × 50/s = 500 fixes/s, as in the drills of the issue.
const PER_DEVICE_INTERVAL: Duration = Duration::from_millis(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run by .ci/run (cargo test -- --ignored drill_)"]
async fn drill_sigterm_mid_stream_loses_nothing_acknowledged() {
    drill("TERM", Setup::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run by .ci/run (cargo test -- --ignored drill_)"]
async fn drill_sigterm_behind_mosquitto_loses_nothing_acknowledged() {
    drill("TERM", Setup::Mosquitto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run by .ci/run (cargo test -- --ignored drill_)"]
async fn drill_kill_mid_stream_loses_nothing_acknowledged() {
    drill("KILL", Setup::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run by .ci/run (cargo test -- --ignored drill_)"]
async fn drill_kill_behind_mosquitto_loses_nothing_acknowledged() {
    drill("KILL", Setup::Mosquitto).await;
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// Devices connect to Caravan's own endpoint.
    Embedded,
    /// Devices connect to Mosquitto (the shipped configuration, persistence on), which Caravan
    /// reads with its reserved ingest account.
    Mosquitto,
}

async fn drill(signal: &str, setup: Setup) {
    let mut acknowledged_total = 0;
    for trial in 0..TRIALS {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = register(dir.path());
        let (mqtt, http) = (free_port(), free_port());
        let (broker, ingest) = match setup {
            Setup::Embedded => (None, None),
            Setup::Mosquitto => {
                let (line, secret) = service_line("caravan-ingest");
                let mut lines = passwd_lines(dir.path());
                lines.push(line);
                let Some(broker) = start_broker(&lines) else {
                    return;
                };
                let ingest = Ingest {
                    url: format!("mqtt://127.0.0.1:{}", broker.plain),
                    secret,
                };
                (Some(broker), Some(ingest))
            }
        };
        // Where the devices connect.
        let device_port = broker.as_ref().map_or(mqtt, |b| b.plain);
        let mut server = start(dir.path(), mqtt, http, ingest.as_ref()).await;

        let acked = Arc::new(Mutex::new(HashMap::<String, HashSet<u64>>::new()));
        let stop_sending = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut devices = Vec::new();
        for (id, secret) in &secrets {
            let device = SimDevice {
                id: id.clone(),
                secret: secret.clone(),
                addr: SocketAddr::from(([127, 0, 0, 1], device_port)),
                acked: acked.clone(),
                stop_sending: stop_sending.clone(),
            };
            devices.push(tokio::spawn(device.run()));
        }
        // The fault at a different moment in each trial.
        let fault_at = Duration::from_millis(700 + (trial as u64 * 137) % 900);
        tokio::time::sleep(fault_at).await;
        server.signal(signal);
        server.wait_exit(Duration::from_secs(10));
        server = start(dir.path(), mqtt, http, ingest.as_ref()).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        stop_sending.store(true, std::sync::atomic::Ordering::Relaxed);
        for device in devices {
            let all_acked = tokio::time::timeout(Duration::from_secs(30), device)
                .await
                .expect("every device has its PUBACKs within 30 s")
                .expect("the device task");
            assert!(all_acked, "trial {trial}: a device gave up");
        }
        let acked = acked.lock().expect("acks").clone();
        if setup == Setup::Mosquitto {
            // The broker acknowledged the devices; Caravan drains its session at its own pace.
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !all_stored(&acked, &stored_seqs(dir.path())) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        server.signal("TERM");
        server.wait_exit(Duration::from_secs(10));
        drop(broker);

        let stored = stored_seqs(dir.path());
        for (device, seqs) in acked.iter() {
            for seq in seqs {
                let count = stored.get(&(device.clone(), *seq)).copied().unwrap_or(0);
                assert_eq!(
                    count, 1,
                    "trial {trial} ({signal}, {setup:?}): {device} seq {seq} acknowledged, stored {count} times"
                );
            }
            acknowledged_total += seqs.len();
        }
        assert!(
            stored.values().all(|n| *n == 1),
            "trial {trial}: something is stored twice"
        );
    }
    eprintln!(
        "{signal} ({setup:?}): {TRIALS} trials, {acknowledged_total} acknowledged, 0 lost, 0 twice"
    );
    assert!(
        acknowledged_total > TRIALS * 500,
        "the drills carried traffic"
    );
}

/// Registers the devices and their MQTT accounts straight into the store.
fn register(data_dir: &Path) -> Vec<(String, String)> {
    let settings = crate::helpers::test_settings(data_dir);
    let (mut writer, _) =
        store::open_from(&settings.store, settings.dead_letters.policy()).expect("store");
    let mut writes = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..DEVICES {
        let id = format!("drill-{n}");
        let issued = account::issue(AccountKind::Device).expect("random");
        let now = chrono::Utc::now();
        writes.push(Write::Device(Device {
            device_id: DeviceId::parse(&id).expect("id"),
            carrier: "drill".into(),
            plate: None,
            registered_at: now,
        }));
        writes.push(Write::Account(NewAccount {
            username: id.clone(),
            kind: AccountKind::Device,
            hash: issued.hash,
            gateway: None,
            created_at: now,
        }));
        secrets.push((id, issued.secret));
    }
    writer.commit(&writes).expect("registered");
    secrets
}

/// The drill devices' lines for Mosquitto's password file, as `caravan device
/// mosquitto-passwd` exports them.
fn passwd_lines(data_dir: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("--data-dir")
        .arg(data_dir)
        .envs(crate::test_store::env_for(data_dir))
        .args(["device", "mosquitto-passwd"])
        .output()
        .expect("caravan runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), DEVICES, "{lines:?}");
    lines
}

fn all_stored(
    acked: &HashMap<String, HashSet<u64>>,
    stored: &BTreeMap<(String, u64), usize>,
) -> bool {
    acked.iter().all(|(device, seqs)| {
        seqs.iter()
            .all(|seq| stored.contains_key(&(device.clone(), *seq)))
    })
}

/// `(device, seq)` → how many times it is stored (the indexed table and the tail).
fn stored_seqs(data_dir: &Path) -> BTreeMap<(String, u64), usize> {
    // PostgreSQL's store has no unindexed tail.
    let on_postgres = crate::test_store::with_postgres(data_dir, |client| {
        client
            .query(
                "SELECT device_id, seq, COUNT(*) FROM reports GROUP BY device_id, seq",
                &[],
            )
            .expect("query")
            .iter()
            .map(|r| {
                let (device, seq, n): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
                ((device, seq as u64), n as usize)
            })
            .collect()
    });
    if let Some(stored) = on_postgres {
        return stored;
    }
    let conn = rusqlite::Connection::open(data_dir.join("caravan.sqlite")).expect("opens");
    let mut stmt = conn
        .prepare(
            "SELECT device_id, seq, COUNT(*) FROM (
                 SELECT device_id, seq FROM reports UNION ALL SELECT device_id, seq FROM reports_recent
             ) GROUP BY device_id, seq",
        )
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64),
                r.get::<_, i64>(2)? as usize,
            ))
        })
        .expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

/// Caravan's way into Mosquitto.
struct Ingest {
    url: String,
    secret: String,
}

/// Starts Caravan on `mqtt` and `http`, reading the devices through `ingest` if given, and
/// waits until it is healthy.
async fn start(data_dir: &Path, mqtt: u16, http: u16, ingest: Option<&Ingest>) -> Server {
    let mut command = Server::command(http, data_dir);
    if let Some(ingest) = ingest {
        command
            .env("CARAVAN__MQTT__URL", &ingest.url)
            .env("CARAVAN__MQTT__USERNAME", "caravan-ingest")
            .env("CARAVAN__MQTT__PASSWORD", &ingest.secret);
    }
    command
        .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
        .envs(crate::test_store::env_for(data_dir))
        .env("RUST_LOG", "warn");
    let server = Server::spawn("caravan", command, http, None);
    assert!(
        server.wait_healthy(Duration::from_secs(90)).await,
        "caravan did not become healthy within 90 s"
    );
    server
}

/// A device as the wire contract asks: QoS 1, a persistent session, and every message
/// without a PUBACK sent again (same packet id, DUP) after each reconnect.
pub(crate) struct SimDevice {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) addr: SocketAddr,
    pub(crate) acked: Arc<Mutex<HashMap<String, HashSet<u64>>>>,
    pub(crate) stop_sending: Arc<std::sync::atomic::AtomicBool>,
}

impl SimDevice {
    /// Runs until it has stopped sending and every message is acknowledged; false if that
    /// did not happen within a minute.
    pub(crate) async fn run(self) -> bool {
        let mut unacked: BTreeMap<u16, (u64, Publish)> = BTreeMap::new();
        let mut next_seq = 1u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let Ok(mut stream) = self.connect().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            // Resend, in order, what the last connection left without a PUBACK.
            let mut out = BytesMut::new();
            for (_, publish) in unacked.values_mut() {
                publish.dup = true;
                let _ = Packet::Publish(publish.clone()).write(&mut out, 1 << 20);
            }
            if stream.write_all(&out).await.is_err() {
                continue;
            }
            let mut buf = BytesMut::new();
            let mut tick = tokio::time::interval(PER_DEVICE_INTERVAL);
            loop {
                let sending = !self.stop_sending.load(std::sync::atomic::Ordering::Relaxed);
                if !sending && unacked.is_empty() {
                    return true;
                }
                tokio::select! {
                    _ = tick.tick(), if sending && unacked.len() < 100 => {
                        let seq = next_seq;
                        next_seq += 1;
                        let pkid = (seq % 65_000) as u16 + 1;
                        let t = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                        let payload = format!(
                            r#"{{"seq": {seq}, "t": "{t}", "lat": 42.8, "lon": 74.6}}"#
                        );
                        let mut publish = Publish::new(
                            format!("caravan/v1/dev/{}/pos", self.id),
                            QoS::AtLeastOnce,
                            payload.into_bytes(),
                        );
                        publish.pkid = pkid;
                        let mut out = BytesMut::new();
                        let _ = Packet::Publish(publish.clone()).write(&mut out, 1 << 20);
                        unacked.insert(pkid, (seq, publish));
                        if stream.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                    read = stream.read_buf(&mut buf) => {
                        if !matches!(read, Ok(n) if n > 0) {
                            break;
                        }
                        while let Ok(packet) = Packet::read(&mut buf, 1 << 20) {
                            if let Packet::PubAck(ack) = packet {
                                if let Some((seq, _)) = unacked.remove(&ack.pkid) {
                                    self.acked
                                        .lock()
                                        .expect("acks")
                                        .entry(self.id.clone())
                                        .or_default()
                                        .insert(seq);
                                }
                            }
                        }
                    }
                    () = tokio::time::sleep(Duration::from_millis(200)), if !sending => {}
                }
            }
        }
        false
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let mut connect = Connect::new(self.id.clone());
        connect.clean_session = false;
        connect.keep_alive = 30;
        connect.set_login(self.id.clone(), self.secret.clone());
        let mut out = BytesMut::new();
        let _ = Packet::Connect(connect).write(&mut out, 1 << 20);
        stream.write_all(&out).await?;
        let mut buf = BytesMut::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Packet::read(&mut buf, 1 << 20) {
                Ok(Packet::ConnAck(ack)) if ack.code == rumqttc::ConnectReturnCode::Success => {
                    return Ok(stream)
                }
                Ok(_) => return Err(std::io::Error::other("refused")),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            let read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return Err(std::io::Error::other("no CONNACK"));
            }
        }
    }
}
