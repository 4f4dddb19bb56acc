//! Trips as customs transits: what a vehicle declares before it leaves an office, and what
//! happens when it reaches the other one.
//!
//! A vehicle on a route between two offices ([`Route::between_offices`]) drives one transit
//! per leg: office of departure and destination at the route's ends, the BCPs of the route
//! in the order it meets them, the seal its device reports, and a deadline from the shipped
//! rules (the itinerary's leg budgets, see [`TripPlan`]). The fleet hands each declaration
//! to the shell as a [`TripEvent`] at the simulated second it is lodged.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::route::Route;
use crate::maps::Atlas;
use crate::transit::declare::DeclaredSeal;
use crate::transit::itinerary::{self, Request};
use crate::transit::{Declaration, Driver, GoodsLine, TransitId, TransitRules};

/// Extra time on top of the rules' budget that the office of departure grants.
pub const DEADLINE_GRACE_S: i64 = 12 * 3600;

/// One direction of a route as a transit: where it starts and ends, the BCPs in order, and
/// the time the rules allow for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TripPlan {
    pub departure_office: String,
    pub destination_office: String,
    pub bcps: Vec<String>,
    /// Sum of the itinerary's leg budgets: the route at the CPMM speed with delay plus the
    /// typical dwell at each BCP (`rules/transit.toml`).
    pub budget_s: i64,
    /// The issuing country: that of the office of departure.
    pub country: crate::maps::CountryCode,
}

impl TripPlan {
    /// The plans for `route` forward (`[0]`) and backward (`[1]`), built by the same
    /// itinerary rules Caravan applies to a declaration. `None` when the route does not run
    /// between offices or the maps cannot connect its checkpoints.
    pub fn for_route(atlas: &Atlas, rules: &TransitRules, route: &Route) -> Option<[TripPlan; 2]> {
        let (from, to) = route.offices.as_ref()?;
        let forward: Vec<String> = route.bcps.iter().map(|b| b.id.clone()).collect();
        let backward: Vec<String> = forward.iter().rev().cloned().collect();
        let plan = |dep: &str, dest: &str, bcps: Vec<String>| {
            let req = Request {
                transit_id: "",
                departure: dep,
                bcps: &bcps,
                destination: dest,
            };
            let it = itinerary::build(atlas, rules, &req).ok()?;
            Some(TripPlan {
                departure_office: dep.to_owned(),
                destination_office: dest.to_owned(),
                budget_s: it.legs.iter().map(|l| l.budget_s).sum(),
                country: atlas.office(dep)?.country,
                bcps,
            })
        };
        Some([plan(from, to, forward)?, plan(to, from, backward)?])
    }
}

/// A vehicle's current transit, as the model knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Trip {
    /// 1 for the first transit of the vehicle in this run.
    pub number: u32,
    pub transit_id: String,
    pub reference: String,
    pub seal_id: String,
    /// Simulated seconds: when the vehicle leaves, and the deadline at destination.
    pub departs_at: i64,
    pub deadline: i64,
    /// Truth records on this transit so far; a transit without any is closed on arrival.
    pub incidents: u32,
    pub arrived: bool,
    /// The deadline passed before arrival (recorded once).
    pub overdue: bool,
}

/// What the shell must do through the API for the model to stay true, in order with the
/// messages around it.
#[derive(Clone, Debug, PartialEq)]
pub enum TripEvent {
    /// Declare this transit before any later message of the vehicle is published.
    Declared {
        device_id: String,
        transit_id: String,
        /// The deadline is in simulated time; the shell shifts it to its own clock.
        declaration: Box<Declaration>,
        /// Simulated second of the declaration.
        at: i64,
    },
    /// The vehicle has unloaded at its destination after a transit without incidents: the
    /// office of destination closes it (the vehicle then leaves on its next transit).
    Completed {
        device_id: String,
        transit_id: String,
        at: i64,
    },
}

/// A truth-file line for one declared transit, so that a check knows every transit of the
/// run, including those without incidents.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DeclaredTransit {
    pub transit_id: String,
    pub device_id: String,
    pub departure_office: String,
    pub destination_office: String,
    pub bcps: Vec<String>,
    /// Simulated time of the declaration (RFC 3339).
    pub declared_at: String,
}

/// A few goods typical of the CAREC corridors: HS code, description, kg and USD per truck.
const GOODS: [(&str, &str, f64, f64); 6] = [
    ("870323", "passenger cars, used", 9_800.0, 42_000.0),
    ("620342", "men's cotton trousers", 6_200.0, 58_000.0),
    ("080610", "fresh grapes", 18_500.0, 16_500.0),
    ("851713", "mobile phones", 2_100.0, 380_000.0),
    ("720839", "hot-rolled steel coils", 21_000.0, 14_800.0),
    ("220421", "wine in bottles", 15_000.0, 36_000.0),
];

/// A transit reference: 1–35 of `[A-Za-z0-9_-]`, unique per run, vehicle and trip.
pub fn reference(run: &str, vehicle: usize, trip: u32) -> String {
    let mut text = format!("{run}-{vehicle:05}-{trip}");
    text.truncate(35);
    text
}

