use super::*;
use crate::geofence::{DeviceTrack, Severity};

#[test]
fn a_rope_cut_outside_any_zone_is_a_critical_seal_alarm() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let events = run(
        &engine,
        &mut track,
        &[seal(0, SealEventKind::RopeCut, Some((41.0, 72.0)))],
    );
    assert_eq!(kinds(&events), vec!["seal_alarm"]);
    assert_eq!(events[0].severity, Severity::Critical);
    assert!(matches!(
        &events[0].kind,
        EventKind::SealAlarm {
            at_control_place: false,
            zone_id: None,
            ..
        }
    ));
}

#[test]
fn a_seal_opened_at_a_post_names_the_post() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(&engine, &mut track, &[fix(0, 40.0, 74.98, None)]);
    let events = run(
        &engine,
        &mut track,
        &[seal(60, SealEventKind::Opened, None)],
    );
    assert!(matches!(&events[0].kind,
        EventKind::SealAlarm { at_control_place: true, zone_id: Some(z), .. } if z == "irk-kg"));
    assert_eq!(events[0].severity, Severity::Warning);
}

#[test]
fn a_late_seal_alarm_is_raised_and_marked_late() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(
        &engine,
        &mut track,
        &[fix(0, 41.0, 72.0, None), fix(3_600, 41.0, 72.5, None)],
    );
    let late = received(seal(600, SealEventKind::CaseBreach, None), 4_000);
    let events = engine.apply(&mut track, &late, at(4_000));
    assert_eq!(kinds(&events), vec!["seal_alarm"]);
    assert!(events[0].late);
    assert_eq!(events[0].occurred_at, at(600));
    assert_eq!(events[0].detected_at, at(4_000));
    assert_eq!(
        events[0].point.map(|p| p.lon),
        Some(72.0),
        "placed at the fix before it"
    );
}

#[test]
fn a_backlog_batch_in_any_order_is_evaluated_in_device_time() {
    let engine = engine();
    let points = [(0, 40.6), (600, 40.5), (1_200, 40.4)];
    let reports: Vec<_> = points
        .iter()
        .map(|(t, lat)| received(fix(*t, *lat, 72.8, None), 2_000))
        .collect();
    let shuffled = [reports[2].clone(), reports[0].clone(), reports[1].clone()];
    let mut track = DeviceTrack::new(device());
    let events = engine.apply_batch(&mut track, &shuffled, at(2_000));
    assert_eq!(kinds(&events), vec!["enter", "exit"]);
    assert!(events.iter().all(|e| !e.late));
}

#[test]
fn a_late_fix_inside_a_post_records_the_visit_without_changing_the_current_zones() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Live fixes either side of the KG post, 10 minutes apart, on a path that misses it.
    run(
        &engine,
        &mut track,
        &[fix(0, 40.03, 74.95, None), fix(600, 40.03, 75.1, None)],
    );
    let late = received(fix(300, 40.0, 74.98, None), 900);
    let events = engine.apply(&mut track, &late, at(900));
    assert_eq!(kinds(&events), vec!["enter", "exit"], "{events:?}");
    assert!(events.iter().all(|e| e.late && e.detected_at == at(900)));
    assert!(events[0].occurred_at > at(0) && events[0].occurred_at <= at(300));
    assert!(events[1].occurred_at >= at(300) && events[1].occurred_at < at(600));
    assert!(engine.snapshot(&track).zones.is_empty());
}

#[test]
fn a_late_excursion_across_the_border_away_from_a_bcp_raises_a_late_alarm() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(
        &engine,
        &mut track,
        &[fix(0, 41.0, 74.8, None), fix(1_800, 41.0, 74.7, None)],
    );
    let late = received(fix(900, 41.0, 75.1, None), 2_000);
    let events = engine.apply(&mut track, &late, at(2_000));
    assert_eq!(kinds(&events), vec!["crossing_outside_bcp"]);
    assert!(events[0].late);
    // Dated where the movement from the fix at 0 s met the line at 75°E (two thirds of the
    // way to the late fix), confirmed by the late fix itself.
    assert!((events[0].occurred_at - at(600)).num_seconds().abs() <= 1);
    assert!(matches!(
        events[0].kind,
        EventKind::CrossingOutsideBcp { confirmed_at: Some(c), .. } if c == at(900)
    ));
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
fn events_serialise_flat_with_a_stable_kind() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let events = run(
        &engine,
        &mut track,
        &[seal(0, SealEventKind::RopeCut, Some((41.0, 72.0)))],
    );
    let json = serde_json::to_value(&events[0]).expect("serialises");
    assert_eq!(json["kind"], "seal_alarm");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["device_id"], "truck-1");
    assert_eq!(json["late"], false);
    assert_eq!(json["event"], "rope_cut");
    let back: GeofenceEvent = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, events[0]);
}
