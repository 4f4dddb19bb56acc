//! Who may do what: declarations, officers' actions, devices. The rules of `docs/access.md`.
//!
//! Each function answers with the reason of a refusal, which the API sends as a 403. (A
//! record the principal may not see is answered 404 before any of these is asked.)

use super::visibility::{may_see_alert, may_see_transit};
use super::{Principal, Role};
use crate::device::Device;
use crate::maps::CountryCode;
use crate::transit::itinerary::CheckpointKind;
use crate::transit::{Action, OfficerAction, Transit};

/// Coordinators register any device; a carrier only devices of its own.
pub fn may_register_device(who: &Principal, carrier: &str) -> bool {
    match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => id == carrier,
        _ => false,
    }
}

/// Who may manage a device's credentials: a coordinator, customs (which fit e-seals and
/// trackers at the office of departure) and the carrier that owns the device. The endpoint
/// first answers 404 for a device the principal does not see.
pub fn may_manage_device(who: &Principal, device: &Device) -> bool {
    match &who.role {
        Role::Coordinator | Role::Customs(_) => true,
        Role::Carrier(id) => device.carrier == *id,
        Role::Post { .. } => false,
    }
}

/// What a declaration names that decides who may lodge it.
#[derive(Clone, Debug)]
pub struct DeclarationScope<'a> {
    pub carrier: &'a str,
    /// Countries of the offices and of both sides of each BCP the itinerary names (those
    /// the maps know).
    pub countries: &'a [CountryCode],
    /// The carrier each declared device (trackers and e-seals) is registered to; `None` for
    /// a device that is not registered (the declaration's own check names it).
    pub device_carriers: &'a [(String, Option<String>)],
}

/// Coordinators declare any transit; customs a transit touching their country; a carrier its
/// own transits. Whoever declares, every device must belong to the declared carrier: a
/// carrier's devices are its own, and a transit on another carrier's device would hand that
/// device's track and stream to the wrong carrier.
///
/// # Errors
/// Why the declaration is refused.
pub fn may_declare(who: &Principal, scope: &DeclarationScope<'_>) -> Result<(), String> {
    match &who.role {
        Role::Coordinator => {}
        Role::Customs(cc) if scope.countries.contains(cc) => {}
        Role::Customs(cc) => {
            return Err(format!(
                "customs:{cc} declares only transits with an office or a BCP in {cc}"
            ))
        }
        Role::Carrier(id) if id == scope.carrier => {}
        Role::Carrier(_) => return Err("a carrier declares only its own transits".into()),
        Role::Post { .. } => {
            return Err(
                "customs, coordinators, and carriers for themselves declare transits".into(),
            )
        }
    }
    // The refusal does not name the owner.
    let foreign = scope
        .device_carriers
        .iter()
        .find(|(_, owner)| owner.as_deref().is_some_and(|o| o != scope.carrier));
    match foreign {
        Some((device, _)) => Err(format!(
            "device {device} is not registered to carrier {}",
            scope.carrier
        )),
        None => Ok(()),
    }
}

/// The country of a post or office on the itinerary.
pub fn place_country(t: &Transit, place: &str) -> Option<CountryCode> {
    let it = &t.itinerary;
    for (k, cp) in it.checkpoints.iter().enumerate() {
        if let Some(post) = cp.posts.iter().find(|p| p.id == place) {
            return Some(post.country);
        }
        if cp.id == place && cp.kind == CheckpointKind::Office {
            let leg = if k == 0 { 0 } else { k - 1 };
            return it.legs.get(leg).map(|l| l.country);
        }
    }
    None
}

/// The country of the office of destination.
pub fn destination_country(t: &Transit) -> Option<CountryCode> {
    t.itinerary.legs.last().map(|l| l.country)
}

/// A post's own post id on this transit: its BCP's post on its side.
fn own_post<'a>(t: &'a Transit, bcp_id: &str, country: CountryCode) -> Option<&'a str> {
    let (_, cp) = t.itinerary.checkpoint(bcp_id)?;
    cp.posts
        .iter()
        .find(|p| p.country == country)
        .map(|p| p.id.as_str())
}

/// Officers act on a transit they see, each within its mandate:
/// - departure and cancellation: the customs of the office of departure;
/// - arrival, exit and inspections: the customs of the place's country, or the post there;
/// - closing: the customs of the office of destination;
/// - alerts: the authorities the alert is addressed to;
/// - coordinators: everything; carriers: nothing.
///
/// # Errors
/// Why the action is refused.
pub fn may_act(who: &Principal, t: &Transit, action: &Action) -> Result<(), String> {
    if !may_see_transit(who, t) {
        return Err("not in this principal's jurisdiction".into());
    }
    let (cc, posted, own) = match &who.role {
        Role::Coordinator => return Ok(()),
        Role::Carrier(_) => return Err("carriers cannot act on transits".into()),
        Role::Customs(cc) => (*cc, false, None),
        Role::Post { bcp_id, country } => (*country, true, own_post(t, bcp_id, *country)),
    };
    let at_place = |place: &str| {
        if posted {
            own == Some(place)
        } else {
            place_country(t, place) == Some(cc)
        }
    };
    match action {
        Action::Alert { alert_id, .. } => {
            let addressed = t
                .alerts
                .iter()
                .find(|a| a.id == *alert_id)
                .is_some_and(|a| may_see_alert(who, t, a));
            if addressed {
                Ok(())
            } else {
                Err("the alert is not addressed to this authority".into())
            }
        }
        Action::Inspect(report) if at_place(&report.place) => Ok(()),
        Action::Lifecycle(
            OfficerAction::ConfirmArrival { place } | OfficerAction::ConfirmExit { place },
        ) if at_place(place) => Ok(()),
        Action::Inspect(_)
        | Action::Lifecycle(OfficerAction::ConfirmArrival { .. })
        | Action::Lifecycle(OfficerAction::ConfirmExit { .. }) => Err(if posted {
            "a border post confirms arrivals and exits and inspects only at its own post".into()
        } else {
            format!("customs:{cc} confirms arrivals and exits and inspects only in {cc}")
        }),
        Action::Lifecycle(OfficerAction::Close) => {
            if !posted && destination_country(t) == Some(cc) {
                Ok(())
            } else {
                Err("only the customs of the office of destination or a coordinator close a transit".into())
            }
        }
        Action::Lifecycle(OfficerAction::ConfirmDeparture | OfficerAction::Cancel { .. }) => {
            if !posted && t.issuing_country == cc {
                Ok(())
            } else {
                Err("only the customs of the office of departure or a coordinator confirm departure or cancel".into())
            }
        }
    }
}
