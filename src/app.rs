//! Builds the parts, wires them, and owns shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api;
use crate::atlas;
use crate::auth::Role;
use crate::endpoint::{self, Endpoint, Sessions};
use crate::evidence;
use crate::health::Health;
use crate::historian;
use crate::ingest::{self, BrokerAddr};
use crate::live;
use crate::metrics::Metrics;
use crate::pipeline::{Committer, Geo, Outbox, Startup};
use crate::role::Roles;
use crate::settings::Settings;
use crate::store::postgres::lease::Terms;
use crate::store::{self, StoreReader, StoreWriter};
use crate::tokens;

/// How long shutdown may take before the remaining tasks are abandoned.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Batches of units waiting for the group committer. The pipeline hands over one batch per
/// run of inputs it took, at most `HANDOFF_BATCH` inputs of one unit each, so the queue holds
/// at most 8,192 messages' units. When the store falls behind it fills and the pipeline
/// waits; small batches fill it sooner, but the pipeline then takes larger runs of what
/// waits in the ingest queue.
const COMMIT_QUEUE: usize = 8192 / crate::pipeline::HANDOFF_BATCH;

/// A started Caravan: where it listens, and the handle to stop it.
pub struct App {
    pub http: SocketAddr,
    pub mqtt: BrokerAddr,
    /// The embedded endpoint's TLS listener, when configured.
    pub mqtt_tls: Option<SocketAddr>,
    /// True when devices connect to this process (the embedded endpoint), not to a broker.
    pub embedded_broker: bool,
    /// The embedded endpoint's live sessions (none with an external broker).
    pub sessions: Option<Arc<Sessions>>,
    /// On the first start with no tokens, the coordinator token made for the operator. It is
    /// shown once and not kept anywhere.
    pub bootstrap_token: Option<String>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    historian: (CancellationToken, JoinHandle<()>),
    /// Signs checkpoints; stopped after the committer, so the last one covers every commit.
    evidence: (CancellationToken, JoinHandle<()>),
    abandoned: Arc<std::sync::atomic::AtomicUsize>,
    /// Active or standby.
    roles: Arc<Roles>,
    /// The thread keeping the lease, and what stops it: after everything else, so the lease
    /// is given up only once the last commit is done.
    lease: Option<(CancellationToken, std::thread::JoinHandle<()>)>,
}

/// How a stop went.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Every part stopped within the deadline.
    pub clean: bool,
    /// Messages the store would not take at shutdown: left unacknowledged, for the broker or
    /// the devices to deliver again to the next start.
    pub uncommitted: usize,
    /// Set when the app stopped by itself rather than when asked: the lease was lost to
    /// another instance, or this one could not become active. The process must exit with an
    /// error so that its supervisor starts it again, as a standby.
    pub fault: Option<String>,
}

impl App {
    /// Opens the store, starts the broker (unless an external one is configured), the ingest,
    /// the pipeline, the committer and the HTTP API.
    ///
    /// With a store several instances share (PostgreSQL), the API starts at once and the
    /// rest only once this instance holds the lease (`crate::role`): at once when the lease
    /// is free, else later, in the background, as a standby that takes over.
    ///
    /// # Errors
    /// The store cannot be opened, or an address cannot be bound.
    pub async fn start(settings: Settings) -> anyhow::Result<App> {
        let location = store::Location::of(&settings.store)?;
        let lease_url = lease_url(&location);
        let leased = lease_url.is_some();
        let (store_settings, policy) = (settings.store.clone(), settings.dead_letters.policy());
        let (writer, reader) = tokio::task::spawn_blocking(move || {
            let (writer, reader) = store::open_from(&store_settings, policy)?;
            // A writer opened now would hold the chain heads of this moment, and the active
            // instance moves them on: with a lease, it is opened when the lease is won.
            anyhow::Ok(((!leased).then_some(writer), reader))
        })
        .await?
        .with_context(|| format!("opening the store ({location})"))?;
        info!(store = %location, "Store opened.");
        let roles = match lease_url {
            Some(_) => Roles::standby(),
            None => Roles::single(),
        };
        let (key, evidence) = evidence::start(&settings, reader.clone())?;

        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(Duration::from_secs(
            settings.ingest.stall_after_s.max(1),
        )));
        let cancel = CancellationToken::new();
        // Sized so the MQTT event loop never has to wait to hand a message over: every QoS 1
        // message in this queue is unacknowledged, and a session cannot have more than the
        // 65,535 packet ids outstanding. The broker's in-flight window (far smaller) is what
        // really bounds it, and is the back-pressure when the pipeline falls behind.
        let (inputs_tx, inputs_rx) = mpsc::channel(ingest::HANDOFF_CAPACITY);
        let live = live::channel();
        let abandoned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // The historian stops after the pipeline, so the pipeline's last lines are kept.
        let historian_stop = CancellationToken::new();
        let (historian, historian_driver) = historian::spawn(
            &settings.historian,
            &settings.store.data_dir,
            historian_stop.clone(),
        )?;
        let historian_driver = tokio::spawn(historian_driver);
        let maps = settings.maps.resolved(&settings.store.data_dir);
        let config = settings.geofence.clone();
        let (atlas, index) =
            tokio::task::spawn_blocking(move || atlas::load(&maps, config)).await??;
        let rules = crate::rules::Rules::load(&settings.rules, &settings.store.data_dir)?;
        info!(transit = %rules.transit_from, risk = %rules.risk_from, "Rules loaded.");
        let transit_rules = Arc::new(rules.transit.clone());
        let peers = settings.exchange.peers(&key.fingerprint())?;
        let exchange_status = Arc::new(crate::exchange::Status::default());
        let sessions = Arc::new(Sessions::default());

