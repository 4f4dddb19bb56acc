//! Severity follows the evidence: an open alert escalates when what the device reports
//! passes the shipped rule's threshold, and the escalation is logged as its own event.

use super::*;
use crate::geofence::Severity;
use crate::transit::AlertKind;

/// On the Kashgar side of the route, then off it to the south (staying in China), a fix
/// every 10 minutes at the given distances from the route in km; returns the minute of each
/// fix off the route.
fn deviate(trip: &mut Trip, km: &[f64]) -> Vec<f64> {
    trip.wait(0.0, 10.0, 10.0);
    let mut m = trip.drive(0.0, 30_000.0, 60.0, 5.0, 25.0);
    let mut minutes = Vec::new();
    for d in km {
        m += 10.0;
        trip.fix_off(30_000.0, d * 1000.0, m, 60.0);
        minutes.push(m);
    }
    minutes
}

fn minute(m: f64) -> DateTime<Utc> {
    at(0) + Duration::seconds((m * 60.0) as i64)
}

#[test]
fn a_route_deviation_that_grows_past_50_km_escalates_to_critical_as_its_own_event() {
    let mut trip = Trip::declared(declaration());
    let off = deviate(&mut trip, &[6.5, 7.0, 20.0, 35.0, 48.0, 62.0, 80.0, 95.0]);
    let t = trip.transit();
    let deviations: Vec<_> = t
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::RouteDeviation)
        .collect();
    let [alert] = deviations.as_slice() else {
        panic!("one deviation alert: {:#?}", t.alerts)
    };
    assert_eq!(alert.severity, Severity::Critical, "{alert:#?}");
    // It opened as a warning at the first fix off the route...
    assert_eq!(alert.occurred_at, minute(off[0]));
    // ...and escalated at the first fix beyond 50 km (the sixth off the route).
    let escalated = alert
        .history
        .iter()
        .find(|s| s.action == "escalated")
        .expect("an escalation step");
    let beyond = minute(off[5]);
    assert_eq!(escalated.at, beyond);
    let records: Vec<_> = trip
        .changes
        .iter()
        .flat_map(|c| c.records.iter())
        .filter(|r| r.kind == "transit.alert_escalated")
        .collect();
    let [record] = records.as_slice() else {
        panic!("one escalation record: {:?}", trip.record_kinds())
    };
    assert_eq!(record.occurred_at, beyond);
    assert_eq!(record.body["from"], "warning");
    assert_eq!(record.body["to"], "critical");
    assert!(
        record.body["evidence"]["distance_m"]
            .as_f64()
            .unwrap_or(0.0)
            > 50_000.0
    );
    // A critical alert suspends the transit from the moment the evidence became critical.
    assert_eq!(t.status(), Status::Suspended);
    let suspended = t
        .transitions
        .iter()
        .find(|tr| tr.to == Status::Suspended)
        .expect("suspended");
    assert_eq!(suspended.at, beyond);
}

#[test]
fn a_deviation_that_stays_under_50_km_stays_a_warning() {
    let mut trip = Trip::declared(declaration());
    deviate(&mut trip, &[6.5, 7.0, 20.0, 35.0, 48.0, 30.0]);
    let t = trip.transit();
    let alert = t
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::RouteDeviation)
        .expect("a deviation alert");
    assert_eq!(alert.severity, Severity::Warning);
    assert!(!trip
        .record_kinds()
        .contains(&"transit.alert_escalated".to_owned()));
    assert_ne!(t.status(), Status::Suspended);
}
