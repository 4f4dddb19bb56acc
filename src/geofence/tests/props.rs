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

fn with_route(engine: &Engine) -> DeviceTrack {
    let mut track = DeviceTrack::new(device());
    let route = Route {
        id: "T".into(),
        critical_deviation_m: None,
        legs: vec![RouteLeg {
            corridor_id: "c1".into(),
            reversed: None,
        }],
    };
    engine
        .assign_route(&mut track, &route)
        .expect("known corridor");
    track
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
    fn the_indexed_lookups_agree_with_the_naive_scan(lat in 37.5f64..42.5, lon in 64.0f64..81.0) {
        let engine = engine();
        let p = GeoPoint { lat, lon };
        let (fast, slow) = (engine.index().locate(p), naive().locate(p));
        prop_assert_eq!(fast.country, slow.country);
        prop_assert_eq!(fast.zones, slow.zones);
        prop_assert_eq!(fast.corridor.map(|c| c.id), slow.corridor.map(|c| c.id));
    }
}
