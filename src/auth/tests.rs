//! The jurisdiction rules on transits declared through the real transit book and maps.

use chrono::{Duration, Utc};

use super::*;
use crate::device::Device;
use crate::maps::CountryCode;
use crate::telemetry::DeviceId;
use crate::transit::fixtures::bishkek_almaty;
use crate::transit::{Action, OfficerAction};

fn who(role: &str) -> Principal {
    Principal {
        token_id: 1,
        name: "t".into(),
        role: role.parse().unwrap(),
    }
}

fn cc(code: &str) -> CountryCode {
    code.parse().unwrap()
}

fn device() -> Device {
    Device {
        device_id: DeviceId::parse("truck-1").unwrap(),
        carrier: "kg-trans".into(),
        plate: None,
        registered_at: Utc::now(),
    }
}

#[test]
fn posts_see_only_the_transits_through_their_bcp() {
    let t = bishkek_almaty();
    assert!(may_see_transit(&who("post:akzhol:KG"), &t));
    assert!(may_see_transit(&who("post:akzhol:KZ"), &t));
    assert!(!may_see_transit(&who("post:khorgos:KZ"), &t));
    assert!(!may_see_transit(&who("post:karasuu:KG"), &t));
    assert!(may_see_transit(&who("customs:KZ"), &t));
    assert!(!may_see_transit(&who("customs:CN"), &t));
    assert!(!may_see_transit(&who("carrier:other"), &t));
}

#[test]
fn a_device_track_shows_customs_only_their_territory() {
    let t = bishkek_almaty();
    let kg = device_sight(&who("customs:KG"), &device(), [&t]);
    let during = t.declared_at + Duration::hours(1);
    assert!(
        kg.device_visible(Some(cc("KZ"))),
        "its transit's device, abroad"
    );
    assert!(kg.shows(during, Some(cc("KG"))));
    assert!(!kg.shows(during, Some(cc("KZ"))));
    assert!(kg.shows(during - Duration::days(30), Some(cc("KG"))));
    let cn = device_sight(&who("customs:CN"), &device(), [&t]);
    assert!(!cn.device_visible(Some(cc("KZ"))));
    assert!(cn.device_visible(Some(cc("CN"))), "on its territory");
    assert!(!cn.shows(during, Some(cc("KZ"))));
    let post = device_sight(&who("post:akzhol:KZ"), &device(), [&t]);
    assert!(post.shows(during, Some(cc("KZ"))));
    assert!(!post.shows(during - Duration::days(1), Some(cc("KZ"))));
    let khorgos = device_sight(&who("post:khorgos:KZ"), &device(), [&t]);
    assert!(!khorgos.device_visible(Some(cc("KZ"))));
    let owner = device_sight(&who("carrier:kg-trans"), &device(), [&t]);
    assert!(owner.shows(during, Some(cc("CN"))));
    let other = device_sight(&who("carrier:other"), &device(), [&t]);
    assert!(!other.device_visible(Some(cc("KG"))));
}

#[test]
fn only_the_destination_customs_close_and_posts_act_at_home() {
    let t = bishkek_almaty();
    let close = Action::Lifecycle(OfficerAction::Close);
    assert!(may_act(&who("customs:KG"), &t, &close).is_err());
    assert!(may_act(&who("customs:KZ"), &t, &close).is_ok());
    assert!(may_act(&who("coordinator"), &t, &close).is_ok());
    assert!(may_act(&who("post:akzhol:KZ"), &t, &close).is_err());
    let arrive_kz = Action::Lifecycle(OfficerAction::ConfirmArrival {
        place: "akzhol-kz".into(),
    });
    assert!(may_act(&who("post:akzhol:KZ"), &t, &arrive_kz).is_ok());
    assert!(may_act(&who("post:akzhol:KG"), &t, &arrive_kz).is_err());
    assert!(may_act(&who("customs:KZ"), &t, &arrive_kz).is_ok());
    assert!(may_act(&who("customs:KG"), &t, &arrive_kz).is_err());
    assert!(may_act(&who("carrier:kg-trans"), &t, &arrive_kz).is_err());
    let depart = Action::Lifecycle(OfficerAction::ConfirmDeparture);
    assert!(may_act(&who("customs:KG"), &t, &depart).is_ok());
    assert!(may_act(&who("customs:KZ"), &t, &depart).is_err());
}

#[test]
fn declarations_stay_inside_the_mandate_and_the_carrier_s_own_devices() {
    let countries = [cc("KG"), cc("KZ")];
    let own = [("truck-1".to_owned(), Some("kg-trans".to_owned()))];
    let scope = |devices| DeclarationScope {
        carrier: "kg-trans",
        countries: &countries,
        device_carriers: devices,
    };
    assert!(may_declare(&who("customs:KG"), &scope(&own)).is_ok());
    assert!(may_declare(&who("customs:TM"), &scope(&own)).is_err());
    assert!(may_declare(&who("carrier:kg-trans"), &scope(&own)).is_ok());
    assert!(may_declare(&who("carrier:other"), &scope(&own)).is_err());
    assert!(may_declare(&who("post:akzhol:KG"), &scope(&own)).is_err());
    let foreign = [("truck-9".to_owned(), Some("sim-carrier".to_owned()))];
    assert!(may_declare(&who("carrier:kg-trans"), &scope(&foreign)).is_err());
    assert!(may_declare(&who("coordinator"), &scope(&foreign)).is_err());
}

#[test]
fn credentials_are_managed_by_the_owner_customs_and_coordinators() {
    assert!(may_manage_device(&who("carrier:kg-trans"), &device()));
    assert!(!may_manage_device(&who("carrier:other"), &device()));
    assert!(may_manage_device(&who("customs:KG"), &device()));
    assert!(may_manage_device(&who("coordinator"), &device()));
    assert!(!may_manage_device(&who("post:akzhol:KG"), &device()));
}
