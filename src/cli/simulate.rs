//! `caravan simulate`: a simulated fleet against a running Caravan (or any broker), and
//! `caravan simulate verify`, which checks the alerts Caravan raised against a run's truth.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_util::sync::CancellationToken;

use crate::ingest::BrokerAddr;
use crate::settings::Settings;
use crate::simulate::{
    self, IncidentKind, IncidentRates, Options, OutgoingKind, Reporting, Summary, Truth, Verdict,
};

/// What the run does with transits, shown under `--help`.
const TRANSITS: &str =
    "Each vehicle declares its transit (POST /api/v1/transits) before it leaves a \
     customs office and drives it office to office; a transit completed without incidents is \
     closed at its destination, which takes a coordinator's or the destination customs' token. \
     --register-only registers the devices and drives them without transits. After a run with \
     --truth FILE, `caravan simulate verify --truth FILE` checks the alerts Caravan raised.";

#[derive(Debug, clap::Args)]
#[command(after_help = TRANSITS, args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Vehicles in the fleet, one device each.
    #[arg(long, default_value_t = 100)]
    pub vehicles: usize,
    /// The MQTT broker: mqtt://HOST:PORT (default: the configured address of Caravan's own MQTT endpoint).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Simulated seconds per wall second. The run starts in the past so that device time
    /// reaches the present as the run ends, and never runs ahead of the clock.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seed of the fleet: equal seeds give equal fleets and equal messages.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wall-clock length of the run, e.g. 90s, 10m, 2h (default: until Ctrl-C).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Record a fix every S seconds instead of the Teltonika rules.
    #[arg(long, value_name = "S", conflicts_with = "teltonika")]
    pub interval: Option<u32>,
    /// Teltonika FMB defaults: every 300 s, 100 m, 10° or 10 km/h while moving; hourly when
    /// stopped (the default).
    #[arg(long)]
    pub teltonika: bool,
    /// Write the run's truth to FILE, one JSON object per line: every injected incident with
    /// the alerts it should raise, every declared and closed transit, and the end of the run.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Only register the devices and drive them, without declaring transits.
    #[arg(long)]
    pub register_only: bool,
    /// Rate of one incident kind per vehicle and simulated day, e.g. seal_breach=0.5.
    /// Kinds: route_deviation, unauthorised_stop, seal_breach, crossing_outside_bcp,
    /// gnss_jump, device_silent.
    #[arg(long = "incident", value_name = "KIND=RATE", value_parser = parse_rate)]
    pub incidents: Vec<(IncidentKind, f64)>,
    /// Inject no incidents at all.
    #[arg(long)]
    pub no_incidents: bool,
    /// Device ids are PREFIX-00000, PREFIX-00001, ... (default sim{seed}).
    #[arg(long, value_name = "PREFIX")]
    pub device_prefix: Option<String>,
    /// MQTT connections the devices share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Where the Caravan API is and how to call it.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The Caravan API (default: the configured HTTP address).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Bearer token for the API.
    #[arg(long, env = "CARAVAN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiArgs {
    fn base(&self, settings: &Settings) -> String {
        self.api
            .clone()
            .unwrap_or_else(|| format!("http://{}", settings.http.listen))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SimulateCommand {
    /// Check the alerts Caravan raised on a run's transits against the run's truth file:
    /// prints matched, missed and unexpected alerts; exits non-zero when any is missed or
    /// unexpected. Run it once Caravan has taken in everything the run published.
    Verify {
        /// The truth file the run wrote (--truth).
        #[arg(long, value_name = "FILE")]
        truth: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 2h"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| e.to_string())
}

fn parse_rate(text: &str) -> Result<(IncidentKind, f64), String> {
    let (kind, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KIND=RATE"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("{rate:?} is not a number"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err(format!("a rate must be zero or more, not {rate}"));
    }
    Ok((kind.parse()?, rate))
}

/// # Errors
/// Bad flags, the run failed (see [`simulate::run`]), or a verification found missed or
/// unexpected alerts.
pub async fn run(args: SimulateArgs, settings: &Settings) -> anyhow::Result<()> {
    if let Some(SimulateCommand::Verify { truth, api }) = &args.command {
        return verify(truth, api, settings).await;
    }
    if args.vehicles == 0 {
        bail!("--vehicles must be at least 1");
    }
    if !(args.speedup.is_finite() && args.speedup >= 1.0) {
        bail!("--speedup must be 1 or more");
    }
    let broker = args
        .broker
        .clone()
        .unwrap_or_else(|| format!("mqtt://{}", settings.mqtt.listen));
    let broker = BrokerAddr::parse(&broker).context("--broker")?;
    let mut rates = if args.no_incidents {
        IncidentRates::none()
    } else {
        IncidentRates::default()
    };
    for (kind, rate) in &args.incidents {
        rates.set(*kind, *rate);
    }
    let options = Options {
        vehicles: args.vehicles,
        broker,
        api: args.api.base(settings),
        token: args.api.token.clone(),
        speedup: args.speedup,
        seed: args.seed,
        duration: args.duration,
        accelerated: None,
        reporting: args
            .interval
            .map_or(Reporting::Teltonika, Reporting::Interval),
        rates,
        transits: !args.register_only,
        truth: args.truth.clone(),
        device_prefix: args.device_prefix.clone(),
        connections: args.connections,
        progress: !args.quiet,
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let summary = simulate::run(options, cancel).await?;
    print!("{}", render_summary(&summary));
    Ok(())
}

/// The end-of-run report.
pub fn render_summary(summary: &Summary) -> String {
    let r = &summary.registration;
    let t = &summary.transits;
    let mut out = format!(
        "Simulated {} .. {}\nDevices: {} registered, {} already registered.\n",
        summary.simulated_from, summary.simulated_to, r.created, r.already_registered
    );
    out.push_str(&format!(
        "Transits: {} declared, {} closed on completion",
        t.declared, t.closed
    ));
    if t.refused > 0 || t.not_closed > 0 {
        out.push_str(&format!(
            "; {} declarations refused, {} completed transits not closed (see the log)",
            t.refused, t.not_closed
        ));
    }
    out.push_str(".\n");
    for refusal in &summary.refusals {
        out.push_str(&format!("  refused: {refusal}\n"));
    }
    out.push_str(&format!(
        "Published {} messages ({} fixes), {} acknowledged by the broker:\n",
        summary.messages(),
        summary.fixes(),
        summary.acknowledged
    ));
    for kind in [
        OutgoingKind::Pos,
        OutgoingKind::Backlog,
        OutgoingKind::Seal,
        OutgoingKind::Status,
    ] {
        let (messages, fixes) = summary.published.get(&kind).copied().unwrap_or_default();
        let fixes = if fixes > 0 {
            format!(" ({fixes} fixes)")
        } else {
            String::new()
        };
        out.push_str(&format!("  {:<12} {messages}{fixes}\n", kind.as_str()));
    }
    out.push_str(&format!(
        "Fixes still buffered out of coverage: {}\nIncidents injected: {}\n",
        summary.buffered_at_end,
        summary.incidents.values().sum::<u64>()
    ));
    for (kind, n) in &summary.incidents {
        out.push_str(&format!("  {:<21} {n}\n", kind.as_str()));
    }
    out
}

/// `caravan simulate verify`.
async fn verify(path: &std::path::Path, api: &ApiArgs, settings: &Settings) -> anyhow::Result<()> {
    let truth = Truth::read(path)?;
    if truth.transit_ids().is_empty() {
        bail!(
            "{} records no transit (a --register-only run?): Caravan raises alerts only on \
             transits, so there is nothing to verify",
            path.display()
        );
    }
    let base = api.base(settings);
    let http = reqwest::Client::new();
    let all = simulate::fetch_alerts(&http, &base, api.token.as_deref()).await?;
    let alerts = truth.alerts_of_run(all);
    let verdict = truth.verdict(&alerts);
    print!("{}", render_verdict(&truth, &alerts, &verdict));
    if !verdict.exact() {
        bail!(
            "{} expected alerts missed, {} alerts unexpected",
            verdict.missed.len(),
            verdict.unexpected.len()
        );
    }
    Ok(())
}

/// The verification report: counts, then every missed, pending and unexpected alert.
pub fn render_verdict(truth: &Truth, alerts: &[simulate::SeenAlert], v: &Verdict<'_>) -> String {
    let mut out = format!(
        "Truth: {} transits declared, {} closed; {} incidents",
        truth.transits.len(),
        truth.closed.len(),
        truth.incidents.len()
    );
    match truth.off_transit() {
        0 => out.push_str(".\n"),
        n => out.push_str(&format!(" ({n} on no transit, which expect no alert).\n")),
    }
    if truth.end.is_none() {
        out.push_str("The truth has no end_of_run line: the run did not finish cleanly.\n");
    }
    out.push_str(&format!(
        "Alerts on the run's transits: {}\nMatched: {} expected alerts\n",
        alerts.len(),
        v.matched.len()
    ));
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for (e, _) in &v.matched {
        *kinds.entry(e.alert.alert.as_str()).or_default() += 1;
    }
    for (kind, n) in kinds {
        out.push_str(&format!("  {kind:<21} {n}\n"));
    }
    let line = |e: &simulate::Expectation<'_>| {
        format!(
            "  {} for {} of {} on {} at {}\n",
            e.alert.alert,
            e.incident.kind,
            e.incident.device_id,
            e.incident.transit_id.as_deref().unwrap_or("-"),
            e.incident.at
        )
    };
    out.push_str(&format!(
        "Pending (evidence not yet sent when the run ended): {}\n",
        v.pending.len()
    ));
    for e in &v.pending {
        out.push_str(&line(e));
    }
    out.push_str(&format!(
        "After the run ended (signal lost once the devices stopped; not counted): {}\n",
        v.after_end.len()
    ));
    out.push_str(&format!("Missed: {}\n", v.missed.len()));
    for e in &v.missed {
        out.push_str(&line(e));
    }
    out.push_str(&format!("Unexpected: {}\n", v.unexpected.len()));
    for a in &v.unexpected {
        out.push_str(&format!(
            "  {} {} on {} at {}\n",
            a.id, a.kind, a.transit_id, a.occurred_at
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn an_incident_rate_names_its_kind() {
        assert_eq!(
            parse_rate("seal_breach=0.5").unwrap(),
            (IncidentKind::SealBreach, 0.5)
        );
        assert!(parse_rate("theft=1").is_err());
        assert!(parse_rate("gnss_jump=-1").is_err());
    }
}
