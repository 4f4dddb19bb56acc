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
use crate::broker;
use crate::health::Health;
use crate::historian;
use crate::ingest::{self, BrokerAddr};
use crate::live;
use crate::metrics::Metrics;
use crate::pipeline::{Committer, Geo, Pipeline, SeqWindow, TransitStep};
use crate::settings::Settings;
use crate::store::{self, StoreReader, StoreWriter};
use crate::tokens;

/// How long shutdown may take before the remaining tasks are abandoned.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Units (one per message) waiting for the group committer.
const COMMIT_QUEUE: usize = 8192;

/// A started Caravan: where it listens, and the handle to stop it.
pub struct App {
    pub http: SocketAddr,
    pub mqtt: BrokerAddr,
    /// True when the broker runs inside this process.
    pub embedded_broker: bool,
    /// On the first start with no tokens, the coordinator token made for the operator. It is
    /// shown once and not kept anywhere.
    pub bootstrap_token: Option<String>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    historian: (CancellationToken, JoinHandle<()>),
}

impl App {
    /// Opens the store, starts the broker (unless an external one is configured), the ingest,
    /// the pipeline, the committer and the HTTP API.
    ///
    /// # Errors
    /// The store cannot be opened, or an address cannot be bound.
    pub async fn start(settings: Settings) -> anyhow::Result<App> {
        let data_dir = settings.store.data_dir.clone();
        let (writer, reader) = tokio::task::spawn_blocking(move || store::open(&data_dir))
            .await?
            .with_context(|| {
                format!("opening the store in {}", settings.store.data_dir.display())
            })?;
        let (writer, bootstrap_token) = bootstrap(writer, &reader).await?;
        let reader: Arc<dyn StoreReader> = Arc::new(reader);
        let snapshot_reader = reader.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || snapshot_reader.snapshot(SeqWindow::WIDTH, 32))
                .await?
                .context("reading the last state from the store")?;

        let (mqtt, embedded_broker) = match &settings.mqtt.url {
            Some(url) => (BrokerAddr::parse(url)?, false),
            None => {
                let listen = settings.mqtt.listen;
                let addr = tokio::task::spawn_blocking(move || broker::start(listen)).await??;
                (BrokerAddr::from(addr), true)
            }
        };

        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        let cancel = CancellationToken::new();
        let drained = CancellationToken::new();
        let limits = settings.ingest.limits();
        let (outbox, ingest) = ingest::connect(&settings.mqtt, &mqtt, limits, health.clone());

        // Sized so the MQTT event loop never has to wait to hand a message over: every QoS 1
        // message in this queue is unacknowledged, and a session cannot have more than the
        // 65,535 packet ids outstanding. The broker's in-flight window (far smaller) is what
        // really bounds it, and is the back-pressure when the pipeline falls behind.
        let (inputs_tx, inputs_rx) = mpsc::channel(ingest::HANDOFF_CAPACITY);
        // Room for several group commits' worth of units: while one commit runs the next
        // gathers, and under load a larger commit costs less per report (pages written and
        // the commit itself are shared).
        let (units_tx, units_rx) = mpsc::channel(COMMIT_QUEUE);

        let live = live::channel();
        let committer = Committer {
            deferred: std::collections::VecDeque::new(),
            live: live.clone(),
            writer,
            outbox,
            metrics: metrics.clone(),
            health: health.clone(),
            max_batch: settings.store.max_batch,
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
        let maps = settings.maps.clone();
        let config = settings.geofence.clone();
        let (atlas, index) =
            tokio::task::spawn_blocking(move || atlas::load(&maps, config)).await??;
        let geo = Geo::new(index.clone(), &atlas);
        let transit_reader = reader.clone();
        let stored =
            tokio::task::spawn_blocking(move || transit_reader.transits(false, usize::MAX >> 1))
                .await?
                .context("reading the transits from the store")?;
        let transits = TransitStep::new(atlas.clone(), stored, historian.clone())?;
        let pipeline = Pipeline::new(
            snapshot,
            geo,
            transits,
            units_tx,
            metrics.clone(),
            historian.clone(),
        );
        let pipeline = tokio::spawn(pipeline.run(inputs_rx, cancel.clone()));
        let ingest = tokio::spawn(ingest.run(inputs_tx.clone(), cancel.clone(), drained));

        let listener = tokio::net::TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("listening for HTTP on {}", settings.http.listen))?;
        let http = listener.local_addr()?;
        let ctx = api::Context {
            reader,
            pipeline: inputs_tx,
            metrics,
            health,
            historian,
            live,
            maps_dir: settings.maps.dir.clone(),
            atlas: atlas.clone(),
            index: index.clone(),
            streams: Arc::new(api::Streams::default()),
        };
        let api = tokio::spawn(api::serve(listener, ctx, cancel.clone()));

        info!(%http, mqtt = %format!("{}:{}", mqtt.host, mqtt.port), embedded_broker, "Caravan is running.");
        Ok(App {
            http,
            mqtt,
            embedded_broker,
            bootstrap_token,
            cancel,
            tasks: vec![api, ingest, pipeline, committer],
            historian: (historian_stop, historian_driver),
        })
    }

    /// A token that stops the app when cancelled (for signal handlers).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops intake, commits and acknowledges what was received, and returns when every part
    /// has stopped (or after 5 s).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.wait().await;
    }

    /// Waits until the app has been stopped through its token and every part has finished.
    pub async fn wait(self) {
        self.cancel.cancelled().await;
        let (historian_stop, historian) = self.historian;
        let all = async move {
            futures_join(self.tasks).await;
            historian_stop.cancel();
            futures_join(vec![historian]).await;
        };
        if tokio::time::timeout(SHUTDOWN_DEADLINE, all).await.is_err() {
            warn!("Some parts did not stop within 5 s; exiting anyway.");
        } else {
            info!("Caravan stopped cleanly.");
        }
    }
}

/// Makes a coordinator token when the store has none, so a fresh install can be used at all.
async fn bootstrap(
    mut writer: store::SqliteWriter,
    reader: &store::SqliteReader,
) -> anyhow::Result<(store::SqliteWriter, Option<String>)> {
    if !reader.tokens()?.is_empty() {
        return Ok((writer, None));
    }
    let issued = tokens::issue("first coordinator", Role::Coordinator)?;
    let writer =
        tokio::task::spawn_blocking(move || writer.commit(&[issued.write]).map(|_| writer))
            .await??;
    Ok((writer, Some(issued.text)))
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            warn!(error = %e, "A task ended abnormally.");
        }
    }
}
