//! One device connection: CONNECT and its credential, then PUBLISHes handed to the pipeline
//! and acknowledged once committed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Utc;
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PubAck, Publish, QoS, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::Shared;
use crate::auth::account::{Account, AccountKind};
use crate::pipeline::{Ack, Delivery, Input};
use crate::telemetry::{decode, Decoded, DeviceId, Reject, RejectReason, Topic};

/// The largest packet a device may send. Above the ingest's payload limit on purpose, so an
/// oversize message reaches `decode` and is refused with a reason; a larger packet closes
/// the connection.
const MAX_PACKET: usize = 1024 * 1024;
/// The largest CONNECT: it carries only an id, a credential and a small will.
const MAX_CONNECT: usize = 16 * 1024;
/// Messages of one connection waiting for their commit. Past it the session stops reading
/// the socket until acknowledgements come back: the device's own in-flight window and TCP
/// hold the rest.
const MAX_WAITING: usize = 1024;
/// How long a session without keep-alive may stay silent.
const MAX_SILENCE: Duration = Duration::from_secs(3600);
/// How long a gateway's binding to a device is trusted before it is read again.
const BINDING_TTL: Duration = Duration::from_secs(60);
/// How long a stopping session waits to hand its last acknowledgements over.
const FLUSH_DEADLINE: Duration = Duration::from_secs(1);

/// Where a session's acknowledgements arrive: packet ids of committed messages, in order, a
/// commit's worth at a time. Unbounded, yet it never holds more than the session's
/// `MAX_WAITING` messages waiting for their commit.
type AckQueue = Arc<mpsc::UnboundedSender<Vec<u16>>>;

/// A QoS 1 message of a device connection, acknowledged on that connection after commit.
#[derive(Clone, Debug)]
pub struct DeviceAck {
    pkid: u16,
    to: AckQueue,
}

#[cfg(test)]
impl DeviceAck {
    /// A connection's acknowledgement queue: what makes acknowledgements on it, and what
    /// receives them.
    pub(crate) fn queue() -> (impl Fn(u16) -> DeviceAck, mpsc::UnboundedReceiver<Vec<u16>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let to = Arc::new(tx);
        let ack = move |pkid| DeviceAck {
            pkid,
            to: to.clone(),
        };
        (ack, rx)
    }
}

/// The device acknowledgements of one commit, gathered by connection: each session is woken
/// once per commit, not once per message, and writes all its PUBACKs at once.
#[derive(Default)]
pub struct DeviceAcks {
    /// By the address of the session's queue, which identifies the session.
    sessions: HashMap<usize, (AckQueue, Vec<u16>)>,
}

impl DeviceAcks {
    /// Adds an acknowledgement after those of its connection already added.
    pub fn push(&mut self, ack: DeviceAck) {
        let key = Arc::as_ptr(&ack.to) as usize;
        let (_, pkids) = self
            .sessions
            .entry(key)
            .or_insert_with(|| (ack.to, Vec::new()));
        pkids.push(ack.pkid);
    }

    /// Hands each connection its acknowledgements. Never waits; if a connection is gone its
    /// device did not get those PUBACKs and sends the messages again, which is harmless.
    pub fn send(self) {
        for (to, pkids) in self.sessions.into_values() {
            let _ = to.send(pkids);
        }
    }
}

/// The session's links to the rest of Caravan, and its stop signals.
pub(super) struct Ends {
    pub pipeline: mpsc::Sender<Input>,
    /// Stop reading: the server is stopping.
    pub stop: CancellationToken,
    /// Everything handed to the pipeline has been committed and acknowledged.
    pub drained: CancellationToken,
}

/// Who is speaking on a connection.
enum Speaker {
    Device(DeviceId),
    Gateway {
        name: String,
        /// Devices this gateway may or may not speak for, and when that was read.
        bindings: HashMap<DeviceId, (bool, Instant)>,
    },
}

impl Speaker {
    fn name(&self) -> &str {
        match self {
            Self::Device(id) => id.as_str(),
            Self::Gateway { name, .. } => name,
        }
    }
}

/// Why a session ended; a will is published only when the device vanished.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Disconnected,
    Vanished(&'static str),
    Replaced,
    Stopping,
}

