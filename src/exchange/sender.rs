//! One task per peer delivers its outbox: oldest first, a batch at a time, each message
//! signed as it leaves. A peer that is down is retried with a growing pause; what it has
//! taken is marked delivered through the pipeline (the store's one writer), so the next
//! start resumes where the peer stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::message::{common_protocol, Delivery, Hello, Outcome, Receipt, Signed, MAX_BATCH};
use super::Peer;
use crate::evidence::InstanceKey;
use crate::metrics::Metrics;
use crate::pipeline::Input;
use crate::store::{OutboxMessage, StoreReader, Taken, Write};

/// How often an empty outbox is looked at again.
const POLL: Duration = Duration::from_millis(250);
/// A peer whose oldest waiting message is older than this makes `/healthz` degraded.
pub const LATE_AFTER_S: i64 = 600;

/// What `/healthz` and the dashboard show of one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// Messages waiting in its outbox.
    pub waiting: i64,
    /// Age of the oldest waiting message, in seconds.
    pub oldest_s: Option<i64>,
    /// When it last took a message.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Whether the last attempt to reach it worked.
    pub reachable: bool,
    /// Since when attempts have been failing, and why the last one did.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The protocol version agreed with it.
    pub protocol: Option<u32>,
}

/// Every peer's status, written by its sender.
#[derive(Debug, Default)]
pub struct Status {
    peers: Mutex<HashMap<String, PeerStatus>>,
}

impl Status {
    pub fn snapshot(&self) -> HashMap<String, PeerStatus> {
        self.peers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn update(&self, peer: &str, f: impl FnOnce(&mut PeerStatus)) {
        if let Ok(mut peers) = self.peers.lock() {
            f(peers.entry(peer.to_owned()).or_default());
        }
    }

    /// A peer unreachable with messages waiting, or with messages waiting too long.
    pub fn trouble(&self) -> Option<String> {
        let peers = self.snapshot();
        let mut names: Vec<&String> = peers.keys().collect();
        names.sort();
        names.into_iter().find_map(|name| {
            let p = &peers[name];
            if p.waiting > 0 && !p.reachable {
                Some(format!("peer {name} unreachable, {} waiting", p.waiting))
            } else if p.oldest_s.is_some_and(|s| s > LATE_AFTER_S) {
                Some(format!(
                    "peer {name} behind by {} s",
                    p.oldest_s.unwrap_or(0)
                ))
            } else {
                None
            }
        })
    }
}

/// What a sender needs.
#[derive(Clone)]
pub struct Links {
    pub reader: Arc<dyn StoreReader>,
    pub key: Arc<InstanceKey>,
    pub pipeline: mpsc::Sender<Input>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    /// The longest pause between attempts while a peer is down (`[exchange] retry_max_s`).
    pub retry_max: Duration,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("speaks protocol versions {0:?}, none of which this release speaks")]
    NoCommonProtocol(Vec<u32>),
    #[error("answers with another key than the one configured for it")]
    OtherKey,
    #[error("the store: {0}")]
    Store(String),
    #[error("the answer names messages that were not sent")]
    BadReceipt,
}

/// The answer if it is a success; otherwise its status and the start of its body.
async fn accepted(answer: reqwest::Response) -> Result<reqwest::Response, SendError> {
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let body = answer.text().await.unwrap_or_default();
    Err(SendError::Refused {
        status: status.as_u16(),
        body: body.chars().take(300).collect(),
    })
}

