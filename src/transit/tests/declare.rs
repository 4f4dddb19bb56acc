//! Declaration: one clear error per field.

use super::*;
use crate::exchange::routing::Holder;
use crate::transit::{Action, FieldError, OfficerAction};

fn errors_of(decl: Declaration, book: &mut TransitBook) -> Vec<FieldError> {
    book.declare(decl, &officer("cn-kashgar-7"), at(0), &registered)
        .expect_err("refused")
}

#[test]
fn a_declared_transit_holds_the_registrys_copy_of_its_device_id() {
    let registry = DeviceId::parse("truck-1").expect("a valid id");
    let copy_of_registry = |id: &DeviceId| (*id == registry).then(|| registry.clone());
    let mut book = book();
    book.declare(declaration(), &officer("a"), at(0), &copy_of_registry)
        .expect("declared");
    let asked = DeviceId::parse("truck-1").expect("a valid id");
    assert!(!asked.shares(&registry));
    assert!(book.shared_device_id(asked).shares(&registry));
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn a_declaration_with_many_problems_names_each_field() {
    let mut decl = declaration();
    decl.itinerary = vec!["atlantis".into()];
    decl.destination_office = "nowhere".into();
    decl.deadline = at(-1);
    decl.goods[0].hs_code = "84".into();
    decl.goods[0].currency = "usd".into();
    decl.devices = vec!["bad id".into()];
    let errors = errors_of(decl, &mut book());
    assert_eq!(
        fields(&errors),
        [
            "devices[0]",
            "goods[0].hs_code",
            "goods[0].currency",
            "deadline",
            "itinerary[0]",
            "destination_office"
        ],
        "{errors:#?}"
    );
}

#[test]
fn an_itinerary_whose_corridors_do_not_connect_is_refused() {
    let mut decl = declaration();
    // Torugart leads to Naryn and Bishkek, not to Osh: the destination is in KG, but no
    // corridor joins Torugart to Osh.
    decl.itinerary = vec!["torugart".into()];
    let errors = errors_of(decl, &mut book());
    assert_eq!(fields(&errors), ["itinerary"], "{errors:#?}");
    assert!(
        errors[0].message.contains("`torugart` to `osh`"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_bcp_that_does_not_border_the_previous_country_is_refused() {
    let mut decl = declaration();
    decl.itinerary = vec!["irkeshtam".into(), "khorgos".into()];
    let errors = errors_of(decl, &mut book());
    assert_eq!(fields(&errors), ["itinerary[1]"], "{errors:#?}");
    assert!(
        errors[0].message.contains("no post in KG"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_destination_in_another_country_than_the_last_leg_is_refused() {
    let mut decl = declaration();
    decl.destination_office = "tashkent".into();
    let errors = errors_of(decl, &mut book());
    assert_eq!(fields(&errors), ["destination_office"], "{errors:#?}");
}

#[test]
fn a_reference_is_unique_per_issuing_country_and_a_device_serves_one_open_transit() {
    let mut book = book();
    let first = book.declare(declaration(), &officer("a"), at(0), &registered);
    assert_eq!(
        first.map(|c| c.transit.id.to_string()).ok().as_deref(),
        Some("CN-24CN0101-000123")
    );
    let errors = errors_of(declaration(), &mut book);
    assert_eq!(fields(&errors), ["devices[0]", "reference"], "{errors:#?}");
    assert!(errors[0]
        .message
        .contains("already on open transit CN-24CN0101-000123"));
}

#[test]
fn a_reference_stays_taken_once_its_transit_is_cancelled_and_after_a_restart() {
    let mut book = book();
    let change = book
        .declare(declaration(), &officer("a"), at(0), &registered)
        .expect("declared");
    let cancel = Action::Lifecycle(OfficerAction::Cancel {
        reason: "declared twice".into(),
    });
    let cancelled = book
        .act(&change.transit.id, cancel, &officer("a"), at(1))
        .expect("cancelled");
    assert!(!cancelled.transit.is_open());
    assert!(book.transit(&change.transit.id).is_none(), "left the book");
    // The device is free again; the reference is not.
    let errors = errors_of(declaration(), &mut book);
    assert_eq!(fields(&errors), ["reference"], "{errors:#?}");
    assert_eq!(book.holder(&change.transit.id), Holder::Here);

    let mut restarted = super::book();
    restarted.restore([*cancelled.transit]);
    let errors = errors_of(declaration(), &mut restarted);
    assert_eq!(fields(&errors), ["reference"], "{errors:#?}");
    assert_eq!(restarted.holder(&change.transit.id), Holder::Here);
}

#[test]
fn an_unregistered_device_and_an_unlisted_e_seal_are_refused() {
    let mut decl = declaration();
    decl.devices.push("ghost".into());
    decl.seals[0].device_id = Some("seal-9".into());
    let nobody_but_truck = |d: &DeviceId| (d.as_str() == "truck-1").then(|| d.clone());
    let errors = book()
        .declare(decl, &officer("a"), at(0), &nobody_but_truck)
        .expect_err("refused");
    assert_eq!(
        fields(&errors),
        ["devices[1]", "seals[0].device_id"],
        "{errors:#?}"
    );
}

#[test]
fn an_e_seal_listed_in_devices_is_not_blamed_for_that_devices_own_problem() {
    // The e-seal is listed, but not registered yet: one error, on the device, not a second
    // one telling the officer to list a device that is listed.
    let mut decl = declaration();
    decl.devices.push("seal-9".into());
    decl.seals[0].device_id = Some("seal-9".into());
    let nobody_but_truck = |d: &DeviceId| (d.as_str() == "truck-1").then(|| d.clone());
    let errors = book()
        .declare(decl, &officer("a"), at(0), &nobody_but_truck)
        .expect_err("refused");
    assert_eq!(fields(&errors), ["devices[1]"], "{errors:#?}");
}

#[test]
fn a_transit_the_other_way_round_travels_the_corridor_reversed() {
    let mut decl = declaration();
    decl.departure_office = "osh".into();
    decl.itinerary = vec!["irkeshtam".into()];
    decl.destination_office = "kashgar".into();
    let change = book()
        .declare(decl, &officer("kg-osh-3"), at(0), &registered)
        .expect("valid the other way round");
    let t = change.transit;
    assert_eq!(t.issuing_country.to_string(), "KG");
    let route = t.itinerary.route.as_ref().expect("route");
    assert_eq!(route.legs[0].reversed, Some(true));
    let posts: Vec<_> = t.itinerary.checkpoints[1]
        .posts
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(posts, ["irkeshtam-kg", "irkeshtam-cn"]);
}

#[test]
fn an_itinerary_over_two_corridors_chains_them_through_their_shared_join() {
    let mut decl = declaration();
    decl.itinerary = vec!["irkeshtam".into(), "karasuu".into()];
    decl.destination_office = "andijan".into();
    let change = book()
        .declare(decl, &officer("cn-kashgar-7"), at(0), &registered)
        .expect("Kashgar - Osh - Andijan connects");
    let it = &change.transit.itinerary;
    let corridors: Vec<_> = it
        .route
        .iter()
        .flat_map(|r| r.legs.iter().map(|l| l.corridor_id.as_str()))
        .collect();
    assert_eq!(
        corridors,
        ["c5-kashgar-irkeshtam-osh", "osh-karasuu-andijan-tashkent"]
    );
    let countries: Vec<_> = it.legs.iter().map(|l| l.country.to_string()).collect();
    assert_eq!(countries, ["CN", "KG", "UZ"]);
    let chainages: Vec<f64> = it.checkpoints.iter().map(|c| c.chainage_m).collect();
    assert!(chainages.windows(2).all(|w| w[0] < w[1]), "{chainages:?}");
}
