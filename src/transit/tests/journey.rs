//! The lifecycle of a transit driven by the engine's zone events along the real corridor.

use super::*;
use crate::transit::eta::{eta_at_post, SpeedSource};
use crate::transit::{Action, OfficerAction};

/// The statuses of a transit that passes one BCP and arrives.
const THROUGH_ONE_BCP: [Status; 6] = [
    Status::Declared,
    Status::Departed,
    Status::InTransit,
    Status::AtBcp,
    Status::InTransit,
    Status::Arrived,
];

#[test]
fn a_truck_driven_from_kashgar_to_osh_departs_passes_irkeshtam_and_arrives() {
    let mut trip = Trip::declared(declaration());
    full_journey(&mut trip);
    assert_eq!(
        trip.statuses(),
        THROUGH_ONE_BCP,
        "{:#?}",
        trip.transit().transitions
    );
    let t = trip.transit();
    assert!(t.transitions.iter().all(|tr| tr.by.is_system()));
    assert_eq!(t.transitions[0].place.as_deref(), Some("kashgar"));
    assert_eq!(t.transitions[2].place.as_deref(), Some("irkeshtam-cn"));
    assert_eq!(t.transitions[3].place.as_deref(), Some("irkeshtam-kg"));
    assert_eq!(t.transitions[4].place.as_deref(), Some("osh"));
    assert!(t.alerts.is_empty(), "{:#?}", t.alerts);
}

#[test]
fn a_truck_that_reaches_its_destination_inside_the_far_post_zone_has_passed_the_bcp() {
    // Alat's Turkmen post zone reaches the office of Turkmenabat, 11 km on: the truck is
    // never seen leaving it before it arrives.
    let mut declaration = declaration();
    declaration.departure_office = "tashkent".into();
    declaration.itinerary = vec!["alat".into()];
    declaration.destination_office = "turkmenabat".into();
    let mut trip = Trip::declared(declaration);
    let alat = trip.chainage_of("alat");
    let end = trip.chainage_of("turkmenabat");
    let mut m = trip.drive(0.0, alat - 5_000.0, 60.0, 5.0, 10.0);
    m = trip.drive(alat - 4_000.0, alat, 12.0, 1.0, m + 1.0);
    m = trip.wait(alat, m + 5.0, 120.0);
    trip.drive(alat + 200.0, end, 30.0, 1.0, m + 1.0);
    let t = trip.transit();
    assert_eq!(trip.statuses(), THROUGH_ONE_BCP, "{:#?}", t.transitions);
    assert!(t.alerts.is_empty(), "{:#?}", t.alerts);
    let [passage] = t.passages.as_slice() else {
        panic!("one passage: {:#?}", t.passages)
    };
    assert_eq!(passage.left_post.as_deref(), Some("alat-tm"));
}

#[test]
fn the_time_at_irkeshtam_runs_from_the_first_post_to_leaving_the_far_post() {
    let mut trip = Trip::declared(declaration());
    full_journey(&mut trip);
    let t = trip.transit();
    let [passage] = t.passages.as_slice() else {
        panic!("one passage: {:#?}", t.passages)
    };
    assert_eq!(passage.entered_post, "irkeshtam-cn");
    assert_eq!(passage.left_post.as_deref(), Some("irkeshtam-kg"));
    let hours = passage.duration_s().expect("finished") as f64 / 3600.0;
    assert!((3.0..4.5).contains(&hours), "{hours} h at the BCP");
    let [to_bcp, to_osh] = t.sections.as_slice() else {
        panic!("two sections: {:#?}", t.sections)
    };
    assert_eq!(
        (to_bcp.from.as_str(), to_bcp.to.as_str()),
        ("kashgar", "irkeshtam")
    );
    assert_eq!(to_osh.to, "osh");
    assert!(to_bcp.delay_s >= passage.duration_s().unwrap_or(0));
    let kinds = trip.record_kinds();
    assert!(
        kinds.contains(&"transit.bcp_passed".to_owned()),
        "{kinds:?}"
    );
}

#[test]
fn the_route_follows_corridor_5_and_has_a_leg_per_country() {
    let trip = Trip::declared(declaration());
    let t = trip.transit();
    let route = t.itinerary.route.as_ref().expect("a route");
    assert_eq!(route.legs.len(), 1);
    assert_eq!(route.legs[0].corridor_id, "c5-kashgar-irkeshtam-osh");
    let countries: Vec<_> = t
        .itinerary
        .legs
        .iter()
        .map(|l| l.country.to_string())
        .collect();
    assert_eq!(countries, ["CN", "KG"]);
    let km = t.itinerary.line.length_m() / 1000.0;
    // Straight lines between the waypoints: shorter than the road (see maps/README.md).
    assert!((300.0..450.0).contains(&km), "{km} km");
    // 23.4 km/h over the leg plus the 9.9 h CPMM dwell at the BCP ending it.
    let leg = &t.itinerary.legs[0];
    let expected = leg.distance_m / 1000.0 / 23.4 * 3600.0 + 9.9 * 3600.0;
    assert!((leg.budget_s as f64 - expected).abs() < 2.0);
}

#[test]
fn an_officer_confirms_departure_and_closes_after_arrival() {
    let mut trip = Trip::declared(declaration());
    let id = trip.id.clone();
    let confirm = Action::Lifecycle(OfficerAction::ConfirmDeparture);
    let change = trip
        .book
        .act(&id, confirm, &officer("cn-kashgar-7"), at(5))
        .expect("departure confirmed");
    assert_eq!(change.transit.stage, Stage::Departed);
    assert_eq!(change.records[0].actor.as_deref(), Some("cn-kashgar-7"));
    full_journey(&mut trip);
    let close = Action::Lifecycle(OfficerAction::Close);
    let closed = trip
        .book
        .act(&id, close, &officer("kg-osh-3"), at(3000))
        .expect("closed");
    assert_eq!(closed.transit.status(), Status::Closed);
    assert!(
        trip.book.transit(&id).is_none(),
        "a closed transit leaves the book"
    );
    assert!(trip.book.route_of(&truck()).is_none());
}

#[test]
fn the_eta_at_the_kyrgyz_post_uses_the_recent_speed_and_local_time() {
    let mut trip = Trip::declared(declaration());
    let irk = trip.chainage_of("irkeshtam");
    trip.wait(0.0, 10.0, 10.0);
    let m = trip.drive(0.0, irk - 60_000.0, 60.0, 5.0, 25.0);
    let t = trip.transit();
    let now = at(m as i64);
    let rules = trip.book.rules().clone();
    let eta = eta_at_post(&t, &rules, "irkeshtam-kg", now).expect("ahead");
    assert_eq!(eta.speed_source, SpeedSource::Recent);
    assert!((eta.speed_kmh - 60.0).abs() < 0.1);
    let hours = (eta.at - now).num_seconds() as f64 / 3600.0;
    assert!((0.9..1.1).contains(&hours), "{hours} h to go");
    assert_eq!(eta.local.offset().local_minus_utc(), 6 * 3600);
    assert_eq!(eta.time_zone, "Asia/Bishkek");
    assert!(eta.expected_clearance > eta.at);
    assert!(eta_at_post(&t, &rules, "khorgos-kz", now).is_none());
}
