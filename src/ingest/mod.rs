//! MQTT to typed reports: subscribe, decode and validate at the edge, hand off. Nothing else.
//!
//! The event loop is never held up by work: decoding is microseconds, and the only wait is
//! the bounded hand-off to the pipeline, which is the back-pressure the design wants (the
//! broker keeps what we have not yet taken).

mod broker_url;
mod dead_letter;
mod outage;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use broker_url::{BrokerAddr, BrokerUrlError};
pub use dead_letter::render as render_dead_letter;

use crate::health::Health;
use crate::pipeline::{Ack, Delivery, Input, Outbox};
use crate::role::Roles;
use crate::settings::MqttSettings;
use crate::store::DeadLetter;
use crate::telemetry::{decode, Limits, Topic};

/// Room in the queue from the ingest to the pipeline: one slot per MQTT packet id, plus room
/// for the API's requests (see `hand_off`).
pub const HANDOFF_CAPACITY: usize = u16::MAX as usize + 1024;

/// The ingest's broker connection as the committer sees it: acknowledgements and dead letters.
pub struct MqttOutbox {
    client: AsyncClient,
}

impl Outbox for MqttOutbox {
    /// Called on the committer's thread; never waits. The client's request queue is only
    /// drained while the ingest drives the event loop, and the ingest may itself be waiting
    /// on the pipeline, so waiting here could deadlock: the committer keeps what was not
    /// taken and offers it again.
    fn acknowledge(&self, pkid: u16) -> bool {
        let mut publish = Publish::new("", QoS::AtLeastOnce, Vec::new());
        publish.pkid = pkid;
        self.client.try_ack(&publish).is_ok()
    }

    /// At QoS 0: the dead letter is already in the store, and a QoS 1 republish would take a
    /// slot of the client's in-flight window until the broker acknowledged it. A burst of
    /// refused messages then filled the window, the client stopped taking requests, and the
    /// acknowledgements queued behind the dead letters never left: the broker, waiting for
    /// them, stopped delivering, and intake stopped for good.
    fn dead_letter(&self, letter: &DeadLetter) {
        let (topic, payload) = dead_letter::render(letter);
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtMostOnce, false, payload)
        {
            warn!(error = %e, "Could not republish a dead letter; it is kept in the store.");
        }
    }
}

/// The ingest's event loop, to be driven by [`Ingest::run`].
pub struct Ingest {
    client: AsyncClient,
    eventloop: EventLoop,
    limits: Limits,
    health: Arc<Health>,
    /// Whether this instance may (re)connect: the active one among several on one store,
    /// within its lease (`crate::role`); always, for the only instance.
    roles: Arc<Roles>,
}

