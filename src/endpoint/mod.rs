//! Caravan's own MQTT endpoint: where devices connect when no external broker is configured.
//!
//! It is not a broker. It speaks MQTT 3.1.1 to devices (rumqttc's codec, the one the ingest
//! already uses), and instead of routing messages it hands each PUBLISH straight to the
//! pipeline:
//!
//! - **CONNECT is authenticated** against the device's (or gateway's) MQTT account in the
//!   store; anonymous clients, wrong secrets and revoked accounts are refused.
//! - **Every PUBLISH is authorised by its topic**: a device speaks only for itself, a gateway
//!   only for the devices bound to it. A message that claims another device is refused as
//!   `foreign_device`, counted and dead-lettered, never applied.
//! - **PUBACK is sent only after the message's effects are committed.** A device that has its
//!   PUBACK has its message in the store; one that does not sends it again after it
//!   reconnects. There is no broker log in memory to lose, no window between "the broker has
//!   it" and "Caravan has it", at start-up, at shutdown or in a crash.
//! - Nothing can subscribe: every SUBSCRIBE is answered with a failure, so no client reads
//!   another device's messages.
//!
//! Resources an outsider can make it hold are bounded: connections in all, connections that
//! have not finished their CONNECT (with a deadline), the size of a packet, and the messages
//! one connection may have waiting for their commit.

