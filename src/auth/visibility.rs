//! Who sees what: one function per resource, the rules of `docs/access.md`.
//!
//! Every endpoint, every list embedded in another answer (a transit's alerts and
//! inspections, a post's expected arrivals, statistics) and the live stream decide through
//! these functions, so a rule is written once. Where a rule needs a place's country (a fix, an
//! event's point), the caller locates it with the maps and passes the country in.

use chrono::{DateTime, Utc};

use super::{Principal, Role};
use crate::device::Device;
use crate::maps::CountryCode;
use crate::telemetry::DeviceId;
use crate::transit::performance::{BcpPassage, SectionRun};
use crate::transit::{Alert, Inspection, Status, Transit};

/// Coordinators see every transit; a carrier its own; customs the transits whose itinerary
/// has a leg in their country; a post the transits whose itinerary crosses its BCP on its
/// side.
pub fn may_see_transit(who: &Principal, t: &Transit) -> bool {
    match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => t.carrier == *id,
        Role::Customs(cc) => t.countries().contains(cc),
        Role::Post { bcp_id, country } => t
            .itinerary
            .checkpoint(bcp_id)
            .is_some_and(|(_, c)| c.posts.iter().any(|p| p.country == *country)),
    }
}

/// An authority sees an alert of a transit it sees when the alert is addressed to its
/// country (where it occurred, or escalated to it); a carrier every alert of its transits.
pub fn may_see_alert(who: &Principal, t: &Transit, alert: &Alert) -> bool {
    may_see_transit(who, t) && addressed(who, &alert.visible_to)
}

/// Inspections are shown to the authorities of the leg they were done on and of every later
/// leg (mutual recognition), and to the carrier.
pub fn may_see_inspection(who: &Principal, t: &Transit, inspection: &Inspection) -> bool {
    may_see_transit(who, t) && addressed(who, &inspection.visible_to)
}

/// Coordinators and carriers are not limited by country; customs and posts need theirs in
/// the list.
fn addressed(who: &Principal, countries: &[CountryCode]) -> bool {
    match &who.role {
        Role::Coordinator | Role::Carrier(_) => true,
        Role::Customs(cc) | Role::Post { country: cc, .. } => countries.contains(cc),
    }
}

/// Whether a position in `country` (`None`: outside every country of the maps) is inside the
/// principal's territory. Coordinators and carriers have no territory limit.
pub fn may_see_place(who: &Principal, country: Option<CountryCode>) -> bool {
    match who.role.country() {
        None => true,
        Some(cc) => country == Some(cc),
    }
}

/// A transit as `who` may see it: only the alerts and inspections addressed to it, and the
/// latest point of the truck only inside its territory. `country_of` locates a point.
pub fn transit_for(
    who: &Principal,
    t: &Transit,
    country_of: impl Fn(f64, f64) -> Option<CountryCode>,
) -> Transit {
    let mut shown = t.clone();
    shown.alerts.retain(|a| may_see_alert(who, t, a));
    shown.inspections.retain(|i| may_see_inspection(who, t, i));
    let abroad = shown
        .motion
        .point
        .as_ref()
        .is_some_and(|p| !may_see_place(who, country_of(p.lat, p.lon)));
    if abroad {
        shown.motion.point = None;
    }
    shown
}

/// A BCP passage counts in a principal's statistics when its transit is visible and, for
/// customs and posts, the BCP is on their country's border.
pub fn may_count_passage(who: &Principal, t: &Transit, passage: &BcpPassage) -> bool {
    if !may_see_transit(who, t) {
        return false;
    }
    match &who.role {
        Role::Coordinator | Role::Carrier(_) => true,
        Role::Customs(cc) | Role::Post { country: cc, .. } => t
            .itinerary
            .checkpoint(&passage.bcp_id)
            .is_some_and(|(_, c)| c.posts.iter().any(|p| p.country == *cc)),
    }
}

/// A section run counts when its transit is visible and, for customs and posts, the section
/// lies in their country.
pub fn may_count_section(who: &Principal, t: &Transit, run: &SectionRun) -> bool {
    if !may_see_transit(who, t) {
        return false;
    }
    match who.role.country() {
        None => true,
        Some(cc) => t
            .itinerary
            .legs
            .iter()
            .any(|l| l.from == run.from && l.to == run.to && l.country == cc),
    }
}

