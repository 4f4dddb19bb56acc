//! Alerts: one taxonomy for everything that needs a human, with the EAEU navigation-seal code
//! where one exists, and the lifecycle open → acknowledged → resolved with an outcome.
//!
//! A repeated condition does not raise a second alert while the first is unresolved: it is
//! counted on the open one. The end of a condition (back on the route, moving again, heard
//! again) is noted on the alert, which stays for a human to resolve.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::detail::AlertDetail;
use super::model::Actor;
use crate::geofence::Severity;
use crate::maps::CountryCode;
use crate::telemetry::{DeviceId, GeoPoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SealBreach,
    SealFault,
    LowBattery,
    RouteDeviation,
    WrongDirection,
    UnauthorisedStop,
    CrossingOutsideBcp,
    SignalLost,
    TrackingGap,
    Overdue,
    SkippedBcp,
    GnssAnomaly,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SealBreach => "seal_breach",
            Self::SealFault => "seal_fault",
            Self::LowBattery => "low_battery",
            Self::RouteDeviation => "route_deviation",
            Self::WrongDirection => "wrong_direction",
            Self::UnauthorisedStop => "unauthorised_stop",
            Self::CrossingOutsideBcp => "crossing_outside_bcp",
            Self::SignalLost => "signal_lost",
            Self::TrackingGap => "tracking_gap",
            Self::Overdue => "overdue",
            Self::SkippedBcp => "skipped_bcp",
            Self::GnssAnomaly => "gnss_anomaly",
        }
    }

    /// The EAEU navigation-seal alert code, where the kind has one. A seal breach is 01
    /// (rope) or 02 (housing) by what the seal reported; an unexplained opening is 07
    /// (unauthorised actions).
    pub fn eaeu_code(self, seal_event: Option<&str>) -> Option<&'static str> {
        match (self, seal_event) {
            (Self::SealBreach, Some("rope_cut")) => Some("01"),
            (Self::SealBreach, Some("case_breach")) => Some("02"),
            (Self::SealBreach, _) => Some("07"),
            (Self::RouteDeviation, _) => Some("03"),
            (Self::SealFault, _) => Some("04"),
            (Self::LowBattery, _) => Some("05"),
            (Self::SignalLost | Self::TrackingGap, _) => Some("06"),
            _ => None,
        }
    }

    /// How urgent the kind is unless the rule raising it says otherwise. Critical alerts
    /// suspend the transit until resolved.
    pub fn severity(self) -> Severity {
        match self {
            Self::SealBreach | Self::CrossingOutsideBcp | Self::SkippedBcp => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

/// How an alert was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    FalseAlarm,
    ResolvedOnSite,
    InspectionOrdered,
    /// Handed to the authority of the next leg's country, which now sees the alert.
    Escalated,
    Seizure,
}

/// One thing done to an alert, by whom and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertStep {
    pub action: String,
    pub by: Actor,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `{transit_id}.{n}`, numbered per transit.
    pub id: String,
    pub transit_id: String,
    pub kind: AlertKind,
    /// What "the same condition" means for this alert, e.g. `seal_breach:KG-ES-1`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eaeu_code: Option<String>,
    pub severity: Severity,
    pub state: AlertState,
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    /// Raised from device data that arrived after the fact.
    pub late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
    /// The country where it occurred: its authority works the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<CountryCode>,
    /// Authorities that see the alert: the jurisdiction, plus the next country's after an
    /// escalation.
    pub visible_to: Vec<CountryCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Times the condition was seen again while this alert was unresolved.
    pub repeats: u32,
    /// When the condition itself ended (back on route, moving, heard again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Kept compact (`AlertDetail`): serialised, it is the JSON the rule gave.
    pub detail: AlertDetail,
    pub history: Vec<AlertStep>,
}

impl Alert {
    /// An unresolved critical alert suspends its transit.
    pub fn suspends(&self) -> bool {
        self.severity == Severity::Critical && self.state != AlertState::Resolved
    }

    pub fn is_unresolved(&self) -> bool {
        self.state != AlertState::Resolved
    }

    /// Whether an authority of `country` may see the alert.
    pub fn visible_to_country(&self, country: CountryCode) -> bool {
        self.visible_to.contains(&country)
    }
}

/// A condition a rule found, before it is deduplicated into an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub kind: AlertKind,
    pub key: String,
    pub severity: Severity,
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub late: bool,
    pub device_id: Option<DeviceId>,
    pub point: Option<GeoPoint>,
    pub detail: serde_json::Value,
    pub seal_event: Option<String>,
}

impl Candidate {
    pub fn new(kind: AlertKind, key: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            key: key.into(),
            severity: kind.severity(),
            occurred_at: at,
            detected_at: at,
            late: false,
            device_id: None,
            point: None,
            detail: serde_json::Value::Null,
            seal_event: None,
        }
    }
}