        let listener = tokio::net::TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("listening for HTTP on {}", settings.http.listen))?;
        let http = listener.local_addr()?;
        let directory = Arc::new(crate::exchange::Directory {
            countries: settings.exchange.countries.clone(),
            peers: peers.clone(),
            status: exchange_status.clone(),
        });
        let intake = Intake {
            settings: settings.clone(),
            writer,
            reader: reader.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            historian: historian.clone(),
            live: live.clone(),
            atlas: atlas.clone(),
            index: index.clone(),
            rules,
            key: key.clone(),
            peers,
            exchange_status,
            sessions: sessions.clone(),
            inputs: (inputs_tx.clone(), inputs_rx),
            cancel: cancel.clone(),
            abandoned: abandoned.clone(),
            roles: roles.clone(),
        };
        let mut ctx = api::Context {
            reader,
            pipeline: inputs_tx,
            metrics,
            health,
            historian,
            live,
            maps_dir: settings.maps.resolved(&settings.store.data_dir).dir,
            atlas,
            sessions: None,
            transit_rules,
            instance_key: key,
            index,
            streams: Arc::new(api::Streams::default()),
            exchange: directory,
            roles: roles.clone(),
        };

        let mut tasks = Vec::new();
        let mut lease = None;
        let started = match lease_url {
            None => {
                // The only instance: as it always was, everything that can fail has started
                // before the API answers.
                let started = intake.start().await?;
                ctx.sessions = started.embedded_broker.then(|| sessions.clone());
                tasks.push(tokio::spawn(api::serve(listener, ctx, cancel.clone())));
                Some(started)
            }
            Some(url) => {
                let lease_stop = CancellationToken::new();
                let me = holder_name(http);
                let keeper = crate::role::keep(
                    url,
                    me.clone(),
                    Terms::default(),
                    roles.clone(),
                    lease_stop.clone(),
                )?;
                lease = Some((lease_stop.clone(), keeper));
                tasks.push(tokio::spawn(roles.clone().watch_expiry(cancel.clone())));
                tasks.push(tokio::spawn(stop_when_lost(roles.clone(), cancel.clone())));
                ctx.sessions = settings.mqtt.url.is_none().then(|| sessions.clone());
                tasks.push(tokio::spawn(api::serve(listener, ctx, cancel.clone())));
                info!(%http, holder = %me, "Serving the API as a standby; waiting for the lease.");
                match first_answer(&roles, &cancel).await {
                    true => match intake.start().await {
                        Ok(started) => Some(started),
                        Err(e) => {
                            cancel.cancel();
                            lease_stop.cancel();
                            return Err(e);
                        }
                    },
                    false => {
                        tasks.push(tokio::spawn(
                            intake.start_when_active(roles.clone(), cancel.clone()),
                        ));
                        None
                    }
                }
            }
        };
        let (mqtt, mqtt_tls, embedded_broker, bootstrap_token) = match started {
            Some(started) => {
                tasks.extend(started.tasks);
                (
                    started.mqtt,
                    started.mqtt_tls,
                    started.embedded_broker,
                    started.bootstrap_token,
                )
            }
            None => {
                let (mqtt, embedded) = configured_broker(&settings)?;
                (mqtt, None, embedded, None)
            }
        };
        let sessions = embedded_broker.then_some(sessions);
        info!(%http, mqtt = %format!("{}:{}", mqtt.host, mqtt.port), embedded_broker, store = %location, role = roles.role().name(), "Caravan is running.");
        Ok(App {
            http,
            mqtt,
            mqtt_tls,
            embedded_broker,
            sessions,
            bootstrap_token,
            cancel,
            tasks,
            historian: (historian_stop, historian_driver),
            abandoned,
            evidence,
            roles,
            lease,
        })
    }

    /// A token that stops the app when cancelled (for signal handlers).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops intake, commits and acknowledges what was received, and returns when every part
    /// has stopped (or after 5 s).
    pub async fn shutdown(self) -> Stopped {
        self.cancel.cancel();
        self.wait().await
    }

    /// Waits until the app has been stopped through its token and every part has finished.
    pub async fn wait(self) -> Stopped {
        self.cancel.cancelled().await;
        let (historian_stop, historian) = self.historian;
        let lease = self.lease;
        let all = async move {
            futures_join(self.tasks).await;
            if let Some((stop, keeper)) = lease {
                stop.cancel();
                let _ = tokio::task::spawn_blocking(move || keeper.join()).await;
            }
            self.evidence.0.cancel();
            futures_join(vec![self.evidence.1]).await;
            historian_stop.cancel();
            futures_join(vec![historian]).await;
        };
        let clean = tokio::time::timeout(SHUTDOWN_DEADLINE, all).await.is_ok();
        let uncommitted = self.abandoned.load(std::sync::atomic::Ordering::Relaxed);
        if !clean {
            warn!("Some parts did not stop within 5 s; exiting anyway.");
        } else if uncommitted > 0 {
            warn!(
                uncommitted,
                "Caravan stopped; the store did not take everything it received."
            );
        } else {
            info!("Caravan stopped cleanly.");
        }
        let fault = match self.roles.role() {
            crate::role::Role::Lost { epoch } => Some(format!(
                "the lease of epoch {epoch} was lost to another instance"
            )),
            _ => self.roles.fault(),
        };
        Stopped {
            clean,
            uncommitted,
            fault,
        }
    }
}

