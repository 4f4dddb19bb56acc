//! Start-up at the scale of a national fleet: what the pipeline builds for each device.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use tokio::sync::mpsc;

use super::{Geo, Pipeline, TransitStep};
use crate::device::{Device, DeviceState};
use crate::geofence::GeofenceIndex;
use crate::historian::Historian;
use crate::maps::Atlas;
use crate::metrics::Metrics;
use crate::store::Snapshot;
use crate::telemetry::DeviceId;
use crate::transit::{Actor, Declaration, RiskRules, SharedItineraries, TransitBook, TransitRules};

/// Trucks declared on the same itinerary, Kashgar → Irkeshtam → Osh.
const TRUCKS: usize = 2_000;

fn declaration(device: &str, n: usize) -> Declaration {
    let deadline = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single();
    serde_json::from_value(serde_json::json!({
        "reference": format!("24CN0101-{n:06}"),
        "carrier": "kg-trans",
        "vehicle_plate": format!("01KG{n:06}"),
        "driver": {"name": "Bakyt Asanov"},
        "devices": [device],
        "goods": [{"hs_code": "845011", "description": "washing machines",
                   "gross_kg": 12400.0, "value": 48000.0, "currency": "USD"}],
        "departure_office": "kashgar",
        "itinerary": ["irkeshtam"],
        "destination_office": "osh",
        "deadline": deadline,
    }))
    .expect("a valid declaration")
}

#[test]
fn thousands_of_trucks_on_one_corridor_share_one_route_built_once() {
    let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
    let index = Arc::new(GeofenceIndex::new(&atlas));
    let rules = TransitRules::embedded().expect("shipped rules");
    let risk = RiskRules::embedded().expect("shipped risk rules");
    let mut book = TransitBook::new(atlas.clone(), rules, risk);
    let declared_at = Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).single();
    let declared_at = declared_at.expect("a valid time");
    let officer = Actor("cn-kashgar-7".into());
    let mut stored = Vec::new();
    let mut devices = Vec::new();
    for n in 0..TRUCKS {
        let id = format!("truck-{n:05}");
        let change = book
            .declare(declaration(&id, n), &officer, declared_at, &|id| {
                Some(id.clone())
            })
            .expect("the declaration is accepted");
        stored.push(*change.transit);
        let device = Device {
            device_id: DeviceId::parse(&id).expect("a valid id"),
            carrier: "kg-trans".into(),
            plate: None,
            registered_at: declared_at - Duration::days(1),
        };
        devices.push((device, DeviceState::default()));
    }
    let rules = crate::rules::Rules::built_in().expect("the shipped rules");
    let transits = TransitStep::new(atlas.clone(), Historian::default(), rules)
        .expect("the shipped rules load")
        .restored(stored, SharedItineraries::default());
    let snapshot = Snapshot {
        devices,
        recent_seqs: Vec::new(),
        recent_reports: Vec::new(),
        saved: Default::default(),
    };
    let (committer, _units) = mpsc::channel(1);
    let pipeline = Pipeline::new(
        snapshot,
        Geo::new(index, &atlas),
        transits,
        committer,
        Arc::new(Metrics::new()),
        Historian::default(),
    );

    assert_eq!(pipeline.transits.routes_built(), 1);
    // The transit book holds their itinerary once too.
    assert_eq!(pipeline.transits.itineraries(), 1);
    let routes: Vec<Option<&str>> = pipeline
        .devices
        .values()
        .map(|t| t.geo.route_id())
        .collect();
    assert_eq!(routes.len(), TRUCKS);
    assert!(
        routes.iter().all(Option::is_some),
        "every truck follows its transit's route"
    );
    let first = pipeline
        .devices
        .get(&DeviceId::parse("truck-00000").expect("a valid id"))
        .and_then(|t| t.geo.route_id().map(str::to_owned));
    let second = pipeline
        .devices
        .get(&DeviceId::parse("truck-00001").expect("a valid id"))
        .and_then(|t| t.geo.route_id().map(str::to_owned));
    assert_ne!(first, second, "each keeps its own transit's id");
    // The registry, the track and the transit book hold one copy of each device's id.
    for tracked in pipeline.devices.values() {
        let id = tracked.geo.device_id();
        let parsed = DeviceId::parse(id.as_str()).expect("a valid id");
        assert!(pipeline.transits.shared_device_id(parsed).shares(id));
    }
}
