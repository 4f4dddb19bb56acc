use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::geofence::{DeviceTrack, Route, RouteLeg};

fn coordinate(
    range: std::ops::RangeInclusive<f64>,
    world: std::ops::Range<f64>,
) -> BoxedStrategy<f64> {
    let (lo, hi) = (*range.start(), *range.end());
    prop_oneof![Just(lo), Just(hi), Just(0.0), range, world].boxed()
}

fn any_report() -> impl Strategy<Value = Report> {
    let lat = coordinate(-90.0..=90.0, 37.5..42.5);
    let lon = coordinate(-180.0..=180.0, 64.0..81.0);
    let time = prop_oneof![-4_000_000_000i64..4_000_000_000, 0i64..20_000];
    let kind = prop_oneof![
        Just(SealEventKind::Opened),
        Just(SealEventKind::RopeCut),
        Just(SealEventKind::Armed),
        Just(SealEventKind::Fault)
    ];
    (
        0u8..4,
        lat,
        lon,
        time,
        proptest::option::of(any::<f64>()),
        kind,
        any::<bool>(),
    )
        .prop_map(|(which, lat, lon, t, speed, kind, flag)| match which {
            0 | 1 => fix(t, lat, lon, speed),
            2 => seal(t, kind, flag.then_some((lat, lon))),
            _ => status(t, flag),
        })
}

/// A plausible drive through the test world: small steps, increasing time.
fn a_drive() -> impl Strategy<Value = Vec<Report>> {
    let step = (
        1i64..900,
        -0.02f64..0.02,
        -0.03f64..0.03,
        0u8..20,
        0.0f64..90.0,
    );
    (
        38.5f64..41.5,
        72.0f64..76.0,
        proptest::collection::vec(step, 1..60),
    )
        .prop_map(|(lat0, lon0, steps)| {
            let (mut t, mut lat, mut lon) = (0i64, lat0, lon0);
            steps
                .into_iter()
                .map(|(dt, dlat, dlon, roll, speed)| {
                    t += dt;
                    lat += dlat;
                    lon += dlon;
                    match roll {
                        0 => seal(t, SealEventKind::RopeCut, None),
                        1 => status(t, dlat > 0.0),
                        _ => fix(t, lat, lon, (roll > 10).then_some(speed)),
                    }
                })
                .collect()
        })
}

fn route() -> Route {
    Route {
        id: "T".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "c1".into(),
            reversed: None,
        }]
        .into(),
    }
}

fn with_route(engine: &Engine) -> DeviceTrack {
    let mut track = DeviceTrack::new(device());
    engine
        .assign_route(&mut track, &route())
        .expect("known corridor");
    track
}

/// `track` saved and taken up again, on the same route.
fn saved_and_resumed(engine: &Engine, track: &DeviceTrack, routed: bool) -> DeviceTrack {
    let bytes = track.save().expect("a track encodes");
    let mut resumed = DeviceTrack::resume(device(), &bytes, engine.index()).expect("same index");
    if routed {
        engine
            .assign_route(&mut resumed.track, &route())
            .expect("known corridor");
    }
    resumed.finish()
}

fn naive() -> &'static GeofenceIndex {
    static NAIVE: OnceLock<GeofenceIndex> = OnceLock::new();
    NAIVE.get_or_init(|| GeofenceIndex::naive(&atlas(), GeofenceConfig::default()))
}