/// Delivers `peer`'s outbox until `cancel`.
pub async fn run(peer: Arc<Peer>, links: Links, cancel: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(error) => {
            warn!(%error, peer = %peer.name, "No HTTP client for the exchange; nothing is sent.");
            return;
        }
    };
    let mut sender = Sender {
        peer,
        links,
        client,
        after: 0,
        protocol: None,
    };
    let mut backoff = Duration::from_secs(1);
    while !cancel.is_cancelled() {
        sender.refresh_depth().await;
        let pause = match sender.round().await {
            Ok(true) => {
                backoff = Duration::from_secs(1);
                Duration::ZERO
            }
            Ok(false) => POLL,
            Err(error) => {
                sender.failed(&error);
                sender.protocol = None;
                let pause = backoff;
                backoff = (backoff * 2).min(sender.links.retry_max);
                pause
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

struct Sender {
    peer: Arc<Peer>,
    links: Links,
    client: reqwest::Client,
    /// The highest sequence number the peer has answered for in this run.
    after: i64,
    protocol: Option<u32>,
}

impl Sender {
    fn name(&self) -> &str {
        &self.peer.name
    }

    /// Sends one batch; `Ok(true)` when there was one.
    async fn round(&mut self) -> Result<bool, SendError> {
        let (peer, after) = (self.peer.name.clone(), self.after);
        let reader = self.links.reader.clone();
        let waiting =
            tokio::task::spawn_blocking(move || reader.exchange_waiting(&peer, after, MAX_BATCH))
                .await
                .map_err(|e| SendError::Store(e.to_string()))?
                .map_err(|e| SendError::Store(e.to_string()))?;
        if waiting.is_empty() {
            return Ok(false);
        }
        if self.protocol.is_none() {
            self.protocol = Some(self.hello().await?);
        }
        let key = &self.links.key;
        let delivery = Delivery {
            messages: waiting
                .iter()
                .map(|m| Signed {
                    message: m.message.clone(),
                    signature: key.sign(m.message.as_bytes()),
                })
                .collect(),
        };
        let url = format!("{}/api/v1/exchange/messages", self.peer.url);
        let answer = self.client.post(&url).json(&delivery).send().await?;
        let answer = accepted(answer).await?;
        let receipt: Receipt = answer.json().await?;
        let sent: Vec<i64> = waiting.iter().map(|m| m.seq).collect();
        if receipt.results.iter().any(|o| !sent.contains(&o.seq())) {
            return Err(SendError::BadReceipt);
        }
        let Some(highest) = receipt.results.iter().map(Outcome::seq).max() else {
            return Err(SendError::BadReceipt);
        };
        self.tally(&receipt);
        let taken = waiting
            .iter()
            .filter(|m| m.seq <= highest)
            .map(OutboxMessage::taken)
            .collect();
        self.delivered(highest, taken).await?;
        self.after = highest;
        let name = self.peer.name.clone();
        let protocol = self.protocol;
        self.links.status.update(&name, |s| {
            if !s.reachable {
                info!(peer = %name, "A peer instance is reachable again.");
            }
            s.reachable = true;
            s.failing_since = None;
            s.last_error = None;
            s.delivered_at = Some(Utc::now());
            s.protocol = protocol;
        });
        Ok(true)
    }

    /// Agrees on a protocol version, and checks the peer is who its key says.
    async fn hello(&self) -> Result<u32, SendError> {
        let url = format!("{}/api/v1/exchange/hello", self.peer.url);
        let answer = self.client.get(&url).send().await?;
        let answer = accepted(answer).await?;
        let hello: Hello = answer.json().await?;
        let theirs = crate::evidence::key::parse_public(&hello.key);
        if theirs != Some(self.peer.key) {
            return Err(SendError::OtherKey);
        }
        common_protocol(&hello.protocols).ok_or(SendError::NoCommonProtocol(hello.protocols))
    }

    fn tally(&self, receipt: &Receipt) {
        let mut counts: HashMap<&'static str, u64> = HashMap::new();
        for outcome in &receipt.results {
            let label = match outcome {
                Outcome::Applied { .. } => "applied",
                Outcome::Duplicate { .. } => "duplicate",
                Outcome::Refused { seq, reason } => {
                    warn!(peer = %self.name(), seq, %reason, "A peer instance refused a message.");
                    "refused"
                }
            };
            *counts.entry(label).or_default() += 1;
        }
        for (label, n) in counts {
            self.links.metrics.exchange_sent(self.name(), label, n);
        }
    }

    /// Marks everything up to `seq` delivered, through the store's one writer.
    async fn delivered(&self, seq: i64, taken: Vec<Taken>) -> Result<(), SendError> {
        let (reply, done) = oneshot::channel();
        let writes = vec![Write::Delivered {
            peer: self.peer.name.clone(),
            seq,
            taken,
            at: Utc::now(),
        }];
        let stopping = || SendError::Store("the pipeline is stopping".into());
        self.links
            .pipeline
            .send(Input::Store { writes, reply })
            .await
            .map_err(|_| stopping())?;
        done.await.map_err(|_| stopping())
    }

    fn failed(&self, error: &SendError) {
        self.links.metrics.exchange_sent(self.name(), "failed", 1);
        let text = error.to_string();
        let name = self.peer.name.clone();
        self.links.status.update(&name, |s| {
            if s.reachable || s.failing_since.is_none() {
                warn!(peer = %name, error = %text, "A peer instance cannot be reached; its messages wait in the outbox.");
            }
            s.reachable = false;
            s.failing_since.get_or_insert_with(Utc::now);
            s.last_error = Some(text);
        });
    }

    async fn refresh_depth(&self) {
        let (peer, reader) = (self.peer.name.clone(), self.links.reader.clone());
        let depth = tokio::task::spawn_blocking(move || reader.exchange_depth(&peer)).await;
        let Ok(Ok(depth)) = depth else {
            return;
        };
        let now = Utc::now().timestamp_millis();
        let oldest_s = depth.oldest_ms.map(|ms| (now - ms).max(0) / 1000);
        self.links
            .metrics
            .set_exchange_outbox(self.name(), depth.waiting, oldest_s.unwrap_or(0));
        let delivered_at = depth
            .delivered_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        self.links.status.update(self.name(), |s| {
            s.waiting = depth.waiting;
            s.oldest_s = oldest_s;
            s.delivered_at = s.delivered_at.max(delivered_at);
        });
    }
}
