//! The shell around the fleet model: registers devices, keeps simulated time, publishes
//! what the fleet sends, acts as customs for the fleet's transits, writes the truth file and
//! counts everything for the summary.
//!
//! With transits (the default), each vehicle's declaration is lodged through the API before
//! any later message of that vehicle is published, its deadline moved by the time simulated
//! time trails the wall clock (Caravan judges deadlines on its own clock). At the end of a
//! trip the model decides what customs does: a transit without incidents is completed, and
//! the run closes it as the office of destination would (retrying until Caravan has seen
//! the vehicle arrive) before the vehicle declares its way back; a transit with incidents
//! stays open, the vehicle parked at its destination, for an officer to work its alerts.
//! Closing takes an officer's token (a coordinator, or customs of the destination country):
//! with a carrier's token the closes are refused, counted, and the parked vehicle's next
//! declaration is refused too.
//!
//! When the run ends it writes an `end_of_run` truth line naming the devices that still hold
//! fixes or seal events out of coverage, so that a check counts the incidents whose evidence
//! has not reached Caravan as pending rather than missed, and the wall-clock instant it
//! stopped publishing, after which Caravan sees every device fall silent.
//!
//! Simulated time follows the wall clock at the speedup while Caravan keeps up; when it
//! takes messages in more slowly, a step covers at most [`MAX_STEP_TICKS`] ticks' worth and
//! the run covers less simulated time, rather than any device falling silent on Caravan's
//! clock.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::clock::SimClock;
use super::customs::{Desk, Outcome};
use super::fleet::{Fleet, FleetConfig};
use super::incident::{IncidentKind, IncidentRates};
use super::message::{rfc3339, OutgoingKind};
use super::publish::Publishers;
use super::register::{register, Api, Registration};
use super::reporting::Reporting;
use super::trip::{DeclaredTransit, TripEvent};
use super::truth::{ClosedTransit, EndOfRun, TruthLine};
use crate::ingest::BrokerAddr;
use crate::maps::Atlas;

/// Wall seconds of accelerated time when no duration is given: 24 simulated hours at 60×.
pub const DEFAULT_ACCELERATED_S: f64 = 24.0 * 60.0;
/// The demo's accelerated start (at its 60×: the hour before the server started).
pub const DEMO_LEAD_IN: Duration = Duration::from_secs(60);
/// How often the fleet is stepped and its messages published.
const TICK: Duration = Duration::from_millis(200);
/// The most simulated time one step covers, in ticks' worth at the run's speedup. When
/// Caravan takes the messages in more slowly than the fleet makes them (it acknowledges
/// QoS 1 once it has taken a message in), publishing a step takes longer than a tick; an
/// unbounded next step would then hold more messages still, each vehicle's published one
/// after the other, until a device went quiet on Caravan's clock for longer than its
/// signal-loss allowance. Bounded, simulated time slows down instead, and the run covers
/// less of it.
const MAX_STEP_TICKS: f64 = 2.0;

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
    /// Wall-clock time simulated time runs at `speedup` before it keeps pace with the clock;
    /// `None`: the whole `duration`, or [`DEFAULT_ACCELERATED_S`] without one.
    pub accelerated: Option<Duration>,
    pub reporting: Reporting,
    pub rates: IncidentRates,
    /// Declare each vehicle's transits and close the completed ones; false only registers
    /// the devices and drives them without transits.
    pub transits: bool,
    /// JSON lines: injected incidents, declared and closed transits, the end of the run
    /// (see `simulate::truth`).
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
    pub transits: TransitCounts,
    /// The first refusals of declarations and closes: transit id and the API's reason.
    pub refusals: Vec<String>,
    /// Fixes still held by devices out of coverage when the run ended.
    pub buffered_at_end: usize,
    pub simulated_from: String,
    pub simulated_to: String,
}

/// What the run's customs desk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransitCounts {
    pub declared: u64,
    /// Completed transits closed at their destination.
    pub closed: u64,
    /// Declarations the API refused (their vehicles drive on, undeclared).
    pub refused: u64,
    /// Completed transits the API would not close.
    pub not_closed: u64,
}

