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
    assert_eq!(crossings[0].occurred_at, at(1200));
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
