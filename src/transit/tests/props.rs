//! Properties that hold whatever order zone events and alerts arrive in.

use proptest::prelude::*;

use super::*;
use crate::geofence::{EventKind, GeofenceEvent, ZoneKind};
use crate::transit::alert::{raise, Candidate};
use crate::transit::AlertKind;

const ZONES: [(&str, ZoneKind); 6] = [
    ("kashgar", ZoneKind::Office),
    ("irkeshtam-cn", ZoneKind::Post),
    ("irkeshtam-kg", ZoneKind::Post),
    ("karasuu-kg", ZoneKind::Post),
    ("osh", ZoneKind::Office),
    ("torugart-cn", ZoneKind::Post),
];

fn zone_event(step: (usize, u8), minute: i64) -> GeofenceEvent {
    let (zone_id, zone_kind) = ZONES[step.0 % ZONES.len()];
    let zone_id = zone_id.to_owned();
    let kind = match step.1 % 3 {
        0 => EventKind::Enter { zone_id, zone_kind },
        1 => EventKind::Exit { zone_id, zone_kind },
        _ => EventKind::Cross { zone_id, zone_kind },
    };
    GeofenceEvent {
        device_id: truck(),
        severity: kind.severity(),
        kind,
        occurred_at: at(minute),
        detected_at: at(minute),
        late: false,
        point: None,
    }
}

fn progress(stage: Stage) -> u8 {
    match stage {
        Stage::Declared => 0,
        Stage::Departed => 1,
        Stage::InTransit | Stage::AtBcp => 2,
        Stage::Arrived => 3,
        Stage::Closed | Stage::Cancelled => 4,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn zone_events_in_any_order_only_move_a_transit_forward(
        steps in proptest::collection::vec((0usize..6, 0u8..3), 1..40)
    ) {
        let mut trip = Trip::declared(declaration());
        let mut last = (0u8, 0usize);
        for (i, step) in steps.into_iter().enumerate() {
            let e = zone_event(step, 10 * (i as i64 + 1));
            trip.book.on_geofence_events(&[e], at(10 * (i as i64 + 1)));
            let t = trip.transit();
            let now = (progress(t.stage), t.leg);
            prop_assert!(now >= last, "{last:?} -> {now:?}");
            prop_assert!(t.leg < t.itinerary.legs.len());
            for p in &t.passages {
                prop_assert!(p.left_at.is_none_or(|l| l >= p.entered_at));
            }
            last = now;
        }
    }

    #[test]
    fn a_condition_has_at_most_one_unresolved_alert(
        keys in proptest::collection::vec(0u8..4, 1..30)
    ) {
        let mut alerts = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let c = Candidate::new(AlertKind::SignalLost, format!("signal_lost:{k}"), at(i as i64));
            raise(&mut alerts, "T", c, None);
        }
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        prop_assert_eq!(alerts.len(), distinct.len());
        let repeats: u32 = alerts.iter().map(|a| a.repeats).sum();
        prop_assert_eq!(repeats as usize + alerts.len(), keys.len());
    }
}