/// Unix seconds as a UTC time (0 for an impossible one).
pub fn utc(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default()
}

/// Everything a vehicle declares for one transit.
pub struct TripRequest<'a> {
    pub plan: &'a TripPlan,
    pub reference: String,
    pub device_id: &'a str,
    pub plate: &'a str,
    pub vehicle: usize,
    pub number: u32,
    pub seal_id: &'a str,
    pub departs_at: i64,
}

impl TripRequest<'_> {
    /// Deadline at destination: the budget rounded up to the hour, plus the grace.
    pub fn deadline(&self) -> i64 {
        let hours = (self.plan.budget_s.max(0) + 3599) / 3600;
        self.departs_at + hours * 3600 + DEADLINE_GRACE_S
    }

    pub fn transit_id(&self) -> TransitId {
        TransitId::new(self.plan.country, &self.reference)
    }

    /// The declaration the carrier lodges; its deadline is in simulated time.
    pub fn declaration(&self) -> Declaration {
        let (hs_code, description, gross_kg, value) =
            GOODS[(self.vehicle + self.number as usize) % GOODS.len()];
        Declaration {
            reference: self.reference.clone(),
            carrier: super::register::CARRIER.to_owned(),
            vehicle_plate: self.plate.to_owned(),
            trailer_plates: Vec::new(),
            driver: Driver {
                name: format!("Simulated driver {:05}", self.vehicle),
                document: None,
            },
            devices: vec![self.device_id.to_owned()],
            seals: vec![DeclaredSeal {
                id: self.seal_id.to_owned(),
                device_id: Some(self.device_id.to_owned()),
            }],
            goods: vec![GoodsLine {
                hs_code: hs_code.to_owned(),
                description: description.to_owned(),
                gross_kg,
                value,
                currency: "USD".to_owned(),
            }],
            departure_office: self.plan.departure_office.clone(),
            itinerary: self.plan.bcps.clone(),
            destination_office: self.plan.destination_office.clone(),
            deadline: utc(self.deadline()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::simulate::{Fleet, FleetConfig};
    use crate::transit::{Actor, RiskRules, TransitBook};

    const START: i64 = 1_795_000_000;

    fn request(plan: &TripPlan) -> TripRequest<'_> {
        TripRequest {
            plan,
            reference: reference("T1", 7, 2),
            device_id: "sim1-00007",
            plate: "07SIM007",
            vehicle: 7,
            number: 2,
            seal_id: "sim1-00007-S2",
            departs_at: START,
        }
    }

    #[test]
    fn a_declaration_names_the_trip_and_gives_the_rounded_budget_plus_grace() {
        let plan = TripPlan {
            departure_office: "kg-bishkek".into(),
            destination_office: "kz-almaty".into(),
            bcps: vec!["kordai".into()],
            budget_s: 20 * 3600 + 1,
            country: "KG".parse().expect("a country"),
        };
        let request = request(&plan);
        let declaration = request.declaration();
        assert_eq!(declaration.reference, "T1-00007-2");
        assert_eq!(request.transit_id().as_str(), "KG-T1-00007-2");
        assert_eq!(declaration.carrier, crate::simulate::CARRIER);
        assert_eq!(declaration.vehicle_plate, "07SIM007");
        assert_eq!(declaration.devices, ["sim1-00007"]);
        assert_eq!(declaration.seals.len(), 1);
        assert_eq!(declaration.seals[0].id, "sim1-00007-S2");
        assert_eq!(
            declaration.seals[0].device_id.as_deref(),
            Some("sim1-00007")
        );
        assert_eq!(declaration.departure_office, "kg-bishkek");
        assert_eq!(declaration.itinerary, ["kordai"]);
        assert_eq!(declaration.destination_office, "kz-almaty");
        // 20 h 0 min 1 s of budget is 21 hours, plus 12 hours of grace.
        let hours = (declaration.deadline.timestamp() - START) / 3600;
        assert_eq!(hours, 21 + 12);
        assert_eq!(declaration.goods.len(), 1);
        assert_eq!(declaration.goods[0].currency, "USD");
    }

    #[test]
    fn the_declaration_of_every_shipped_route_is_accepted_by_the_transit_book() {
        let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
        let mut config = FleetConfig::new(1, 1, START);
        config.transits = Some("T1".into());
        let fleet = Fleet::new(&atlas, &config).expect("a fleet");
        let mut book = TransitBook::new(
            atlas.clone(),
            TransitRules::embedded().expect("rules"),
            RiskRules::embedded().expect("risk rules"),
        );
        let actor = Actor("carrier".into());
        let mut declared = 0;
        for (r, route) in fleet.routes().iter().enumerate() {
            for (d, plan) in route.plans.iter().enumerate() {
                let device = format!("sim1-{r:03}{d}");
                let mut request = request(plan);
                request.reference = reference("T1", r * 2 + d, 1);
                request.device_id = &device;
                let outcome = book.declare(request.declaration(), &actor, utc(START), &|id| {
                    Some(id.clone())
                });
                assert!(outcome.is_ok(), "{}: {outcome:?}", route.corridor_id);
                declared += 1;
            }
        }
        assert!(declared >= 2, "only {declared} plans");
    }
}
