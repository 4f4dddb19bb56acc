//! The shell around the fleet model: registers devices, keeps simulated time, publishes
//! what the fleet sends, writes the truth file and counts everything for the summary.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::clock::SimClock;
use super::fleet::{Fleet, FleetConfig};
use super::incident::{IncidentKind, IncidentRates};
use super::message::{rfc3339, OutgoingKind};
use super::publish::Publishers;
use super::register::{register, Registration};
use super::reporting::Reporting;
use crate::ingest::BrokerAddr;
use crate::maps::Atlas;

/// Wall seconds of accelerated time when no duration is given: 24 simulated hours at 60×.
pub const DEFAULT_ACCELERATED_S: f64 = 24.0 * 60.0;
/// How often the fleet is stepped and its messages published.
const TICK: Duration = Duration::from_millis(200);

/// What one simulated run does.
#[derive(Clone, Debug)]
pub struct Options {
    pub vehicles: usize,
    pub broker: BrokerAddr,
    /// Base URL of the Caravan API, e.g. `http://127.0.0.1:8080`.
    pub api: String,
    /// Bearer token for the API, when it asks for one.
    pub token: Option<String>,
    pub speedup: f64,
    pub seed: u64,
    /// Wall-clock length of the run; `None` runs until cancelled.
    pub duration: Option<Duration>,
    pub reporting: Reporting,
    pub rates: IncidentRates,
    /// JSON lines, one per injected incident.
    pub truth: Option<PathBuf>,
    pub device_prefix: Option<String>,
    /// MQTT connections the devices share.
    pub connections: usize,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub registration: Registration,
    /// Messages and fixes published, per kind.
    pub published: BTreeMap<OutgoingKind, (u64, u64)>,
    pub acknowledged: u64,
    pub incidents: BTreeMap<IncidentKind, u64>,
    /// Fixes still held by devices out of coverage when the run ended.
    pub buffered_at_end: usize,
    pub simulated_from: String,
    pub simulated_to: String,
}

impl Summary {
    pub fn messages(&self) -> u64 {
        self.published.values().map(|(m, _)| m).sum()
    }

    /// Fixes published, single and in backlogs.
    pub fn fixes(&self) -> u64 {
        self.published.values().map(|(_, f)| f).sum()
    }

    pub fn count(&self, kind: OutgoingKind) -> u64 {
        self.published.get(&kind).map_or(0, |(m, _)| *m)
    }
}

impl Options {
    /// The fleet of `caravan serve --demo`: 20 vehicles at 60x against the app's own broker
    /// and API, with the default incident rates, until the app stops.
    pub fn demo(broker: BrokerAddr, api: String, token: Option<String>) -> Self {
        Self {
            vehicles: 20,
            broker,
            api,
            token,
            speedup: 60.0,
            seed: 1,
            duration: None,
            reporting: Reporting::Teltonika,
            rates: IncidentRates::default(),
            truth: None,
            device_prefix: Some("demo".into()),
            connections: 2,
            progress: false,
        }
    }
}

fn connection_for(topic: &str) -> usize {
    let device = topic.split('/').nth(3).unwrap_or(topic);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    device.hash(&mut hasher);
    hasher.finish() as usize
}

/// Runs the fleet against a broker and an API until `options.duration` or `cancel`.
///
/// # Errors
/// The maps cannot be read, the API or the broker cannot be reached, or the truth file
/// cannot be written.
pub async fn run(options: Options, cancel: CancellationToken) -> anyhow::Result<Summary> {
    let atlas = Atlas::embedded().context("reading the shipped maps")?;
    let wall_start = chrono::Utc::now().timestamp();
    let seed = options.seed;
    let mut config = FleetConfig::new(options.vehicles, seed, wall_start);
    config.reporting = options.reporting;
    config.rates = options.rates.clone();
    if let Some(prefix) = &options.device_prefix {
        config.device_prefix.clone_from(prefix);
    }
    // Seqs continue above anything an earlier run of the same devices sent.
    config.seq_base = u64::try_from(wall_start).unwrap_or(0) * 1000;
    let devices = Fleet::new(&atlas, &config)?.devices();
    let http = reqwest::Client::new();
    let api = options.api.trim_end_matches('/').to_owned();
    let registration = register(&http, &api, options.token.as_deref(), &devices).await?;
    let accelerated_s = options
        .duration
        .map_or(DEFAULT_ACCELERATED_S, |d| d.as_secs_f64());
    let clock = SimClock::new(
        wall_start,
        options.speedup,
        accelerated_s,
        registration.newest_fix,
    );
    config.start = clock.start;
    let mut fleet = Fleet::new(&atlas, &config)?;
    let client_prefix = format!("{}-pub-{}", config.device_prefix, std::process::id());
    let mut publishers = Publishers::connect(
        &options.broker.host,
        options.broker.port,
        &client_prefix,
        options.connections.clamp(1, options.vehicles.max(1)),
        200,
    )
    .await?;
    let mut truth = match &options.truth {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("creating the truth file {}", path.display()))?,
        )),
        None => None,
    };
    info!(vehicles = options.vehicles, speedup = clock.speedup, from = %rfc3339(clock.start), "The simulated fleet is on the road.");
    let mut summary = Summary {
        registration,
        simulated_from: rfc3339(clock.start),
        ..Summary::default()
    };
    let began = Instant::now();
    let mut next_progress = Instant::now() + Duration::from_secs(1);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = clock.start;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let elapsed = began.elapsed();
        let finished = options.duration.is_some_and(|d| elapsed >= d);
        let now = clock.at(elapsed.as_secs_f64());
        last = now;
        for message in fleet.step(now) {
            let entry = summary.published.entry(message.kind).or_default();
            entry.0 += 1;
            entry.1 += message.fixes as u64;
            let key = connection_for(&message.topic);
            publishers
                .publish(key, message.topic, message.payload.into_bytes())
                .await?;
        }
        for injected in fleet.take_truth() {
            *summary.incidents.entry(injected.kind).or_default() += 1;
            if let Some(file) = &mut truth {
                let line = serde_json::to_string(&injected)?;
                writeln!(file, "{line}").context("writing the truth file")?;
            }
        }
        if let Some(file) = &mut truth {
            file.flush().context("writing the truth file")?;
        }
        if options.progress && Instant::now() >= next_progress {
            next_progress += Duration::from_secs(1);
            eprint!("\r{}", progress_line(&summary, &publishers, now));
        }
        if finished {
            break;
        }
    }
    if options.progress {
        eprintln!();
    }
    publishers.settle(Duration::from_secs(10)).await;
    summary.acknowledged = publishers.acked();
    summary.buffered_at_end = fleet.buffered_fixes();
    summary.simulated_to = rfc3339(last);
    publishers.disconnect().await;
    Ok(summary)
}

fn progress_line(summary: &Summary, publishers: &Publishers, now: i64) -> String {
    let incidents: u64 = summary.incidents.values().sum();
    format!(
        "sim {} | published {} messages, {} fixes | acknowledged {} | incidents {}   ",
        rfc3339(now),
        summary.messages(),
        summary.fixes(),
        publishers.acked(),
        incidents
    )
}
