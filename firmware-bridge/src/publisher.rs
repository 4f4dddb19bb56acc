//! Drains the disk queue to the broker at QoS 1.
//!
//! rumqttc reports each outgoing publish's packet id (`Outgoing::Publish`) in the order the
//! publishes were requested, and `PubAck` by packet id; the publisher pairs them to know
//! which queue entries the broker holds. The session is clean, so after a disconnection
//! nothing rumqttc had in flight is resent by it: the publisher rewinds to the first
//! unacknowledged entry and publishes again from there. The server drops the duplicates
//! this can create by `(device, seq)`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::queue::{segment::Position, Item, QueueReader};
use crate::registry::Registry;
use crate::settings::MqttSettings;
use crate::wire;

/// Publishes in flight at once; also rumqttc's inflight window.
const MAX_IN_FLIGHT: usize = 64;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

struct InFlight {
    end: Position,
    acked: bool,
    is_message: bool,
    /// False for a queued message withheld because its device left the registry.
    sent: bool,
}

pub struct Publisher {
    client: AsyncClient,
    reader: QueueReader,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    connected: bool,
    /// Read from the queue, in order; popped from the front once acknowledged.
    in_flight: VecDeque<InFlight>,
    /// Index (absolute, see `popped`) of publishes not yet given a packet id, in order.
    unassigned: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
    popped: u64,
}

impl Publisher {
    /// The publisher and the MQTT event loop it needs; give both to [`Publisher::run`].
    pub fn new(
        settings: &MqttSettings,
        reader: QueueReader,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
    ) -> (Self, EventLoop) {
        let mut options = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_inflight(MAX_IN_FLIGHT as u16);
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some((user, password)) = &settings.credentials {
            options.set_credentials(user, password);
        }
        if let Some(tls) = &settings.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        let (client, events) = AsyncClient::new(options, MAX_IN_FLIGHT * 2);
        let publisher = Self {
            client,
            reader,
            registry,
            metrics,
            connected: false,
            in_flight: VecDeque::new(),
            unassigned: VecDeque::new(),
            by_pkid: HashMap::new(),
            popped: 0,
        };
        (publisher, events)
    }

    /// Runs until `cancel`; the queue keeps whatever was not acknowledged.
    ///
    /// The rumqttc event loop runs in its own task so that it is never cancelled halfway
    /// through a poll; its events arrive here in order over a channel.
    pub async fn run(mut self, mqtt: EventLoop, cancel: CancellationToken) {
        let (tx, mut events) = tokio::sync::mpsc::channel(MAX_IN_FLIGHT * 4);
        let driver = tokio::spawn(drive(mqtt, tx, cancel.clone()));
        loop {
            self.fill();
            let wants_data = self.connected && self.in_flight.len() < MAX_IN_FLIGHT;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.reader.changed(), if wants_data => {}
                event = events.recv() => match event {
                    Some(Ok(event)) => self.on_event(event),
                    Some(Err(error)) => {
                        if self.connected {
                            tracing::warn!(%error, "Lost the broker; queueing on disk until it is back.");
                        }
                        self.disconnected();
                    }
                    None => break,
                },
            }
        }
        self.reader.save_cursor();
        let _ = self.client.try_disconnect();
        let _ = driver.await;
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                tracing::info!("Connected to the broker.");
                self.connected = true;
                self.metrics.mqtt_connected.store(1, Relaxed);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(index) = self.unassigned.pop_front() {
                    self.by_pkid.insert(pkid, index);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(index) = self.by_pkid.remove(&ack.pkid) {
                    self.ack(index);
                }
            }
            _ => {}
        }
    }

    /// Publishes queued entries while the window has room.
    fn fill(&mut self) {
        while self.connected && self.in_flight.len() < MAX_IN_FLIGHT {
            let item = match self.reader.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(error) => {
                    tracing::error!(%error, "Could not read the disk queue.");
                    return;
                }
            };
            let index = self.popped + self.in_flight.len() as u64;
            match item {
                Item::SegmentEnd(end) => {
                    self.in_flight.push_back(InFlight {
                        end,
                        acked: false,
                        is_message: false,
                        sent: false,
                    });
                    self.ack(index);
                }
                Item::Message(entry, end) if !self.registered(&entry.topic) => {
                    // Queued before the registry changed (the device was removed, or the
                    // queue came from another deployment): the bridge speaks only for the
                    // devices it is configured for.
                    tracing::warn!(topic = %entry.topic, "Dropped a queued message of a device not in the registry.");
                    self.metrics.unregistered_dropped.fetch_add(1, Relaxed);
                    self.in_flight.push_back(InFlight {
                        end,
                        acked: false,
                        is_message: true,
                        sent: false,
                    });
                    self.ack(index);
                }
                Item::Message(entry, end) => {
                    if let Err(error) =
                        self.client
                            .try_publish(entry.topic, QoS::AtLeastOnce, false, entry.payload)
                    {
                        tracing::warn!(%error, "Could not hand a message to the MQTT client.");
                        self.reader.rewind();
                        self.reset();
                        return;
                    }
                    self.in_flight.push_back(InFlight {
                        end,
                        acked: false,
                        is_message: true,
                        sent: true,
                    });
                    self.unassigned.push_back(index);
                }
            }
        }
    }

    fn registered(&self, topic: &str) -> bool {
        wire::device_of_topic(topic).is_some_and(|d| self.registry.contains(d))
    }

    fn ack(&mut self, index: u64) {
        let Some(slot) = index
            .checked_sub(self.popped)
            .and_then(|i| self.in_flight.get_mut(i as usize))
        else {
            return;
        };
        slot.acked = true;
        let mut through = None;
        while self.in_flight.front().is_some_and(|f| f.acked) {
            if let Some(done) = self.in_flight.pop_front() {
                self.popped += 1;
                if done.is_message {
                    if done.sent {
                        self.metrics.published.fetch_add(1, Relaxed);
                    }
                    self.metrics.queue_entries.fetch_sub(1, Relaxed);
                }
                through = Some(done.end);
            }
        }
        if let Some(end) = through {
            self.reader.acked_through(end);
        }
    }

    fn disconnected(&mut self) {
        self.connected = false;
        self.metrics.mqtt_connected.store(0, Relaxed);
        self.reader.rewind();
        self.reset();
    }

    fn reset(&mut self) {
        self.popped += self.in_flight.len() as u64;
        self.in_flight.clear();
        self.unassigned.clear();
        self.by_pkid.clear();
    }
}

/// Polls the MQTT event loop until `cancel`, forwarding events, and waiting with backoff
/// after each connection error (rumqttc reconnects on the next poll).
async fn drive(
    mut events: EventLoop,
    tx: tokio::sync::mpsc::Sender<Result<Event, String>>,
    cancel: CancellationToken,
) {
    let mut retry = RETRY_MIN;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.poll() => event,
        };
        let failed = event.is_err();
        if failed {
            tracing::debug!("The broker is unreachable; retrying in {retry:?}.");
        } else {
            retry = RETRY_MIN;
        }
        if tx.send(event.map_err(|e| e.to_string())).await.is_err() {
            return;
        }
        if failed {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}
