//! Memory: the backlog burst (drain time, peak RSS, nothing lost) and the resident memory
//! each tracked device costs.

use std::time::{Duration, Instant};

use crate::api::Api;
use crate::server::{self, Server};
use crate::traffic;

#[derive(Debug, clap::Args)]
pub struct BurstArgs {
    #[arg(long, default_value_t = 20_000)]
    pub devices: usize,
    /// Fixes in each device's backlog (60 = 30 minutes at one fix per 30 s).
    #[arg(long, default_value_t = 60)]
    pub fixes_per_backlog: usize,
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Through a Mosquitto started here instead of Caravan's own endpoint.
    #[arg(long)]
    pub mosquitto: bool,
}

#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    #[arg(long, default_value_t = 100_000)]
    pub devices: usize,
    /// Fixes per second while giving every device its first position.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Through a Mosquitto started here instead of Caravan's own endpoint.
    #[arg(long)]
    pub mosquitto: bool,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

type Login = Option<(String, String)>;

async fn start(
    devices: &[String],
    mqtt_url: Option<&str>,
) -> anyhow::Result<(Server, Api, f64, Login)> {
    let caravan = server::start_caravan(mqtt_url)?;
    let api = Api::new(&caravan.api, caravan.token.clone());
    let began = Instant::now();
    let login = api.register(devices).await?.login;
    let seconds = began.elapsed().as_secs_f64();
    Ok((caravan, api, seconds, login))
}

/// A Mosquitto for Caravan to use instead of its own endpoint, when asked for, and its
/// URL; the process lives as long as the returned handle.
fn broker(mosquitto: bool) -> anyhow::Result<(Option<server::Process>, Option<String>)> {
    if !mosquitto {
        return Ok((None, None));
    }
    let (process, port) = server::start_mosquitto(100)?;
    Ok((Some(process), Some(format!("mqtt://127.0.0.1:{port}"))))
}

pub async fn burst(args: BurstArgs) -> anyhow::Result<()> {
    let ids = traffic::device_ids("burst", args.devices);
    let (_mosquitto, url) = broker(args.mosquitto)?;
    let (caravan, api, registering, login) = start(&ids, url.as_deref()).await?;
    let (rss_before, _) = caravan.process.memory_kib()?;
    let every_s = 1800 / args.fixes_per_backlog.max(1) as i64;
    let messages = traffic::backlogs(&ids, args.fixes_per_backlog, every_s, chrono::Utc::now());
    let bytes: usize = messages.iter().map(|m| m.2.len()).sum();
    let target = (args.devices * args.fixes_per_backlog) as u64;
    let (host, port) = caravan.mqtt.clone();
    let started = Instant::now();
    let connections = args.connections;
    let publish = tokio::spawn(async move {
        traffic::publish_all(&host, port, messages, connections, 100, login).await
    });
    let timeout = Duration::from_secs(args.timeout_s);
    let trace = traffic::watch(started, target, Duration::from_millis(100), timeout, || {
        api.committed_fixes()
    })
    .await;
    let drained = trace.seconds();
    if trace.reached {
        publish.await??;
    } else {
        publish.abort();
    }
    let (rss_after, peak) = caravan.process.memory_kib()?;
    let committed = api.committed_fixes().await;
    let rejects = api.metric("caravan_rejects_total").await;
    let duplicates = api.metric("caravan_duplicates_total").await;
    println!(
        "registered {} devices in {registering:.1} s; published {} backlog arrays ({} fixes, {:.0} MiB)",
        args.devices,
        args.devices,
        target,
        bytes as f64 / 1048576.0
    );
    println!(
        "drained in {drained:.1} s ({:.0} fixes/s); committed {committed} of {target} (lost {}), rejects {rejects}, duplicates {duplicates}",
        committed as f64 / drained.max(1e-9),
        target.saturating_sub(committed)
    );
    println!(
        "server RSS {:.0} MiB before, {:.0} MiB after, peak (VmHWM) {:.0} MiB",
        mib(rss_before),
        mib(rss_after),
        mib(peak)
    );
    Ok(())
}

pub async fn run(args: MemoryArgs) -> anyhow::Result<()> {
    let (_mosquitto, url) = broker(args.mosquitto)?;
    let caravan = server::start_caravan(url.as_deref())?;
    let api = Api::new(&caravan.api, caravan.token.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (empty, _) = caravan.process.memory_kib()?;
    let ids = traffic::device_ids("mem", args.devices);
    let began = Instant::now();
    let login = api.register(&ids).await?.login;
    let registering = began.elapsed().as_secs_f64();
    let (registered, _) = caravan.process.memory_kib()?;
    let messages = traffic::fixes(&ids, ids.len(), 0, chrono::Utc::now());
    let (host, port) = caravan.mqtt.clone();
    // Paced, as a fleet reports; the endpoint's PUBACK after commit bounds each connection.
    crate::latency::paced(host, port, messages, args.rate, args.connections, login).await?;
    let target = ids.len() as u64;
    let trace = traffic::watch(
        Instant::now(),
        target,
        Duration::from_millis(100),
        Duration::from_secs(300),
        || api.committed_fixes(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (tracked, peak) = caravan.process.memory_kib()?;
    let per = |kib: u64| (kib.saturating_sub(empty) * 1024) as f64 / args.devices as f64;
    println!(
        "{} devices registered in {registering:.1} s, each with one committed fix ({}, {} broker); server RSS: empty {:.1} MiB, registered {:.1} MiB, tracked {:.1} MiB, peak {:.1} MiB",
        args.devices,
        if trace.reached { "all committed" } else { "NOT all committed" },
        if args.mosquitto { "Mosquitto" } else { "embedded" },
        mib(empty),
        mib(registered),
        mib(tracked),
        mib(peak)
    );
    println!(
        "per device: {:.0} B registered, {:.0} B with a position",
        per(registered),
        per(tracked)
    );
    Ok(())
}
