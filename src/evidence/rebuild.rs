//! A transit rebuilt from the event log alone, and every difference with the stored one.
//!
//! The `transits` table is what the API serves; the log is what is chained and signed. Each
//! change to a transit writes records in the same commit (`declared` with the whole
//! transit, or `received` with the whole record from the peer instance that holds it; then
//! status changes, alerts raised, repeated, ended and updated, inspections, risk), so
//! replaying them gives the status, transitions, alerts with their lifecycle and outcomes,
//! inspections, seals and deadline the table must show.

use std::collections::BTreeMap;

use crate::store::StoredEvent;
use crate::transit::{Alert, Inspection, SealCondition, Status, Transit, Transition};

/// What the log says about one transit.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    pub transit: Transit,
    /// The record ids it was rebuilt from, oldest first.
    pub records: Vec<i64>,
    /// Records that could not be applied, with why.
    pub unreadable: Vec<String>,
}

/// Replays `events` (any order of transits, oldest first within each) into transits.
pub fn rebuild(events: &[StoredEvent]) -> BTreeMap<String, Rebuilt> {
    let mut out: BTreeMap<String, Rebuilt> = BTreeMap::new();
    for e in events {
        let Some(id) = e.transit_id.as_deref() else {
            continue;
        };
        let Some(kind) = e.kind.strip_prefix("transit.") else {
            continue;
        };
        // A declaration, or a record received whole from the peer that holds the transit.
        if kind == "declared" || kind == "received" {
            match serde_json::from_value::<Transit>(e.body.clone()) {
                Ok(transit) => {
                    out.insert(
                        id.to_owned(),
                        Rebuilt {
                            transit,
                            records: vec![e.id],
                            unreadable: Vec::new(),
                        },
                    );
                }
                Err(err) => {
                    tracing::warn!(record = e.id, %err, "A declaration record does not read.");
                }
            }
            continue;
        }
        let Some(r) = out.get_mut(id) else { continue };
        r.records.push(e.id);
        if let Err(why) = apply(&mut r.transit, kind, e) {
            r.unreadable.push(format!("record {}: {why}", e.id));
        }
    }
    out
}