proptest! {
    #[test]
    fn the_engine_never_panics_on_arbitrary_reports_in_any_order(
        reports in proptest::collection::vec(any_report(), 0..40),
        split in 0usize..40,
        now in -4_000_000_000i64..4_000_000_000,
        routed in any::<bool>(),
    ) {
        let engine = engine();
        let mut track = if routed { with_route(&engine) } else { DeviceTrack::new(device()) };
        let split = split.min(reports.len());
        for r in &reports[..split] {
            engine.apply(&mut track, r, at(now));
            let _ = engine.check_silence(&mut track, r.received_at);
        }
        engine.apply_batch(&mut track, &reports[split..], at(now));
        let _ = engine.check_silence(&mut track, at(now));
        let view = engine.snapshot(&track);
        prop_assert!(view.zones.len() <= 4);
    }

    #[test]
    fn feeding_a_track_one_report_at_a_time_or_in_batches_gives_the_same_events(
        reports in a_drive(),
        sizes in proptest::collection::vec(1usize..12, 1..20),
        routed in any::<bool>(),
    ) {
        let engine = engine();
        let detected = at(1_000_000);
        let mut single = if routed { with_route(&engine) } else { DeviceTrack::new(device()) };
        let one_by_one: Vec<_> = reports.iter().flat_map(|r| engine.apply(&mut single, r, detected)).collect();
        let mut batched = if routed { with_route(&engine) } else { DeviceTrack::new(device()) };
        let mut in_batches = Vec::new();
        let mut rest = &reports[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at((*size).min(rest.len()));
            in_batches.extend(engine.apply_batch(&mut batched, head, detected));
            rest = tail;
        }
        prop_assert_eq!(one_by_one, in_batches);
        prop_assert_eq!(engine.snapshot(&single), engine.snapshot(&batched));
    }

    #[test]
    fn a_track_saved_and_taken_up_goes_on_exactly_as_one_never_saved(
        drive in a_drive(),
        later in proptest::collection::vec(any_report(), 0..12),
        split in 0usize..60,
        routed in any::<bool>(),
    ) {
        let engine = engine();
        let detected = at(1_000_000);
        let mut kept = if routed { with_route(&engine) } else { DeviceTrack::new(device()) };
        let split = split.min(drive.len());
        for r in &drive[..split] {
            engine.apply(&mut kept, r, detected);
        }
        let _ = engine.check_silence(&mut kept, detected);
        let mut resumed = saved_and_resumed(&engine, &kept, routed);
        prop_assert_eq!(engine.snapshot(&kept), engine.snapshot(&resumed));
        // The rest of the drive, then arbitrary (late, implausible, seal) reports.
        let rest: Vec<Report> = drive[split..].iter().chain(&later).cloned().collect();
        let a: Vec<_> = rest.iter().flat_map(|r| engine.apply(&mut kept, r, detected)).collect();
        let b: Vec<_> = rest.iter().flat_map(|r| engine.apply(&mut resumed, r, detected)).collect();
        prop_assert_eq!(a, b);
        let quiet = at(3_000_000_000);
        prop_assert_eq!(engine.check_silence(&mut kept, quiet), engine.check_silence(&mut resumed, quiet));
        prop_assert_eq!(engine.snapshot(&kept), engine.snapshot(&resumed));
    }

    #[test]
    fn a_saved_track_of_any_bytes_is_taken_up_or_refused_never_a_panic(
        drive in a_drive(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        noise in proptest::collection::vec(any::<u8>(), 0..300),
        report in any_report(),
    ) {
        let engine = engine();
        let mut track = with_route(&engine);
        for r in &drive {
            engine.apply(&mut track, r, at(1_000_000));
        }
        let mut bytes = track.save().expect("a track encodes");
        for (at_byte, value) in flips {
            if !bytes.is_empty() {
                let i = at_byte % bytes.len();
                bytes[i] = value;
            }
        }
        for candidate in [bytes, noise] {
            if let Ok(resumed) = DeviceTrack::resume(device(), &candidate, engine.index()) {
                let mut taken = resumed.finish();
                engine.assign_route(&mut taken, &route()).expect("known corridor");
                engine.apply(&mut taken, &report, at(1_000_000));
                let _ = engine.check_silence(&mut taken, at(2_000_000));
                let view = engine.snapshot(&taken);
                prop_assert!(view.zones.len() <= 4);
            }
        }
    }

    #[test]
    fn the_indexed_lookups_agree_with_the_naive_scan(lat in 37.5f64..42.5, lon in 64.0f64..81.0) {
        let engine = engine();
        let p = GeoPoint { lat, lon };
        let (fast, slow) = (engine.index().locate(p), naive().locate(p));
        prop_assert_eq!(fast.country, slow.country);
        prop_assert_eq!(fast.zones, slow.zones);
        prop_assert_eq!(fast.corridor.map(|c| c.id), slow.corridor.map(|c| c.id));
    }
}

#[test]
fn a_track_saved_with_other_maps_is_refused_and_the_maps_are_told_apart() {
    let engine = engine();
    let mut track = with_route(&engine);
    // Into the post zone on the border and the country beyond: indices into this index.
    for (t, lon) in [(0, 74.98), (60, 74.985), (120, 74.98)] {
        engine.apply(&mut track, &fix(t, 40.0, lon, None), at(1_000));
    }
    assert!(
        !engine.snapshot(&track).zones.is_empty(),
        "the fixes are in a zone"
    );
    let bytes = track.save().expect("a track encodes");
    let bare = GeofenceIndex::new(&crate::maps::Atlas::default());
    assert!(matches!(
        DeviceTrack::resume(device(), &bytes, &bare),
        Err(crate::geofence::SavedTrackError::OtherIndex)
    ));
    assert_ne!(bare.fingerprint(), engine.index().fingerprint());
    let stricter = GeofenceConfig {
        zone_confirm_fixes: GeofenceConfig::default().zone_confirm_fixes + 1,
        ..GeofenceConfig::default()
    };
    assert_ne!(
        GeofenceIndex::with_config(&atlas(), stricter).fingerprint(),
        engine.index().fingerprint()
    );
    assert_eq!(
        GeofenceIndex::new(&atlas()).fingerprint(),
        engine.index().fingerprint()
    );
}
