use super::*;
use crate::geofence::DeviceTrack;

#[test]
fn a_long_stop_outside_authorised_places_raises_unauthorised_stop() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports: Vec<_> = (0..=8)
        .map(|i| fix(i * 300, 41.0, 72.0 + 0.00001 * i as f64, Some(0.0)))
        .collect();
    let events = run(&engine, &mut track, &reports);
    let stops: Vec<_> = events
        .iter()
        .filter(|e| e.kind_str() == "unauthorised_stop")
        .collect();
    assert_eq!(stops.len(), 1, "{events:?}");
    assert_eq!(stops[0].occurred_at, at(2_100), "first fix past 30 minutes");
    let moved = run(&engine, &mut track, &[fix(3_000, 41.05, 72.0, Some(50.0))]);
    assert_eq!(kinds(&moved), vec!["stop_ended"]);
}

#[test]
fn a_long_stop_at_a_customs_office_raises_nothing() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports: Vec<_> = (0..=12)
        .map(|i| fix(i * 300, 40.5, 72.8, Some(0.0)))
        .collect();
    let events = run(&engine, &mut track, &reports);
    assert_eq!(kinds(&events), vec!["enter"]);
}

#[test]
fn silence_for_two_periods_raises_signal_lost_once() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(
        &engine,
        &mut track,
        &(0..5)
            .map(|i| fix(i * 60, 41.0, 72.0 + 0.01 * i as f64, None))
            .collect::<Vec<_>>(),
    );
    assert!(engine.check_silence(&mut track, at(240 + 100)).is_none());
    let lost = engine
        .check_silence(&mut track, at(240 + 121))
        .expect("two 60 s periods missed");
    assert_eq!(lost.kind_str(), "signal_lost");
    assert_eq!(lost.occurred_at, at(240 + 120));
    assert!(
        engine.check_silence(&mut track, at(1_000)).is_none(),
        "raised once"
    );
}

#[test]
fn a_parked_truck_is_silent_for_two_stop_periods_before_its_signal_is_lost() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Driving with a fix a minute, then parked: one fix at the stop, as a Teltonika records
    // it before it falls back to its hourly stop schedule.
    let mut reports: Vec<_> = (0..5)
        .map(|i| fix(i * 60, 41.0, 72.0 + 0.01 * i as f64, None))
        .collect();
    reports.push(fix(300, 41.0, 72.0401, Some(0.0)));
    run(&engine, &mut track, &reports);
    assert!(
        engine.check_silence(&mut track, at(300 + 3_700)).is_none(),
        "an hour without a fix is the stop schedule, not a lost signal"
    );
    let lost = engine
        .check_silence(&mut track, at(300 + 7_201))
        .expect("two hourly stop periods missed");
    assert_eq!(lost.kind_str(), "signal_lost");
    assert_eq!(lost.occurred_at, at(300 + 7_200));

    // Driving again: the moving period applies at once.
    let mut track = DeviceTrack::new(device());
    reports.push(fix(400, 41.0, 72.06, Some(60.0)));
    run(&engine, &mut track, &reports);
    assert!(engine.check_silence(&mut track, at(400 + 121)).is_some());
}

#[test]
fn a_device_whose_first_fixes_share_one_time_still_learns_its_period() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Twenty fixes stamped with one second, then fixes every 30 s.
    let mut reports: Vec<_> = (0..20).map(|_| fix(0, 41.0, 72.0, None)).collect();
    reports.extend((1..=10).map(|i| fix(i * 30, 41.0, 72.0 + 0.005 * i as f64, None)));
    run(&engine, &mut track, &reports);
    let lost = engine
        .check_silence(&mut track, at(300 + 61))
        .expect("two 30 s periods missed, not two of the default 300 s");
    assert_eq!(lost.kind_str(), "signal_lost");
    assert_eq!(lost.occurred_at, at(300 + 60));
}

#[test]
fn silence_inside_a_coverage_gap_waits_for_the_gap_timeout() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Driving (about 10 km/h) into the gap: a parked truck would have the stop allowance.
    run(
        &engine,
        &mut track,
        &(0..5)
            .map(|i| fix(i * 60, 40.0, 73.6 + 0.002 * i as f64, None))
            .collect::<Vec<_>>(),
    );
    assert!(engine.check_silence(&mut track, at(240 + 3_000)).is_none());
    let lost = engine
        .check_silence(&mut track, at(240 + 3_601))
        .expect("gap timeout passed");
    assert!(
        matches!(&lost.kind, EventKind::SignalLost { coverage_gap_id: Some(g), .. } if g == "gap1")
    );
}

