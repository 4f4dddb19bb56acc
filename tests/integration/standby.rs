//! Active / standby: two `caravan serve` processes on one PostgreSQL database and one
//! Mosquitto (the shipped configuration, persistence on), both reading the broker as the same
//! `caravan-ingest` session. Exactly one is active; the other serves reads and waits for the
//! lease. The drills kill the active one (`kill -9`) or freeze it (`SIGSTOP`) while devices
//! stream QoS 1 positions, and expect the standby active within 10 s, its API answering all
//! along, every position the broker acknowledged stored exactly once, and a frozen former
//! leader never writing again.
//!
//! They need `CARAVAN_TEST_POSTGRES_URL` (a URL allowed to create databases) and `mosquitto`;
//! without them they say so and pass, except under `CI=true`, where they fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caravan::auth::account::{self, Account, AccountKind};
use caravan::device::Device;
use caravan::store::{StoreUrl, StoreWriter, Write};
use caravan::telemetry::DeviceId;
use serde_json::Value;

use crate::drills::SimDevice;
use crate::mosquitto_shipped::{service_line, start_broker, Broker};
use crate::server::{free_port, Server};

const DEVICES: usize = 5;
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);

/// The admin URL of the test server, or `None` (a failure under CI) without one.
fn admin_url() -> Option<String> {
    match std::env::var("CARAVAN_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but CARAVAN_TEST_POSTGRES_URL is not set: .ci/run must start PostgreSQL"
            );
            eprintln!("CARAVAN_TEST_POSTGRES_URL is not set; the standby drills do not run.");
            None
        }
    }
}