/// Whether a transit carries a device: as its tracker or as one of its e-seals.
pub fn carries(t: &Transit, device: &DeviceId) -> bool {
    t.devices.contains(device) || t.seals.iter().any(|s| s.device_id.as_ref() == Some(device))
}

/// From the declaration to the close or cancellation (open-ended while under way).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window {
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
}

impl Window {
    fn of(t: &Transit) -> Self {
        let ended = t
            .transitions
            .iter()
            .rev()
            .find(|tr| matches!(tr.to, Status::Closed | Status::Cancelled))
            .map(|tr| tr.at);
        Self {
            from: t.declared_at,
            to: if t.is_open() { None } else { ended },
        }
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        at >= self.from && self.to.is_none_or(|to| at <= to)
    }
}

/// Which stretch of one device's history a principal may see: the rules for devices, their
/// tracks, their current position and their events in one place.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSight {
    /// Coordinators and the owning carrier see all of it.
    everything: bool,
    /// The authority's country.
    country: Option<CountryCode>,
    /// Customs see whatever happens on their territory; posts only during the transits they
    /// see.
    territory: bool,
    /// While the device served transits the principal sees.
    windows: Vec<Window>,
}

/// The stretch of `device`'s history `who` may see, from the transits that carried it (any
/// transits may be passed; those not carrying it are ignored).
pub fn device_sight<'a>(
    who: &Principal,
    device: &Device,
    transits: impl IntoIterator<Item = &'a Transit>,
) -> DeviceSight {
    let everything = match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => device.carrier == *id,
        _ => false,
    };
    let carrier = matches!(who.role, Role::Carrier(_));
    let windows = if everything || carrier {
        Vec::new()
    } else {
        transits
            .into_iter()
            .filter(|t| carries(t, &device.device_id) && may_see_transit(who, t))
            .map(Window::of)
            .collect()
    };
    DeviceSight {
        everything,
        country: who.role.country(),
        territory: matches!(who.role, Role::Customs(_)),
        windows,
    }
}

impl DeviceSight {
    /// Whether the device exists for the principal: always for coordinators and its carrier;
    /// for customs while it is in their country or carried a transit they see; for a post
    /// when it carried a transit the post sees.
    pub fn device_visible(&self, now_in: Option<CountryCode>) -> bool {
        self.everything
            || !self.windows.is_empty()
            || (self.territory && now_in.is_some() && now_in == self.country)
    }

    /// Whether a fact of the device at `at` in `country` (a fix, an event) is shown: in the
    /// principal's country, and for posts only while the device served a transit the post
    /// sees. A fact outside every country is shown only while it served such a transit.
    pub fn shows(&self, at: DateTime<Utc>, country: Option<CountryCode>) -> bool {
        if self.everything {
            return true;
        }
        let serving = self.windows.iter().any(|w| w.contains(at));
        match country {
            Some(cc) => Some(cc) == self.country && (self.territory || serving),
            None => serving,
        }
    }
}

/// What the stream and the event lists know about one logged event.
#[derive(Clone, Copy, Debug)]
pub struct EventFacts<'a> {
    pub kind: &'a str,
    /// The event is about a transit (it has a transit id).
    pub of_transit: bool,
    pub occurred_at: DateTime<Utc>,
    /// The country of the event's point, when it has one.
    pub country: Option<CountryCode>,
    pub body: &'a serde_json::Value,
}

/// A transit's event follows its transit (`transit_visible`: what [`may_see_transit`] says
/// of it, `None` when it is not found), and an alert's or inspection's event the alert or
/// inspection as the event recorded it; a device's event follows the device's sight.
pub fn may_see_event(
    who: &Principal,
    event: &EventFacts<'_>,
    transit_visible: Option<bool>,
    device: Option<&DeviceSight>,
) -> bool {
    if who.role == Role::Coordinator {
        return true;
    }
    if event.of_transit {
        if transit_visible != Some(true) {
            return false;
        }
        return match event.kind {
            "transit.alert_raised" | "transit.alert_updated" | "transit.inspection_recorded" => {
                let to: Vec<CountryCode> = event
                    .body
                    .get("visible_to")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                addressed(who, &to)
            }
            _ => true,
        };
    }
    device.is_some_and(|d| d.shows(event.occurred_at, event.country))
}