/// Connects (lazily: the event loop dials) to the broker with a persistent session and manual
/// acknowledgements, so a message is only acknowledged once its effects are committed.
pub fn connect(
    settings: &MqttSettings,
    broker: &BrokerAddr,
    limits: Limits,
    health: Arc<Health>,
) -> (Arc<MqttOutbox>, Ingest) {
    let mut options = MqttOptions::new(&settings.client_id, &broker.host, broker.port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(settings.inflight)
        .set_keep_alive(Duration::from_secs(settings.keep_alive_s.max(5)))
        // Far above the payload limit: an oversize message must reach `decode` to be
        // refused and counted; a packet over this would drop the connection instead.
        .set_max_packet_size(16 * 1024 * 1024, 1024 * 1024);
    if let Some(username) = &settings.username {
        let password = settings.password.as_ref().map_or("", |p| p.0.as_str());
        options.set_credentials(username.clone(), password);
    }
    // Room for an acknowledgement of every packet id that can be outstanding (MQTT has
    // 65,535), plus dead letters, so `try_ack` never fails for want of space: a lost ack would
    // keep its message in flight at the broker until the next reconnect, and enough of them
    // stop delivery altogether. The queue only takes memory for what is in it.
    let capacity = usize::from(u16::MAX) + 4096;
    let (client, eventloop) = AsyncClient::new(options, capacity);
    let outbox = Arc::new(MqttOutbox {
        client: client.clone(),
    });
    let ingest = Ingest {
        client,
        eventloop,
        limits,
        health,
        roles: Roles::single(),
    };
    (outbox, ingest)
}

impl Ingest {
    /// Connects only while `roles` says this instance holds the lease, and drops the
    /// connection the moment it is lost.
    pub fn leased(mut self, roles: Arc<Roles>) -> Self {
        self.roles = roles;
        self
    }

    /// Forwards decoded messages to the pipeline until `cancel`; then keeps the connection up
    /// until `drained` (the committer has queued its last acknowledgements), flushes them and
    /// disconnects. Messages that arrive after `cancel` are not acknowledged: the broker keeps
    /// them for the next start.
    pub async fn run(
        mut self,
        pipeline: mpsc::Sender<Input>,
        cancel: CancellationToken,
        drained: CancellationToken,
    ) {
        let mut pipeline = Some(pipeline);
        let mut paused_warning = None;
        let mut outage = outage::Outage::default();
        let lost = self.roles.lost();
        // The event loop dials on the first poll and on the first poll after an error: a
        // former holder of the lease must never dial, or the broker would hand it the
        // persistent session back from its successor.
        let mut dialing = true;
        loop {
            if dialing && !self.roles.holds() {
                warn!("Not the active instance any more: the broker connection is dropped and not dialled again.");
                return;
            }
            dialing = false;
            let event = tokio::select! {
                biased;
                () = lost.cancelled() => {
                    // No DISCONNECT: flushing it would poll the event loop, which may dial.
                    warn!("Lost the lease: the broker connection is dropped at once.");
                    return;
                }
                () = cancel.cancelled(), if pipeline.is_some() => {
                    pipeline = None;
                    continue;
                }
                () = drained.cancelled() => break,
                event = self.eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    match outage.recovered(std::time::Instant::now()) {
                        Some(down) => info!(
                            down_s = down.as_secs(),
                            "Connected to the MQTT broker again."
                        ),
                        None => info!("Connected to the MQTT broker."),
                    }
                    self.health.set_broker_connected(true);
                    if let Err(e) = self.client.try_subscribe(Topic::FILTER, QoS::AtLeastOnce) {
                        warn!(error = %e, "Could not subscribe to device topics.");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let Some(tx) = &pipeline else { continue };
                    let delivery = self.decode(publish);
                    if !hand_off(tx, delivery, &mut paused_warning).await {
                        pipeline = None;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    dialing = true;
                    self.health.set_broker_connected(false);
                    match outage.failed(std::time::Instant::now()) {
                        outage::Tell::Began => warn!(
                            error = %e,
                            "The MQTT connection failed; retrying every second (reminders once a minute)."
                        ),
                        outage::Tell::Continues { attempts, for_s } => warn!(
                            error = %e, attempts, for_s,
                            "The MQTT broker is still unreachable; retrying every second."
                        ),
                        outage::Tell::Nothing => {}
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = drained.cancelled() => break,
                        () = lost.cancelled() => return,
                    }
                }
            }
        }
        self.disconnect().await;
    }

    fn decode(&self, publish: Publish) -> Delivery {
        let received_at = Utc::now();
        let decoded = decode(&publish.topic, &publish.payload, received_at, &self.limits);
        let ack = (publish.qos != QoS::AtMostOnce).then_some(Ack::Broker(publish.pkid));
        if ack.is_some() {
            self.health.received();
        }
        Delivery {
            topic: publish.topic,
            payload: publish.payload,
            received_at,
            decoded,
            ack,
        }
    }

    /// Sends what is queued (the last acknowledgements go out before the DISCONNECT, in
    /// order) and waits briefly for it to leave.
    async fn disconnect(mut self) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let flushed = async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(1), flushed)
            .await
            .is_err()
        {
            warn!("The broker did not take the disconnect in time.");
        }
        self.health.set_broker_connected(false);
    }
}

/// Hands a message to the pipeline without holding up the event loop, which must keep
/// running to send the acknowledgements that let the broker send more. Returns false when
/// the pipeline has stopped.
async fn hand_off(
    tx: &mpsc::Sender<Input>,
    delivery: Delivery,
    warned_at: &mut Option<std::time::Instant>,
) -> bool {
    match tx.try_send(Input::Delivery(delivery)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        // Only QoS 0 floods (which have no packet ids to bound them) or a flood of API
        // requests can fill the queue; wait rather than lose the message.
        Err(mpsc::error::TrySendError::Full(input)) => {
            if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                warn!(
                    "The pipeline queue is full; reading from the broker pauses until it drains."
                );
                *warned_at = Some(std::time::Instant::now());
            }
            tx.send(input).await.is_ok()
        }
    }
}
