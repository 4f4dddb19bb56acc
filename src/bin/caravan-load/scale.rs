//! The scale table: fleets of trucks on transits, from a store written beforehand.
//!
//! For each fleet size, rounds alternate three runs on this machine: Caravan on an empty
//! store (the start-up baseline), Caravan on the fleet's store (start-up, memory, a
//! throughput run of the fleet's next fixes, then the stop), and Mosquitto alone
//! with a counting subscriber for the same messages (the throughput baseline). Every figure
//! is reported beside its baseline from the same round.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};

use crate::api::{stored_reports, Api};
use crate::fleet::{TransitFleet, PERIOD_S};
use crate::server::{self, Server};
use crate::throughput::cpu_seconds;
use crate::traffic;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Fleet sizes, comma-separated: devices, each on an open transit.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub devices: Vec<usize>,
    /// Fixes stored per device before the first start.
    #[arg(long, default_value_t = 10)]
    pub fixes: usize,
    /// Alternating rounds per fleet size.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Fixes published per throughput run (the fleet's next fixes, round-robin).
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    #[arg(long, default_value_t = 100)]
    pub inflight: u16,
    /// Give up on a start or a throughput run after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// Only write the store of the first fleet size into this (new) directory and stop: a
    /// store to profile start-up on by hand (`caravan --data-dir DIR serve`).
    #[arg(long)]
    pub seed_into: Option<std::path::PathBuf>,
}