mod session;
mod sessions;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use session::{DeviceAck, DeviceAcks};
pub use sessions::Sessions;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::pipeline::Input;
use crate::store::StoreReader;
use crate::telemetry::Limits;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("MQTT over TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Where and how the endpoint listens, and its bounds.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    /// Plain MQTT.
    pub listen: SocketAddr,
    /// MQTT over TLS, with the certificate chain and key files (PEM).
    pub tls: Option<TlsListen>,
    /// Open connections in all, authenticated or not.
    pub max_connections: usize,
    /// Connections that have not yet completed their CONNECT.
    pub max_unauthenticated: usize,
    /// Time a new connection has for its TLS handshake and CONNECT.
    pub connect_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct TlsListen {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the endpoint is connected to.
pub struct Links {
    /// Accounts are read from the store at each CONNECT.
    pub reader: Arc<dyn StoreReader>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub pipeline: mpsc::Sender<Input>,
}

/// What every session needs: the store (accounts), the device limits, the counters.
pub(crate) struct Shared {
    reader: Arc<dyn StoreReader>,
    limits: Limits,
    sessions: Arc<Sessions>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    connect_timeout: Duration,
}

/// The bound listeners; [`Endpoint::run`] serves them.
pub struct Endpoint {
    plain: TcpListener,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    settings: EndpointSettings,
    sessions: Arc<Sessions>,
}

impl Endpoint {
    /// Binds the listeners (and reads the TLS files) without accepting anything yet, so that
    /// a busy port or a bad certificate is an error before anything else starts.
    ///
    /// # Errors
    /// An address cannot be bound, or the certificate or key cannot be used.
    pub async fn bind(settings: EndpointSettings) -> Result<Endpoint, EndpointError> {
        Self::bind_sharing(settings, Arc::default()).await
    }

    /// As [`Endpoint::bind`], with sessions made earlier: an instance that starts as a
    /// standby serves the API (which disconnects revoked devices through them) before it
    /// binds the endpoint.
    ///
    /// # Errors
    /// As [`Endpoint::bind`].
    pub async fn bind_sharing(
        settings: EndpointSettings,
        sessions: Arc<Sessions>,
    ) -> Result<Endpoint, EndpointError> {
        let plain = bind(settings.listen).await?;
        let tls = match &settings.tls {
            Some(t) => {
                let acceptor = tls::acceptor(&t.cert, &t.key)?;
                Some((bind(t.listen).await?, acceptor))
            }
            None => None,
        };
        if !settings.listen.ip().is_loopback() {
            warn!(listen = %settings.listen, "Devices' MQTT secrets cross the network in clear text on this listener; prefer the TLS listener ([mqtt] tls_listen).");
        }
        Ok(Endpoint {
            plain,
            tls,
            settings,
            sessions,
        })
    }

    /// The plain listener's address (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.plain.local_addr().ok()
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The live sessions, for disconnecting a revoked account.
    pub fn sessions(&self) -> Arc<Sessions> {
        self.sessions.clone()
    }

    /// Accepts devices until `stop`. Sessions then stop reading (what a device sends after
    /// that is not acknowledged, so it sends it again to the next start), keep their
    /// connection until `drained` (the committer has acknowledged what it committed), send
    /// those acknowledgements and close.
    pub async fn run(self, links: Links, stop: CancellationToken, drained: CancellationToken) {
        let Links {
            reader,
            limits,
            metrics,
            health,
            pipeline,
        } = links;
        health.set_broker_connected(true);
        let shared = Arc::new(Shared {
            reader,
            limits,
            sessions: self.sessions.clone(),
            metrics,
            health,
            connect_timeout: self.settings.connect_timeout,
        });
        let gates = Gates {
            connections: Arc::new(Semaphore::new(self.settings.max_connections)),
            unauthenticated: Arc::new(Semaphore::new(self.settings.max_unauthenticated)),
        };
        let ctx = Accepting {
            shared,
            gates,
            pipeline,
            stop: stop.clone(),
            drained,
        };
        let tracker = tokio_util::task::TaskTracker::new();
        let plain = accept_loop(self.plain, None, ctx.clone(), tracker.clone());
        match self.tls {
            Some((listener, acceptor)) => {
                let tls = accept_loop(listener, Some(acceptor), ctx, tracker.clone());
                tokio::join!(plain, tls);
            }
            None => plain.await,
        }
        tracker.close();
        tracker.wait().await;
        info!("The MQTT endpoint stopped.");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, EndpointError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EndpointError::Bind { addr, source })
}

#[derive(Clone)]
struct Gates {
    connections: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
}

#[derive(Clone)]
struct Accepting {
    shared: Arc<Shared>,
    gates: Gates,
    pipeline: mpsc::Sender<Input>,
    stop: CancellationToken,
    drained: CancellationToken,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Accepting,
    tracker: tokio_util::task::TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = ctx.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                warn!(error = %e, "Accepting an MQTT connection failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Both permits are taken before any work: a flood of connections that never
        // authenticate fills only the small unauthenticated gate, and is closed at once.
        let Ok(connection) = ctx.gates.connections.clone().try_acquire_owned() else {
            ctx.shared.metrics.mqtt_connect("refused_capacity");
            continue;
        };
        let Ok(pending) = ctx.gates.unauthenticated.clone().try_acquire_owned() else {
            ctx.shared.metrics.mqtt_connect("refused_capacity");
            continue;
        };
        let ctx = ctx.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _connection = connection;
            serve(stream, peer, tls, pending, ctx).await;
        });
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pending: tokio::sync::OwnedSemaphorePermit,
    ctx: Accepting,
) {
    let _ = stream.set_nodelay(true);
    let ends = session::Ends {
        pipeline: ctx.pipeline,
        stop: ctx.stop,
        drained: ctx.drained,
    };
    match tls {
        None => session::run(stream, peer, pending, ctx.shared, ends).await,
        Some(acceptor) => {
            let deadline = ctx.shared.connect_timeout;
            match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => session::run(stream, peer, pending, ctx.shared, ends).await,
                Ok(Err(_)) | Err(_) => ctx.shared.metrics.mqtt_connect("refused_tls"),
            }
        }
    }
}

/// The committer's outbox when devices connect here: acknowledgements travel with each
/// message (`Ack::Device`), and dead letters are kept in the store only, since no client may
/// subscribe to read them.
pub struct StoredOnly;

impl crate::pipeline::Outbox for StoredOnly {
    fn acknowledge(&self, _pkid: u16) -> bool {
        true
    }

    fn dead_letter(&self, _letter: &crate::store::DeadLetter) {}
}
