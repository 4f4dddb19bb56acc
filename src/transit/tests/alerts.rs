//! Alerts raised by engine events and transit rules, their lifecycle, and inspections.

use super::*;
use crate::geofence::{EventKind, GeofenceEvent, Severity, ZoneKind};
use crate::transit::inspection::{AppliedSeal, InspectionError};
use crate::transit::{
    Action, ActionError, AlertAction, AlertKind, AlertState, InspectionReport, InspectionResult,
    Lane, Outcome, SealCondition,
};

fn event(kind: EventKind, minute: i64, late: bool) -> GeofenceEvent {
    GeofenceEvent {
        device_id: truck(),
        severity: kind.severity(),
        kind,
        occurred_at: at(minute),
        detected_at: at(minute + if late { 240 } else { 0 }),
        late,
        point: None,
    }
}

fn rope_cut(minute: i64, late: bool) -> GeofenceEvent {
    let kind = EventKind::SealAlarm {
        seal_id: "CN-S-0001".into(),
        event: SealEventKind::RopeCut,
        zone_id: None,
        at_control_place: false,
    };
    event(kind, minute, late)
}

fn on_the_road() -> Trip {
    let mut trip = Trip::declared(declaration());
    trip.wait(0.0, 10.0, 10.0);
    trip.drive(0.0, 50_000.0, 60.0, 5.0, 25.0);
    trip
}

#[test]
fn a_rope_cut_on_the_road_raises_one_critical_alert_and_suspends_the_transit() {
    let mut trip = on_the_road();
    let changes = trip
        .book
        .on_geofence_events(&[rope_cut(90, false), rope_cut(95, false)], at(95));
    let t = &changes[0].transit;
    let [alert] = t.alerts.as_slice() else {
        panic!("{:#?}", t.alerts)
    };
    assert_eq!(alert.kind, AlertKind::SealBreach);
    assert_eq!(alert.eaeu_code.as_deref(), Some("01"));
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.repeats, 1);
    assert_eq!(
        alert.jurisdiction.map(|c| c.to_string()).as_deref(),
        Some("CN")
    );
    assert_eq!(t.status(), Status::Suspended);
    assert_eq!(t.seals[0].state, SealCondition::Breached);
    assert_eq!(t.risk.lane, Lane::Yellow, "{:#?}", t.risk);
    let kinds: Vec<_> = changes[0].records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "transit.alert_raised",
            "transit.alert_repeated",
            "transit.status_changed",
            "transit.risk_assessed"
        ]
    );
}

#[test]
fn resolving_the_critical_alert_resumes_the_transit_and_records_who() {
    let mut trip = on_the_road();
    trip.book.on_geofence_events(&[rope_cut(90, false)], at(90));
    let id = trip.id.clone();
    let alert_id = format!("{id}.1");
    let ack = Action::Alert {
        alert_id: alert_id.clone(),
        action: AlertAction::Acknowledge { note: None },
    };
    trip.book
        .act(&id, ack, &officer("cn-duty-1"), at(100))
        .expect("acknowledged");
    let resolve = Action::Alert {
        alert_id: alert_id.clone(),
        action: AlertAction::Resolve {
            outcome: Outcome::Escalated,
            notes: Some("seal cut; KG post to inspect".into()),
        },
    };
    let change = trip
        .book
        .act(&id, resolve, &officer("cn-duty-1"), at(110))
        .expect("resolved");
    let t = &change.transit;
    assert_eq!(t.status(), Status::InTransit);
    let alert = &t.alerts[0];
    assert_eq!(alert.state, AlertState::Resolved);
    let visible: Vec<_> = alert.visible_to.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        visible,
        ["CN", "KG"],
        "escalation shows the alert to the next country"
    );
    let resumed = t.transitions.last().expect("a transition");
    assert_eq!(
        (resumed.from, resumed.to),
        (Status::Suspended, Status::InTransit)
    );
    assert_eq!(resumed.by, officer("cn-duty-1"));
    let again = Action::Alert {
        alert_id,
        action: AlertAction::Acknowledge { note: None },
    };
    let refused = trip.book.act(&id, again, &officer("x"), at(120));
    assert!(matches!(refused, Err(ActionError::Alert(_))));
}