/// What consuming devices' messages and writing takes: started at once on the only instance,
/// or once the lease is won on one of several.
struct Intake<W> {
    settings: Settings,
    /// The store's writer; `None` until the lease is won, with a store several instances
    /// share.
    writer: Option<W>,
    reader: Arc<dyn StoreReader>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    historian: historian::Historian,
    live: tokio::sync::broadcast::Sender<live::Live>,
    atlas: Arc<crate::maps::Atlas>,
    index: Arc<crate::geofence::GeofenceIndex>,
    rules: crate::rules::Rules,
    key: Arc<evidence::InstanceKey>,
    peers: Vec<Arc<crate::exchange::Peer>>,
    exchange_status: Arc<crate::exchange::Status>,
    sessions: Arc<Sessions>,
    inputs: (
        mpsc::Sender<crate::pipeline::Input>,
        mpsc::Receiver<crate::pipeline::Input>,
    ),
    cancel: CancellationToken,
    abandoned: Arc<std::sync::atomic::AtomicUsize>,
    roles: Arc<Roles>,
}

/// The intake, running.
struct Started {
    mqtt: BrokerAddr,
    mqtt_tls: Option<SocketAddr>,
    embedded_broker: bool,
    bootstrap_token: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Intake<Box<dyn StoreWriter>> {
    /// Binds the endpoint (or connects to the broker), and starts the committer, the
    /// pipeline (which first restores tracking state from the store) and the exchange.
    async fn start(mut self) -> anyhow::Result<Started> {
        let settings = &self.settings;
        let mut writer = match self.writer.take() {
            Some(writer) => writer,
            None => {
                let (store, policy) = (settings.store.clone(), settings.dead_letters.policy());
                let (writer, _) =
                    tokio::task::spawn_blocking(move || store::open_from(&store, policy))
                        .await?
                        .context("opening the store's writer")?;
                writer
            }
        };
        if let crate::role::Role::Active { epoch } = self.roles.role() {
            // Every commit from here on checks, in its transaction, that the lease is still
            // this epoch: a former holder can never write after a takeover.
            let fenced = tokio::task::spawn_blocking(move || writer.fence(epoch).map(|()| writer));
            writer = fenced.await?.context("fencing the store's writer")?;
        }
        // Bound before anything runs, so a busy port is an error at once; nothing is
        // accepted until the pipeline is ready to take what devices send.
        let endpoint = match &settings.mqtt.url {
            Some(_) => None,
            None => Some(
                Endpoint::bind_sharing(settings.mqtt.endpoint()?, self.sessions.clone()).await?,
            ),
        };
        let (mqtt, embedded_broker) = match (&settings.mqtt.url, &endpoint) {
            (Some(url), _) => (BrokerAddr::parse(url)?, false),
            (None, Some(endpoint)) => {
                let addr = endpoint
                    .local_addr()
                    .context("the MQTT listener's address")?;
                (BrokerAddr::from(addr), true)
            }
            (None, None) => anyhow::bail!("no MQTT endpoint and no broker URL"),
        };
        let mqtt_tls = endpoint.as_ref().and_then(Endpoint::tls_addr);
        let cancel = self.cancel.clone();
        let drained = CancellationToken::new();
        let limits = settings.ingest.limits();
        let (outbox, ingest): (Arc<dyn Outbox>, _) = match endpoint {
            Some(_) => (Arc::new(endpoint::StoredOnly), None),
            None => {
                let (outbox, ingest) =
                    ingest::connect(&settings.mqtt, &mqtt, limits, self.health.clone());
                (outbox, Some(ingest.leased(self.roles.clone())))
            }
        };
        // Room for several group commits' worth of units: while one commit runs the next
        // gathers, and under load a larger commit costs less per report (pages written and
        // the commit itself are shared). Its bound counts batches (see `COMMIT_QUEUE`).
        let (units_tx, units_rx) = mpsc::channel(COMMIT_QUEUE);
        let committer = Committer {
            deferred: std::collections::VecDeque::new(),
            live: self.live.clone(),
            writer,
            outbox,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            max_batch: settings.store.max_batch,
            stopping: cancel.clone(),
            abandoned: self.abandoned.clone(),
            roles: self.roles.clone(),
        };
        let committer_done = drained.clone();
        let committer = tokio::task::spawn_blocking(move || {
            committer.run(units_rx);
            committer_done.cancel();
        });
        // The pipeline restores its state after the API is up (src/pipeline/startup.rs).
        // Devices may connect meanwhile: what they send waits in the bounded queue, and
        // nothing is acknowledged before it is committed.
        let exchange = (!settings.exchange.countries.is_empty()).then(|| {
            let located = self.index.clone();
            let locate: crate::exchange::outbound::Locate = Arc::new(move |lat, lon| {
                located
                    .locate(crate::telemetry::GeoPoint { lat, lon })
                    .country
            });
            crate::exchange::Exchange::new(
                self.key.public(),
                settings.exchange.countries.clone(),
                self.peers.clone(),
                locate,
            )
        });
        let (inputs_tx, inputs_rx) = self.inputs;
        let startup = Startup {
            reader: self.reader.clone(),
            atlas: self.atlas.clone(),
            geo: Geo::new(self.index.clone(), &self.atlas),
            historian: self.historian.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            committer: units_tx,
            rules: self.rules,
            exchange,
        };
        let pipeline = tokio::spawn(startup.run(inputs_rx, cancel.clone()));
        let intake = match (endpoint, ingest) {
            (Some(endpoint), _) => {
                let links = endpoint::Links {
                    reader: self.reader.clone(),
                    limits,
                    metrics: self.metrics.clone(),
                    health: self.health.clone(),
                    pipeline: inputs_tx.clone(),
                };
                tokio::spawn(endpoint.run(links, cancel.clone(), drained))
            }
            (None, Some(ingest)) => {
                tokio::spawn(ingest.run(inputs_tx.clone(), cancel.clone(), drained))
            }
            (None, None) => anyhow::bail!("no MQTT endpoint and no broker connection"),
        };
        let watchdog = tokio::spawn(watch_intake(
            self.health.clone(),
            self.metrics.clone(),
            cancel.clone(),
        ));
        // Only now that everything that can fail has started: a first start that fails (a
        // port in use) must not make a token that nobody is shown.
        let bootstrap_token = bootstrap(settings, self.reader.clone()).await?;
        let mut tasks = Vec::new();
        if !settings.exchange.countries.is_empty() {
            let links = crate::exchange::sender::Links {
                reader: self.reader.clone(),
                key: self.key.clone(),
                pipeline: inputs_tx.clone(),
                metrics: self.metrics.clone(),
                status: self.exchange_status.clone(),
                retry_max: Duration::from_secs(settings.exchange.retry_max_s.max(1)),
            };
            for peer in &self.peers {
                let run = crate::exchange::sender::run(peer.clone(), links.clone(), cancel.clone());
                tasks.push(tokio::spawn(run));
            }
        }
        tasks.extend([intake, pipeline, committer, watchdog]);
        Ok(Started {
            mqtt,
            mqtt_tls,
            embedded_broker,
            bootstrap_token,
            tasks,
        })
    }

    /// Waits for the lease, then starts the intake and runs until the app stops. A start
    /// that fails stops the app with that fault.
    async fn start_when_active(self, roles: Arc<Roles>, cancel: CancellationToken) {
        let mut role = roles.subscribe();
        let active = tokio::select! {
            () = cancel.cancelled() => false,
            changed = role.wait_for(|role| !matches!(role, crate::role::Role::Standby { .. })) => {
                matches!(changed.as_deref(), Ok(crate::role::Role::Active { .. }))
            }
        };
        if !active {
            return;
        }
        let data_dir = self.settings.store.data_dir.clone();
        let started = match self.start().await {
            Ok(started) => started,
            Err(e) => {
                let fault = format!("could not become the active instance: {e:#}");
                error!(error = %format!("{e:#}"), "Could not become the active instance; stopping.");
                roles.set_fault(fault);
                cancel.cancel();
                return;
            }
        };
        info!(
            mqtt = %format!("{}:{}", started.mqtt.host, started.mqtt.port),
            "This instance is now the active one."
        );
        if let Some(token) = started.bootstrap_token {
            keep_first_token(&data_dir, &token);
        }
        futures_join(started.tasks).await;
    }
}

/// The lease's database, when the store is one several instances share.
fn lease_url(location: &store::Location) -> Option<String> {
    match location {
        store::Location::Postgres(url) => Some(url.0.clone()),
        store::Location::Sqlite(_) => None,
    }
}

/// How other instances see this one as the lease's holder: its host, process and API.
fn holder_name(http: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host} (pid {}, http {http})", std::process::id())
}