/// Runs blocking PostgreSQL client code off the test's runtime (the client runs one of its
/// own and must not be nested).
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A database of its own, dropped at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create(admin: &str) -> Database {
        let name = format!(
            "caravan_standby_p{}_{:08x}",
            std::process::id(),
            fastrand::u32(..)
        );
        let mut url = url::Url::parse(admin).expect("the admin URL");
        url.set_path(&name);
        let (a, n) = (admin.to_owned(), name.clone());
        off_runtime(move || {
            let mut client = postgres::Client::connect(&a, postgres::NoTls).expect("PostgreSQL");
            client
                .batch_execute(&format!("CREATE DATABASE {n} TEMPLATE template0"))
                .expect("a database");
        });
        Database {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    /// `(device, seq)` → how many times it is stored.
    fn stored(&self) -> BTreeMap<(String, u64), usize> {
        let url = self.url.clone();
        off_runtime(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("db");
            client
                .query(
                    "SELECT device_id, seq, COUNT(*) FROM reports WHERE seq IS NOT NULL
                     GROUP BY device_id, seq",
                    &[],
                )
                .expect("reports")
                .iter()
                .map(|row| {
                    let (device, seq, n): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
                    ((device, seq as u64), n as usize)
                })
                .collect()
        })
    }

    /// The lease row: holder and epoch.
    fn lease(&self) -> (Option<String>, i64) {
        let url = self.url.clone();
        off_runtime(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("db");
            let row = client
                .query_one("SELECT holder, epoch FROM caravan_lease WHERE id = 1", &[])
                .expect("the lease row");
            (row.get(0), row.get(1))
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// One database, one Mosquitto, registered devices, and a coordinator token.
struct Site {
    db: Database,
    broker: Broker,
    ingest_secret: String,
    devices: Vec<(String, String)>,
    token: String,
    dir: tempfile::TempDir,
}

impl Site {
    /// `None` when PostgreSQL or Mosquitto is missing (outside CI).
    fn new() -> Option<Site> {
        let admin = admin_url()?;
        let db = Database::create(&admin);
        let settings = store_settings(&db.url);
        let (devices, mut lines, token) = off_runtime(move || register(&settings));
        let (line, ingest_secret) = service_line("caravan-ingest");
        lines.push(line);
        let broker = start_broker(&lines)?;
        Some(Site {
            db,
            broker,
            ingest_secret,
            devices,
            token,
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// Starts an instance with a data directory of its own (`name`), logging to a file.
    fn start(&self, name: &str) -> Instance {
        let http = free_port();
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let log = self.dir.path().join(format!("{name}.log"));
        let mut command = Server::command(http, &data);
        command
            .env("CARAVAN__STORE__URL", &self.db.url)
            .env(
                "CARAVAN__MQTT__URL",
                format!("mqtt://127.0.0.1:{}", self.broker.plain),
            )
            .env("CARAVAN__MQTT__USERNAME", "caravan-ingest")
            .env("CARAVAN__MQTT__PASSWORD", &self.ingest_secret)
            .env("RUST_LOG", "info,rumqttc=warn");
        Instance {
            server: Server::spawn(name, command, http, Some(log)),
        }
    }

    fn publishers(
        &self,
        acked: &Acked,
        stop: &Arc<AtomicBool>,
    ) -> Vec<tokio::task::JoinHandle<bool>> {
        self.devices
            .iter()
            .map(|(id, secret)| {
                let device = SimDevice {
                    id: id.clone(),
                    secret: secret.clone(),
                    addr: SocketAddr::from(([127, 0, 0, 1], self.broker.plain)),
                    acked: acked.clone(),
                    stop_sending: stop.clone(),
                };
                tokio::spawn(device.run())
            })
            .collect()
    }

    /// Waits (up to 30 s) until every acknowledged position is stored, then checks each is
    /// stored exactly once; returns how many were acknowledged.
    async fn all_stored_once(&self, acked: &Acked, instances: &[&Instance]) -> usize {
        let acked = acked.lock().expect("acks").clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stored = self.db.stored();
        while Instant::now() < deadline && !covers(&stored, &acked) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stored = self.db.stored();
        }
        let mut total = 0;
        let logs = || {
            instances
                .iter()
                .map(|i| format!("--- {}:\n{}", i.server.name, i.server.log_text()))
                .collect::<String>()
        };
        for (device, seqs) in &acked {
            for seq in seqs {
                let n = stored.get(&(device.clone(), *seq)).copied().unwrap_or(0);
                assert_eq!(
                    n,
                    1,
                    "{device} seq {seq}: acknowledged, stored {n} times\n{}",
                    logs()
                );
            }
            total += seqs.len();
        }
        assert!(
            stored.values().all(|n| *n == 1),
            "something is stored twice"
        );
        total
    }
}

type Acked = Arc<Mutex<HashMap<String, HashSet<u64>>>>;

fn covers(stored: &BTreeMap<(String, u64), usize>, acked: &HashMap<String, HashSet<u64>>) -> bool {
    acked
        .iter()
        .all(|(d, seqs)| seqs.iter().all(|s| stored.contains_key(&(d.clone(), *s))))
}

fn store_settings(url: &str) -> caravan::settings::Settings {
    let mut settings = caravan::settings::Settings::default();
    settings.store.url = Some(StoreUrl(url.to_owned()));
    settings
}

/// Registers the devices and a coordinator token straight into the store (which migrates
/// it), before any instance runs.
fn register(
    settings: &caravan::settings::Settings,
) -> (Vec<(String, String)>, Vec<String>, String) {
    let (mut writer, _) =
        caravan::store::open_from(&settings.store, settings.dead_letters.policy())
            .expect("the PostgreSQL store");
    let mut writes = Vec::new();
    let mut devices = Vec::new();
    let mut lines = Vec::new();
    for n in 0..DEVICES {
        let id = format!("standby-{n}");
        let issued = account::issue(AccountKind::Device).expect("random");
        let now = chrono::Utc::now();
        writes.push(Write::Device(Device {
            device_id: DeviceId::parse(&id).expect("id"),
            carrier: "standby".into(),
            plate: None,
            registered_at: now,
        }));
        // The broker authenticates the devices (its password file); Caravan's own accounts
        // serve only its embedded endpoint.
        lines.push(passwd_line(&id, &issued.hash));
        devices.push((id, issued.secret));
    }
    writer.commit(&writes).expect("registered");
    drop(writer);
    let token =
        caravan::tokens::create_in(settings, "standby drills", caravan::auth::Role::Coordinator)
            .expect("a token");
    (devices, lines, token)
}

fn passwd_line(id: &str, hash: &str) -> String {
    account::mosquitto_passwd_line(&Account {
        username: id.to_owned(),
        kind: AccountKind::Device,
        hash: Some(hash.to_owned()),
        gateway: None,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    })
    .expect("a passwd line")
}

/// One of the two instances.
struct Instance {
    server: Server,
}

impl Instance {
    async fn health(&self) -> Option<Value> {
        let response = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/healthz", self.server.http))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Waits until `/healthz` says `role`, and returns how long it took.
    async fn wait_role(&self, role: &str, within: Duration) -> Duration {
        self.wait_health(role, within, |health| health["role"] == role)
            .await
    }

    /// Waits until this instance consumes the broker again.
    async fn wait_intake(&self, within: Duration) -> Duration {
        self.wait_health("taking intake", within, |health| {
            health["role"] == "active"
                && health["broker"] == "connected"
                && health["tracking"] == "ok"
        })
        .await
    }

    /// Waits until `/healthz` answers as `ready` wants, and returns how long it took; fails
    /// with the instance's log, naming the wait as `what`.
    async fn wait_health(
        &self,
        what: &str,
        within: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.health().await.is_some_and(|health| ready(&health)) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{} was not {what} within {within:?}; its log:\n{}",
            self.server.name,
            self.server.log_text()
        );
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.server.http))
            .bearer_auth(token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the API answers")
    }
}

/// A first instance active at once, a second one standby: returns both.
/// Stops the publishers started by [`Site::publishers`] and waits for each to finish.
async fn stop_publishers(stop: &AtomicBool, publishers: Vec<tokio::task::JoinHandle<bool>>) {
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        let done = tokio::time::timeout(Duration::from_secs(60), publisher)
            .await
            .expect("the publishers finish")
            .expect("publisher task");
        assert!(done, "a publisher gave up");
    }
}

async fn pair(site: &Site) -> (Instance, Instance) {
    let a = site.start("a");
    a.wait_role("active", Duration::from_secs(60)).await;
    a.wait_intake(Duration::from_secs(30)).await;
    let b = site.start("b");
    b.wait_role("standby", Duration::from_secs(60)).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_serves_reads_and_refuses_writes_naming_the_active_instance() {
    let Some(site) = Site::new() else { return };
    let (a, b) = pair(&site).await;

    let health = b.health().await.expect("the standby's health");
    assert_eq!(health["role"], "standby");
    assert_eq!(health["status"], "ok", "{health}");
    let active = a.health().await.expect("the active one's health");
    assert_eq!(active["role"], "active");
    assert_eq!(active["epoch"], 1);

    let devices = b.get("/api/v1/devices", &site.token).await;
    assert_eq!(devices.status(), 200, "the standby serves reads");
    let devices: Value = devices.json().await.expect("json");
    assert!(devices.to_string().contains("standby-0"), "{devices}");

    let refused = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v1/devices", b.server.http))
        .bearer_auth(&site.token)
        .json(&serde_json::json!({"device_id": "standby-new", "carrier": "x"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("a JSON error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not the active instance"), "{body}");
    assert!(
        message.contains(&format!("http 127.0.0.1:{}", a.server.http)),
        "names the active one: {body}"
    );
}

/// One failover: the active instance is killed mid-stream. Returns (lease taken over, intake
/// resumed) after the kill, and how many positions were acknowledged.
async fn failover_once(site: &Site) -> (Duration, Duration, usize) {
    let (mut a, b) = pair(site).await;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers = site.publishers(&acked, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    a.server.signal("KILL");
    let killed = Instant::now();
    a.server.wait_exit(Duration::from_secs(5));
    // The survivor's API answers reads all along.
    let mut took_over = None;
    while killed.elapsed() < TAKEOVER_LIMIT * 2 {
        let health = b
            .health()
            .await
            .expect("the standby's API answers during the failover");
        let reads = b.get("/api/v1/devices", &site.token).await;
        assert_eq!(reads.status(), 200, "reads are served during the failover");
        if health["role"] == "active" {
            took_over = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took_over = took_over.expect("the standby took over");
    let resumed = took_over + b.wait_intake(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_publishers(&stop, publishers).await;
    let total = site.all_stored_once(&acked, &[&a, &b]).await;
    assert!(total > 100, "the drill carried traffic ({total})");
    let (holder, epoch) = site.db.lease();
    assert_eq!(epoch, 2);
    assert!(holder
        .unwrap_or_default()
        .contains(&format!("http 127.0.0.1:{}", b.server.http)));
    drop(b);
    (took_over, resumed, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_within_10_s_of_a_kill_and_stores_every_acknowledged_position_once()
{
    let Some(site) = Site::new() else { return };
    let (took_over, resumed, total) = failover_once(&site).await;
    eprintln!("failover: lease taken over {took_over:?} after kill -9, intake resumed after {resumed:?}; {total} positions acknowledged, each stored once");
    assert!(took_over <= TAKEOVER_LIMIT, "took {took_over:?}");
}

/// The failover figure of BENCHMARKS.md: ten kills, each on a fresh database and broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Not a `drill_`: ten failovers take minutes, and one failover is already asserted by the
// suite; this is the measurement, run by hand.
#[ignore = "a measurement for BENCHMARKS.md (minutes): cargo test -- --ignored failover_ten_trials"]
async fn failover_ten_trials() {
    let mut times = Vec::new();
    for trial in 0..10 {
        let Some(site) = Site::new() else { return };
        let (took_over, resumed, total) = failover_once(&site).await;
        eprintln!("trial {trial}: lease {took_over:?}, intake {resumed:?}, {total} acknowledged, 0 lost, 0 twice");
        assert!(took_over <= TAKEOVER_LIMIT);
        times.push((took_over, resumed));
    }
    let secs = |d: Duration| d.as_secs_f64();
    let lease: Vec<f64> = times.iter().map(|t| secs(t.0)).collect();
    let intake: Vec<f64> = times.iter().map(|t| secs(t.1)).collect();
    let stat = |v: &[f64]| {
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        (min, v.iter().sum::<f64>() / v.len() as f64, max)
    };
    eprintln!(
        "failover over 10 trials: lease taken over min/mean/max {:.2?} s, intake resumed {:.2?} s",
        stat(&lease),
        stat(&intake)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_that_wakes_after_a_takeover_never_commits_again_and_exits() {
    let Some(site) = Site::new() else { return };
    let (mut a, b) = pair(&site).await;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers = site.publishers(&acked, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    a.server.signal("STOP");
    let frozen = Instant::now();
    b.wait_role("active", TAKEOVER_LIMIT + Duration::from_secs(2))
        .await;
    b.wait_intake(Duration::from_secs(30)).await;
    let took_over = frozen.elapsed();
    let before = site.db.stored().len();
    a.server.signal("CONT");
    let status = a.server.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "the former leader exits with an error");
    let log = a.server.log_text();
    assert!(log.contains("Lost the lease"), "it says why:\n{log}");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let health = b.health().await.expect("the new leader answers");
    assert_eq!(health["role"], "active");
    assert_eq!(health["epoch"], 2, "the new leader keeps the lease");
    assert!(
        site.db.stored().len() >= before,
        "the new leader keeps storing"
    );
    stop_publishers(&stop, publishers).await;
    let total = site.all_stored_once(&acked, &[&a, &b]).await;
    let (holder, epoch) = site.db.lease();
    assert_eq!(epoch, 2, "nobody took the lease back");
    assert!(holder
        .unwrap_or_default()
        .contains(&format!("http 127.0.0.1:{}", b.server.http)));
    eprintln!("split brain: taken over {took_over:?} after SIGSTOP; the woken leader exited ({status}); {total} acknowledged, each stored once");
}
