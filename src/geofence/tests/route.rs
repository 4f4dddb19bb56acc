use super::*;
use crate::geofence::{DeviceTrack, Route, RouteLeg};

/// A track on route `c1` from Osh towards the BCP: the corridor runs from (72.8°E, 40.5°N)
/// to (74.9°E, 40.0°N).
fn on_route(f: f64) -> (f64, f64) {
    (40.5 - 0.5 * f, 72.8 + 2.1 * f)
}

/// Route `T-1`, along corridor `c1`.
fn route_t1() -> Route {
    Route {
        id: "T-1".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "c1".into(),
            reversed: None,
        }]
        .into(),
    }
}

fn assigned() -> (Engine, DeviceTrack) {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    engine
        .assign_route(&mut track, &route_t1())
        .expect("known corridor");
    (engine, track)
}

/// Fixes every `step_s` seconds at fractions `fs` of the first corridor segment, shifted
/// north by `off[i]` degrees.
fn drive(fs: &[f64], off: &[f64], step_s: i64) -> Vec<Report> {
    fs.iter()
        .zip(off)
        .enumerate()
        .map(|(i, (f, o))| {
            let (lat, lon) = on_route(*f);
            fix(i as i64 * step_s, lat + o, lon, Some(60.0))
        })
        .collect()
}

#[test]
fn a_fix_leaving_the_corridor_for_two_reports_raises_deviation() {
    let (engine, mut track) = assigned();
    // 0.03° north is about 3 km off a corridor 1 km wide.
    let reports = drive(&[0.10, 0.11, 0.12, 0.13], &[0.0, 0.03, 0.03, 0.03], 60);
    let events = run(&engine, &mut track, &reports);
    let dev: Vec<_> = events
        .iter()
        .filter(|e| e.kind_str() == "route_deviation")
        .collect();
    assert_eq!(dev.len(), 1, "{events:?}");
    assert_eq!(
        dev[0].occurred_at,
        at(60),
        "timed at the first fix off the corridor"
    );
    assert_eq!(
        dev[0].detected_at,
        at(120),
        "confirmed at the second, 60 s later"
    );
}

#[test]
fn a_single_stray_fix_raises_no_deviation() {
    let (engine, mut track) = assigned();
    let reports = drive(&[0.10, 0.11, 0.12, 0.13], &[0.0, 0.03, 0.0, 0.0], 60);
    let events = run(&engine, &mut track, &reports);
    assert!(!kinds(&events).contains(&"route_deviation"), "{events:?}");
}

#[test]
fn two_quick_fixes_off_the_corridor_are_not_yet_a_deviation() {
    let (engine, mut track) = assigned();
    let reports = drive(&[0.10, 0.101, 0.102, 0.11], &[0.0, 0.03, 0.03, 0.0], 10);
    let events = run(&engine, &mut track, &reports);
    assert!(!kinds(&events).contains(&"route_deviation"), "{events:?}");
}

#[test]
fn coming_back_to_the_corridor_closes_the_deviation_with_duration_and_max_distance() {
    let (engine, mut track) = assigned();
    let reports = drive(
        &[0.10, 0.11, 0.12, 0.13, 0.14],
        &[0.0, 0.02, 0.05, 0.02, 0.0],
        60,
    );
    let events = run(&engine, &mut track, &reports);
    let ended = events
        .iter()
        .find(|e| e.kind_str() == "route_deviation_ended")
        .expect("closed");
    let EventKind::RouteDeviationEnded {
        duration_s,
        max_distance_m,
        ..
    } = ended.kind
    else {
        unreachable!()
    };
    assert_eq!(duration_s, 180);
    assert!(
        (4_000.0..6_000.0).contains(&max_distance_m),
        "{max_distance_m}"
    );
}

#[test]
fn chainage_grows_along_the_route_and_shows_in_the_device_view() {
    let (engine, mut track) = assigned();
    run(&engine, &mut track, &drive(&[0.1, 0.5], &[0.0, 0.0], 1_200));
    let view = engine.snapshot(&track);
    let corridor = view.corridor.expect("on the route");
    assert_eq!(corridor.id, "c1");
    assert_eq!(corridor.route_id.as_deref(), Some("T-1"));
    assert!(corridor.distance_m < 50.0, "{corridor:?}");
    // Half of a 190 km segment.
    assert!(
        (90_000.0..100_000.0).contains(&corridor.chainage_m),
        "{corridor:?}"
    );
}

#[test]
fn driving_back_along_the_route_raises_wrong_direction() {
    let (engine, mut track) = assigned();
    let reports = drive(&[0.30, 0.32, 0.31, 0.30, 0.29], &[0.0; 5], 120);
    let events = run(&engine, &mut track, &reports);
    let wrong: Vec<_> = events
        .iter()
        .filter(|e| e.kind_str() == "wrong_direction")
        .collect();
    assert_eq!(wrong.len(), 1, "{events:?}");
}