pub(super) async fn run<S>(
    mut stream: S,
    peer: SocketAddr,
    pending: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    ends: Ends,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut buf = BytesMut::with_capacity(4096);
    let connect =
        tokio::time::timeout(shared.connect_timeout, read_connect(&mut stream, &mut buf)).await;
    let Ok(Some(connect)) = connect else {
        shared.metrics.mqtt_connect("refused_protocol");
        return;
    };
    let speaker = match authenticate(&connect, &shared).await {
        Ok(speaker) => speaker,
        Err((code, outcome)) => {
            shared.metrics.mqtt_connect(outcome);
            debug!(%peer, outcome, "Refused an MQTT connection.");
            let _ = write(&mut stream, Packet::ConnAck(ConnAck::new(code, false))).await;
            return;
        }
    };
    drop(pending);
    shared.metrics.mqtt_connect("accepted");
    // A device has one session; a gateway one per client id (its connection pool).
    let slot = match &speaker {
        Speaker::Device(_) => String::new(),
        Speaker::Gateway { .. } => connect.client_id.clone(),
    };
    let (id, replaced) = shared.sessions.open(speaker.name(), &slot);
    let username = speaker.name().to_owned();
    info!(%peer, username, "An MQTT client connected.");
    // A persistent session holds nothing here (nothing is routed to devices), so it is
    // always "present": the device keeps resending what it has no PUBACK for.
    let connack = ConnAck::new(ConnectReturnCode::Success, !connect.clean_session);
    if write(&mut stream, Packet::ConnAck(connack)).await.is_err() {
        shared.sessions.close(&username, &slot, id);
        return;
    }
    let keep_alive = match connect.keep_alive {
        0 => MAX_SILENCE,
        s => Duration::from_secs(u64::from(s)) * 3 / 2,
    };
    let mut session = Session {
        speaker,
        will: connect.last_will,
        shared: shared.clone(),
        pipeline: ends.pipeline.clone(),
        waiting: 0,
        acks: {
            let (tx, rx) = mpsc::unbounded_channel();
            (Arc::new(tx), rx)
        },
    };
    let end = session
        .serve(&mut stream, buf, keep_alive, &replaced, &ends)
        .await;
    shared.sessions.close(&username, &slot, id);
    if let End::Vanished(why) = end {
        debug!(username, why, "An MQTT client vanished.");
        session.publish_will().await;
    }
    let _ = stream.shutdown().await;
}

