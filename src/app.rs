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
use crate::endpoint::Sessions;
use crate::evidence;
use crate::health::Health;
use crate::historian;
use crate::ingest::{self, BrokerAddr};
use crate::live;
use crate::metrics::Metrics;
use crate::role::Roles;
use crate::settings::Settings;
use crate::store;
use crate::store::postgres::lease::Terms;

mod intake;

use intake::Intake;

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

/// The name of the token made on the first start.
pub const FIRST_TOKEN: &str = "first coordinator";

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            warn!(error = %e, "A task ended abnormally.");
        }
    }
}
