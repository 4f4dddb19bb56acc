//! Load: pre-rendered wire-contract messages, publishers that push them as fast as the broker
//! takes them, and the counters that watch them arrive.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use caravan::simulate::Publishers;
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// One message to publish: the connection key (the device index), topic and payload.
pub type Message = (usize, String, Vec<u8>);

pub fn device_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:06}")).collect()
}

fn fix_json(seq: u64, t: DateTime<Utc>, i: usize, k: u64) -> String {
    // Spread over the region's corridors: 36–46° N, 60–80° E.
    let lat = 36.0 + (i % 100) as f64 * 0.1 + k as f64 * 1e-4;
    let lon = 60.0 + (i / 100 % 200) as f64 * 0.1;
    format!(
        r#"{{"seq":{seq},"t":"{}","lat":{lat:.6},"lon":{lon:.6},"speed_kmh":48.5,"heading_deg":92,"hdop":0.9,"sats":11}}"#,
        t.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// `total` single fixes, round-robin over the devices, seqs from `seq_base + 1` per device.
pub fn fixes(devices: &[String], total: usize, seq_base: u64, t: DateTime<Utc>) -> Vec<Message> {
    (0..total)
        .map(|k| {
            let i = k % devices.len();
            let seq = seq_base + (k / devices.len()) as u64 + 1;
            let topic = format!("caravan/v1/dev/{}/pos", devices[i]);
            (i, topic, fix_json(seq, t, i, seq).into_bytes())
        })
        .collect()
}

/// One backlog array per device: `per_device` fixes every `every_s` seconds, ending at `end`.
pub fn backlogs(
    devices: &[String],
    per_device: usize,
    every_s: i64,
    end: DateTime<Utc>,
) -> Vec<Message> {
    devices
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let items: Vec<String> = (0..per_device)
                .map(|k| {
                    let t = end - chrono::Duration::seconds(every_s * (per_device - k) as i64);
                    fix_json(k as u64 + 1, t, i, k as u64)
                })
                .collect();
            let payload = format!("[{}]", items.join(","));
            (i, format!("caravan/v1/dev/{id}/pos"), payload.into_bytes())
        })
        .collect()
}

/// Publishes every message, QoS 1, over `connections` connections (one task each; a device
/// always on the same connection). Returns when all are acknowledged by the broker.
///
/// # Errors
/// A connection failed.
pub async fn publish_all(
    host: &str,
    port: u16,
    messages: Vec<Message>,
    connections: usize,
    inflight: u16,
    login: Option<(String, String)>,
) -> anyhow::Result<()> {
    let mut lanes: Vec<Vec<Message>> = (0..connections).map(|_| Vec::new()).collect();
    for message in messages {
        lanes[message.0 % connections].push(message);
    }
    let mut tasks = Vec::new();
    for (k, lane) in lanes.into_iter().enumerate() {
        let prefix = format!("load-{}-{k}", std::process::id());
        let mut publishers =
            Publishers::connect(host, port, &prefix, 1, inflight, login.clone()).await?;
        tasks.push(tokio::spawn(async move {
            for (key, topic, payload) in lane {
                publishers.publish(key, topic, payload).await?;
            }
            publishers.settle(Duration::from_secs(300)).await;
            publishers.disconnect().await;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// A plain QoS 1 subscriber to every device topic that counts what it receives: the
/// broker-only baseline.
///
/// # Errors
/// It did not connect within 10 s.
pub async fn counting_subscriber(host: &str, port: u16) -> anyhow::Result<Arc<AtomicU64>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut options = MqttOptions::new(format!("load-count-{}", std::process::id()), host, port);
    options.set_max_packet_size(16 * 1024 * 1024, 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let counter = count.clone();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    client
        .subscribe("caravan/v1/dev/+/+", QoS::AtLeastOnce)
        .await
        .context("subscribing")?;
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .context("the counting subscriber did not get its SUBACK")??;
    std::mem::forget(client);
    Ok(count)
}

/// How a count rose to its target.
#[derive(Debug, Default)]
pub struct Trace {
    /// (seconds since the start, count).
    pub points: Vec<(f64, u64)>,
    pub reached: bool,
}

impl Trace {
    /// Seconds until the count reached `target` (the last sample).
    pub fn seconds(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    /// The rate from the start until the count last grew: what was sustained before the
    /// count stalled (when it did), or overall.
    pub fn while_progressing(&self) -> f64 {
        let last = self.points.last().map_or(0, |p| p.1);
        let grew = self
            .points
            .iter()
            .find(|p| p.1 == last)
            .map_or(0.0, |p| p.0);
        if grew > 0.0 {
            last as f64 / grew
        } else {
            0.0
        }
    }

    /// The rate between 10 % and 90 % of `target`, which leaves out start-up and the tail.
    pub fn sustained(&self, target: u64) -> f64 {
        let at = |share: f64| {
            let goal = (target as f64 * share) as u64;
            self.points.iter().find(|p| p.1 >= goal).copied()
        };
        match (at(0.1), at(0.9)) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0),
            _ => 0.0,
        }
    }
}

/// Samples `count` every `every` until it reaches `target` or `timeout` passes.
pub async fn watch<F, Fut>(
    started: Instant,
    target: u64,
    every: Duration,
    timeout: Duration,
    mut count: F,
) -> Trace
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u64>,
{
    let mut trace = Trace::default();
    loop {
        let n = count().await;
        trace.points.push((started.elapsed().as_secs_f64(), n));
        if n >= target {
            trace.reached = true;
            return trace;
        }
        if started.elapsed() > timeout {
            return trace;
        }
        tokio::time::sleep(every).await;
    }
}
