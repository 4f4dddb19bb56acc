//! Sustained fixes per second from publish to committed state, through Caravan's own MQTT
//! endpoint and through Mosquitto (beside Mosquitto alone, with a plain counting subscriber). The
//! devices are a fleet on transits ([`TransitFleet`]); Caravan's count is that of committed
//! reports, checked against the rows in its store at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{stored_reports, Api};
use crate::fleet::TransitFleet;
use crate::server::{self, Process};
use crate::traffic::{self, Trace};

#[derive(Debug, clap::Args)]
pub struct ThroughputArgs {
    /// Single-fix messages per scenario.
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Devices the fixes are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub devices: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Unacknowledged messages each publisher may have.
    #[arg(long, default_value_t = 100)]
    pub inflight: u16,
    /// Mosquitto's max_inflight_messages towards each client (0: unlimited). 100 matches
    /// Caravan's own `mqtt.inflight`; MQTT 3.1.1 cannot tell the broker that limit.
    #[arg(long, default_value_t = 100)]
    pub mosquitto_inflight: u32,
    /// Give up on a scenario after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout_s: u64,
    /// Only these scenarios (caravan-embedded, caravan-postgres, mosquitto-only,
    /// caravan-mosquitto).
    #[arg(long)]
    pub only: Vec<String>,
    /// A PostgreSQL server (a URL whose user may create databases) for the
    /// caravan-postgres scenario: Caravan's own endpoint, the store in a new database there.
    /// Without it the scenario is not run.
    #[arg(long, env = "CARAVAN_LOAD_POSTGRES", value_name = "URL")]
    pub postgres: Option<String>,
}

