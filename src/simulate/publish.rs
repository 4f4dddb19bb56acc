//! A few MQTT connections that many simulated devices share, publishing QoS 1 and counting
//! the broker's acknowledgements.
//!
//! Real trackers hold one connection each; the simulator multiplexes its devices over a small
//! pool (one device always on the same connection, so its messages stay in order), which is
//! what a protocol gateway such as `firmware-bridge` does too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub struct Publishers {
    clients: Vec<AsyncClient>,
    acked: Arc<AtomicU64>,
    published: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl Publishers {
    /// Opens `count` connections named `{client_prefix}-{k}` (with `login`, the gateway
    /// account they publish as), each allowing `inflight` unacknowledged messages, and waits
    /// (10 s at most) until all are connected.
    ///
    /// # Errors
    /// A connection was not accepted in time.
    pub async fn connect(
        host: &str,
        port: u16,
        client_prefix: &str,
        count: usize,
        inflight: u16,
        login: Option<(String, String)>,
    ) -> anyhow::Result<Publishers> {
        let acked = Arc::new(AtomicU64::new(0));
        let (connected_tx, mut connected) = mpsc::channel(count.max(1));
        let mut clients = Vec::new();
        let mut tasks = Vec::new();
        for k in 0..count.max(1) {
            let mut options = MqttOptions::new(format!("{client_prefix}-{k}"), host, port);
            options
                .set_inflight(inflight.max(1))
                .set_keep_alive(Duration::from_secs(30))
                .set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024)
                // A persistent session: after a reconnect the client resends what has no
                // PUBACK, as the wire contract asks of every device.
                .set_clean_session(false);
            if let Some((username, password)) = &login {
                options.set_credentials(username.clone(), password.clone());
            }
            let (client, mut eventloop) = AsyncClient::new(options, usize::from(inflight) * 2);
            let acked = acked.clone();
            let connected_tx = connected_tx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = connected_tx.try_send(());
                        }
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect))
                        | Err(ConnectionError::RequestsDone) => break,
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }));
            clients.push(client);
        }
        for _ in 0..clients.len() {
            tokio::time::timeout(Duration::from_secs(10), connected.recv())
                .await
                .ok()
                .flatten()
                .with_context(|| format!("connecting to the MQTT broker at {host}:{port}"))?;
        }
        Ok(Publishers {
            clients,
            acked,
            published: 0,
            tasks,
        })
    }

    /// Queues one QoS 1 message on the connection that carries `key` (a device index or
    /// hash); waits only when that connection's queue is full.
    ///
    /// # Errors
    /// The connection's event loop has stopped.
    pub async fn publish(
        &mut self,
        key: usize,
        topic: String,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let client = &self.clients[key % self.clients.len()];
        if client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .is_err()
        {
            bail!("the MQTT connection is closed");
        }
        self.published += 1;
        Ok(())
    }

    pub fn published(&self) -> u64 {
        self.published
    }

    /// Messages the broker has acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// A counter that follows [`Publishers::acked`], for callers that measure from elsewhere.
    pub fn acked_counter(&self) -> Arc<AtomicU64> {
        self.acked.clone()
    }

    /// Waits until every published message is acknowledged, or `timeout`; true if all were.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.acked() < self.published {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Disconnects every connection and waits briefly for the event loops to end.
    pub async fn disconnect(self) {
        for client in &self.clients {
            let _ = client.try_disconnect();
        }
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                break;
            }
        }
    }
}
