//! Publish-to-visible-in-API latency while a steady background load runs.
//!
//! Background devices publish single fixes at `--rate` per second, paced in 10 ms slices. A
//! probe device publishes one fix every 100 ms on its own connection and the API is polled
//! until that fix is the device's position: the time from publish to that answer is one
//! latency sample.

use std::time::{Duration, Instant};

use caravan::simulate::Publishers;

use crate::api::Api;
use crate::server;
use crate::traffic;

#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Background fixes per second.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    #[arg(long, default_value_t = 1_000)]
    pub devices: usize,
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

pub async fn run(args: LatencyArgs) -> anyhow::Result<()> {
    let caravan = server::start_caravan(None)?;
    let api = Api::new(&caravan.api, caravan.token.clone());
    let (host, port) = caravan.mqtt.clone();
    let mut ids = traffic::device_ids("lat", args.devices);
    ids.push("probe".to_owned());
    let login = api.register(&ids).await?.login;
    ids.pop();
    let total = (args.rate * args.seconds) as usize;
    let messages = traffic::fixes(&ids, total, 0, chrono::Utc::now());
    let committed_before = api.committed_fixes().await;
    let background = tokio::spawn(paced(
        host.clone(),
        port,
        messages,
        args.rate,
        args.connections,
        login.clone(),
    ));
    let mut probe = Publishers::connect(&host, port, "lat-probe", 1, 10, login).await?;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut seq = 0u64;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let slot = Instant::now();
        seq += 1;
        let payload = traffic::fixes(&["probe".to_owned()], 1, seq - 1, chrono::Utc::now());
        let (_, topic, body) = payload.into_iter().next().unwrap_or_default();
        let sent = Instant::now();
        probe.publish(0, topic, body).await?;
        loop {
            let view = api.device("probe").await?;
            if view["position"]["seq"].as_u64() == Some(seq) {
                samples.push(sent.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("probe fix {seq} not visible after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(rest) = Duration::from_millis(100).checked_sub(slot.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let committed = api.committed_fixes().await - committed_before;
    background.abort();
    probe.disconnect().await;
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "background {:.0} fixes/s committed (asked {}/s); {} probe samples: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        committed as f64 / elapsed,
        args.rate,
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

/// Publishes `messages` at `rate` per second over `connections` connections.
pub async fn paced(
    host: String,
    port: u16,
    messages: Vec<traffic::Message>,
    rate: u64,
    connections: usize,
    login: Option<(String, String)>,
) -> anyhow::Result<()> {
    let mut publishers =
        Publishers::connect(&host, port, "lat-load", connections, 200, login).await?;
    let per_slice = (rate / 100).max(1) as usize;
    let mut slice = tokio::time::interval(Duration::from_millis(10));
    slice.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut messages = messages.into_iter();
    loop {
        slice.tick().await;
        for _ in 0..per_slice {
            let Some((key, topic, payload)) = messages.next() else {
                return Ok(());
            };
            publishers.publish(key, topic, payload).await?;
        }
    }
}
