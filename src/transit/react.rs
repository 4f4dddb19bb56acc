//! How a transit reacts to one geofence event: lifecycle moves for zone and border events,
//! alert candidates for everything that needs a human, seal state for seal events.

use super::alert::{AlertKind, Candidate};
use super::lifecycle::{self, Cause, Effect, ZoneMove};
use super::model::{Actor, SealCondition, Transit};
use super::rules::TransitRules;
use crate::geofence::{EventKind, GeofenceEvent, Severity, ZoneKind};
use crate::telemetry::SealEventKind;

/// The transit's reaction to `e`, already applied to its stage and seals; alert candidates
/// and records are left to the caller.
pub fn react(t: &mut Transit, e: &GeofenceEvent, rules: &TransitRules) -> Vec<Effect> {
    let cause = Cause {
        by: Actor::system(),
        at: e.occurred_at,
        recorded_at: e.detected_at,
        late: e.late,
    };
    let device = e.device_id.as_str();
    let ended = |key: String| {
        vec![Effect::ConditionEnded {
            key,
            at: e.occurred_at,
        }]
    };
    match &e.kind {
        EventKind::Enter { zone_id, zone_kind } => {
            zone(t, ZoneMove::Enter, zone_id, *zone_kind, &cause)
        }
        EventKind::Exit { zone_id, zone_kind } => {
            zone(t, ZoneMove::Exit, zone_id, *zone_kind, &cause)
        }
        EventKind::Cross { zone_id, zone_kind } => {
            zone(t, ZoneMove::Cross, zone_id, *zone_kind, &cause)
        }
        EventKind::BorderCrossed { bcp_id, .. } => {
            lifecycle::on_border(t, bcp_id.as_deref(), &cause)
        }
        EventKind::CrossingOutsideBcp { from, to, .. } => alert(
            e,
            AlertKind::CrossingOutsideBcp,
            format!("crossing_outside_bcp:{from}-{to}"),
        ),
        EventKind::RouteDeviation { distance_m, .. } => {
            let mut effects = alert(e, AlertKind::RouteDeviation, "route_deviation".into());
            if *distance_m > rules.alerts.deviation_critical_km * 1000.0 {
                if let Some(Effect::Alert(c)) = effects.first_mut() {
                    c.severity = Severity::Critical;
                }
            }
            effects
        }
        // Same key as the deviation: the open alert is escalated, not doubled.
        EventKind::RouteDeviationCritical { .. } => {
            alert(e, AlertKind::RouteDeviation, "route_deviation".into())
        }
        EventKind::RouteDeviationEnded { .. } => ended("route_deviation".into()),
        EventKind::WrongDirection { .. } => {
            alert(e, AlertKind::WrongDirection, "wrong_direction".into())
        }
        EventKind::UnauthorisedStop { .. } => {
            alert(e, AlertKind::UnauthorisedStop, "unauthorised_stop".into())
        }
        EventKind::StopEnded { .. } => ended("unauthorised_stop".into()),
        EventKind::SignalLost { .. } => {
            alert(e, AlertKind::SignalLost, format!("signal_lost:{device}"))
        }
        EventKind::SignalRestored { .. } => ended(format!("signal_lost:{device}")),
        EventKind::TrackingGap { .. } => {
            alert(e, AlertKind::TrackingGap, format!("tracking_gap:{device}"))
        }
        EventKind::GnssAnomaly { .. } => {
            alert(e, AlertKind::GnssAnomaly, format!("gnss_anomaly:{device}"))
        }
        EventKind::SealAlarm {
            seal_id,
            event,
            zone_id,
            at_control_place,
        } => seal_alarm(t, e, seal_id, *event, zone_id.as_deref(), *at_control_place),
        EventKind::Seal {
            seal_id,
            event: SealEventKind::Fault,
        } => alert(e, AlertKind::SealFault, format!("seal_fault:{seal_id}")),
        EventKind::Seal {
            event: SealEventKind::LowBattery,
            ..
        } => alert(e, AlertKind::LowBattery, format!("low_battery:{device}")),
        EventKind::Seal { .. } => Vec::new(),
    }
}

fn zone(
    t: &mut Transit,
    mv: ZoneMove,
    zone_id: &str,
    kind: ZoneKind,
    cause: &Cause,
) -> Vec<Effect> {
    match kind {
        ZoneKind::Post | ZoneKind::Office => lifecycle::on_zone(t, mv, zone_id, cause),
        ZoneKind::CoverageGap => Vec::new(),
    }
}

fn alert(e: &GeofenceEvent, kind: AlertKind, key: String) -> Vec<Effect> {
    let mut c = Candidate::new(kind, key, e.occurred_at);
    c.severity = c.severity.max(e.severity);
    c.detected_at = e.detected_at;
    c.late = e.late;
    c.device_id = Some(e.device_id.clone());
    c.point = e.point;
    c.detail = serde_json::to_value(&e.kind).unwrap_or(serde_json::Value::Null);
    vec![Effect::Alert(c)]
}

/// A breach outside a control place is critical evidence; inside a post or office zone it
/// is the seal being opened for an inspection, recorded for the officer.
fn seal_alarm(
    t: &mut Transit,
    e: &GeofenceEvent,
    seal_id: &str,
    event: SealEventKind,
    zone_id: Option<&str>,
    at_control_place: bool,
) -> Vec<Effect> {
    let condition = if at_control_place {
        SealCondition::OpenedAtControl
    } else {
        SealCondition::Breached
    };
    if let Some(seal) = t
        .seals
        .iter_mut()
        .find(|s| s.id == seal_id && s.state != SealCondition::Removed)
    {
        seal.state = condition;
    }
    if at_control_place {
        return vec![Effect::SealOpenedAtControl {
            seal_id: seal_id.to_owned(),
            zone_id: zone_id.map(str::to_owned),
            at: e.occurred_at,
        }];
    }
    let mut effects = alert(e, AlertKind::SealBreach, format!("seal_breach:{seal_id}"));
    if let Some(Effect::Alert(c)) = effects.first_mut() {
        c.severity = Severity::Critical;
        let wire = serde_json::to_value(event).ok();
        c.seal_event = wire.as_ref().and_then(|v| v.as_str()).map(str::to_owned);
    }
    effects
}
