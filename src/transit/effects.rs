//! Applying what a step produced to a transit: alerts raised or counted, conditions ended,
//! passages and sections kept, suspension recorded, and a record for each.

use chrono::{DateTime, Utc};

use super::alert::{self, Alert, AlertKind, Outcome, Raised};
use super::lifecycle::Effect;
use super::model::{Actor, Status, Transit, Transition};
use super::record::{Fact, Recorder};
use super::risk::CarrierHistory;
use crate::maps::CountryCode;
use crate::telemetry::DeviceId;

/// Applies effects to a transit: alerts raised or counted, conditions ended, and a record
/// for each.
pub(super) fn settle(
    t: &mut Transit,
    effects: Vec<Effect>,
    rec: &mut Recorder,
    device: Option<&DeviceId>,
) {
    for effect in effects {
        match effect {
            Effect::Moved(tr) => {
                let fact = fact_of(&tr, device);
                rec.push("status_changed", fact, &tr);
            }
            Effect::Alert(c) => {
                let device_id = c.device_id.clone().or_else(|| device.cloned());
                let fact = Fact {
                    at: c.occurred_at,
                    late: c.late,
                    by: None,
                    device_id: device_id.as_ref(),
                };
                let jurisdiction = country_at(t, c.occurred_at);
                let id = t.id.to_string();
                let evidence = c.detail.clone();
                match alert::raise(&mut t.alerts, &id, c, jurisdiction) {
                    Raised::New(alert_id) => {
                        let alert = t.alerts.iter().find(|a| a.id == alert_id);
                        rec.push("alert_raised", fact, alert);
                    }
                    Raised::Repeated(alert_id) => {
                        rec.push(
                            "alert_repeated",
                            fact,
                            serde_json::json!({ "alert_id": alert_id }),
                        );
                    }
                    Raised::Escalated { id: alert_id, from } => {
                        let alert = t.alerts.iter().find(|a| a.id == alert_id);
                        let body = serde_json::json!({
                            "alert_id": alert_id,
                            "from": from,
                            "to": alert.map(|a| a.severity),
                            "evidence": evidence,
                            "alert": alert,
                        });
                        rec.push("alert_escalated", fact, body);
                    }
                }
            }
            Effect::ConditionEnded { key, at } => {
                if let Some(alert_id) = alert::condition_ended(&mut t.alerts, &key, at) {
                    let fact = Fact {
                        at,
                        late: false,
                        by: None,
                        device_id: device,
                    };
                    rec.push(
                        "alert_condition_ended",
                        fact,
                        serde_json::json!({ "alert_id": alert_id }),
                    );
                }
            }
            Effect::PassageEnded(p) => {
                let fact = Fact {
                    at: p.left_at.unwrap_or(p.entered_at),
                    late: false,
                    by: None,
                    device_id: device,
                };
                rec.push("bcp_passed", fact, &p);
            }
            Effect::SectionEnded(s) => {
                let fact = Fact {
                    at: s.ended_at,
                    late: false,
                    by: None,
                    device_id: device,
                };
                rec.push("section_completed", fact, &s);
                t.sections.push(s);
            }
            Effect::SealOpenedAtControl {
                seal_id,
                zone_id,
                at,
            } => {
                let fact = Fact {
                    at,
                    late: false,
                    by: None,
                    device_id: device,
                };
                let body = serde_json::json!({ "seal_id": seal_id, "zone_id": zone_id });
                rec.push("seal_opened_at_control", fact, body);
            }
        }
    }
}

fn fact_of<'a>(tr: &'a Transition, device: Option<&'a DeviceId>) -> Fact<'a> {
    Fact {
        at: tr.at,
        late: tr.late,
        by: Some(&tr.by),
        device_id: device,
    }
}

/// The country whose leg the transit was on at `at`: legs advance as BCP passages end.
fn country_at(t: &Transit, at: DateTime<Utc>) -> Option<CountryCode> {
    let passed = t
        .passages
        .iter()
        .filter(|p| p.left_at.is_some_and(|l| l <= at))
        .count();
    let leg = passed.min(t.leg);
    t.itinerary
        .legs
        .get(leg)
        .or(t.itinerary.legs.last())
        .map(|l| l.country)
}

/// The country after the one an alert occurred in, for escalation.
pub(super) fn next_country(t: &Transit, alert_id: &str) -> Option<CountryCode> {
    let alert = t.alerts.iter().find(|a| a.id == alert_id)?;
    let here = alert.jurisdiction?;
    let countries = t.countries();
    let i = countries.iter().position(|c| *c == here)?;
    countries.get(i + 1).copied()
}

pub(super) fn count_outcome(history: &mut CarrierHistory, kind: AlertKind, outcome: Outcome) {
    match (kind, outcome) {
        (_, Outcome::Seizure) => history.seizures += 1,
        (_, Outcome::FalseAlarm) => history.false_alarms += 1,
        (AlertKind::SealBreach, _) => history.confirmed_breaches += 1,
        _ => {}
    }
}

/// Records the transit entering or leaving `suspended` as its critical alerts open and close.
pub(super) fn suspension(
    t: &mut Transit,
    before: Status,
    by: &Actor,
    at: DateTime<Utc>,
    rec: &mut Recorder,
) {
    let after = t.status();
    let was = before == Status::Suspended;
    let is = after == Status::Suspended;
    if was == is {
        return;
    }
    let stage = Status::from(t.stage);
    let suspending: Vec<&Alert> = t.alerts.iter().filter(|a| a.suspends()).collect();
    // Suspended when the first open critical alert became critical, by the clock of its
    // evidence (device time), not when the server got to it; resumed when the officer
    // resolved the last one.
    let became_critical = suspending.iter().map(|a| critical_since(a)).min();
    let (from, to, who, when, late) = if is {
        let late = suspending.iter().any(|a| a.late);
        let when = became_critical.unwrap_or(at);
        (stage, Status::Suspended, Actor::system(), when, late)
    } else {
        (Status::Suspended, stage, by.clone(), at, false)
    };
    let critical = suspending.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    let tr = Transition {
        from,
        to,
        at: when,
        recorded_at: Some(at),
        by: who,
        place: None,
        late,
        note: is.then(|| format!("critical alert(s) open: {}", critical.join(", "))),
    };
    t.record_transition(tr.clone());
    rec.push("status_changed", fact_of(&tr, None), &tr);
}

/// When an alert became critical: its last escalation, or when it occurred.
fn critical_since(a: &Alert) -> DateTime<Utc> {
    a.history
        .iter()
        .rev()
        .find(|s| s.action == "escalated")
        .map_or(a.occurred_at, |s| s.at)
}
