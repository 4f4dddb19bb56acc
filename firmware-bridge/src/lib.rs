//! `firmware-bridge`: accepts commodity trackers and e-locks that speak their vendor's TCP
//! protocol (Teltonika Codec 8/8E, JT/T 808, Jointech JT701) and republishes what they report as Caravan wire
//! contract v1 over MQTT.
//!
//! Path of a record: a connection task frames and decodes the device's bytes into
//! [`report::Report`]s, hands them to the disk [`queue`] (which gives them their `seq` and
//! fsyncs them), and only then acknowledges the device. The [`publisher`] drains the queue
//! to the broker at QoS 1 and drops entries once the broker has acknowledged them, so a
//! broker outage never blocks or loses a device's data.

pub mod broker;
pub mod contract;
pub mod cursor;
pub mod device;
pub mod framing;
pub mod jt701;
pub mod jt808;
pub mod metrics;
pub mod publisher;
pub mod queue;
pub mod registry;
pub mod report;
pub mod server;
pub mod settings;
pub mod teltonika;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use metrics::Metrics;
use server::{Context, Protocol};
pub use settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the disk queue in {dir}: {source}")]
    Queue { dir: String, source: std::io::Error },
}

/// A running bridge: where it listens, its counters, and a way to wait for it to stop.
pub struct Bridge {
    pub teltonika: Option<SocketAddr>,
    pub jt808: Option<SocketAddr>,
    pub jt701: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    tracker: TaskTracker,
    writer: std::thread::JoinHandle<()>,
}

impl Bridge {
    /// Waits, after `cancel`, for every task to finish and the queue writer to save its
    /// seq counters.
    pub async fn stopped(self) {
        self.tracker.close();
        self.tracker.wait().await;
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

/// Binds the listeners (port 0 picks free ports), opens the disk queue and starts the
/// connection and publisher tasks. Returns once everything listens; the bridge runs until
/// `cancel`.
///
/// # Errors
/// [`BridgeError`] when a port cannot be bound or the data directory cannot be used.
pub async fn run(settings: Settings, cancel: CancellationToken) -> Result<Bridge, BridgeError> {
    let metrics = Arc::new(Metrics::default());
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| BridgeError::Bind { addr, source })
    };
    let teltonika = match settings.teltonika {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let jt808 = match settings.jt808 {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let jt701 = match settings.jt701 {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let metrics_listener = match settings.metrics {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let queue_dir = settings.data_dir.join("queue");
    let (queue, reader, writer) = queue::open(&queue_dir, settings.queue, metrics.clone())
        .map_err(|source| BridgeError::Queue {
            dir: queue_dir.display().to_string(),
            source,
        })?;

    let tracker = TaskTracker::new();
    let (publisher, events) = publisher::Publisher::new(
        &settings.mqtt,
        reader,
        settings.registry.clone(),
        metrics.clone(),
    );
    tracker.spawn(publisher.run(events, cancel.clone()));
    let ctx = Context {
        registry: settings.registry.clone(),
        queue,
        metrics: metrics.clone(),
        limits: settings.limits,
        slots: Arc::new(Semaphore::new(settings.limits.max_connections)),
        lobby: server::lobby::Lobby::new(settings.limits.max_unidentified),
    };
    let local = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    let bridge = Bridge {
        teltonika: local(&teltonika),
        jt808: local(&jt808),
        jt701: local(&jt701),
        metrics_addr: local(&metrics_listener),
        metrics: metrics.clone(),
        tracker: tracker.clone(),
        writer,
    };
    for (listener, protocol) in [
        (teltonika, Protocol::Teltonika),
        (jt808, Protocol::Jt808),
        (jt701, Protocol::Jt701),
    ] {
        if let Some(listener) = listener {
            tracker.spawn(server::listen(
                listener,
                protocol,
                ctx.clone(),
                tracker.clone(),
                cancel.clone(),
            ));
        }
    }
    if let Some(listener) = metrics_listener {
        tracker.spawn(metrics::serve(listener, metrics.clone(), cancel.clone()));
    }
    tracker.spawn(log_metrics(metrics, cancel));
    Ok(bridge)
}

/// A one-line summary every minute, for deployments that do not scrape `/metrics`.
async fn log_metrics(metrics: Arc<Metrics>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        tracing::info!(
            teltonika_open = metrics.connections_open[Protocol::Teltonika.index()].load(Relaxed),
            jt808_open = metrics.connections_open[Protocol::Jt808.index()].load(Relaxed),
            jt701_open = metrics.connections_open[Protocol::Jt701.index()].load(Relaxed),
            queue_entries = metrics.queue_entries.load(Relaxed),
            queue_bytes = metrics.queue_bytes.load(Relaxed),
            published = metrics.published.load(Relaxed),
            mqtt_connected = metrics.mqtt_connected.load(Relaxed),
            "Bridge summary."
        );
    }
}
