//! What consuming devices' messages and writing takes, started apart from the API: at once
//! on the only instance, or when the lease is won on one of several (`crate::role`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{futures_join, COMMIT_QUEUE, FIRST_TOKEN};
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
use crate::store::{self, StoreReader, StoreWriter};
use crate::tokens;

/// What consuming devices' messages and writing takes: started at once on the only instance,
/// or once the lease is won on one of several.
pub(super) struct Intake<W> {
    pub(super) settings: Settings,
    /// The store's writer; `None` until the lease is won, with a store several instances
    /// share.
    pub(super) writer: Option<W>,
    pub(super) reader: Arc<dyn StoreReader>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) historian: historian::Historian,
    pub(super) live: tokio::sync::broadcast::Sender<live::Live>,
    pub(super) atlas: Arc<crate::maps::Atlas>,
    pub(super) index: Arc<crate::geofence::GeofenceIndex>,
    pub(super) rules: crate::rules::Rules,
    pub(super) key: Arc<evidence::InstanceKey>,
    pub(super) peers: Vec<Arc<crate::exchange::Peer>>,
    pub(super) exchange_status: Arc<crate::exchange::Status>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) inputs: (
        mpsc::Sender<crate::pipeline::Input>,
        mpsc::Receiver<crate::pipeline::Input>,
    ),
    pub(super) cancel: CancellationToken,
    pub(super) abandoned: Arc<std::sync::atomic::AtomicUsize>,
    pub(super) roles: Arc<Roles>,
}

/// The intake, running.
pub(super) struct Started {
    pub(super) mqtt: BrokerAddr,
    pub(super) mqtt_tls: Option<SocketAddr>,
    pub(super) embedded_broker: bool,
    pub(super) bootstrap_token: Option<String>,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

impl Intake<Box<dyn StoreWriter>> {
    /// Binds the endpoint (or connects to the broker), and starts the committer, the
    /// pipeline (which first restores tracking state from the store) and the exchange.
    pub(super) async fn start(mut self) -> anyhow::Result<Started> {
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
    pub(super) async fn start_when_active(self, roles: Arc<Roles>, cancel: CancellationToken) {
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
