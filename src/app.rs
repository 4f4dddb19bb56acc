//! Builds the parts, wires them, and owns shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
use crate::settings::Settings;
use crate::store::{self, StoreReader};
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
}

/// How a stop went.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Every part stopped within the deadline.
    pub clean: bool,
    /// Messages the store would not take at shutdown: left unacknowledged, for the broker or
    /// the devices to deliver again to the next start.
    pub uncommitted: usize,
}

impl App {
    /// Opens the store, starts the broker (unless an external one is configured), the ingest,
    /// the pipeline, the committer and the HTTP API.
    ///
    /// # Errors
    /// The store cannot be opened, or an address cannot be bound.
    pub async fn start(settings: Settings) -> anyhow::Result<App> {
        let location = store::Location::of(&settings.store)?;
        let (store_settings, policy) = (settings.store.clone(), settings.dead_letters.policy());
        let (writer, reader) =
            tokio::task::spawn_blocking(move || store::open_from(&store_settings, policy))
                .await?
                .with_context(|| format!("opening the store ({location})"))?;
        info!(store = %location, "Store opened.");
        let (key, evidence) = evidence::start(&settings, reader.clone())?;

        // Bound before anything runs, so a busy port is an error at once; nothing is
        // accepted until the pipeline is ready to take what devices send.
        let endpoint = match &settings.mqtt.url {
            Some(_) => None,
            None => Some(Endpoint::bind(settings.mqtt.endpoint()?).await?),
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
        let sessions = endpoint.as_ref().map(Endpoint::sessions);

        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(Duration::from_secs(
            settings.ingest.stall_after_s.max(1),
        )));
        let cancel = CancellationToken::new();
        let drained = CancellationToken::new();
        let limits = settings.ingest.limits();
        let (outbox, ingest): (Arc<dyn Outbox>, _) = match endpoint {
            Some(_) => (Arc::new(endpoint::StoredOnly), None),
            None => {
                let (outbox, ingest) =
                    ingest::connect(&settings.mqtt, &mqtt, limits, health.clone());
                (outbox, Some(ingest))
            }
        };

        // Sized so the MQTT event loop never has to wait to hand a message over: every QoS 1
        // message in this queue is unacknowledged, and a session cannot have more than the
        // 65,535 packet ids outstanding. The broker's in-flight window (far smaller) is what
        // really bounds it, and is the back-pressure when the pipeline falls behind.
        let (inputs_tx, inputs_rx) = mpsc::channel(ingest::HANDOFF_CAPACITY);
        // Room for several group commits' worth of units: while one commit runs the next
        // gathers, and under load a larger commit costs less per report (pages written and
        // the commit itself are shared). Its bound counts batches (see `COMMIT_QUEUE`).
        let (units_tx, units_rx) = mpsc::channel(COMMIT_QUEUE);

        let live = live::channel();
        let abandoned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let committer = Committer {
            deferred: std::collections::VecDeque::new(),
            live: live.clone(),
            writer,
            outbox,
            metrics: metrics.clone(),
            health: health.clone(),
            max_batch: settings.store.max_batch,
            stopping: cancel.clone(),
            abandoned: abandoned.clone(),
        };
        let committer_done = drained.clone();
        let committer = tokio::task::spawn_blocking(move || {
            committer.run(units_rx);
            committer_done.cancel();
        });
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
        // The pipeline restores its state after the API is up (src/pipeline/startup.rs).
        // Devices may connect meanwhile: what they send waits in the bounded queue, and
        // nothing is acknowledged before it is committed.
        let peers = settings.exchange.peers(&key.fingerprint())?;
        let exchange_status = Arc::new(crate::exchange::Status::default());
        let exchange = (!settings.exchange.countries.is_empty()).then(|| {
            let located = index.clone();
            let locate: crate::exchange::outbound::Locate = Arc::new(move |lat, lon| {
                located
                    .locate(crate::telemetry::GeoPoint { lat, lon })
                    .country
            });
            crate::exchange::Exchange::new(
                key.public(),
                settings.exchange.countries.clone(),
                peers.clone(),
                locate,
            )
        });
        let startup = Startup {
            reader: reader.clone(),
            atlas: atlas.clone(),
            geo: Geo::new(index.clone(), &atlas),
            historian: historian.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            committer: units_tx,
            rules,
            exchange,
        };
        let pipeline = tokio::spawn(startup.run(inputs_rx, cancel.clone()));
        let intake = match (endpoint, ingest) {
            (Some(endpoint), _) => {
                let links = endpoint::Links {
                    reader: reader.clone(),
                    limits,
                    metrics: metrics.clone(),
                    health: health.clone(),
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
            health.clone(),
            metrics.clone(),
            cancel.clone(),
        ));

        let listener = tokio::net::TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("listening for HTTP on {}", settings.http.listen))?;
        let http = listener.local_addr()?;
        // Only now that everything that can fail has started: a first start that fails (a
        // port in use) must not make a token that nobody is shown.
        let bootstrap_token = bootstrap(&settings, reader.clone()).await?;
        let mut tasks = Vec::new();
        if !settings.exchange.countries.is_empty() {
            let links = crate::exchange::sender::Links {
                reader: reader.clone(),
                key: key.clone(),
                pipeline: inputs_tx.clone(),
                metrics: metrics.clone(),
                status: exchange_status.clone(),
                retry_max: Duration::from_secs(settings.exchange.retry_max_s.max(1)),
            };
            for peer in &peers {
                let run = crate::exchange::sender::run(peer.clone(), links.clone(), cancel.clone());
                tasks.push(tokio::spawn(run));
            }
        }
        let directory = Arc::new(crate::exchange::Directory {
            countries: settings.exchange.countries.clone(),
            peers,
            status: exchange_status,
        });
        let ctx = api::Context {
            reader,
            pipeline: inputs_tx,
            metrics,
            health,
            historian,
            live,
            maps_dir: settings.maps.resolved(&settings.store.data_dir).dir,
            atlas: atlas.clone(),
            sessions: sessions.clone(),
            transit_rules,
            instance_key: key,
            index: index.clone(),
            streams: Arc::new(api::Streams::default()),
            exchange: directory,
        };
        let api = tokio::spawn(api::serve(listener, ctx, cancel.clone()));

        info!(%http, mqtt = %format!("{}:{}", mqtt.host, mqtt.port), embedded_broker, store = %location, "Caravan is running.");
        Ok(App {
            http,
            mqtt,
            mqtt_tls,
            embedded_broker,
            sessions,
            bootstrap_token,
            cancel,
            tasks: {
                tasks.extend([api, intake, pipeline, committer, watchdog]);
                tasks
            },
            historian: (historian_stop, historian_driver),
            abandoned,
            evidence,
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
        let all = async move {
            futures_join(self.tasks).await;
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
        Stopped { clean, uncommitted }
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
