//! The TCP side: one listener per protocol, one task per device connection.

mod jt808;
mod teltonika;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::framing::Framing;
use crate::metrics::Metrics;
use crate::queue::QueueHandle;
use crate::registry::Registry;
use crate::settings::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Teltonika,
    Jt808,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Teltonika, Protocol::Jt808];

    pub fn name(self) -> &'static str {
        match self {
            Self::Teltonika => "teltonika",
            Self::Jt808 => "jt808",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What every connection task shares.
#[derive(Clone)]
pub struct Context {
    pub registry: Arc<Registry>,
    pub queue: QueueHandle,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub slots: Arc<Semaphore>,
}

/// Accepts connections until `cancel`, each in its own task on `tracker`.
pub async fn listen(
    listener: TcpListener,
    protocol: Protocol,
    ctx: Context,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, protocol = protocol.name(), "Could not accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = ctx.slots.clone().try_acquire_owned() else {
            ctx.metrics.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(%peer, "Refused a connection: the connection cap is reached.");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        tracker.spawn(async move {
            let metrics = ctx.metrics.clone();
            metrics.connections_total[protocol.index()].fetch_add(1, Relaxed);
            metrics.connections_open[protocol.index()].fetch_add(1, Relaxed);
            let mut conn = Connection::new(stream, peer, protocol, &ctx);
            let outcome = tokio::select! {
                _ = cancel.cancelled() => Ok(()),
                outcome = async {
                    match protocol {
                        Protocol::Teltonika => teltonika::session(&mut conn, &ctx).await,
                        Protocol::Jt808 => jt808::session(&mut conn, &ctx).await,
                    }
                } => outcome,
            };
            if let Err(end) = outcome {
                tracing::debug!(%peer, protocol = protocol.name(), %end, "Closed a device connection.");
            }
            metrics.connections_open[protocol.index()].fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}

/// Why a connection ended other than the device closing it cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd {
    #[error("idle for longer than the timeout")]
    Idle,
    #[error("the device closed the connection")]
    Closed,
    #[error("invalid framing: {0}")]
    Invalid(&'static str),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A device connection with its receive buffer.
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub protocol: Protocol,
    buf: Vec<u8>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Connection {
    fn new(stream: TcpStream, peer: SocketAddr, protocol: Protocol, ctx: &Context) -> Self {
        Self {
            stream,
            peer,
            protocol,
            buf: Vec::with_capacity(4096),
            limits: ctx.limits,
            metrics: ctx.metrics.clone(),
        }
    }

    /// The next whole frame according to `framer`. Invalid bytes are skipped when
    /// `resync` (delimited protocols) and end the session otherwise.
    ///
    /// # Errors
    /// [`SessionEnd`] on idle timeout, close, I/O error or unrecoverable framing.
    pub async fn next_frame(
        &mut self,
        framer: impl Fn(&[u8], usize) -> Framing,
        resync: bool,
    ) -> Result<Vec<u8>, SessionEnd> {
        loop {
            match framer(&self.buf, self.limits.max_frame_bytes) {
                Framing::Frame { len } => {
                    self.metrics.frames[self.protocol.index()].fetch_add(1, Relaxed);
                    let len = len.min(self.buf.len());
                    return Ok(self.buf.drain(..len).collect());
                }
                Framing::Invalid { skip, reason } => {
                    self.metrics.reject(self.protocol, reason);
                    if !resync {
                        return Err(SessionEnd::Invalid(reason));
                    }
                    let skip = skip.min(self.buf.len());
                    if skip == 0 {
                        return Err(SessionEnd::Invalid(reason));
                    }
                    self.buf.drain(..skip);
                    continue;
                }
                Framing::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let read =
                tokio::time::timeout(self.limits.idle_timeout, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Err(SessionEnd::Idle),
                Ok(Ok(0)) => return Err(SessionEnd::Closed),
                Ok(Ok(n)) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Writes a reply, bounded by the idle timeout so a stalled device cannot hold a task.
    ///
    /// # Errors
    /// [`SessionEnd`] on timeout or I/O error.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SessionEnd> {
        use tokio::io::AsyncWriteExt;
        match tokio::time::timeout(self.limits.idle_timeout, self.stream.write_all(bytes)).await {
            Err(_) => Err(SessionEnd::Idle),
            Ok(result) => Ok(result?),
        }
    }

    pub fn reject(&self, reason: &'static str) {
        self.metrics.reject(self.protocol, reason);
    }
}