#[test]
fn the_first_message_after_silence_restores_the_signal_and_the_backlog_is_judged() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(
        &engine,
        &mut track,
        &(0..5)
            .map(|i| fix(i * 60, 41.0, 72.0 + 0.01 * i as f64, None))
            .collect::<Vec<_>>(),
    );
    engine.check_silence(&mut track, at(2_000)).expect("lost");
    // The backlog covers the first half of the silence, then nothing for 20 minutes.
    let backlog: Vec<_> = (5..15)
        .map(|i| received(fix(i * 60, 41.0, 72.0 + 0.01 * i as f64, None), 2_500))
        .chain([received(fix(2_100, 41.0, 72.2, None), 2_500)])
        .collect();
    let events = engine.apply_batch(&mut track, &backlog, at(2_500));
    assert_eq!(kinds(&events), vec!["signal_restored", "tracking_gap"]);
    assert!(matches!(
        events[1].kind,
        EventKind::TrackingGap {
            gap_s: 1_260,
            allowed_s: 120
        }
    ));
    assert_eq!(events[1].occurred_at, at(840));
}

#[test]
fn a_teleport_is_reported_and_ignored_by_the_border_check() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports = [
        fix(0, 41.0, 74.5, None),
        fix(60, 41.0, 76.5, None),
        fix(120, 41.0, 74.51, None),
    ];
    let events = run(&engine, &mut track, &reports);
    assert_eq!(kinds(&events), vec!["gnss_anomaly"]);
    assert!(matches!(
        events[0].kind,
        EventKind::GnssAnomaly {
            reason: crate::geofence::AnomalyReason::Teleport,
            ..
        }
    ));
}

#[test]
fn a_track_that_persists_after_a_jump_is_followed_from_there() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports = [
        fix(0, 41.0, 72.0, None),
        fix(60, 41.5, 72.0, None),
        fix(120, 41.5, 72.01, None),
    ];
    let events = run(&engine, &mut track, &reports);
    assert_eq!(kinds(&events), vec!["gnss_anomaly"]);
    let view = engine.snapshot(&track);
    assert_eq!(view.point.map(|p| p.lat), Some(41.5));
}

#[test]
fn device_reported_jamming_is_an_anomaly_once_until_it_clears() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let reports = [
        status(0, true),
        status(60, true),
        status(120, false),
        status(180, true),
    ];
    let events = run(&engine, &mut track, &reports);
    assert_eq!(kinds(&events), vec!["gnss_anomaly", "gnss_anomaly"]);
    assert_eq!(events[1].occurred_at, at(180));
}

#[test]
fn a_parked_tracker_reporting_hourly_is_no_tracking_gap() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // Moving every minute, then parked with the Teltonika stop schedule: a fix an hour.
    let mut reports: Vec<_> = (0..5)
        .map(|i| fix(i * 60, 41.0, 72.0 + 0.01 * i as f64, Some(50.0)))
        .collect();
    reports.push(fix(300, 41.0, 72.05, Some(0.0)));
    reports.push(fix(3_900, 41.0, 72.05, Some(0.0)));
    reports.push(fix(7_500, 41.0, 72.0501, Some(8.0)));
    let events = run(&engine, &mut track, &reports);
    assert!(
        !kinds(&events).contains(&"tracking_gap"),
        "{:?}",
        kinds(&events)
    );
    // Moving on after an hour without a fix is still a gap.
    let moved = run(&engine, &mut track, &[fix(11_100, 41.0, 72.2, Some(50.0))]);
    assert!(
        kinds(&moved).contains(&"tracking_gap"),
        "{:?}",
        kinds(&moved)
    );
}

#[test]
fn a_stop_seen_only_by_its_first_and_its_departing_fix_is_still_unauthorised() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // A tracker that records a stop once, then nothing until the truck moves 50 min later.
    let reports = [
        fix(0, 41.0, 71.99, Some(50.0)),
        fix(60, 41.0, 72.0, Some(0.0)),
        fix(3_060, 41.0, 72.00005, Some(7.0)),
    ];
    let events = run(&engine, &mut track, &reports);
    let stop = events
        .iter()
        .find(|e| e.kind_str() == "unauthorised_stop")
        .expect("the stop is raised");
    assert_eq!(stop.occurred_at, at(3_060));
    assert!(
        kinds(&events).contains(&"stop_ended"),
        "{:?}",
        kinds(&events)
    );
    // A short stop seen the same way is nothing.
    let mut track = DeviceTrack::new(device());
    let short = [
        fix(60, 41.0, 72.0, Some(0.0)),
        fix(900, 41.0, 72.0, Some(7.0)),
    ];
    let events = run(&engine, &mut track, &short);
    assert!(!kinds(&events).contains(&"unauthorised_stop"));
}