fn apply(t: &mut Transit, kind: &str, e: &StoredEvent) -> Result<(), String> {
    let body = e.body.clone();
    let alert_id = || {
        e.body
            .get("alert_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| "no alert_id".to_owned())
    };
    match kind {
        "status_changed" => {
            let tr: Transition = serde_json::from_value(body).map_err(|e| e.to_string())?;
            if tr.to != Status::Suspended {
                if let Ok(stage) =
                    serde_json::from_value(serde_json::to_value(tr.to).unwrap_or_default())
                {
                    t.stage = stage;
                }
            }
            // At its place in time, as the table records it: a step recorded after another
            // can have happened before it (device time a little ahead of the server's clock
            // when an officer acts at once, or device data that arrives late).
            t.record_transition(tr);
        }
        "alert_raised" | "alert_updated" => {
            let alert: Alert = serde_json::from_value(body).map_err(|e| e.to_string())?;
            if kind == "alert_raised" {
                seal_breached(t, &alert.key);
            }
            match t.alerts.iter_mut().find(|a| a.id == alert.id) {
                Some(a) => *a = alert,
                None => t.alerts.push(alert),
            }
        }
        "alert_repeated" => {
            let id = alert_id()?;
            let a = t
                .alerts
                .iter_mut()
                .find(|a| a.id == id)
                .ok_or("unknown alert")?;
            a.repeats += 1;
            let key = a.key.clone();
            seal_breached(t, &key);
        }
        "seal_opened_at_control" => {
            let id = e
                .body
                .get("seal_id")
                .and_then(|v| v.as_str())
                .ok_or("no seal_id")?;
            set_seal(t, id, SealCondition::OpenedAtControl);
        }
        "alert_condition_ended" => {
            let id = alert_id()?;
            let a = t
                .alerts
                .iter_mut()
                .find(|a| a.id == id)
                .ok_or("unknown alert")?;
            a.condition_ended_at = Some(e.occurred_at);
        }
        "inspection_recorded" => {
            let i: Inspection = serde_json::from_value(body).map_err(|e| e.to_string())?;
            for seal in t.seals.iter_mut() {
                if i.seals_removed.contains(&seal.id) {
                    seal.state = SealCondition::Removed;
                }
            }
            for id in &i.seals_applied {
                t.seals.push(crate::transit::Seal {
                    id: id.clone(),
                    device_id: None,
                    applied_at: i.at,
                    applied_at_place: i.place.clone(),
                    state: SealCondition::Intact,
                });
            }
            t.inspections.push(i);
        }
        "risk_assessed" => {
            t.risk = serde_json::from_value(body).map_err(|e| e.to_string())?;
        }
        // Passages and sections are not part of what is compared.
        _ => {}
    }
    Ok(())
}

/// A seal-breach alert (key `seal_breach:{seal}`) marks its seal breached, as the rule that
/// raised it did.
fn seal_breached(t: &mut Transit, key: &str) {
    if let Some(seal) = key.strip_prefix("seal_breach:") {
        set_seal(t, seal, SealCondition::Breached);
    }
}

fn set_seal(t: &mut Transit, id: &str, condition: SealCondition) {
    if let Some(seal) = t
        .seals
        .iter_mut()
        .find(|s| s.id == id && s.state != SealCondition::Removed)
    {
        seal.state = condition;
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Every difference between what the log says and what is stored, one line each.
pub fn differences(rebuilt: &Rebuilt, stored: &Transit) -> Vec<String> {
    let id = stored.id.as_str();
    let r = &rebuilt.transit;
    let mut out: Vec<String> = rebuilt
        .unreadable
        .iter()
        .map(|u| format!("transit {id}: {u}"))
        .collect();
    if r.status() != stored.status() {
        out.push(format!(
            "transit {id}: status is {} in the table, {} by the log",
            stored.status().as_str(),
            r.status().as_str()
        ));
    }
    if json(&r.stage) != json(&stored.stage) {
        out.push(format!(
            "transit {id}: stage is {} in the table, {} by the log",
            json(&stored.stage),
            json(&r.stage)
        ));
    }
    if r.deadline != stored.deadline {
        out.push(format!(
            "transit {id}: deadline is {} in the table, {} by the log",
            stored.deadline.to_rfc3339(),
            r.deadline.to_rfc3339()
        ));
    }
    if json(&r.transitions) != json(&stored.transitions) {
        out.push(format!(
            "transit {id}: its status history differs ({} transitions in the table, {} by the log)",
            stored.transitions.len(),
            r.transitions.len()
        ));
    }
    for a in &stored.alerts {
        match r.alerts.iter().find(|b| b.id == a.id) {
            None => out.push(format!("alert {}: in the table, not in the log", a.id)),
            Some(b) if json(a) != json(b) => out.push(format!(
                "alert {}: {} / {} in the table, {} / {} by the log",
                a.id,
                json(&a.state),
                a.outcome
                    .as_ref()
                    .map(json)
                    .unwrap_or_else(|| "no outcome".into()),
                json(&b.state),
                b.outcome
                    .as_ref()
                    .map(json)
                    .unwrap_or_else(|| "no outcome".into()),
            )),
            Some(_) => {}
        }
    }
    for b in &r.alerts {
        if !stored.alerts.iter().any(|a| a.id == b.id) {
            out.push(format!(
                "alert {}: in the log, missing from the table",
                b.id
            ));
        }
    }
    if json(&r.inspections) != json(&stored.inspections) {
        out.push(format!(
            "transit {id}: inspections differ ({} in the table, {} by the log)",
            stored.inspections.len(),
            r.inspections.len()
        ));
    }
    let seals = |t: &Transit| -> Vec<(String, String)> {
        t.seals
            .iter()
            .map(|s| (s.id.clone(), json(&s.state)))
            .collect()
    };
    if seals(r) != seals(stored) {
        out.push(format!(
            "transit {id}: seals are {:?} in the table, {:?} by the log",
            seals(stored),
            seals(r)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::transit::fixtures::{bishkek_almaty, declared_at};
    use crate::transit::Actor;

    fn event(id: i64, kind: &str, body: serde_json::Value) -> StoredEvent {
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap();
        StoredEvent {
            id,
            kind: format!("transit.{kind}"),
            device_id: None,
            transit_id: Some("KG-24KG0101-000001".into()),
            occurred_at: at,
            detected_at: at,
            late: false,
            actor: None,
            body,
            hash: String::new(),
        }
    }

    #[test]
    fn a_step_recorded_after_a_later_one_is_rebuilt_at_its_place_in_time() {
        let at = declared_at();
        let mut stored = bishkek_almaty();
        let declared = serde_json::to_value(&stored).unwrap();
        // Suspended by an alert of device time 10:02, resumed by an officer at 10:01 server
        // time: the resumption is recorded first, the suspension second.
        let step = |from: Status, to: Status, minute: i64| Transition {
            from,
            to,
            at: at + Duration::minutes(minute),
            recorded_at: Some(at),
            by: Actor::system(),
            place: None,
            late: false,
            note: None,
        };
        let first = step(Status::Suspended, Status::Declared, 1);
        let second = step(Status::Declared, Status::Suspended, 2);
        stored.record_transition(second.clone());
        stored.record_transition(first.clone());
        let events = [
            event(1, "declared", declared),
            event(2, "status_changed", serde_json::to_value(&second).unwrap()),
            event(3, "status_changed", serde_json::to_value(&first).unwrap()),
        ];
        let rebuilt = rebuild(&events);
        let r = &rebuilt["KG-24KG0101-000001"];
        assert_eq!(r.transit.transitions, vec![first, second]);
        let transitions: Vec<String> = differences(r, &stored)
            .into_iter()
            .filter(|d| d.contains("status history"))
            .collect();
        assert!(transitions.is_empty(), "{transitions:?}");
    }
}
