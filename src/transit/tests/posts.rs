//! Post zones hold the published facilities of their crossing, and the queue beside them:
//! waiting there is time at the BCP, not an unauthorised stop.

use super::*;
use crate::transit::AlertKind;

#[test]
fn two_hours_waiting_near_the_irkeshtam_post_count_as_bcp_time_not_an_unauthorised_stop() {
    let mut trip = Trip::declared(declaration());
    let irk = trip.chainage_of("irkeshtam");
    let osh = trip.chainage_of("osh");
    let mut m = trip.wait(0.0, 10.0, 20.0);
    m = trip.drive(0.0, irk - 8_000.0, 60.0, 5.0, m + 5.0);
    m = trip.drive(irk - 7_000.0, irk - 1_500.0, 12.0, 5.0, m + 5.0);
    m = trip.wait(irk - 1_500.0, m + 5.0, 60.0);
    m = trip.drive(irk - 1_000.0, irk + 4_000.0, 6.0, 5.0, m + 5.0);
    // Parked 4.84 km from the crossing on the Kyrgyz side: 0.84 km beyond a 4 km zone.
    let parked_from = m + 5.0;
    m = trip.wait(irk + 4_840.0, parked_from, 120.0);
    trip.drive(irk + 6_000.0, osh, 60.0, 5.0, m + 5.0);
    let t = trip.transit();
    let stops: Vec<_> = t
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::UnauthorisedStop)
        .collect();
    assert!(stops.is_empty(), "{stops:#?}");
    let [passage] = t.passages.as_slice() else {
        panic!("one passage: {:#?}", t.passages)
    };
    let left = passage.left_at.expect("left the BCP");
    let parked_until = at(0) + Duration::minutes((parked_from + 115.0) as i64);
    assert!(left >= parked_until, "the wait is BCP time: left at {left}");
}
