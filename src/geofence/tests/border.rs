use chrono::{DateTime, Utc};

use super::*;
use crate::geofence::{DeviceTrack, Severity};

fn crossing_events(events: &[GeofenceEvent]) -> Vec<&GeofenceEvent> {
    events
        .iter()
        .filter(|e| matches!(e.kind_str(), "border_crossed" | "crossing_outside_bcp"))
        .collect()
}

#[test]
fn a_crossing_through_a_bcp_gives_border_crossed_naming_it() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let track_points = [(0, 74.8), (300, 74.98), (600, 75.02), (900, 75.2)];
    let reports: Vec<_> = track_points
        .iter()
        .map(|(t, lon)| fix(*t, 40.0, *lon, Some(40.0)))
        .collect();
    let events = run(&engine, &mut track, &reports);
    let crossings = crossing_events(&events);
    assert_eq!(crossings.len(), 1, "{events:?}");
    assert!(matches!(&crossings[0].kind,
        EventKind::BorderCrossed { bcp_id: Some(b), from, to } if b == "irk" && from.as_str() == "KG" && to.as_str() == "CN"));
    assert_eq!(
        engine
            .snapshot(&track)
            .country
            .map(|c| c.to_string())
            .as_deref(),
        Some("CN")
    );
}

#[test]
fn sparse_fixes_either_side_of_a_bcp_count_as_crossing_there() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let events = run(
        &engine,
        &mut track,
        &[fix(0, 40.0, 74.8, None), fix(1800, 40.0, 75.3, None)],
    );
    let crossings = crossing_events(&events);
    assert_eq!(crossings.len(), 1);
    assert_eq!(crossings[0].kind_str(), "border_crossed");
}

#[test]
fn a_crossing_away_from_any_bcp_raises_a_critical_alarm() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports = [
        fix(0, 41.0, 74.8, None),
        fix(600, 41.0, 74.99, None),
        fix(1200, 41.0, 75.2, None),
    ];
    let events = run(&engine, &mut track, &reports);
    let crossings = crossing_events(&events);
    assert_eq!(crossings.len(), 1, "{events:?}");
    assert_eq!(crossings[0].kind_str(), "crossing_outside_bcp");
    assert_eq!(crossings[0].severity, Severity::Critical);
    // The line at 75°E is 0.01° into the 0.21° between the fixes at 600 s and 1200 s.
    let crossed = at(600) + chrono::Duration::milliseconds(600_000 / 21);
    assert!(
        (crossings[0].occurred_at - crossed)
            .num_milliseconds()
            .abs()
            < 100
    );
}

/// Where `e` says the device crossed, and when the crossing was confirmed.
fn evidence(e: &GeofenceEvent) -> (f64, f64, Option<DateTime<Utc>>, Option<GeoPoint>) {
    let point = e.point.expect("a crossing has a point");
    let EventKind::CrossingOutsideBcp {
        confirmed_at,
        confirmed_point,
        ..
    } = &e.kind
    else {
        panic!("not an off-BCP crossing: {e:?}")
    };
    (point.lat, point.lon, *confirmed_at, *confirmed_point)
}

#[test]
fn an_off_bcp_crossing_is_dated_and_placed_where_it_left_the_country_not_where_it_settled() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Settled in KG, then over the line at 75°E between 8220 s and 8280 s, back over it,
    // over again, and only settled 3 km inside CN at 9660 s.
    let reports = [
        fix(7800, 41.0, 74.90, Some(50.0)),
        fix(8100, 41.0, 74.985, Some(50.0)),
        fix(8220, 41.0, 74.995, Some(20.0)),
        fix(8280, 41.0, 75.005, Some(20.0)),
        fix(8400, 41.01, 74.998, Some(20.0)),
        fix(8700, 41.02, 75.01, Some(20.0)),
        fix(9300, 41.03, 75.02, Some(20.0)),
        fix(9660, 41.04, 75.05, Some(40.0)),
    ];
    let events = run(&engine, &mut track, &reports);
    let crossings = crossing_events(&events);
    assert_eq!(crossings.len(), 1, "{events:?}");
    let e = crossings[0];
    assert_eq!(e.kind_str(), "crossing_outside_bcp");
    // Half-way between the fixes either side of the first crossing of the line.
    assert!(
        (e.occurred_at - at(8250)).num_seconds().abs() <= 1,
        "dated {} instead of about 8250 s",
        e.occurred_at
    );
    let (lat, lon, confirmed_at, confirmed_point) = evidence(e);
    assert!((lon - 75.0).abs() < 1e-4, "placed at {lat}, {lon}");
    assert!((lat - 41.0).abs() < 1e-4, "placed at {lat}, {lon}");
    assert_eq!(confirmed_at, Some(at(9660)));
    assert_eq!(confirmed_point.map(|p| p.lon), Some(75.05));
}

#[test]
fn a_road_along_the_border_raises_no_crossing_alarm() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let mut reports = vec![fix(0, 41.5, 74.8, None)];
    // Weaving up to 1.5 km either side of the border for 60 km.
    for i in 1..=30 {
        let lon = if i % 2 == 0 { 74.985 } else { 75.015 };
        reports.push(fix(
            i * 120,
            41.5 - f64::from(i as i32) * 0.02,
            lon,
            Some(60.0),
        ));
    }
    reports.push(fix(31 * 120, 40.9, 74.8, None));
    let events = run(&engine, &mut track, &reports);
    assert!(crossing_events(&events).is_empty(), "{events:?}");
}

#[test]
fn a_road_through_an_enclave_raises_no_crossing_alarm() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Across the UZ enclave (71.0–71.1°E) from west to east, deep in it at 71.05°E.
    let points = [(0, 70.9), (300, 71.05), (600, 71.2), (900, 71.3)];
    let reports: Vec<_> = points
        .iter()
        .map(|(t, lon)| fix(*t, 40.05, *lon, None))
        .collect();
    let events = run(&engine, &mut track, &reports);
    assert!(crossing_events(&events).is_empty(), "{events:?}");
    assert_eq!(
        engine
            .snapshot(&track)
            .country
            .map(|c| c.to_string())
            .as_deref(),
        Some("KG")
    );
}

#[test]
fn a_first_fix_near_the_border_settles_nothing_until_the_device_is_clear_of_it() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let events = run(
        &engine,
        &mut track,
        &[fix(0, 41.0, 75.01, None), fix(600, 41.0, 74.8, None)],
    );
    assert!(crossing_events(&events).is_empty(), "{events:?}");
}
