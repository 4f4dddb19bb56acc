//! A hand-made world for the engine's tests: two countries split at 75°E with a BCP on the
//! border, an enclave, an office, one corridor and one coverage gap.

mod border;
mod late;
mod props;
mod route;
mod timing;
mod zones;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use geo::{coord, LineString, MultiPolygon, Polygon, Rect};

use super::{Engine, EventKind, GeofenceConfig, GeofenceEvent, GeofenceIndex};
use crate::maps::{
    Atlas, Bcp, Confidence, Corridor, Country, CountryCode, CoverageGap, Office, Post,
};
use crate::telemetry::{
    DeviceId, Fix, GeoPoint, Report, ReportBody, SealEvent, SealEventKind, Status,
};

pub(super) fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygon<f64> {
    Rect::new(coord! { x: x0, y: y0 }, coord! { x: x1, y: y1 }).to_polygon()
}

fn code(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("test code")
}

/// KG: 70–75°E with a hole for the UZ enclave at 71.0–71.1°E 40.0–40.1°N; CN: 75–80°E;
/// UZ: 65–70°E plus the enclave. All between 38°N and 42°N.
pub(super) fn atlas() -> Atlas {
    let enclave = rect(71.0, 40.0, 71.1, 40.1);
    let kg = Polygon::new(
        rect(70.0, 38.0, 75.0, 42.0).exterior().clone(),
        vec![enclave.exterior().clone()],
    );
    let country = |c: &str, parts: Vec<Polygon<f64>>| Country {
        code: code(c),
        name: c.to_owned(),
        area: MultiPolygon(parts),
    };
    let post = |id: &str, c: &str, peer: &str, zone| Post {
        id: id.to_owned(),
        name: id.to_owned(),
        country: code(c),
        peer_country: code(peer),
        zone,
    };
    Atlas {
        countries: vec![
            country("KG", vec![kg]),
            country("CN", vec![rect(75.0, 38.0, 80.0, 42.0)]),
            country("UZ", vec![rect(65.0, 38.0, 70.0, 42.0), enclave]),
        ],
        bcps: vec![Bcp {
            id: "irk".into(),
            name: "Irkeshtam".into(),
            posts: vec![
                post("irk-kg", "KG", "CN", rect(74.97, 39.99, 74.995, 40.01)),
                post("irk-cn", "CN", "KG", rect(75.005, 39.99, 75.03, 40.01)),
            ],
            corridors: vec!["c1".into()],
            confidence: Confidence::High,
            location: geo::Point::new(75.0, 40.0),
            carec: None,
        }],
        offices: vec![Office {
            id: "osh".into(),
            name: "Osh".into(),
            country: code("KG"),
            zone: rect(72.79, 40.49, 72.81, 40.51),
        }],
        corridors: vec![Corridor {
            id: "c1".into(),
            name: "Osh - Kashgar".into(),
            width_m: 1_000.0,
            route: LineString::from(vec![(72.8, 40.5), (74.9, 40.0), (75.1, 40.0), (77.0, 40.0)]),
            joins: vec!["osh".into(), "irk".into()],
            carec: Some("2".into()),
            waypoints: vec![],
        }],
        coverage_gaps: vec![CoverageGap {
            id: "gap1".into(),
            name: "Alay valley".into(),
            zone: rect(73.5, 39.5, 73.7, 40.5),
            signal_loss_timeout_s: 3_600,
            corridor: Some("c1".into()),
        }],
    }
}

/// The default-config engine over the test world, built once for all tests.
pub(super) fn engine() -> Engine {
    static INDEX: OnceLock<Arc<GeofenceIndex>> = OnceLock::new();
    Engine::new(
        INDEX
            .get_or_init(|| Arc::new(GeofenceIndex::new(&atlas())))
            .clone(),
    )
}

pub(super) fn engine_with(config: GeofenceConfig) -> Engine {
    Engine::new(Arc::new(GeofenceIndex::with_config(&atlas(), config)))
}

pub(super) fn device() -> DeviceId {
    DeviceId::parse("truck-1").expect("valid id")
}

/// Seconds after a fixed epoch.
pub(super) fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0)
        .single()
        .expect("valid time")
        + chrono::Duration::seconds(s)
}

pub(super) fn report(seq: u64, t: i64, body: ReportBody) -> Report {
    Report {
        device_id: device(),
        received_at: at(t),
        body,
    }
    .with_seq(seq)
}

trait WithSeq {
    fn with_seq(self, seq: u64) -> Self;
}

impl WithSeq for Report {
    fn with_seq(mut self, seq: u64) -> Self {
        match &mut self.body {
            ReportBody::Fix(f) => f.seq = seq,
            ReportBody::Seal(s) => s.seq = seq,
            ReportBody::Status(s) => s.seq = seq,
            ReportBody::Conn { .. } => {}
        }
        self
    }
}

/// A fix at `t` seconds, received at once.
pub(super) fn fix(t: i64, lat: f64, lon: f64, speed_kmh: Option<f64>) -> Report {
    report(
        t as u64,
        t,
        ReportBody::Fix(Fix {
            seq: 0,
            t: at(t),
            point: GeoPoint { lat, lon },
            speed_kmh,
            heading_deg: None,
            hdop: None,
            sats: None,
            alt_m: None,
        }),
    )
}

pub(super) fn seal(t: i64, event: SealEventKind, point: Option<(f64, f64)>) -> Report {
    report(
        t as u64,
        t,
        ReportBody::Seal(SealEvent {
            seq: 0,
            t: at(t),
            seal_id: "KG-ES-000123".into(),
            event,
            battery_pct: None,
            point: point.map(|(lat, lon)| GeoPoint { lat, lon }),
        }),
    )
}

pub(super) fn status(t: i64, jamming: bool) -> Report {
    report(
        t as u64,
        t,
        ReportBody::Status(Status {
            seq: 0,
            t: at(t),
            battery_pct: None,
            ext_power_v: None,
            gsm_rssi: None,
            jamming: Some(jamming),
        }),
    )
}

/// Received later than its device time, as from a buffer.
pub(super) fn received(mut r: Report, t: i64) -> Report {
    r.received_at = at(t);
    r
}

/// Applies each report in turn and collects the events.
pub(super) fn run(
    engine: &Engine,
    track: &mut super::DeviceTrack,
    reports: &[Report],
) -> Vec<GeofenceEvent> {
    reports
        .iter()
        .flat_map(|r| engine.apply(track, r, r.received_at))
        .collect()
}

pub(super) fn kinds(events: &[GeofenceEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind_str()).collect()
}

pub(super) fn zone_of(e: &GeofenceEvent) -> Option<&str> {
    match &e.kind {
        EventKind::Enter { zone_id, .. }
        | EventKind::Exit { zone_id, .. }
        | EventKind::Cross { zone_id, .. } => Some(zone_id),
        _ => None,
    }
}
