//! The truth file: one JSON object a line, written as the run goes, read back by
//! `caravan simulate verify`.
//!
//! | line | written when |
//! |---|---|
//! | an incident ([`Injected`], with `kind`) | the incident starts (or, for recorded kinds, happens) |
//! | `{"transit": {..}}` ([`DeclaredTransit`]) | Caravan accepted the transit's declaration |
//! | `{"closed": {..}}` ([`ClosedTransit`]) | Caravan closed a completed transit |
//! | `{"end_of_run": {..}}` ([`EndOfRun`]) | the run ended; what evidence had not been sent |

use std::io::BufRead as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::incident::Injected;
use super::trip::DeclaredTransit;

/// A transit the office of destination closed after it was completed without incidents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedTransit {
    pub transit_id: String,
    /// Simulated time the vehicle finished unloading (RFC 3339).
    pub at: String,
}

/// Evidence a device recorded out of coverage and still held when the run ended: Caravan has
/// not seen anything this device recorded since `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldEvidence {
    pub device_id: String,
    /// Device time of the oldest fix or seal event held (RFC 3339).
    pub since: String,
    pub fixes: usize,
}

/// The last line of a run's truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndOfRun {
    /// The last simulated instant of the run (RFC 3339).
    pub at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldEvidence>,
    /// When the run stopped publishing, on the wall clock (RFC 3339). Caravan times
    /// `signal_lost` on its own clock, and raises it for every device on a transit once the
    /// run has stopped; absent in the truth of older runs, which then use `at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_at: Option<String>,
}

/// One line of the truth file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TruthLine {
    Transit { transit: DeclaredTransit },
    Closed { closed: ClosedTransit },
    End { end_of_run: EndOfRun },
    Incident(Box<Injected>),
}

/// A whole truth file, read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truth {
    pub incidents: Vec<Injected>,
    pub transits: Vec<DeclaredTransit>,
    pub closed: Vec<ClosedTransit>,
    /// Absent when the run was killed before it could write it.
    pub end: Option<EndOfRun>,
}

impl Truth {
    /// Parses the lines of a truth file; blank lines are skipped.
    ///
    /// # Errors
    /// A line that is not one of the [`TruthLine`]s, with its number.
    pub fn parse(lines: impl Iterator<Item = std::io::Result<String>>) -> anyhow::Result<Truth> {
        let mut truth = Truth::default();
        for (n, line) in lines.enumerate() {
            let line = line.with_context(|| format!("reading line {}", n + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: TruthLine = serde_json::from_str(&line).with_context(|| {
                format!(
                    "line {} is not an incident, transit, closed or end_of_run record",
                    n + 1
                )
            })?;
            match parsed {
                TruthLine::Incident(incident) => truth.incidents.push(*incident),
                TruthLine::Transit { transit } => truth.transits.push(transit),
                TruthLine::Closed { closed } => truth.closed.push(closed),
                TruthLine::End { end_of_run } => truth.end = Some(end_of_run),
            }
        }
        Ok(truth)
    }

    /// Reads the truth file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or a line cannot be parsed.
    pub fn read(path: &Path) -> anyhow::Result<Truth> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening the truth file {}", path.display()))?;
        Truth::parse(std::io::BufReader::new(file).lines())
            .with_context(|| format!("reading the truth file {}", path.display()))
    }

    /// Every transit the truth knows: declared ones, and those its incidents name.
    pub fn transit_ids(&self) -> std::collections::BTreeSet<&str> {
        self.transits
            .iter()
            .map(|t| t.transit_id.as_str())
            .chain(
                self.incidents
                    .iter()
                    .filter_map(|i| i.transit_id.as_deref()),
            )
            .collect()
    }
}