/// Reads bytes until one whole CONNECT has arrived; `None` for anything else.
async fn read_connect<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Option<Connect> {
    loop {
        match Packet::read(buf, MAX_CONNECT) {
            Ok(Packet::Connect(connect)) => return Some(connect),
            Ok(_) => return None,
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(_) => return None,
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// Checks the credential against the account; the refusal says which return code to send
/// and how to count it.
async fn authenticate(
    connect: &Connect,
    shared: &Shared,
) -> Result<Speaker, (ConnectReturnCode, &'static str)> {
    let Some(login) = &connect.login else {
        return Err((ConnectReturnCode::NotAuthorized, "refused_anonymous"));
    };
    let reader = shared.reader.clone();
    let username = login.username.clone();
    let account = tokio::task::spawn_blocking(move || reader.account(&username))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let refused = (
        ConnectReturnCode::BadUserNamePassword,
        "refused_credentials",
    );
    let account: Account = account.ok_or(refused)?;
    // Hashing is microseconds; no need to leave the task for it.
    if !account.admits(&login.password) {
        return Err(refused);
    }
    match account.kind {
        AccountKind::Device => DeviceId::parse(&account.username)
            .map(Speaker::Device)
            .map_err(|_| refused),
        AccountKind::Gateway => Ok(Speaker::Gateway {
            name: account.username,
            bindings: HashMap::new(),
        }),
    }
}

struct Session {
    speaker: Speaker,
    will: Option<LastWill>,
    shared: Arc<Shared>,
    pipeline: mpsc::Sender<Input>,
    /// Messages handed to the pipeline and not yet acknowledged.
    waiting: usize,
    acks: (AckQueue, mpsc::UnboundedReceiver<Vec<u16>>),
}

impl Session {
    async fn serve<S>(
        &mut self,
        stream: &mut S,
        mut buf: BytesMut,
        keep_alive: Duration,
        replaced: &CancellationToken,
        ends: &Ends,
    ) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        // The deadline moves only when a whole packet has arrived, so a client trickling
        // bytes cannot hold the connection open forever.
        let mut deadline = tokio::time::Instant::now() + keep_alive;
        let mut out = BytesMut::new();
        loop {
            while self.waiting < MAX_WAITING && !ends.stop.is_cancelled() {
                match Packet::read(&mut buf, MAX_PACKET) {
                    Ok(packet) => {
                        deadline = tokio::time::Instant::now() + keep_alive;
                        match self.handle(packet, &mut out).await {
                            Ok(()) => {}
                            Err(end) => return end,
                        }
                    }
                    Err(rumqttc::Error::InsufficientBytes(_)) => break,
                    Err(_) => {
                        self.shared.metrics.mqtt_connect("closed_protocol_error");
                        return End::Vanished("protocol error");
                    }
                }
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                    return End::Vanished("write failed");
                }
                out.clear();
            }
            let reading = self.waiting < MAX_WAITING && !ends.stop.is_cancelled();
            tokio::select! {
                biased;
                Some(pkids) = self.acks.1.recv() => {
                    self.acknowledge(&pkids, &mut out);
                    // What other commits acknowledged meanwhile goes out in the same write.
                    while let Ok(pkids) = self.acks.1.try_recv() {
                        self.acknowledge(&pkids, &mut out);
                    }
                }
                () = replaced.cancelled() => return End::Replaced,
                () = ends.drained.cancelled() => {
                    self.flush_acks(stream).await;
                    return End::Stopping;
                }
                () = ends.stop.cancelled(), if !ends.stop.is_cancelled() => {}
                read = stream.read_buf(&mut buf), if reading => match read {
                    Ok(0) | Err(_) => return End::Vanished("connection closed"),
                    Ok(_) => {}
                },
                () = tokio::time::sleep_until(deadline), if reading => {
                    return End::Vanished("keep-alive expired");
                }
            }
        }
    }

    /// Sends the acknowledgements that arrived, within a short deadline (the client may not
    /// be reading).
    async fn flush_acks<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) {
        let mut out = BytesMut::new();
        while let Ok(pkids) = self.acks.1.try_recv() {
            self.acknowledge(&pkids, &mut out);
        }
        let flush = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        let _ = tokio::time::timeout(FLUSH_DEADLINE, flush).await;
    }

    fn acknowledge(&mut self, pkids: &[u16], out: &mut BytesMut) {
        self.waiting = self.waiting.saturating_sub(pkids.len());
        for &pkid in pkids {
            push(out, Packet::PubAck(PubAck::new(pkid)));
        }
    }

    async fn handle(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), End> {
        match packet {
            Packet::Publish(publish) => self.publish(publish).await,
            Packet::PingReq => {
                push(out, Packet::PingResp);
                Ok(())
            }
            Packet::Subscribe(subscribe) => {
                // Nothing is routed to clients here: refuse every filter.
                let codes = vec![SubscribeReasonCode::Failure; subscribe.filters.len()];
                push(out, Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
                Ok(())
            }
            Packet::Unsubscribe(unsubscribe) => {
                push(out, Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
                Ok(())
            }
            Packet::Disconnect => Err(End::Disconnected),
            // Acknowledgements of publishes we never send, and a second CONNECT.
            Packet::Connect(_) => Err(End::Vanished("second CONNECT")),
            _ => Ok(()),
        }
    }

    async fn publish(&mut self, publish: Publish) -> Result<(), End> {
        let ack = match publish.qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Ack::Device(DeviceAck {
                pkid: publish.pkid,
                to: self.acks.0.clone(),
            })),
            // Not part of the wire contract; a client that insists is closed.
            QoS::ExactlyOnce => return Err(End::Vanished("QoS 2 publish")),
        };
        let delivery = self
            .delivery(&publish.topic, publish.payload, ack.clone())
            .await;
        if self.pipeline.send(Input::Delivery(delivery)).await.is_err() {
            return Err(End::Stopping);
        }
        if ack.is_some() {
            self.waiting += 1;
            self.shared.health.received();
        }
        Ok(())
    }

    /// Decodes the message if the speaker may publish on its topic; otherwise a delivery
    /// that carries only the `foreign_device` refusal, so it is counted and dead-lettered.
    async fn delivery(&mut self, topic: &str, payload: bytes::Bytes, ack: Option<Ack>) -> Delivery {
        let received_at = Utc::now();
        let decoded = match Topic::parse(topic) {
            Ok(parsed) if !self.may_speak_for(&parsed.device_id).await => {
                let detail = format!(
                    "published on {topic} by {}, which may not speak for {}",
                    self.speaker.name(),
                    parsed.device_id
                );
                Decoded {
                    device_id: Some(parsed.device_id),
                    reports: Vec::new(),
                    rejects: vec![(Reject::new(RejectReason::ForeignDevice, detail), None)],
                }
            }
            _ => decode(topic, &payload, received_at, &self.shared.limits),
        };
        Delivery {
            topic: topic.to_owned(),
            payload,
            received_at,
            decoded,
            ack,
        }
    }

    async fn may_speak_for(&mut self, device: &DeviceId) -> bool {
        let (name, bindings) = match &mut self.speaker {
            Speaker::Device(id) => return id == device,
            Speaker::Gateway { name, bindings } => (name.clone(), bindings),
        };
        if let Some((bound, at)) = bindings.get(device) {
            if at.elapsed() < BINDING_TTL {
                return *bound;
            }
        }
        let reader = self.shared.reader.clone();
        let lookup = device.as_str().to_owned();
        let account = tokio::task::spawn_blocking(move || reader.account(&lookup))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let bound = account.is_some_and(|a| {
            a.kind == AccountKind::Device && a.gateway.as_deref() == Some(name.as_str())
        });
        // A gateway naming many foreign devices must not grow this without bound.
        if bindings.len() > 100_000 {
            bindings.clear();
        }
        bindings.insert(device.clone(), (bound, Instant::now()));
        bound
    }

    /// The device vanished: its will (`offline` on its own `conn` topic) goes in like any
    /// message of its own, and is refused like one if it names another device.
    async fn publish_will(&mut self) {
        let Some(will) = self.will.take() else { return };
        let delivery = self.delivery(&will.topic, will.message, None).await;
        let _ = self.pipeline.send(Input::Delivery(delivery)).await;
    }
}

fn push(out: &mut BytesMut, packet: Packet) {
    // Only our own small, well-formed packets are written here; they always fit.
    let _ = packet.write(out, MAX_PACKET);
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, packet: Packet) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    push(&mut out, packet);
    stream.write_all(&out).await?;
    stream.flush().await
}