/// Why an officer's action on an alert was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("no alert {0}")]
    NotFound(String),
    #[error("alert {0} is already resolved")]
    AlreadyResolved(String),
    #[error("alert {0} cannot be escalated: no country follows on the itinerary")]
    NoNextCountry(String),
}

/// What raising a candidate did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raised {
    New(String),
    /// Counted on the unresolved alert with the same key.
    Repeated(String),
    /// Counted on the unresolved alert with the same key, whose severity the new evidence
    /// raised (it was `from`).
    Escalated {
        id: String,
        from: Severity,
    },
}

/// Raises `c` on `alerts` unless the same condition is already unresolved there.
pub fn raise(
    alerts: &mut Vec<Alert>,
    transit_id: &str,
    c: Candidate,
    jurisdiction: Option<CountryCode>,
) -> Raised {
    if let Some(open) = alerts
        .iter_mut()
        .find(|a| a.key == c.key && a.is_unresolved())
    {
        open.repeats += 1;
        if c.severity <= open.severity {
            return Raised::Repeated(open.id.clone());
        }
        // The facts grew past what the alert was graded for: the grade follows them, and
        // the alert's own history says when and why.
        let from = open.severity;
        open.severity = c.severity;
        open.history.push(AlertStep {
            action: "escalated".into(),
            by: Actor::system(),
            at: c.occurred_at,
            note: Some(format!(
                "{} -> {}",
                severity_str(from),
                severity_str(c.severity)
            )),
        });
        return Raised::Escalated {
            id: open.id.clone(),
            from,
        };
    }
    let id = format!("{transit_id}.{}", alerts.len() + 1);
    alerts.push(Alert {
        id: id.clone(),
        transit_id: transit_id.to_owned(),
        kind: c.kind,
        key: c.key,
        eaeu_code: c.kind.eaeu_code(c.seal_event.as_deref()).map(str::to_owned),
        severity: c.severity,
        state: AlertState::Open,
        occurred_at: c.occurred_at,
        detected_at: c.detected_at,
        late: c.late,
        device_id: c.device_id,
        point: c.point,
        jurisdiction,
        visible_to: jurisdiction.into_iter().collect(),
        assignee: None,
        repeats: 0,
        condition_ended_at: None,
        outcome: None,
        detail: c.detail.into(),
        history: Vec::new(),
    });
    Raised::New(id)
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// Notes on the unresolved alert with `key` that its condition ended at `at`.
pub fn condition_ended(alerts: &mut [Alert], key: &str, at: DateTime<Utc>) -> Option<String> {
    let alert = alerts
        .iter_mut()
        .rev()
        .find(|a| a.key == key && a.is_unresolved())?;
    alert.condition_ended_at = Some(at);
    Some(alert.id.clone())
}

/// An officer's action on an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AlertAction {
    Acknowledge {
        #[serde(default)]
        note: Option<String>,
    },
    Assign {
        to: String,
    },
    Resolve {
        outcome: Outcome,
        #[serde(default)]
        notes: Option<String>,
    },
}

impl AlertAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Acknowledge { .. } => "acknowledged",
            Self::Assign { .. } => "assigned",
            Self::Resolve { .. } => "resolved",
        }
    }
}

/// Applies an officer's action. `next_country` is the country of the leg after the one the
/// alert occurred on, for escalation.
///
/// # Errors
/// The alert is already resolved, or an escalation has no next country.
pub fn act(
    alert: &mut Alert,
    action: &AlertAction,
    next_country: Option<CountryCode>,
    by: &Actor,
    at: DateTime<Utc>,
) -> Result<(), AlertError> {
    if alert.state == AlertState::Resolved {
        return Err(AlertError::AlreadyResolved(alert.id.clone()));
    }
    let note = match action {
        AlertAction::Acknowledge { note } => {
            alert.state = AlertState::Acknowledged;
            note.clone()
        }
        AlertAction::Assign { to } => {
            alert.assignee = Some(to.clone());
            Some(format!("assigned to {to}"))
        }
        AlertAction::Resolve { outcome, notes } => {
            if *outcome == Outcome::Escalated {
                let next =
                    next_country.ok_or_else(|| AlertError::NoNextCountry(alert.id.clone()))?;
                if !alert.visible_to.contains(&next) {
                    alert.visible_to.push(next);
                }
            }
            alert.state = AlertState::Resolved;
            alert.outcome = Some(*outcome);
            notes.clone()
        }
    };
    alert.history.push(AlertStep {
        action: action.as_str().to_owned(),
        by: by.clone(),
        at,
        note,
    });
    Ok(())
}
