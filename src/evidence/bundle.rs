//! The evidence bundle of one transit: one JSON file that proves, with nothing but itself
//! and the issuer's public key, which records and positions were committed before a signed
//! checkpoint. `docs/evidence.md` describes the format; `docs/evidence-bundle.schema.json`
//! is its JSON Schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::key::{self, InstanceKey};
use super::merkle::{self, digest_from_hex, fold_proof, Step};
use super::rebuild;
use crate::store::{
    chain_leaf, exported_batch_hash, record_hash, report_leaf, ExportData, RawBatch, RawEvent,
    RawReport, ReportRow, StoredEvent,
};
use crate::transit::Transit;

pub const FORMAT: &str = "caravan-evidence-bundle/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub transit_id: String,
    pub issued_at: DateTime<Utc>,
    pub issuer: Issuer,
    pub checkpoint: Checkpoint,
    /// The transit as the issuer served it (declaration, status, alerts with outcomes,
    /// inspections, seals). Not proven by itself: checked against its rebuild from `events`.
    pub transit: serde_json::Value,
    pub events: Vec<BundleEvent>,
    pub batches: Vec<BundleBatch>,
    pub positions: Vec<BundlePosition>,
    /// Signatures made by the devices themselves; this version has none to give.
    pub device_signatures: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub algorithm: String,
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleEvent {
    #[serde(flatten)]
    pub record: RawEvent,
    /// From the record's hash to the checkpoint's `events_root`.
    pub proof: Vec<Step>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleBatch {
    pub batch: i64,
    pub reports: i64,
    pub root: String,
    pub events_id: i64,
    pub events_head: String,
    pub committed_ms: i64,
    pub prev_hash: String,
    pub hash: String,
    /// From the batch's hash to the checkpoint's `batches_root`.
    pub proof: Vec<Step>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundlePosition {
    #[serde(flatten)]
    pub report: RawReport,
    /// From the report's leaf to its batch's `root`.
    pub proof: Vec<Step>,
}

/// Cuts the bundle. `data` must have been read up to `checkpoint`'s heads.
pub fn assemble(
    transit: &Transit,
    data: ExportData,
    checkpoint: Checkpoint,
    key: &InstanceKey,
    issued_at: DateTime<Utc>,
) -> Bundle {
    let events = data
        .events
        .into_iter()
        .map(|record| {
            let index = usize::try_from(record.id - 1).unwrap_or(usize::MAX);
            let proof = merkle::proof(&data.event_leaves, index).unwrap_or_default();
            BundleEvent { record, proof }
        })
        .collect();
    let positions = data
        .reports
        .into_iter()
        .map(|report| {
            let leaf = leaf_of(&report);
            let proof = data
                .batches
                .iter()
                .find(|b| b.batch == report.batch)
                .and_then(|b| {
                    let index = b.leaves.binary_search(&leaf).ok()?;
                    merkle::proof(&b.leaves, index)
                })
                .unwrap_or_default();
            BundlePosition { report, proof }
        })
        .collect();
    let batches = data
        .batches
        .into_iter()
        .map(|b| {
            let index = usize::try_from(b.batch - 1).unwrap_or(usize::MAX);
            let proof = merkle::proof(&data.batch_leaves, index).unwrap_or_default();
            BundleBatch {
                batch: b.batch,
                reports: b.reports,
                root: b.root,
                events_id: b.events_id,
                events_head: b.events_head,
                committed_ms: b.committed_ms,
                prev_hash: b.prev_hash,
                hash: b.hash,
                proof,
            }
        })
        .collect();
    Bundle {
        format: FORMAT.to_owned(),
        transit_id: transit.id.to_string(),
        issued_at,
        issuer: Issuer {
            algorithm: "ed25519".into(),
            public_key: key.public_hex(),
            fingerprint: key.fingerprint(),
        },
        checkpoint,
        transit: serde_json::to_value(transit).unwrap_or_default(),
        events,
        batches,
        positions,
        device_signatures: Vec::new(),
    }
}

fn leaf_of(r: &RawReport) -> merkle::Digest {
    report_leaf(&ReportRow {
        device_id: &r.device_id,
        seq: r.seq,
        kind: &r.kind,
        t_ms: r.t_ms,
        received_ms: r.received_ms,
        lat: r.lat,
        lon: r.lon,
        body: &r.body,
    })
}

/// What checking a bundle established, and what broke.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub proven: Vec<String>,
    pub broken: Vec<String>,
    /// What a bundle cannot show, stated so nobody reads more into it.
    pub not_proven: Vec<String>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.broken.is_empty()
    }
}

