//! The whole audit: the event log's chain, every report against its batch, the chain heads
//! against the signed checkpoints, and every transit against its rebuild from the log.

use std::path::PathBuf;

use serde::Serialize;

use super::checkpoint::{self, Checkpoint};
use super::key;
use super::rebuild;
use crate::store::{EventQuery, PositionsReport, StoreError, StoreReader};

/// What was checked and every difference found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    pub events: u64,
    /// The first event record that breaks the chain, and why.
    pub events_broken: Option<(i64, String)>,
    pub positions: PositionsReport,
    /// Checkpoints read, and the newest whose signature and heads all check.
    pub checkpoints: usize,
    pub newest_matching: Option<Checkpoint>,
    pub checkpoint_problems: Vec<String>,
    pub transits: usize,
    pub transit_problems: Vec<String>,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.events_broken.is_none()
            && self.positions.problems.is_empty()
            && self.checkpoint_problems.is_empty()
            && self.transit_problems.is_empty()
    }
}

/// Where the checkpoints are and which key must have signed them.
pub struct Trust {
    pub checkpoint_dirs: Vec<PathBuf>,
    /// The public key; `None` checks no signatures (and says so).
    pub public: Option<[u8; 32]>,
}

/// Runs every check. `progress` hears (report batches, reports) during the longest walk.
///
/// # Errors
/// Database errors, or a checkpoint file that cannot be read.
pub fn audit(
    reader: &dyn StoreReader,
    trust: &Trust,
    progress: &mut dyn FnMut(i64, u64),
) -> anyhow::Result<AuditReport> {
    let chain = reader.verify_event_log()?;
    let mut report = AuditReport {
        events: chain.rows,
        events_broken: chain.first_broken,
        positions: reader.verify_positions(progress)?,
        ..AuditReport::default()
    };
    checkpoints(reader, trust, &mut report)?;
    transits(reader, &mut report)?;
    Ok(report)
}

fn checkpoints(
    reader: &dyn StoreReader,
    trust: &Trust,
    report: &mut AuditReport,
) -> anyhow::Result<()> {
    let head = reader.chain_head()?;
    for dir in &trust.checkpoint_dirs {
        let (read, bad) = checkpoint::read(dir)?;
        report.checkpoint_problems.extend(bad);
        for c in read {
            report.checkpoints += 1;
            let when = c.at.to_rfc3339();
            if let Some(public) = &trust.public {
                if !c.is_signed_by(public) {
                    report.checkpoint_problems.push(format!(
                        "the checkpoint of {when} is not signed by key {}: forged, or altered",
                        key::fingerprint(public)
                    ));
                    continue;
                }
            }
            let mut ok = true;
            if c.head.events > head.events || c.head.batches > head.batches {
                report.checkpoint_problems.push(format!(
                    "the store was cut back: the checkpoint of {when} covers {} event records and {} report batches, the store holds {} and {}",
                    c.head.events, c.head.batches, head.events, head.batches
                ));
                ok = false;
            }
            let (event, batch) = reader.hashes_at(c.head.events, c.head.batches)?;
            if event.is_some() && event.as_deref() != Some(c.head.events_head.as_str()) {
                report.checkpoint_problems.push(format!(
                    "event record {} is not the one signed in the checkpoint of {when}: the chain was rewritten at or before it",
                    c.head.events
                ));
                ok = false;
            }
            if batch.is_some() && batch.as_deref() != Some(c.head.batches_head.as_str()) {
                report.checkpoint_problems.push(format!(
                    "report batch {} is not the one signed in the checkpoint of {when}: the batches were rewritten at or before it",
                    c.head.batches
                ));
                ok = false;
            }
            let newer = report
                .newest_matching
                .as_ref()
                .is_none_or(|n| (n.head.events, n.head.batches) <= (c.head.events, c.head.batches));
            if ok && newer {
                report.newest_matching = Some(c);
            }
        }
    }
    // The roots cover every hash up to the heads; recomputing them is a walk of both chains,
    // so it is done for the newest matching checkpoint only.
    if let Some(c) = &report.newest_matching {
        let (events_root, batches_root) = reader.chain_roots(&c.head)?;
        if (events_root.as_str(), batches_root.as_str())
            != (c.events_root.as_str(), c.batches_root.as_str())
        {
            report.checkpoint_problems.push(format!(
                "the hashes up to the checkpoint of {} do not give its signed roots: a record before it was replaced",
                c.at.to_rfc3339()
            ));
            report.newest_matching = None;
        }
    }
    Ok(())
}

/// Pages of the event log read at a time.
const PAGE: usize = 10_000;

fn transits(reader: &dyn StoreReader, report: &mut AuditReport) -> Result<(), StoreError> {
    let stored = reader.transits(false, usize::MAX >> 1)?;
    report.transits = stored.len();
    // One transit at a time through its index, so memory is one transit's records.
    for t in &stored {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = reader.events(&EventQuery {
                transit_id: Some(t.id.to_string()),
                after,
                limit: PAGE,
                ..EventQuery::default()
            })?;
            let done = page.len() < PAGE;
            after = page.last().map(|e| e.id);
            events.extend(page);
            if done {
                break;
            }
        }
        let rebuilt = rebuild::rebuild(&events);
        match rebuilt.get(t.id.as_str()) {
            Some(r) => report.transit_problems.extend(rebuild::differences(r, t)),
            None => report.transit_problems.push(format!(
                "transit {}: in the table, but the log has no declaration of it",
                t.id.as_str()
            )),
        }
    }
    Ok(())
}
