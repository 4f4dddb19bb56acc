//! Scenario tests of the transit domain on the shipped maps: a truck sealed at Kashgar
//! crosses Irkeshtam and reaches Osh, driven through the real geofence engine.

mod alerts;
mod clocks;
mod declare;
mod escalation;
mod journey;
mod posts;
mod props;
mod shared;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::declare::DeclaredSeal;
use super::{Actor, Declaration, Driver, GoodsLine, Stage, Status, TransitBook, TransitChange};
use super::{RiskRules, TransitRules};
use crate::geofence::{DeviceTrack, Engine, GeofenceIndex};
use crate::maps::Atlas;
use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody, SealEvent, SealEventKind};

pub(super) fn atlas() -> Arc<Atlas> {
    static ATLAS: OnceLock<Arc<Atlas>> = OnceLock::new();
    ATLAS
        .get_or_init(|| Arc::new(Atlas::embedded().expect("the shipped maps load")))
        .clone()
}

fn engine() -> Engine {
    static INDEX: OnceLock<Arc<GeofenceIndex>> = OnceLock::new();
    Engine::new(
        INDEX
            .get_or_init(|| Arc::new(GeofenceIndex::new(&atlas())))
            .clone(),
    )
}

pub(super) fn book() -> TransitBook {
    TransitBook::new(
        atlas(),
        TransitRules::embedded().expect("shipped rules"),
        RiskRules::embedded().expect("shipped risk rules"),
    )
}

/// Minutes after a fixed departure day.
pub(super) fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0)
        .single()
        .expect("valid time")
        + Duration::minutes(minutes)
}

pub(super) fn truck() -> DeviceId {
    DeviceId::parse("truck-1").expect("valid id")
}

pub(super) fn officer(who: &str) -> Actor {
    Actor(who.to_owned())
}

/// Kashgar → Irkeshtam → Osh, tracked by `truck-1`, one plain customs seal.
pub(super) fn declaration() -> Declaration {
    Declaration {
        reference: "24CN0101-000123".into(),
        carrier: "kg-trans".into(),
        vehicle_plate: "01KG123ABC".into(),
        trailer_plates: vec!["01KG456DEF".into()],
        driver: Driver {
            name: "Bakyt Asanov".into(),
            document: Some("AC1234567".into()),
        },
        devices: vec!["truck-1".into()],
        seals: vec![DeclaredSeal {
            id: "CN-S-0001".into(),
            device_id: None,
        }],
        goods: vec![GoodsLine {
            hs_code: "845011".into(),
            description: "washing machines".into(),
            gross_kg: 12_400.0,
            value: 48_000.0,
            currency: "USD".into(),
        }],
        departure_office: "kashgar".into(),
        itinerary: vec!["irkeshtam".into()],
        destination_office: "osh".into(),
        deadline: at(5 * 24 * 60),
    }
}

pub(super) fn registered(id: &DeviceId) -> Option<DeviceId> {
    Some(id.clone())
}

/// A transit followed through the engine and the book, one fix at a time.
pub(super) struct Trip {
    pub engine: Engine,
    pub track: DeviceTrack,
    pub book: TransitBook,
    pub id: super::TransitId,
    pub seq: u64,
    pub changes: Vec<TransitChange>,
    /// How long after device time the server receives and evaluates each report (a
    /// buffered upload, or a replay).
    pub lag: Duration,
}

impl Trip {
    pub fn declared(decl: Declaration) -> Self {
        let mut book = book();
        let change = book
            .declare(decl, &officer("cn-kashgar-7"), at(0), &registered)
            .expect("a valid declaration");
        let engine = engine();
        let mut track = DeviceTrack::new(truck());
        let route = book.route_of(&truck()).expect("a route");
        engine
            .assign_route(&mut track, &route)
            .expect("the route resolves");
        Self {
            engine,
            track,
            book,
            id: change.transit.id.clone(),
            seq: 0,
            changes: vec![change],
            lag: Duration::zero(),
        }
    }

    pub fn transit(&self) -> super::Transit {
        match self.book.transit(&self.id) {
            Some(t) => t.clone(),
            None => *self.changes.last().expect("changed").transit.clone(),
        }
    }

    /// Chainage of a checkpoint along the transit's route.
    pub fn chainage_of(&self, checkpoint: &str) -> f64 {
        let t = self.transit();
        let (_, cp) = t
            .itinerary
            .checkpoint(checkpoint)
            .expect("on the itinerary");
        cp.chainage_m
    }