#[test]
fn a_seal_alarm_from_a_backlog_is_raised_and_marked_late() {
    let mut trip = on_the_road();
    let changes = trip.book.on_geofence_events(&[rope_cut(60, true)], at(300));
    let alert = &changes[0].transit.alerts[0];
    assert!(alert.late);
    assert_eq!(alert.occurred_at, at(60));
    assert!(changes[0]
        .records
        .iter()
        .any(|r| r.late && r.kind == "transit.alert_raised"));
}

#[test]
fn a_repeated_condition_raises_again_only_after_the_first_alert_is_resolved() {
    let mut trip = on_the_road();
    let deviation = |m| {
        let kind = EventKind::RouteDeviation {
            route_id: "r".into(),
            corridor_id: "c5-kashgar-irkeshtam-osh".into(),
            distance_m: 8_000.0,
            width_m: 5_000.0,
        };
        event(kind, m, false)
    };
    let back = event(
        EventKind::RouteDeviationEnded {
            route_id: "r".into(),
            duration_s: 600,
            max_distance_m: 8_000.0,
        },
        110,
        false,
    );
    trip.book
        .on_geofence_events(&[deviation(100), back, deviation(120)], at(120));
    let t = trip.transit();
    assert_eq!(t.alerts.len(), 1);
    assert_eq!(t.alerts[0].eaeu_code.as_deref(), Some("03"));
    assert_eq!(t.alerts[0].condition_ended_at, Some(at(110)));
    let resolve = Action::Alert {
        alert_id: t.alerts[0].id.clone(),
        action: AlertAction::Resolve {
            outcome: Outcome::FalseAlarm,
            notes: None,
        },
    };
    trip.book
        .act(&trip.id.clone(), resolve, &officer("cn-duty-1"), at(130))
        .expect("resolved");
    trip.book.on_geofence_events(&[deviation(140)], at(140));
    assert_eq!(trip.transit().alerts.len(), 2);
}

#[test]
fn a_seal_opened_inside_a_post_zone_awaits_the_inspection_that_replaces_it() {
    let mut trip = Trip::declared(declaration());
    let irk = trip.chainage_of("irkeshtam");
    trip.wait(0.0, 10.0, 10.0);
    let m = trip.drive(0.0, irk - 1_500.0, 60.0, 5.0, 25.0);
    let m = trip.wait(irk - 1_500.0, m + 5.0, 20.0);
    trip.seal("CN-S-0001", SealEventKind::Opened, m, irk - 1_500.0);
    let t = trip.transit();
    assert!(t.alerts.is_empty(), "{:#?}", t.alerts);
    assert_eq!(t.seals[0].state, SealCondition::OpenedAtControl);
    let report = InspectionReport {
        place: "irkeshtam-cn".into(),
        result: InspectionResult::Cleared,
        seals_removed: vec!["CN-S-0001".into()],
        seals_applied: vec![AppliedSeal {
            id: "CN-S-0002".into(),
            device_id: None,
        }],
        notes: Some("x-ray, goods as declared".into()),
        checklist: vec![],
    };
    let change = trip
        .book
        .act(
            &trip.id.clone(),
            Action::Inspect(report.clone()),
            &officer("cn-irk-2"),
            at(m as i64 + 30),
        )
        .expect("recorded");
    let t = &change.transit;
    let current: Vec<_> = t.current_seals().map(|s| s.id.as_str()).collect();
    assert_eq!(current, ["CN-S-0002"]);
    let visible: Vec<_> = t.inspections[0]
        .visible_to
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(visible, ["CN", "KG"], "the next country relies on it");
    let again = trip.book.act(
        &trip.id.clone(),
        Action::Inspect(report),
        &officer("kg-irk-1"),
        at(m as i64 + 60),
    );
    assert_eq!(
        again.err(),
        Some(ActionError::Inspection(InspectionError::NotCurrent(
            "CN-S-0001".into()
        )))
    );
}