/// Refusals kept in the summary, besides the log.
const REFUSALS_KEPT: usize = 20;

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
    /// The fleet of `caravan serve --demo`: 20 vehicles at 60x driving declared transits
    /// against the app's own broker and API, with the default incident rates, until the app
    /// stops. `token` must be allowed to close transits.
    pub fn demo(broker: BrokerAddr, api: String, token: Option<String>) -> Self {
        Self {
            vehicles: 20,
            broker,
            api,
            token,
            speedup: 60.0,
            seed: 1,
            duration: None,
            // An hour of simulated time in the first minute, then the clock's pace: within a
            // minute the trucks have left their offices and every position is current.
            accelerated: Some(DEMO_LEAD_IN),
            reporting: Reporting::Teltonika,
            rates: IncidentRates::default(),
            transits: true,
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

/// The run's tag in transit references: the start in milliseconds, base 36, so that reruns
/// (and two runs in the same second) declare new transits.
fn run_tag(wall_start_ms: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = wall_start_ms.unsigned_abs();
    let mut tag = Vec::new();
    while n > 0 || tag.is_empty() {
        tag.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    tag.reverse();
    format!("T{}", String::from_utf8_lossy(&tag))
}

/// The truth file, when the run keeps one.
struct TruthFile(Option<std::io::BufWriter<std::fs::File>>);

impl TruthFile {
    fn create(path: Option<&PathBuf>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating the truth file {}", path.display()))?;
        Ok(Self(Some(std::io::BufWriter::new(file))))
    }

    fn write(&mut self, line: &TruthLine) -> anyhow::Result<()> {
        if let Some(file) = &mut self.0 {
            let text = serde_json::to_string(line).context("encoding a truth line")?;
            writeln!(file, "{text}").context("writing the truth file")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(file) = &mut self.0 {
            file.flush().context("writing the truth file")?;
        }
        Ok(())
    }
}

/// Acts on one transit event of the model through the API, and records what happened.
async fn lodge(
    desk: &Desk,
    event: TripEvent,
    truth: &mut TruthFile,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let counts = &mut summary.transits;
    let refusals = &mut summary.refusals;
    let mut refused = |what: &str, transit_id: &str, reason: &str| {
        if refusals.len() < REFUSALS_KEPT {
            refusals.push(format!("{what} {transit_id}: {reason}"));
        }
    };
    match event {
        TripEvent::Declared {
            device_id,
            transit_id,
            declaration,
            at,
        } => {
            let lag_s = chrono::Utc::now().timestamp() - at;
            let line = DeclaredTransit {
                transit_id: transit_id.clone(),
                device_id,
                departure_office: declaration.departure_office.clone(),
                destination_office: declaration.destination_office.clone(),
                bcps: declaration.itinerary.clone(),
                declared_at: rfc3339(at),
            };
            match desk.declare(*declaration, lag_s).await {
                Outcome::Done => {
                    counts.declared += 1;
                    truth.write(&TruthLine::Transit { transit: line })?;
                }
                Outcome::Refused(reason) => {
                    counts.refused += 1;
                    refused("declaring", &transit_id, &reason);
                    warn!(%transit_id, %reason, "The API refused a declaration; the vehicle drives on undeclared.");
                }
            }
        }
        TripEvent::Completed { transit_id, at, .. } => match desk.close(&transit_id).await {
            Outcome::Done => {
                counts.closed += 1;
                let closed = ClosedTransit {
                    transit_id,
                    at: rfc3339(at),
                };
                truth.write(&TruthLine::Closed { closed })?;
            }
            Outcome::Refused(reason) => {
                counts.not_closed += 1;
                refused("closing", &transit_id, &reason);
                warn!(%transit_id, %reason, "A completed transit was not closed.");
            }
        },
    }
    Ok(())
}

/// Runs the fleet against a broker and an API until `options.duration` or `cancel`.
///
/// # Errors
/// The maps cannot be read, the API or the broker cannot be reached, or the truth file
/// cannot be written. A declaration or close the API refuses is counted and logged, not an
/// error.
pub async fn run(options: Options, cancel: CancellationToken) -> anyhow::Result<Summary> {
    let atlas = Atlas::embedded().context("reading the shipped maps")?;
    let wall_now = chrono::Utc::now();
    let wall_start = wall_now.timestamp();
    let seed = options.seed;
    let mut config = FleetConfig::new(options.vehicles, seed, wall_start);
    config.reporting = options.reporting;
    config.rates = options.rates.clone();
    if options.transits {
        config.transits = Some(run_tag(wall_now.timestamp_millis()));
    }
    if let Some(prefix) = &options.device_prefix {
        config.device_prefix.clone_from(prefix);
    }
    // Seqs continue above anything an earlier run of the same devices sent.
    config.seq_base = u64::try_from(wall_start).unwrap_or(0) * 1000;
    let devices = Fleet::new(&atlas, &config)?.devices();
    let http = reqwest::Client::new();
    let api = Api::new(&http, &options.api, options.token.as_deref());
    let gateway = format!("{}-gateway", config.device_prefix);
    let registration = register(
        &http,
        &api.base,
        options.token.as_deref(),
        &devices,
        &gateway,
    )
    .await?;
    let desk = Desk::new(api, cancel.clone());
    let accelerated_s = options
        .accelerated
        .or(options.duration)
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
        registration.login.clone(),
    )
    .await?;
    let mut truth = TruthFile::create(options.truth.as_ref())?;
    info!(vehicles = options.vehicles, speedup = clock.speedup, from = %rfc3339(clock.start), transits = options.transits, "The simulated fleet is on the road.");
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
    let max_step_s = (clock.speedup * TICK.as_secs_f64() * MAX_STEP_TICKS).ceil() as i64;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let elapsed = began.elapsed();
        let finished = options.duration.is_some_and(|d| elapsed >= d);
        let now = clock
            .at(elapsed.as_secs_f64())
            .min(last + max_step_s.max(1));
        last = now;
        let messages = fleet.step(now);
        // Each transit event goes to the API after the messages before it and before those
        // after it, waiting for the answer: Caravan then sees them in the model's order.
        let mut trips = fleet.take_trips().into_iter().peekable();
        for (i, message) in messages.into_iter().enumerate() {
            while let Some((_, event)) = trips.next_if(|(position, _)| *position <= i) {
                lodge(&desk, event, &mut truth, &mut summary).await?;
            }
            let entry = summary.published.entry(message.kind).or_default();
            entry.0 += 1;
            entry.1 += message.fixes as u64;
            let key = connection_for(&message.topic);
            publishers
                .publish(key, message.topic, message.payload.into_bytes())
                .await?;
        }
        for (_, event) in trips {
            lodge(&desk, event, &mut truth, &mut summary).await?;
        }
        for injected in fleet.take_truth() {
            *summary.incidents.entry(injected.kind).or_default() += 1;
            truth.write(&TruthLine::Incident(Box::new(injected)))?;
        }
        truth.flush()?;
        if options.progress && Instant::now() >= next_progress {
            next_progress += Duration::from_secs(1);
            eprint!("\r{}", progress_line(&summary, &publishers, now));
        }
        if finished {
            break;
        }
    }
    let stopped = chrono::Utc::now();
    if options.progress {
        eprintln!();
    }
    publishers.settle(Duration::from_secs(10)).await;
    summary.acknowledged = publishers.acked();
    summary.buffered_at_end = fleet.buffered_fixes();
    summary.simulated_to = rfc3339(last);
    let end_of_run = EndOfRun {
        at: rfc3339(last),
        held: fleet.held_evidence(),
        wall_at: Some(stopped.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    };
    truth.write(&TruthLine::End { end_of_run })?;
    truth.flush()?;
    publishers.disconnect().await;
    Ok(summary)
}

fn progress_line(summary: &Summary, publishers: &Publishers, now: i64) -> String {
    let incidents: u64 = summary.incidents.values().sum();
    format!(
        "sim {} | published {} messages, {} fixes | acknowledged {} | transits {} declared, {} closed | incidents {}   ",
        rfc3339(now),
        summary.messages(),
        summary.fixes(),
        publishers.acked(),
        summary.transits.declared,
        summary.transits.closed,
        incidents
    )
}