    fn feed(&mut self, body: ReportBody, device_t: DateTime<Utc>) {
        let t = device_t + self.lag;
        let report = Report {
            device_id: truck(),
            received_at: t,
            body,
        };
        let events = self.engine.apply(&mut self.track, &report, t);
        self.book.observe(&report, t);
        self.changes
            .extend(self.book.on_geofence_events(&events, t));
    }

    pub fn fix_at(&mut self, chainage_m: f64, minute: f64, speed_kmh: f64) {
        self.fix_off(chainage_m, 0.0, minute, speed_kmh);
    }

    /// A fix `south_m` metres due south of the route point at `chainage_m`.
    pub fn fix_off(&mut self, chainage_m: f64, south_m: f64, minute: f64, speed_kmh: f64) {
        let t = self.transit();
        let mut c = t.itinerary.line.point_at(chainage_m);
        c.y -= south_m / 111_320.0;
        self.seq += 1;
        let when = at(0) + Duration::seconds((minute * 60.0) as i64);
        let fix = Fix {
            seq: self.seq,
            t: when,
            point: GeoPoint { lat: c.y, lon: c.x },
            speed_kmh: Some(speed_kmh),
            heading_deg: None,
            hdop: Some(0.9),
            sats: Some(11),
            alt_m: None,
        };
        self.feed(ReportBody::Fix(fix), when);
    }

    /// Drives from one chainage to another at `kmh`, a fix every `every_min` minutes,
    /// starting at `minute`; returns the minute of the last fix.
    pub fn drive(&mut self, from_m: f64, to_m: f64, kmh: f64, every_min: f64, minute: f64) -> f64 {
        let step_m = kmh * 1000.0 / 60.0 * every_min;
        let mut m = minute;
        let mut c = from_m;
        loop {
            self.fix_at(c, m, kmh);
            if c >= to_m {
                return m;
            }
            c = (c + step_m).min(to_m);
            m += every_min;
        }
    }

    /// Stays at a chainage for `minutes`, a fix every 5 minutes.
    pub fn wait(&mut self, chainage_m: f64, minute: f64, minutes: f64) -> f64 {
        let mut m = minute;
        while m < minute + minutes {
            self.fix_at(chainage_m, m, 0.0);
            m += 5.0;
        }
        m
    }

    pub fn seal(&mut self, seal_id: &str, event: SealEventKind, minute: f64, chainage_m: f64) {
        let c = self.transit().itinerary.line.point_at(chainage_m);
        self.seq += 1;
        let when = at(0) + Duration::seconds((minute * 60.0) as i64);
        let seal = SealEvent {
            seq: self.seq,
            t: when,
            seal_id: seal_id.to_owned(),
            event,
            battery_pct: Some(80.0),
            point: Some(GeoPoint { lat: c.y, lon: c.x }),
        };
        self.feed(ReportBody::Seal(seal), when);
    }

    /// Statuses the transit moved through, in order.
    pub fn statuses(&self) -> Vec<Status> {
        let t = self.transit();
        let mut out = vec![Status::Declared];
        out.extend(t.transitions.iter().map(|tr| tr.to));
        out
    }

    pub fn record_kinds(&self) -> Vec<String> {
        self.changes
            .iter()
            .flat_map(|c| c.records.iter().map(|r| r.kind.clone()))
            .collect()
    }
}

/// Drives the whole journey Kashgar → Irkeshtam (2 h at the Chinese post, 1 h at the
/// Kyrgyz one) → Osh; returns the minute of arrival.
pub(super) fn full_journey(trip: &mut Trip) -> f64 {
    let irk = trip.chainage_of("irkeshtam");
    let osh = trip.chainage_of("osh");
    let mut m = trip.wait(0.0, 10.0, 20.0);
    m = trip.drive(0.0, irk - 8_000.0, 60.0, 5.0, m + 5.0);
    m = trip.drive(irk - 7_000.0, irk - 1_500.0, 12.0, 5.0, m + 5.0);
    m = trip.wait(irk - 1_500.0, m + 5.0, 120.0);
    m = trip.drive(irk - 1_000.0, irk + 500.0, 6.0, 5.0, m + 5.0);
    m = trip.wait(irk + 500.0, m + 5.0, 60.0);
    m = trip.drive(irk + 1_000.0, irk + 12_000.0, 30.0, 5.0, m + 5.0);
    trip.drive(irk + 14_000.0, osh, 60.0, 5.0, m + 5.0)
}