fn root_matches(leaf: merkle::Digest, proof: &[Step], root_hex: &str) -> bool {
    digest_from_hex(root_hex).is_some_and(|root| fold_proof(leaf, proof) == root)
}

/// Checks `bundle` against the public key `public` alone.
pub fn verify(bundle: &Bundle, public: &[u8; 32]) -> Verdict {
    let mut v = Verdict::default();
    let fingerprint = key::fingerprint(public);
    let c = &bundle.checkpoint;
    if bundle.format != FORMAT {
        v.broken
            .push(format!("the format is {:?}, not {FORMAT}", bundle.format));
    }
    if bundle.issuer.fingerprint != fingerprint || c.key != fingerprint {
        v.broken.push(format!(
            "the bundle names issuer key {} but the key given is {fingerprint}",
            bundle.issuer.fingerprint
        ));
    }
    if !c.is_signed_by(public) {
        v.broken.push(format!(
            "the checkpoint of {} is not signed by key {fingerprint} (its heads, roots or time were changed, or another key signed it)",
            c.at.to_rfc3339()
        ));
        return v;
    }
    let mut proven_events = 0;
    for e in &bundle.events {
        let r = &e.record;
        let mut fine = true;
        if r.transit_id.as_deref() != Some(bundle.transit_id.as_str()) {
            v.broken
                .push(format!("event record {}: belongs to another transit", r.id));
            fine = false;
        }
        if record_hash(r) != r.hash {
            v.broken.push(format!(
                "event record {} ({}): its content does not match its hash (it was changed)",
                r.id, r.kind
            ));
            fine = false;
        } else if r.id > c.head.events
            || !root_matches(chain_leaf(&r.hash), &e.proof, &c.events_root)
        {
            v.broken.push(format!(
                "event record {} ({}): not included in the checkpoint's event tree",
                r.id, r.kind
            ));
            fine = false;
        }
        proven_events += usize::from(fine);
    }
    let mut proven_batches = std::collections::BTreeSet::new();
    for b in &bundle.batches {
        let raw = RawBatch {
            batch: b.batch,
            reports: b.reports,
            root: b.root.clone(),
            events_id: b.events_id,
            events_head: b.events_head.clone(),
            committed_ms: b.committed_ms,
            leaves: Vec::new(),
            prev_hash: b.prev_hash.clone(),
            hash: b.hash.clone(),
        };
        if exported_batch_hash(&raw) != b.hash {
            v.broken.push(format!(
                "report batch {}: its content does not match its hash",
                b.batch
            ));
        } else if b.batch > c.head.batches
            || !root_matches(chain_leaf(&b.hash), &b.proof, &c.batches_root)
        {
            v.broken.push(format!(
                "report batch {}: not included in the checkpoint's batch tree",
                b.batch
            ));
        } else {
            proven_batches.insert(b.batch);
        }
    }
    let mut proven_positions = 0;
    for p in &bundle.positions {
        let r = &p.report;
        let name = format!(
            "position of device {} seq {} at {}",
            r.device_id,
            r.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            DateTime::from_timestamp_millis(r.t_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        );
        let batch = bundle.batches.iter().find(|b| b.batch == r.batch);
        match batch {
            Some(b) if proven_batches.contains(&b.batch) => {
                if root_matches(leaf_of(r), &p.proof, &b.root) {
                    proven_positions += 1;
                } else {
                    v.broken.push(format!(
                        "{name}: not what was committed in batch {} (changed)",
                        r.batch
                    ));
                }
            }
            _ => v
                .broken
                .push(format!("{name}: its batch {} is not proven", r.batch)),
        }
    }
    transit_view(bundle, &mut v);
    let ids = (
        bundle.events.first().map(|e| e.record.id),
        bundle.events.last().map(|e| e.record.id),
    );
    v.proven.push(format!(
        "{proven_events} of {} event records of transit {} (records {} to {}) were in the event log when the checkpoint of {} was signed ({} records, head {})",
        bundle.events.len(),
        bundle.transit_id,
        ids.0.unwrap_or(0),
        ids.1.unwrap_or(0),
        c.at.to_rfc3339(),
        c.head.events,
        c.head.events_head,
    ));
    v.proven.push(format!(
        "{proven_positions} of {} positions were committed in {} report batches before that checkpoint ({} batches)",
        bundle.positions.len(),
        proven_batches.len(),
        c.head.batches
    ));
    v.proven.push(format!(
        "the checkpoint is signed by Ed25519 key {fingerprint}"
    ));
    v.not_proven.push("that the bundle holds every record of the transit: records left out cannot be seen from the bundle alone".into());
    v.not_proven.push("anything after the checkpoint, nor that the devices' reports were true (no device signatures)".into());
    v
}

/// The transit view against its rebuild from the bundle's own events.
fn transit_view(bundle: &Bundle, v: &mut Verdict) {
    let view: Transit = match serde_json::from_value(bundle.transit.clone()) {
        Ok(t) => t,
        Err(e) => {
            v.broken
                .push(format!("the transit view does not read: {e}"));
            return;
        }
    };
    let events: Vec<StoredEvent> = bundle
        .events
        .iter()
        .filter_map(|e| {
            let r = &e.record;
            Some(StoredEvent {
                id: r.id,
                kind: r.kind.clone(),
                device_id: r.device_id.clone(),
                transit_id: r.transit_id.clone(),
                occurred_at: DateTime::from_timestamp_millis(r.occurred_ms)?,
                detected_at: DateTime::from_timestamp_millis(r.detected_ms)?,
                late: r.late,
                actor: r.actor.clone(),
                body: serde_json::from_str(&r.body).ok()?,
                hash: r.hash.clone(),
            })
        })
        .collect();
    let rebuilt = rebuild::rebuild(&events);
    match rebuilt.get(&bundle.transit_id) {
        None => v
            .broken
            .push("the bundle's events hold no declaration of the transit".into()),
        Some(r) => {
            let differences = rebuild::differences(r, &view);
            if differences.is_empty() {
                v.proven.push(format!(
                    "the transit view (status {}, {} alerts, {} inspections, {} seals, deadline {}) is what its events say",
                    view.status().as_str(),
                    view.alerts.len(),
                    view.inspections.len(),
                    view.seals.len(),
                    view.deadline.to_rfc3339()
                ));
            }
            v.broken.extend(
                differences
                    .into_iter()
                    .map(|d| format!("transit view: {d}")),
            );
        }
    }
}

/// Hex of a public key as given on the command line, or why not.
pub fn public_key(text: &str) -> Result<[u8; 32], String> {
    key::parse_public(text).ok_or_else(|| "a public key is 64 hex digits".to_owned())
}

/// For messages: the bundle's size in a readable unit.
pub fn describe(bundle: &Bundle) -> String {
    format!(
        "transit {} issued {} by {} ({} events, {} positions)",
        bundle.transit_id,
        bundle.issued_at.to_rfc3339(),
        bundle.issuer.fingerprint,
        bundle.events.len(),
        bundle.positions.len()
    )
}

/// Signs a checkpoint of everything committed now and cuts the bundle of `transit_id` up to
/// it; `None` when there is no such transit. The checkpoint is returned so the caller can
/// also append it to the checkpoint file.
///
/// # Errors
/// Database errors, or a transit with too many reports for one bundle.
pub fn export(
    reader: &dyn crate::store::StoreReader,
    key: &InstanceKey,
    transit_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Bundle>, crate::store::StoreError> {
    let Some(transit) = reader.transit(transit_id)? else {
        return Ok(None);
    };
    let head = reader.chain_head()?;
    let roots = reader.chain_roots(&head)?;
    let checkpoint = Checkpoint::sign(key, head.clone(), roots, now);
    // An open transit's record runs up to the checkpoint: every report committed by then,
    // including one whose device time is a little ahead of this clock (the edge allows it).
    let until = if transit.is_open() {
        chrono::DateTime::<chrono::Utc>::MAX_UTC
    } else {
        transit.transitions.last().map_or(now, |t| t.at)
    };
    let devices: Vec<String> = transit
        .devices
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    let window = (
        transit.declared_at.timestamp_millis(),
        until.timestamp_millis(),
    );
    let data = reader.export(transit_id, &devices, window, &head)?;
    Ok(Some(assemble(&transit, data, checkpoint, key, now)))
}
