//! What the transit domain tells the event log: one record per fact, in the shape of the
//! store's hash-chained log, and the change of one transit that the pipeline commits.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{Actor, Transit};
use crate::telemetry::DeviceId;

/// One domain fact for the append-only event log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// e.g. `transit.status_changed`, `transit.alert_raised`.
    pub kind: String,
    pub device_id: Option<DeviceId>,
    pub transit_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub late: bool,
    /// `None` for changes Caravan derived from device data.
    pub actor: Option<String>,
    pub body: serde_json::Value,
}

/// A transit after a change, with the records that explain it. The pipeline stores the
/// transit and appends the records in the same commit.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitChange {
    pub transit: Box<Transit>,
    pub records: Vec<Record>,
}

/// Builds the records of one transit's change.
pub(crate) struct Recorder {
    pub transit_id: String,
    pub detected_at: DateTime<Utc>,
    pub records: Vec<Record>,
}

impl Recorder {
    pub fn new(transit: &Transit, detected_at: DateTime<Utc>) -> Self {
        Self {
            transit_id: transit.id.to_string(),
            detected_at,
            records: Vec::new(),
        }
    }

    /// Appends a record; `by` is left out of the log's actor column when it is Caravan.
    pub fn push(&mut self, kind: &str, fact: Fact<'_>, body: impl Serialize) {
        let body = serde_json::to_value(body).unwrap_or(serde_json::Value::Null);
        self.records.push(Record {
            kind: format!("transit.{kind}"),
            device_id: fact.device_id.cloned(),
            transit_id: Some(self.transit_id.clone()),
            occurred_at: fact.at,
            detected_at: self.detected_at,
            late: fact.late,
            actor: fact.by.filter(|a| !a.is_system()).map(|a| a.0.clone()),
            body,
        });
    }
}

/// When and by whom a recorded fact happened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fact<'a> {
    pub at: DateTime<Utc>,
    pub late: bool,
    pub by: Option<&'a Actor>,
    pub device_id: Option<&'a DeviceId>,
}

impl<'a> Fact<'a> {
    pub fn by(by: &'a Actor, at: DateTime<Utc>) -> Self {
        Self {
            at,
            late: false,
            by: Some(by),
            device_id: None,
        }
    }
}