#[test]
fn driving_on_past_a_sharp_bend_raises_no_wrong_direction() {
    // A corridor 3 km wide that runs east for 14 km, then turns back south-west at 64°,
    // as the Termez - Hairatan - Mazar-e Sharif line does at the Friendship Bridge.
    let (a, b, c) = ((67.2667, 37.2167), (67.4282, 37.2278), (67.11087, 36.70904));
    let mut world = atlas();
    world.corridors.push(crate::maps::Corridor {
        id: "bend".into(),
        name: "Bend".into(),
        width_m: 3_000.0,
        route: LineString::from(vec![a, b, c]),
        joins: vec![],
        carec: None,
        waypoints: vec![],
    });
    let engine = Engine::new(Arc::new(GeofenceIndex::new(&world)));
    let mut track = DeviceTrack::new(device());
    let route = Route {
        id: "T-2".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "bend".into(),
            reversed: Some(false),
        }]
        .into(),
    };
    engine
        .assign_route(&mut track, &route)
        .expect("known corridor");
    // Every 500 m along the line: the first fixes past the bend are still within the
    // corridor of the segment before it.
    let along = |p: (f64, f64), q: (f64, f64), n: usize| {
        (0..n).map(move |k| {
            let f = k as f64 / n as f64;
            (p.1 + f * (q.1 - p.1), p.0 + f * (q.0 - p.0))
        })
    };
    let reports: Vec<Report> = along(a, b, 28)
        .chain(along(b, c, 128))
        .enumerate()
        .map(|(i, (lat, lon))| fix(i as i64 * 30, lat, lon, Some(60.0)))
        .collect();
    let events = run(&engine, &mut track, &reports);
    assert!(
        !kinds(&events).contains(&"wrong_direction"),
        "{:?}",
        events.iter().find(|e| e.kind_str() == "wrong_direction")
    );
}

#[test]
fn a_device_without_a_route_shows_the_nearest_corridor() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let (lat, lon) = on_route(0.5);
    run(&engine, &mut track, &[fix(0, lat + 0.01, lon, None)]);
    let corridor = engine.snapshot(&track).corridor.expect("within search");
    assert_eq!(corridor.id, "c1");
    assert!(corridor.route_id.is_none());
    assert!(
        (500.0..1_200.0).contains(&corridor.distance_m),
        "{corridor:?}"
    );
}

#[test]
fn a_device_given_a_route_lets_the_nearest_corridor_go_and_finds_it_again_without_one() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let (lat, lon) = on_route(0.3);
    run(&engine, &mut track, &[fix(0, lat + 0.01, lon, None)]);
    assert!(track.corridor.is_some());
    engine
        .assign_route(&mut track, &route_t1())
        .expect("known corridor");
    assert!(track.corridor.is_none(), "not held beside the route");
    let (lat, lon) = on_route(0.4);
    run(&engine, &mut track, &[fix(1_800, lat, lon, None)]);
    let shown = engine.snapshot(&track).corridor.expect("on the route");
    assert_eq!(shown.route_id.as_deref(), Some("T-1"));
    track.clear_route();
    let (lat, lon) = on_route(0.5);
    run(&engine, &mut track, &[fix(3_600, lat + 0.01, lon, None)]);
    let shown = engine.snapshot(&track).corridor.expect("within search");
    assert_eq!((shown.id.as_str(), shown.route_id), ("c1", None));
}

#[test]
fn a_route_naming_an_unknown_corridor_is_refused() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let route = Route {
        id: "T-2".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "nowhere".into(),
            reversed: None,
        }]
        .into(),
    };
    assert!(engine.assign_route(&mut track, &route).is_err());
    assert!(track.route_id().is_none());
}

#[test]
fn the_deviation_thresholds_come_from_the_config() {
    let config: GeofenceConfig =
        serde_json::from_str(r#"{"deviation_min_fixes": 3}"#).expect("partial config");
    assert_eq!(
        config.deviation_min_s, 60,
        "missing keys keep their defaults"
    );
    let engine = engine_with(config);
    let mut track = DeviceTrack::new(device());
    let route = Route {
        id: "T-1".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "c1".into(),
            reversed: None,
        }]
        .into(),
    };
    engine
        .assign_route(&mut track, &route)
        .expect("known corridor");
    let two_off = drive(&[0.10, 0.11, 0.12], &[0.0, 0.03, 0.03], 60);
    assert!(!kinds(&run(&engine, &mut track, &two_off)).contains(&"route_deviation"));
    let third = drive(&[0.0, 0.0, 0.0, 0.13], &[0.0, 0.0, 0.0, 0.03], 60);
    assert!(kinds(&run(&engine, &mut track, &third[3..])).contains(&"route_deviation"));
}
