use super::*;
use crate::geofence::{DeviceTrack, ZoneKind};

#[test]
fn a_fix_deep_inside_an_office_zone_gives_enter_at_once() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    let events = run(
        &engine,
        &mut track,
        &[fix(0, 40.6, 72.8, None), fix(600, 40.5, 72.8, None)],
    );
    let enter: Vec<_> = events.iter().filter(|e| e.kind_str() == "enter").collect();
    assert_eq!(enter.len(), 1, "{events:?}");
    assert_eq!(zone_of(enter[0]), Some("osh"));
    assert!(matches!(
        enter[0].kind,
        EventKind::Enter {
            zone_kind: ZoneKind::Office,
            ..
        }
    ));
    assert_eq!(enter[0].occurred_at, at(600));
    assert_eq!(engine.snapshot(&track).zones, vec!["osh".to_owned()]);
}

#[test]
fn a_fix_just_inside_the_edge_needs_a_second_fix_to_enter() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // 0.0002° (about 20 m) inside the northern edge of the Osh office zone.
    let first = run(
        &engine,
        &mut track,
        &[fix(0, 40.6, 72.8, None), fix(600, 40.5098, 72.8, None)],
    );
    assert!(!kinds(&first).contains(&"enter"), "{first:?}");
    let second = run(&engine, &mut track, &[fix(660, 40.5097, 72.8, None)]);
    assert_eq!(kinds(&second), vec!["enter"]);
    assert_eq!(
        second[0].occurred_at,
        at(600),
        "the visit starts at the first fix inside"
    );
}

#[test]
fn a_single_fix_wobbling_over_the_edge_gives_no_exit() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(&engine, &mut track, &[fix(0, 40.5, 72.8, None)]);
    // 20 m outside the edge, then back in.
    let events = run(
        &engine,
        &mut track,
        &[fix(60, 40.5102, 72.8, None), fix(120, 40.5, 72.8, None)],
    );
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn leaving_a_zone_gives_exit_timed_at_the_first_fix_outside() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    run(&engine, &mut track, &[fix(0, 40.5, 72.8, None)]);
    let events = run(&engine, &mut track, &[fix(300, 40.45, 72.9, None)]);
    assert_eq!(kinds(&events), vec!["exit"]);
    assert_eq!(events[0].occurred_at, at(300));
    assert!(engine.snapshot(&track).zones.is_empty());
}

#[test]
fn two_sparse_fixes_either_side_of_a_post_give_cross() {
    let engine = engine();
    let mut track = DeviceTrack::new(device());
    // West of the KG post at 74.95°E, then between the two posts at 75.0°E.
    let events = run(
        &engine,
        &mut track,
        &[fix(0, 40.0, 74.95, None), fix(100, 40.0, 75.0, None)],
    );
    let cross: Vec<_> = events.iter().filter(|e| e.kind_str() == "cross").collect();
    assert_eq!(cross.len(), 1, "{events:?}");
    assert_eq!(zone_of(cross[0]), Some("irk-kg"));
    // The segment enters the zone at 74.97°E, 40 % of the way.
    assert_eq!(cross[0].occurred_at, at(40));
    assert!(!kinds(&events).contains(&"enter"));
}

#[test]
fn the_index_finds_the_same_zones_and_country_as_a_linear_scan() {
    let indexed = GeofenceIndex::new(&atlas());
    let naive = GeofenceIndex::naive(&atlas(), GeofenceConfig::default());
    for (lat, lon) in [
        (40.0, 74.98),
        (40.0, 75.01),
        (40.5, 72.8),
        (40.05, 71.05),
        (39.9, 73.6),
        (45.0, 60.0),
    ] {
        let p = GeoPoint { lat, lon };
        assert_eq!(indexed.locate(p), naive.locate(p), "at {lat},{lon}");
    }
}