/// One start of Caravan, measured from the launch.
#[derive(Debug, Default, Clone, Copy)]
struct Start {
    /// Launch to `/healthz` 200.
    healthz_s: f64,
    /// Launch to `tracking: ok` (every device's state restored).
    ready_s: f64,
    /// CPU seconds spent until then.
    cpu_s: f64,
    rss_mib: f64,
    /// SIGTERM to exit (`None`: not within the limit).
    stop_s: Option<f64>,
    /// `signal_lost` raised by this start (the first silence check runs at once).
    signal_lost: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    fixes_per_s: f64,
    cpu_us_per_fix: f64,
    /// Caravan's RSS once the run is committed: the fleet as it drives, with its history
    /// windows and recent speeds filled (a restored fleet may hold less).
    rss_after_mib: f64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Polls `/healthz` until it answers 200, then until it says `tracking: ok`.
async fn wait_ready(server: &Server, launched: Instant, limit: Duration) -> anyhow::Result<Start> {
    let http = reqwest::Client::new();
    let url = format!("{}/healthz", server.api);
    let mut start = Start::default();
    loop {
        if launched.elapsed() > limit {
            bail!("not ready within {} s", limit.as_secs());
        }
        if let Ok(response) = http.get(&url).send().await {
            if response.status().is_success() {
                if start.healthz_s == 0.0 {
                    start.healthz_s = launched.elapsed().as_secs_f64();
                }
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body["tracking"] == "ok" {
                    start.ready_s = launched.elapsed().as_secs_f64();
                    start.cpu_s = cpu_seconds(server.process.pid());
                    start.rss_mib = mib(server.process.memory_kib()?.0);
                    return Ok(start);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which of the fleet's fixes a round publishes: each device's fixes after its first
/// `seq_base`, the last of them at device time `end`.
#[derive(Clone, Copy)]
struct Leg {
    seq_base: u64,
    end: DateTime<Utc>,
}

impl Leg {
    /// Round `round` (from 0) of `per_round` fixes a device, after the `seeded` fixes whose
    /// last was at `seeded_end`. Device times run on `PERIOD_S` apart from round to round:
    /// when each round's fixes ended at the time it ran, a round spanning more time than
    /// had passed since the round before sent fixes older than the newest already
    /// evaluated, farther along the route, and measured Caravan's late-fix checks (GNSS
    /// anomalies, each an event and a rewritten transit) rather than a fleet driving on.
    fn of(round: usize, per_round: usize, seeded: usize, seeded_end: DateTime<Utc>) -> Self {
        let after = (round + 1) * per_round;
        Self {
            seq_base: (seeded + round * per_round) as u64,
            end: seeded_end + chrono::Duration::seconds(PERIOD_S * after as i64),
        }
    }
}

/// Starts Caravan on `dir` (a fresh store when `None`), waits until it is ready, lets its
/// first silence check commit, optionally runs `work`, and stops it.
async fn start_once(
    dir: Option<&Path>,
    limit: Duration,
    work: Option<(&TransitFleet, &ScaleArgs, Leg)>,
) -> anyhow::Result<(Start, Option<Flow>)> {
    let launched = Instant::now();
    let mut server = server::start_caravan_in(dir, None)?;
    let mut start = wait_ready(&server, launched, limit).await?;
    let api = Api::new(&server.api, server.token.clone());
    // The first silence check runs as soon as the state is restored and raises a unit of
    // losses at a time, each once the one before is committed. Wait until it has raised
    // them all and the committer has caught up: a stop before that leaves losses
    // uncommitted, and the next start raises them again (an alert and a rewritten transit
    // each) and measures them as its own.
    let mut raised = -1.0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = api
            .metric(r#"caravan_geofence_events_total{kind="signal_lost"}"#)
            .await;
        let queued = api.metric(r#"caravan_queue_depth{queue="commit"}"#).await;
        if now == raised && queued == 0.0 {
            break;
        }
        if launched.elapsed() > limit {
            bail!(
                "the first silence check did not finish within {} s",
                limit.as_secs()
            );
        }
        raised = now;
    }
    start.signal_lost = raised;
    let flow = match work {
        Some((fleet, args, leg)) => Some(through(&server, &api, fleet, args, leg).await?),
        None => None,
    };
    start.stop_s = server
        .process
        .terminate(Duration::from_secs(60))?
        .map(|d| d.as_secs_f64());
    Ok((start, flow))
}

/// The fleet's next fixes through Caravan: committed fixes per second and CPU per fix, and
/// the committed count checked against the rows in the store.
async fn through(
    server: &Server,
    api: &Api,
    fleet: &TransitFleet,
    args: &ScaleArgs,
    leg: Leg,
) -> anyhow::Result<Flow> {
    let rows_before = stored_reports(server)?;
    let committed_before = api.committed_fixes().await;
    let messages = fleet.fixes(args.messages, leg.seq_base, leg.end);
    let target = committed_before + args.messages as u64;
    let pid = server.process.pid();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let (host, port) = server.mqtt.clone();
    let (connections, inflight) = (args.connections, args.inflight);
    // The seeded devices are bound to the load tool's gateway account (seed.rs).
    let login = api.gateway_login(crate::seed::GATEWAY).await?;
    let publish = tokio::spawn(async move {
        traffic::publish_all(&host, port, messages, connections, inflight, login).await
    });
    let limit = Duration::from_secs(args.timeout_s);
    let trace = traffic::watch(started, target, Duration::from_millis(50), limit, || {
        api.committed_fixes()
    })
    .await;
    let cpu = cpu_seconds(pid) - cpu_before;
    if !trace.reached {
        publish.abort();
        bail!("only {} of {target} committed", api.committed_fixes().await);
    }
    publish.await??;
    let committed = api.committed_fixes().await - committed_before;
    let rows = stored_reports(server)? - rows_before;
    if rows != committed {
        bail!("the metric says {committed} fixes were committed, the store holds {rows} more rows");
    }
    let rate = (committed as f64) / trace.seconds().max(1e-9);
    Ok(Flow {
        fixes_per_s: rate,
        cpu_us_per_fix: cpu * 1e6 / committed.max(1) as f64,
        rss_after_mib: mib(server.process.memory_kib()?.0),
    })
}

/// Mosquitto alone, with a counting subscriber, for the same messages: the broker every
/// figure is set against (Caravan's own endpoint is not a broker and has no "alone").
async fn broker_alone(fleet: &TransitFleet, args: &ScaleArgs, leg: Leg) -> anyhow::Result<Flow> {
    let (broker, port) = server::start_mosquitto(100)?;
    let count = traffic::counting_subscriber("127.0.0.1", port).await?;
    let messages = fleet.fixes(args.messages, leg.seq_base, leg.end);
    let target = args.messages as u64;
    let cpu_before = cpu_seconds(broker.pid());
    let started = Instant::now();
    let (connections, inflight) = (args.connections, args.inflight);
    let publish = tokio::spawn(async move {
        traffic::publish_all("127.0.0.1", port, messages, connections, inflight, None).await
    });
    let counter = count.clone();
    let limit = Duration::from_secs(args.timeout_s);
    let trace = traffic::watch(
        started,
        target,
        Duration::from_millis(50),
        limit,
        || async { counter.load(std::sync::atomic::Ordering::Relaxed) },
    )
    .await;
    let cpu = cpu_seconds(broker.pid()) - cpu_before;
    if trace.reached {
        publish.await??;
    } else {
        publish.abort();
    }
    Ok(Flow {
        fixes_per_s: target as f64 / trace.seconds().max(1e-9),
        cpu_us_per_fix: cpu * 1e6 / target.max(1) as f64,
        rss_after_mib: mib(broker.memory_kib()?.0),
    })
}

/// One round: the empty start, the fleet's start, its throughput, the broker alone's.
type Round = (Start, Start, Flow, Flow);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.seed_into {
        let n = args.devices.first().copied().unwrap_or(10_000);
        std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let fleet = TransitFleet::new("scale", n)?;
        let (dir, fixes) = (dir.clone(), args.fixes);
        let end = Utc::now() - chrono::Duration::hours(1);
        tokio::task::spawn_blocking(move || crate::seed::seed(&dir, &fleet, fixes, end))
            .await
            .context("seeding")??;
        return Ok(());
    }
    let limit = Duration::from_secs(args.timeout_s);
    println!(
        "| devices on transits | round | empty: ready s | fleet: /healthz s | fleet: ready s | ready ratio | start-up CPU s | empty RSS MiB | fleet RSS MiB | KiB/device | stop s | signal_lost at restart | fixes/s | broker alone fixes/s | ratio | µs CPU/fix | broker µs/fix | RSS after the run MiB | KiB/device after the run |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.devices {
        let fleet = Arc::new(TransitFleet::new("scale", n)?);
        let dir = server::temp_dir("scale")?;
        let seeding = Instant::now();
        let (seed_fleet, seed_dir, fixes) = (fleet.clone(), dir.path().to_owned(), args.fixes);
        // An hour of silence before the first start, and room for every round's fixes
        // before the time they are sent (Caravan refuses fixes from the future).
        let per_round = args.messages.div_ceil(n);
        let seeded_end = Utc::now()
            - chrono::Duration::hours(1)
            - chrono::Duration::seconds(PERIOD_S * (args.rounds * per_round) as i64);
        tokio::task::spawn_blocking(move || {
            crate::seed::seed(&seed_dir, &seed_fleet, fixes, seeded_end)
        })
        .await
        .context("seeding")??;
        eprintln!(
            "{n} devices on transits over {} office-to-office corridors, {} fixes each, written in {:.1} s",
            fleet.corridors(),
            args.fixes,
            seeding.elapsed().as_secs_f64()
        );
        // The first start raises `signal_lost` for every device (none has reported since the
        // store was written): that is its job, once. Measured separately.
        let (first, _) = start_once(Some(dir.path()), limit, None).await?;
        println!(
            "| {n} | first start | | {:.2} | {:.2} | | {:.1} | | {:.0} | | {} | {:.0} (first) | | | | | | | |",
            first.healthz_s,
            first.ready_s,
            first.cpu_s,
            first.rss_mib,
            first.stop_s.map_or("> 60".into(), |s| format!("{s:.2}")),
            first.signal_lost,
        );
        let mut rows = Vec::new();
        for round in 0..args.rounds {
            let leg = Leg::of(round, per_round, args.fixes, seeded_end);
            let (empty, _) = start_once(None, limit, None).await?;
            let (start, flow) =
                start_once(Some(dir.path()), limit, Some((&fleet, &args, leg))).await?;
            let flow = flow.unwrap_or_default();
            let broker = broker_alone(&fleet, &args, leg).await?;
            let per_device_kib = (start.rss_mib - empty.rss_mib) * 1024.0 / n as f64;
            let driven_kib = (flow.rss_after_mib - empty.rss_mib) * 1024.0 / n as f64;
            println!(
                "| {n} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {} | {:.0} | {:.0} | {:.0} | {:.0} % | {:.1} | {:.1} | {:.0} | {:.2} |",
                round + 1,
                empty.ready_s,
                start.healthz_s,
                start.ready_s,
                start.ready_s / empty.ready_s.max(1e-9),
                start.cpu_s,
                empty.rss_mib,
                start.rss_mib,
                per_device_kib,
                start.stop_s.map_or("> 60".into(), |s| format!("{s:.2}")),
                start.signal_lost,
                flow.fixes_per_s,
                broker.fixes_per_s,
                100.0 * flow.fixes_per_s / broker.fixes_per_s.max(1e-9),
                flow.cpu_us_per_fix,
                broker.cpu_us_per_fix,
                flow.rss_after_mib,
                driven_kib,
            );
            rows.push((empty, start, flow, broker));
        }
        let m = |f: &dyn Fn(&Round) -> f64| median(rows.iter().map(f).collect());
        println!(
            "| {n} | median | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {:.2} | | {:.0} | {:.0} | {:.0} % | {:.1} | {:.1} | {:.0} | {:.2} |",
            m(&|r| r.0.ready_s),
            m(&|r| r.1.healthz_s),
            m(&|r| r.1.ready_s),
            m(&|r| r.1.ready_s / r.0.ready_s.max(1e-9)),
            m(&|r| r.1.cpu_s),
            m(&|r| r.0.rss_mib),
            m(&|r| r.1.rss_mib),
            m(&|r| (r.1.rss_mib - r.0.rss_mib) * 1024.0 / n as f64),
            m(&|r| r.1.stop_s.unwrap_or(f64::INFINITY)),
            m(&|r| r.2.fixes_per_s),
            m(&|r| r.3.fixes_per_s),
            m(&|r| 100.0 * r.2.fixes_per_s / r.3.fixes_per_s.max(1e-9)),
            m(&|r| r.2.cpu_us_per_fix),
            m(&|r| r.3.cpu_us_per_fix),
            m(&|r| r.2.rss_after_mib),
            m(&|r| (r.2.rss_after_mib - r.0.rss_mib) * 1024.0 / n as f64),
        );
    }
    Ok(())
}
