//! Two clocks: device time for when a step happened, server time for when Caravan recorded
//! it. The history is ordered by the first, whatever the second says.

use super::*;

#[test]
fn a_replayed_journey_lists_its_steps_in_device_time_with_both_clocks() {
    let mut trip = Trip::declared(declaration());
    // Everything reaches the server eight hours after the device recorded it.
    trip.lag = Duration::hours(8);
    let irk = trip.chainage_of("irkeshtam");
    trip.wait(0.0, 10.0, 10.0);
    let m = trip.drive(0.0, 50_000.0, 60.0, 5.0, 25.0);
    // The rope is cut on the road: critical, the transit is suspended.
    let cut = m + 5.0;
    trip.seal("CN-S-0001", SealEventKind::RopeCut, cut, 50_000.0);
    trip.drive(50_500.0, irk - 8_000.0, 60.0, 5.0, cut + 5.0);
    let t = trip.transit();
    let suspended = t
        .transitions
        .iter()
        .find(|tr| tr.to == Status::Suspended)
        .expect("suspended");
    let cut_at = at(0) + Duration::seconds((cut * 60.0) as i64);
    assert_eq!(suspended.at, cut_at, "device time of the rope cut");
    assert_eq!(suspended.recorded_at, Some(cut_at + Duration::hours(8)));
    for tr in &t.transitions {
        let recorded = tr.recorded_at.expect("every step has its server time");
        assert_eq!(recorded - tr.at, Duration::hours(8), "{tr:?}");
    }
    let times: Vec<_> = t.transitions.iter().map(|tr| tr.at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{:#?}", t.transitions);
}

#[test]
fn a_suspension_from_late_evidence_is_placed_before_the_steps_that_followed_it() {
    let mut trip = Trip::declared(declaration());
    let arrived = full_journey(&mut trip);
    // The e-seal's buffered rope cut from the road arrives half an hour after the truck
    // has arrived.
    let cut = 60.0;
    trip.lag = Duration::minutes((arrived - cut) as i64 + 30);
    trip.seal("CN-S-0001", SealEventKind::RopeCut, cut, 30_000.0);
    let t = trip.transit();
    let statuses: Vec<_> = t.transitions.iter().map(|tr| (tr.to, tr.at)).collect();
    let times: Vec<_> = statuses.iter().map(|s| s.1).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{statuses:#?}");
    let suspended = t
        .transitions
        .iter()
        .find(|tr| tr.to == Status::Suspended)
        .expect("suspended");
    let cut_at = at(0) + Duration::seconds((cut * 60.0) as i64);
    assert_eq!(suspended.at, cut_at);
    assert!(suspended.late);
    let arrived_at = at(0) + Duration::seconds((arrived * 60.0) as i64);
    assert!(suspended.recorded_at.is_some_and(|r| r >= arrived_at));
}