/// The broker a standby will use once active, as the settings name it.
fn configured_broker(settings: &Settings) -> anyhow::Result<(BrokerAddr, bool)> {
    Ok(match &settings.mqtt.url {
        Some(url) => (BrokerAddr::parse(url)?, false),
        None => (BrokerAddr::from(settings.mqtt.endpoint()?.listen), true),
    })
}

/// Waits for the lease's first answer (at most a few periods): true when this instance holds
/// it, so a lone instance (or the first of several) starts as it always did, before `start`
/// returns.
async fn first_answer(roles: &Roles, cancel: &CancellationToken) -> bool {
    let mut role = roles.subscribe();
    let answered = tokio::time::timeout(
        Terms::default().every * 3,
        role.wait_for(|role| !matches!(role, crate::role::Role::Standby { holder: None })),
    );
    tokio::select! {
        () = cancel.cancelled() => false,
        answered = answered => matches!(answered, Ok(Ok(role)) if matches!(*role, crate::role::Role::Active { .. })),
    }
}

/// A lost lease stops the whole app (crash-only: it comes back as a standby).
async fn stop_when_lost(roles: Arc<Roles>, cancel: CancellationToken) {
    let lost = roles.lost();
    tokio::select! {
        () = lost.cancelled() => cancel.cancel(),
        () = cancel.cancelled() => {}
    }
}

