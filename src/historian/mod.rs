//! The historian: positions, seal events, device status, alerts and BCP crossings written to
//! InfluxDB 2 as line protocol, for long histories and Grafana.
//!
//! The pipeline must never wait for InfluxDB, and InfluxDB being down must not lose history.
//! So the `record_*` methods of [`Historian`] only render a line and `try_send` it into a
//! bounded channel; a driver task gathers lines into batches, sends them through the
//! `influxdb2` client, and when the server fails spills batches to segment files under
//! `{data_dir}/historian-spill/`, replayed oldest first when it returns. Every lost line is
//! counted. The schema and the failure policy are in `docs/historian.md`.

mod batch;
mod driver;
mod line;
mod record;
mod settings;
mod sink;
mod spill;
mod stats;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use record::{AlertRecord, BcpCrossingRecord, BcpEvent, ReportContext};
pub use settings::HistorianSettings;
pub use stats::HistorianStats;

use crate::telemetry::Report;
use stats::Shared;

/// Directory under the data directory that holds spill segments.
pub const SPILL_DIR: &str = "historian-spill";

/// Why the historian could not start.
#[derive(Debug, thiserror::Error)]
pub enum HistorianError {
    #[error("invalid [historian] settings: {0}")]
    InvalidSettings(String),
    #[error("cannot open the historian spill directory {path}: {source}")]
    SpillDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot build the InfluxDB client: {0}")]
    Client(String),
}

/// Cheap, cloneable handle for recording facts. All methods return at once: a full queue
/// drops and counts the line instead of waiting.
#[derive(Clone, Debug, Default)]
pub struct Historian {
    /// `None` when the historian is off.
    intake: Option<Intake>,
}

#[derive(Clone, Debug)]
struct Intake {
    tx: mpsc::Sender<String>,
    shared: Arc<Shared>,
}

/// Starts the historian: a handle for the pipeline and the driver future the caller spawns
/// (it ends after `cancel`, once memory is flushed or spilled). When `settings.url` is unset
/// the handle does nothing and the driver ends at once.
///
/// Spill segments a previous run left in `{data_dir}/historian-spill/` are replayed first.
///
/// # Errors
/// [`HistorianError`] when the settings are invalid, the spill directory cannot be opened,
/// or the HTTP client cannot be built.
pub fn spawn(
    settings: &HistorianSettings,
    data_dir: &Path,
    cancel: CancellationToken,
) -> Result<(Historian, impl Future<Output = ()> + Send + 'static), HistorianError> {
    let Some(checked) = settings.check()? else {
        return Ok((
            Historian::default(),
            futures_util::future::Either::Left(async {}),
        ));
    };
    let sink = sink::Sink::new(settings, &checked)?;
    let dir = data_dir.join(SPILL_DIR);
    let (spill, evicted) =
        spill::SpillStore::open(&dir, settings.spill_budget_bytes).map_err(|source| {
            HistorianError::SpillDir {
                path: dir.display().to_string(),
                source,
            }
        })?;
    let shared = Arc::new(Shared::default());
    Shared::add(&shared.dropped_lines, evicted.lines);
    let (tx, rx) = mpsc::channel(checked.queue_lines);
    let driver = driver::Driver::new(checked, rx, sink, spill, Arc::clone(&shared), cancel);
    let historian = Historian {
        intake: Some(Intake { tx, shared }),
    };
    Ok((historian, futures_util::future::Either::Right(driver.run())))
}

impl Historian {
    pub fn is_enabled(&self) -> bool {
        self.intake.is_some()
    }

    /// Records a position, seal event, status or connection change. `ctx` adds what the
    /// pipeline knows (transit, country, corridor) as tags.
    pub fn record_report(&self, report: &Report, ctx: &ReportContext<'_>) {
        self.offer(|| record::report_line(report, ctx));
    }

    pub fn record_alert(&self, alert: &AlertRecord) {
        self.offer(|| record::alert_line(alert));
    }

    pub fn record_bcp_crossing(&self, crossing: &BcpCrossingRecord) {
        self.offer(|| record::bcp_crossing_line(crossing));
    }

    /// Current counters; cheap enough for every `/metrics` scrape.
    pub fn stats(&self) -> HistorianStats {
        match &self.intake {
            Some(intake) => {
                let in_channel = intake.tx.max_capacity() - intake.tx.capacity();
                intake
                    .shared
                    .snapshot(in_channel as u64, chrono::Utc::now().timestamp_millis())
            }
            None => HistorianStats::default(),
        }
    }

    /// Renders the line only when the historian is on.
    fn offer(&self, render: impl FnOnce() -> Option<String>) {
        let Some(intake) = &self.intake else { return };
        let Some(line) = render() else { return };
        if intake.tx.try_send(line).is_err() {
            intake
                .shared
                .dropped_at_intake(chrono::Utc::now().timestamp_millis());
        }
    }
}

impl HistorianStats {
    /// Lines accepted but neither written nor lost yet.
    pub fn pending_lines(&self) -> u64 {
        self.queued_lines + self.spilled_lines
    }
}

#[cfg(test)]
mod driver_tests;
