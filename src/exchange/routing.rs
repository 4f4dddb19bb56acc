//! Who receives what, and what a peer may assert: the access table of `docs/access.md`
//! applied to a peer instance exactly as to the customs of its countries.

use super::Peer;
use crate::auth::{may_act, may_see_alert, may_see_inspection, may_see_place, Principal, Role};
use crate::maps::CountryCode;
use crate::transit::{Action, Itinerary, Transit};

/// The peer's countries as customs principals: a peer sees and does what they would.
fn as_customs(countries: &[CountryCode]) -> Vec<Principal> {
    countries
        .iter()
        .map(|cc| Principal {
            token_id: 0,
            name: format!("exchange:{cc}"),
            role: Role::Customs(*cc),
        })
        .collect()
}

/// Whether a transit is any of the peer's business: its route has a leg in one of them.
pub fn concerns(countries: &[CountryCode], itinerary: &Itinerary) -> bool {
    itinerary
        .countries_from(0)
        .iter()
        .any(|c| countries.contains(c))
}

/// The transit as the customs of `countries` may see it: the alerts and inspections
/// addressed to one of them, and the truck's latest point only inside their territory.
pub fn view_for(
    countries: &[CountryCode],
    t: &Transit,
    locate: &dyn Fn(f64, f64) -> Option<CountryCode>,
) -> Transit {
    let who = as_customs(countries);
    let mut shown = t.clone();
    shown.held_by = None;
    shown
        .alerts
        .retain(|a| who.iter().any(|p| may_see_alert(p, t, a)));
    shown
        .inspections
        .retain(|i| who.iter().any(|p| may_see_inspection(p, t, i)));
    let outside = shown.motion.point.as_ref().is_some_and(|p| {
        let country = locate(p.lat, p.lon);
        !who.iter().any(|w| may_see_place(w, country))
    });
    if outside {
        shown.motion.point = None;
    }
    shown
}

/// Where a transit's declaration is held, as far as this instance knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Declared here.
    Here,
    /// Received from this peer (by name).
    Peer(String),
    /// Not known here.
    Unknown,
}

/// A transit's record may come only from the instance of the country that issued it, about
/// a transit that concerns this instance and is not held here or by another peer.
///
/// # Errors
/// Why the record is refused.
pub fn check_record(
    from: &Peer,
    own: &[CountryCode],
    t: &Transit,
    holder: &Holder,
) -> Result<(), String> {
    if !from.countries.contains(&t.issuing_country) {
        return Err(format!(
            "{} is issued in {}: only that country's instance sends its record",
            t.id, t.issuing_country
        ));
    }
    if !concerns(own, &t.itinerary) {
        return Err(format!("{} has no leg in this instance's countries", t.id));
    }
    match holder {
        Holder::Here => Err(format!("{} is held by this instance", t.id)),
        Holder::Peer(name) if *name != from.name => {
            Err(format!("{} is held by another peer ({name})", t.id))
        }
        Holder::Peer(_) | Holder::Unknown => Ok(()),
    }
}

/// A peer may take on a transit held here only the actions the customs of one of its
/// countries could take here: confirm and inspect at its own places, act on alerts
/// addressed to it.
///
/// # Errors
/// Why the action is refused.
pub fn check_action(from: &Peer, t: &Transit, action: &Action) -> Result<(), String> {
    let mut why = None;
    for who in as_customs(&from.countries) {
        match may_act(&who, t, action) {
            Ok(()) => return Ok(()),
            Err(e) => why = why.or(Some(e)),
        }
    }
    Err(why.unwrap_or_else(|| "the peer answers for no country".into()))
}