/// The first coordinator token, made when a standby became active on a store without tokens:
/// nobody is there to read standard output, so it goes to an owner-only file.
fn keep_first_token(data_dir: &std::path::Path, token: &str) {
    let path = data_dir.join(crate::cli::serve::FIRST_TOKEN_FILE);
    match crate::store::private::write(&path, &format!("{token}\n")) {
        Ok(()) => {
            warn!(path = %path.display(), "First start: a coordinator token was written to this owner-only file; read it, then delete the file.")
        }
        Err(e) => {
            error!(error = %e, path = %path.display(), "The first coordinator token could not be written; revoke it with `caravan token` and make another.")
        }
    }
}

/// Makes a coordinator token when the store has none, so a fresh install can be used at all.
async fn bootstrap(
    settings: &Settings,
    reader: Arc<dyn StoreReader>,
) -> anyhow::Result<Option<String>> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        if !reader.tokens()?.is_empty() {
            return Ok(None);
        }
        tokens::create_in(&settings, FIRST_TOKEN, Role::Coordinator).map(Some)
    })
    .await?
}

/// Turns a stall into a metric and a log line that says what is stuck.
async fn watch_intake(health: Arc<Health>, metrics: Arc<Metrics>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut logged: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stall = health.stall();
        metrics.intake_stalled.set(i64::from(stall.is_some()));
        if let Some(stall) = stall {
            if logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                let store = health.report().store;
                warn!(waiting = stall.waiting, for_s = stall.for_s, %store, "Intake is stalled: messages wait and nothing has been committed.");
                logged = Some(std::time::Instant::now());
            }
        }
    }
}
/// The name of the token made on the first start.
pub const FIRST_TOKEN: &str = "first coordinator";

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            warn!(error = %e, "A task ended abnormally.");
        }
    }
}
