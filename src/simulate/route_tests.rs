//! Every route the fleet drives as a transit, both ways, through the real geofence engine
//! and transit book: a vehicle that drives its declared route from office to office as the
//! model does (slowing near the BCPs and waiting at them), with no incident, must raise no
//! alert at all. The replay tests meet only the routes their vehicles happen to drive.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::trip::{reference, utc, TripRequest};
use super::{Fleet, FleetConfig, Route};
use crate::geofence::{DeviceTrack, Engine};
use crate::maps::Atlas;
use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};
use crate::transit::{Actor, TransitBook};

const START: i64 = 1_795_000_000;
/// Fix spacing on the open road, and within [`NEAR_M`] of a BCP or an office.
const ROAD_STEP_M: f64 = 2_000.0;
const NEAR_STEP_M: f64 = 250.0;
const NEAR_M: f64 = 15_000.0;

/// Caravan's pure cores, shared by the drives; each drive declares for a device of its own.
struct Desk {
    engine: Engine,
    book: TransitBook,
    actor: Actor,
    vehicles: usize,
}

fn fix(device: &DeviceId, seq: u64, t: DateTime<Utc>, p: (f64, f64), kmh: f64) -> Report {
    Report {
        device_id: device.clone(),
        received_at: t,
        body: ReportBody::Fix(Fix {
            seq,
            t,
            point: GeoPoint { lat: p.0, lon: p.1 },
            speed_kmh: Some(kmh),
            heading_deg: None,
            hdop: None,
            sats: None,
            alt_m: None,
        }),
    }
}

/// The chainages of the fixes from the start of `route` to its end in `direction`, denser
/// near its BCPs and ends, with a few fixes in place at each BCP (the model's wait).
fn stops(route: &Route, direction: usize) -> Vec<f64> {
    let length = route.length_m();
    let near = |s: f64| {
        s < NEAR_M
            || length - s < NEAR_M
            || route.bcps.iter().any(|b| (b.chainage_m - s).abs() < NEAR_M)
    };
    let mut out = Vec::new();
    let mut s = 0.0;
    while s < length {
        out.push(s);
        let next = s + if near(s) { NEAR_STEP_M } else { ROAD_STEP_M };
        if let Some(b) = route
            .bcps
            .iter()
            .find(|b| s < b.chainage_m && b.chainage_m <= next)
        {
            out.extend([b.chainage_m; 3]);
        }
        s = next;
    }
    out.push(length);
    if direction == 1 {
        out = out.into_iter().rev().collect();
    }
    out
}

/// Declares `plan` `direction` of `route`, drives it and returns what went wrong: the
/// geofence events that are alerts and the alerts of the transit.
fn drive(desk: &mut Desk, route: &Route, direction: usize) -> Vec<String> {
    desk.vehicles += 1;
    let n = desk.vehicles;
    let device_id = format!("sim1-{n:05}");
    let seal_id = format!("{device_id}-S1");
    let device = DeviceId::parse(&device_id).expect("device id");
    let request = TripRequest {
        plan: &route.plans[direction],
        reference: reference("RT", n, 1),
        device_id: &device_id,
        plate: "01SIM001",
        vehicle: n,
        number: 1,
        seal_id: &seal_id,
        departs_at: START,
    };
    let declared = desk
        .book
        .declare(request.declaration(), &desk.actor, utc(START), &|id| {
            Some(id.clone())
        });
    let transit_id = match declared {
        Ok(change) => change.transit.id.clone(),
        Err(e) => return vec![format!("declaration refused: {e:?}")],
    };
    let mut track = DeviceTrack::new(device.clone());
    let assigned = desk.book.route_of(&device).expect("a route");
    desk.engine
        .assign_route(&mut track, &assigned)
        .expect("the route resolves");
    let mut problems = Vec::new();
    let mut t = utc(START);
    for (k, s) in stops(route, direction).into_iter().enumerate() {
        let place = route.place(s);
        t += Duration::seconds(120);
        let report = fix(&device, k as u64, t, (place.lat, place.lon), 60.0);
        let events = desk.engine.apply(&mut track, &report, t);
        for e in events
            .iter()
            .filter(|e| matches!(e.kind_str(), "wrong_direction" | "route_deviation"))
        {
            problems.push(format!(
                "{} at chainage {s:.0} m: {:?}",
                e.kind_str(),
                e.kind
            ));
        }
        desk.book.observe(&report, t);
        desk.book.on_geofence_events(&events, t);
    }
    let transit = desk.book.transit(&transit_id).expect("the transit");
    for a in &transit.alerts {
        problems.push(format!("alert {:?} {}", a.kind, a.detail));
    }
    if transit.stage != crate::transit::Stage::Arrived {
        problems.push(format!("ended {:?}, not arrived", transit.stage));
    }
    problems
}

#[test]
fn driving_every_transit_route_either_way_raises_no_alert() {
    let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
    let mut config = FleetConfig::new(1, 1, START);
    config.transits = Some("RT".into());
    let fleet = Fleet::new(&atlas, &config).expect("a fleet");
    let (engine, book) = super::replay_tests::cores(&atlas);
    let mut desk = Desk {
        engine,
        book,
        actor: Actor("simulator".into()),
        vehicles: 0,
    };
    let mut failures = Vec::new();
    let mut driven = 0;
    for route in fleet.routes() {
        for direction in 0..route.plans.len() {
            driven += 1;
            let problems = drive(&mut desk, route, direction);
            if !problems.is_empty() {
                let plan = &route.plans[direction];
                failures.push(format!(
                    "{} {} -> {} via {:?}:\n    {}",
                    route.corridor_id,
                    plan.departure_office,
                    plan.destination_office,
                    plan.bcps,
                    problems.join("\n    ")
                ));
            }
        }
    }
    assert!(driven >= 2 * fleet.routes().len(), "{driven} drives");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
