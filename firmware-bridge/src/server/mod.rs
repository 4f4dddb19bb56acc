//! The TCP side: one listener per protocol, one task per device connection.

mod jt701;
mod jt808;
pub mod lobby;
mod teltonika;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::contract;
use crate::device::DeviceId;
use crate::framing::Framing;
use crate::metrics::Metrics;
use crate::queue::QueueHandle;
use crate::registry::Registry;
use crate::report::Report;
use crate::settings::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Teltonika,
    Jt808,
    Jt701,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Teltonika, Protocol::Jt808, Protocol::Jt701];

    pub fn name(self) -> &'static str {
        match self {
            Self::Teltonika => "teltonika",
            Self::Jt808 => "jt808",
            Self::Jt701 => "jt701",
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
    /// Places for identified connections (`max_connections`).
    pub slots: Arc<Semaphore>,
    /// Places for connections not yet identified (`max_unidentified`).
    pub lobby: Arc<lobby::Lobby>,
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
        let (ticket, _) = ctx.lobby.admit();
        let evicted = ticket.evicted.clone();
        let _ = stream.set_nodelay(true);
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        tracker.spawn(async move {
            let metrics = ctx.metrics.clone();
            metrics.connections_total[protocol.index()].fetch_add(1, Relaxed);
            metrics.connections_open[protocol.index()].fetch_add(1, Relaxed);
            let mut conn = Connection::new(stream, peer, protocol, &ctx, ticket);
            let outcome = tokio::select! {
                _ = cancel.cancelled() => Ok(()),
                _ = evicted.cancelled() => Err(SessionEnd::Evicted),
                outcome = async {
                    match protocol {
                        Protocol::Teltonika => teltonika::session(&mut conn, &ctx).await,
                        Protocol::Jt808 => jt808::session(&mut conn, &ctx).await,
                        Protocol::Jt701 => jt701::session(&mut conn, &ctx).await,
                    }
                } => outcome,
            };
            if let Err(end) = outcome {
                if let Some(reason) = end.reason() {
                    conn.reject(reason);
                }
                tracing::debug!(%peer, protocol = protocol.name(), %end, "Closed a device connection.");
            }
            metrics.connections_open[protocol.index()].fetch_sub(1, Relaxed);
        });
    }
}

/// Why a connection ended other than the device closing it cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd {
    #[error("idle for longer than the timeout")]
    Idle,
    #[error("a frame did not arrive whole within the frame timeout")]
    FrameTimeout,
    #[error("not identified within the identification timeout")]
    NotIdentified,
    #[error("evicted from the full pool of unidentified connections")]
    Evicted,
    #[error("the device closed the connection")]
    Closed,
    #[error("invalid framing: {0}")]
    Invalid(&'static str),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl SessionEnd {
    /// The reject reason counted when a connection ends this way: the ends that say
    /// something about a misbehaving peer (the others are counted where they happen, or
    /// are ordinary).
    fn reason(&self) -> Option<&'static str> {
        match self {
            Self::FrameTimeout => Some("frame_timeout"),
            Self::NotIdentified => Some("identify_timeout"),
            Self::Evicted => Some("evicted_unidentified"),
            _ => None,
        }
    }
}

/// A device connection with its receive buffer, and its place: in the lobby until it
/// identifies itself, then in one of the `max_connections` slots.
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub protocol: Protocol,
    buf: Vec<u8>,
    limits: Limits,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    ticket: Option<lobby::Ticket>,
    slot: Option<OwnedSemaphorePermit>,
    /// Set while unidentified.
    identify_by: Option<Instant>,
    /// When the first byte of the frame being received arrived.
    frame_started: Option<Instant>,
}

impl Connection {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        protocol: Protocol,
        ctx: &Context,
        ticket: lobby::Ticket,
    ) -> Self {
        Self {
            stream,
            peer,
            protocol,
            buf: Vec::with_capacity(4096),
            limits: ctx.limits,
            metrics: ctx.metrics.clone(),
            slots: ctx.slots.clone(),
            ticket: Some(ticket),
            slot: None,
            identify_by: Some(Instant::now() + ctx.limits.identify_timeout),
            frame_started: None,
        }
    }

    /// The device proved who it is: it leaves the lobby for one of the connection slots.
    /// Idempotent.
    ///
    /// # Errors
    /// [`SessionEnd::Refused`] when every slot is taken (counted as refused).
    pub fn identified(&mut self) -> Result<(), SessionEnd> {
        if self.slot.is_some() {
            return Ok(());
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.metrics.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(peer = %self.peer, "Refused a device: the connection cap is reached.");
            return Err(SessionEnd::Refused("connection_cap"));
        };
        self.slot = Some(permit);
        self.ticket = None;
        self.identify_by = None;
        Ok(())
    }

    /// The earliest of the idle, frame and identification deadlines, and the end it means.
    fn deadline(&self) -> (Instant, SessionEnd) {
        let mut deadline = (Instant::now() + self.limits.idle_timeout, SessionEnd::Idle);
        if let Some(started) = self.frame_started {
            let at = started + self.limits.frame_timeout;
            if at < deadline.0 {
                deadline = (at, SessionEnd::FrameTimeout);
            }
        }
        if let Some(at) = self.identify_by {
            if at < deadline.0 {
                deadline = (at, SessionEnd::NotIdentified);
            }
        }
        deadline
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
                    let frame = self.buf.drain(..len).collect();
                    // Bytes already past this frame start the next one now.
                    self.frame_started = (!self.buf.is_empty()).then(Instant::now);
                    return Ok(frame);
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
                    // Stray bytes after a frame (some terminals end one with CR LF) must not
                    // leave the clock running through the quiet minutes before the next.
                    // A trickle of junk meant to hold a place is bounded before identification
                    // by the identify deadline; after it, only a registered device could.
                    if self.buf.is_empty() {
                        self.frame_started = None;
                    }
                    continue;
                }
                Framing::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let (deadline, end) = self.deadline();
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Err(end),
                Ok(Ok(0)) => return Err(SessionEnd::Closed),
                Ok(Ok(n)) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    self.frame_started.get_or_insert_with(Instant::now);
                }
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Writes a reply, bounded like a frame so that a device that stops reading cannot
    /// hold a task.
    ///
    /// # Errors
    /// [`SessionEnd`] on timeout or I/O error.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SessionEnd> {
        use tokio::io::AsyncWriteExt;
        let bound = self.limits.frame_timeout.min(self.limits.idle_timeout);
        match tokio::time::timeout(bound, self.stream.write_all(bytes)).await {
            Err(_) => Err(SessionEnd::FrameTimeout),
            Ok(result) => Ok(result?),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `reports` checked against the wire contract's limits ([`crate::contract`]): what was
    /// dropped or refused is counted, and logged at most once a minute.
    pub fn within_contract(&self, device: &DeviceId, reports: Vec<Report>) -> Vec<Report> {
        let (reports, findings) = contract::check(reports);
        if !findings.is_empty() {
            for field in &findings.dropped_fields {
                self.metrics.drop_field(self.protocol, field);
            }
            for reason in &findings.refused {
                self.metrics.reject(self.protocol, reason);
            }
            if self.metrics.bad_input_log.allow() {
                tracing::warn!(%device, dropped = ?findings.dropped_fields, refused = ?findings.refused, "Dropped values outside the wire contract (logged at most once a minute).");
            }
        }
        reports
    }

    pub fn reject(&self, reason: &'static str) {
        self.metrics.reject(self.protocol, reason);
    }
}