/// One measured scenario.
struct Row {
    name: &'static str,
    trace: Trace,
    /// CPU seconds of the broker or server process during the run.
    cpu_s: f64,
    /// Context switches of the process's threads during the run.
    switches: u64,
    /// CPU seconds of the PostgreSQL server during the run (0 for a store inside Caravan).
    store_cpu_s: f64,
    peak_rss_kib: u64,
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Context switches (voluntary and not) of all of a process's threads, from
/// /proc/PID/task/*/status: each one is a wake-up or a preemption, what hand-offs between
/// threads cost beyond their CPU. A thread that ended meanwhile is not counted.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

pub async fn run(args: ThroughputArgs) -> anyhow::Result<()> {
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let fleet = Arc::new(TransitFleet::new("load", args.devices)?);
    let mut rows = Vec::new();
    if wanted("caravan-embedded") {
        let caravan = server::start_caravan(None)?;
        rows.push(through_caravan("caravan-embedded", &args, &fleet, &caravan).await?);
    }
    match &args.postgres {
        Some(admin) if wanted("caravan-postgres") => {
            let store = crate::postgres::fresh_database(admin)?;
            let caravan = server::start_caravan_on(None, Some(&store), None)?;
            let row = through_caravan("caravan-postgres", &args, &fleet, &caravan).await;
            // Stopped first: a database in use cannot be dropped.
            drop(caravan);
            crate::postgres::drop_database(admin, &store)?;
            rows.push(row?);
        }
        None if !args.only.is_empty() && wanted("caravan-postgres") => {
            anyhow::bail!("caravan-postgres needs --postgres URL (or CARAVAN_LOAD_POSTGRES)")
        }
        _ => {}
    }
    if wanted("mosquitto-only") {
        let (mosquitto, port) = server::start_mosquitto(args.mosquitto_inflight)?;
        rows.push(broker_only("mosquitto-only", &args, &fleet, &mosquitto, port).await?);
    }
    if wanted("caravan-mosquitto") {
        let (_mosquitto, port) = server::start_mosquitto(args.mosquitto_inflight)?;
        let caravan = server::start_caravan(Some(&format!("mqtt://127.0.0.1:{port}")))?;
        rows.push(through_caravan("caravan-mosquitto", &args, &fleet, &caravan).await?);
    }
    report(&args, &rows);
    Ok(())
}

async fn broker_only(
    name: &'static str,
    args: &ThroughputArgs,
    fleet: &TransitFleet,
    broker: &Process,
    port: u16,
) -> anyhow::Result<Row> {
    let count = traffic::counting_subscriber("127.0.0.1", port).await?;
    let target = args.messages as u64;
    let counter = count.clone();
    let measure = || async { counter.load(Ordering::Relaxed) };
    measure_run(name, args, fleet, broker, (port, None), target, measure).await
}

/// The fleet registered and on transits, its fixes through Caravan; the committed count
/// (counted after each commit) is checked against the rows in the store at the end.
async fn through_caravan(
    name: &'static str,
    args: &ThroughputArgs,
    fleet: &Arc<TransitFleet>,
    caravan: &server::Server,
) -> anyhow::Result<Row> {
    let api = Api::new(&caravan.api, caravan.token.clone());
    let login = api.register(&fleet.ids).await?.login;
    api.declare(fleet).await?;
    let target = args.messages as u64;
    let port = caravan.mqtt.1;
    let row = measure_run(
        name,
        args,
        fleet,
        &caravan.process,
        (port, login),
        target,
        || api.committed_fixes(),
    )
    .await?;
    let rejects = api.metric("caravan_rejects_total").await;
    if rejects > 0.0 {
        eprintln!("{name}: {rejects} messages were refused");
    }
    let committed = api.committed_fixes().await;
    let stored = stored_reports(caravan)?;
    if committed != stored {
        anyhow::bail!(
            "{name}: the metric says {committed} fixes were committed, the store holds {stored}"
        );
    }
    eprintln!("{name}: {committed} committed, {stored} rows in the store");
    Ok(row)
}

async fn measure_run<F, Fut>(
    name: &'static str,
    args: &ThroughputArgs,
    fleet: &TransitFleet,
    process: &Process,
    (port, login): (u16, Option<(String, String)>),
    target: u64,
    count: F,
) -> anyhow::Result<Row>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let messages = fleet.fixes(args.messages, 0, chrono::Utc::now());
    let cpu_before = cpu_seconds(process.pid());
    let store_cpu_before = store_cpu(name);
    let switches_before = context_switches(process.pid());
    let started = Instant::now();
    let (connections, inflight) = (args.connections, args.inflight);
    let publish = tokio::spawn(async move {
        traffic::publish_all("127.0.0.1", port, messages, connections, inflight, login).await
    });
    let timeout = Duration::from_secs(args.timeout_s);
    let trace = traffic::watch(started, target, Duration::from_millis(50), timeout, count).await;
    let cpu_s = cpu_seconds(process.pid()) - cpu_before;
    let switches = context_switches(process.pid()).saturating_sub(switches_before);
    let store_cpu_s = store_cpu(name) - store_cpu_before;
    if trace.reached {
        publish.await??;
    } else {
        publish.abort();
    }
    let (_, peak_rss_kib) = process.memory_kib()?;
    eprintln!(
        "{name}: {} of {target} in {:.1} s",
        trace.points.last().map_or(0, |p| p.1),
        trace.seconds()
    );
    Ok(Row {
        name,
        trace,
        cpu_s,
        switches,
        store_cpu_s,
        peak_rss_kib,
    })
}

/// The PostgreSQL server's CPU seconds so far, for the scenario that stores there.
fn store_cpu(name: &str) -> f64 {
    if name == "caravan-postgres" {
        crate::postgres::server_cpu_seconds()
    } else {
        0.0
    }
}

fn report(args: &ThroughputArgs, rows: &[Row]) {
    let target = args.messages as u64;
    println!(
        "| scenario | fixes arrived | seconds | fixes/s (10–90 %) | fixes/s until the count last grew | process CPU µs/fix | PostgreSQL CPU µs/fix | context switches/fix | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let done = row.trace.points.last().map_or(0, |p| p.1);
        println!(
            "| {} | {done}{} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.3} | {:.0} |",
            row.name,
            if row.trace.reached { "" } else { " (stalled)" },
            row.trace.seconds(),
            row.trace.sustained(target),
            row.trace.while_progressing(),
            row.cpu_s * 1e6 / done.max(1) as f64,
            row.store_cpu_s * 1e6 / done.max(1) as f64,
            row.switches as f64 / done.max(1) as f64,
            row.peak_rss_kib as f64 / 1024.0,
        );
    }
    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.trace.while_progressing())
    };
    for (caravan, broker) in [("caravan-mosquitto", "mosquitto-only")] {
        if let (Some(c), Some(b)) = (rate(caravan), rate(broker)) {
            println!("{caravan} / {broker}: {:.0} %", 100.0 * c / b.max(1e-9));
        }
    }
}