#[test]
fn a_load_checklist_travels_with_its_inspection_within_bounds() {
    let mut trip = on_the_road();
    let line = |item: &str, ok: bool| crate::transit::ChecklistItem {
        item: item.into(),
        ok,
        note: None,
    };
    let inspect = |checklist| {
        Action::Inspect(InspectionReport {
            place: "irkeshtam-cn".into(),
            result: InspectionResult::Discrepancy,
            seals_removed: vec![],
            seals_applied: vec![],
            notes: None,
            checklist,
        })
    };
    let id = trip.id.clone();
    let too_long = vec![line("pallets", true); crate::transit::inspection::MAX_CHECKLIST + 1];
    let refused = trip
        .book
        .act(&id, inspect(too_long), &officer("cn-irk-2"), at(60));
    assert_eq!(
        refused.err(),
        Some(ActionError::Inspection(InspectionError::BadChecklist))
    );
    let blank = trip.book.act(
        &id,
        inspect(vec![line(" ", true)]),
        &officer("cn-irk-2"),
        at(61),
    );
    assert!(blank.is_err(), "a line names what was checked");
    let filled = vec![
        line("pallet count as declared", true),
        line("cargo secured", false),
    ];
    let change = trip
        .book
        .act(&id, inspect(filled.clone()), &officer("cn-irk-2"), at(62))
        .expect("recorded");
    assert_eq!(change.transit.inspections[0].checklist, filled);
    let logged = &change.records[0].body["checklist"];
    assert_eq!(logged[1]["ok"], false, "the log keeps it: {logged}");
}

#[test]
fn a_transit_past_its_deadline_is_overdue_once() {
    let mut trip = on_the_road();
    let deadline = trip.transit().deadline;
    assert!(trip.book.tick(deadline).is_empty());
    let changes = trip.book.tick(deadline + chrono::Duration::minutes(1));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].transit.alerts[0].kind, AlertKind::Overdue);
    assert!(trip
        .book
        .tick(deadline + chrono::Duration::minutes(2))
        .is_empty());
}

#[test]
fn reaching_the_destination_without_the_bcps_raises_a_skipped_bcp_alert_for_each() {
    let mut decl = declaration();
    decl.itinerary = vec!["irkeshtam".into(), "karasuu".into()];
    decl.destination_office = "andijan".into();
    let mut trip = Trip::declared(decl);
    let leave = event(
        EventKind::Exit {
            zone_id: "kashgar".into(),
            zone_kind: ZoneKind::Office,
        },
        10,
        false,
    );
    let arrive = event(
        EventKind::Enter {
            zone_id: "andijan".into(),
            zone_kind: ZoneKind::Office,
        },
        900,
        false,
    );
    trip.book.on_geofence_events(&[leave, arrive], at(900));
    let t = trip.transit();
    let skipped: Vec<_> = t.alerts.iter().map(|a| (a.kind, a.key.as_str())).collect();
    assert_eq!(
        skipped,
        [
            (AlertKind::SkippedBcp, "skipped_bcp:irkeshtam"),
            (AlertKind::SkippedBcp, "skipped_bcp:karasuu")
        ]
    );
    assert_eq!(t.stage, Stage::Arrived);
    assert_eq!(t.status(), Status::Suspended);
}

#[test]
fn a_low_battery_status_raises_code_05() {
    let mut trip = on_the_road();
    let status = crate::telemetry::Status {
        seq: 999,
        t: at(100),
        battery_pct: Some(12.0),
        ext_power_v: None,
        gsm_rssi: None,
        jamming: None,
    };
    let report = Report {
        device_id: truck(),
        received_at: at(100),
        body: ReportBody::Status(status),
    };
    let change = trip.book.observe(&report, at(100)).expect("an alert");
    assert_eq!(change.transit.alerts[0].eaeu_code.as_deref(), Some("05"));
}

#[test]
fn sensitive_goods_put_a_transit_in_the_yellow_lane_with_the_reason() {
    let mut decl = declaration();
    decl.goods[0].hs_code = "240220".into();
    let change = book()
        .declare(decl, &officer("a"), at(0), &registered)
        .expect("valid");
    let risk = &change.transit.risk;
    assert_eq!(risk.lane, Lane::Yellow);
    assert!(
        risk.reasons.iter().any(|r| r.reason.contains("tobacco")),
        "{risk:#?}"
    );
}
