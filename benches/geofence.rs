//! Throughput of the full geofence check (zones + country + corridor + device state) over
//! the shipped maps, with 10,000 devices driving along the corridors, for the indexed engine
//! and for the naive one (linear scans, unindexed `contains`) on the same input.
//!
//! `cargo bench --bench geofence -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan::geofence::{DeviceTrack, Engine, GeofenceConfig, GeofenceIndex, Route, RouteLeg};
use caravan::maps::Atlas;
use caravan::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};
use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const DEVICES: usize = 10_000;
/// Fixes per leg of a device's back-and-forth drive.
const STEPS: usize = 32;
const PERIOD_S: i64 = 30;

/// Deterministic noise, so both engines see the same input on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One device: its track state, the report it reuses, and its drive (out and back).
struct Truck {
    track: DeviceTrack,
    report: Report,
    drive: Vec<GeoPoint>,
}

fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.1.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.0 - a.0).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// The point `chainage_m` along `line` (lon, lat), clamped to its ends.
fn point_along(line: &[(f64, f64)], mut chainage_m: f64) -> (f64, f64) {
    for w in line.windows(2) {
        let len = haversine_m(w[0], w[1]);
        if chainage_m <= len && len > 0.0 {
            let f = chainage_m / len;
            return (
                w[0].0 + f * (w[1].0 - w[0].0),
                w[0].1 + f * (w[1].1 - w[0].1),
            );
        }
        chainage_m -= len;
    }
    line.last().copied().unwrap_or((0.0, 0.0))
}

fn drive(line: &[(f64, f64)], rng: &mut XorShift) -> Vec<GeoPoint> {
    let length: f64 = line.windows(2).map(|w| haversine_m(w[0], w[1])).sum();
    let speed_ms = (60.0 + 30.0 * rng.next()) / 3.6;
    let span = speed_ms * PERIOD_S as f64 * STEPS as f64;
    let start = rng.next() * (length - span).max(0.0);
    let mut out: Vec<GeoPoint> = (0..STEPS)
        .map(|i| {
            let (lon, lat) = point_along(line, start + speed_ms * PERIOD_S as f64 * i as f64);
            // Up to ±30 m of GNSS noise.
            let jitter = 0.00027 * (rng.next() - 0.5);
            GeoPoint {
                lat: lat + jitter,
                lon: lon + jitter,
            }
        })
        .collect();
    let back: Vec<GeoPoint> = out.iter().rev().copied().collect();
    out.extend(back);
    out
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn fleet(engine: &Engine, atlas: &Atlas) -> Vec<Truck> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let lines: Vec<Vec<(f64, f64)>> = atlas
        .corridors
        .iter()
        .map(|c| c.route.0.iter().map(|p| (p.x, p.y)).collect())
        .collect();
    (0..DEVICES)
        .map(|d| {
            let corridor = &atlas.corridors[d % atlas.corridors.len()];
            let id = DeviceId::parse(&format!("truck-{d}")).expect("valid id");
            let mut track = DeviceTrack::new(id.clone());
            let route = Route {
                id: format!("transit-{d}").into(),
                legs: vec![RouteLeg {
                    corridor_id: corridor.id.clone(),
                    reversed: Some(false),
                }]
                .into(),
                critical_deviation_m: Some(50_000.0),
            };
            engine
                .assign_route(&mut track, &route)
                .expect("shipped corridor");
            let drive = drive(&lines[d % lines.len()], &mut rng);
            let report = Report {
                device_id: id,
                received_at: epoch(),
                body: ReportBody::Fix(Fix {
                    seq: 0,
                    t: epoch(),
                    point: drive[0],
                    speed_kmh: Some(70.0),
                    heading_deg: None,
                    hdop: Some(0.9),
                    sats: Some(11),
                    alt_m: None,
                }),
            };
            Truck {
                track,
                report,
                drive,
            }
        })
        .collect()
}

/// One round: every device reports its next fix. Returns the number of events.
fn round(engine: &Engine, fleet: &mut [Truck], step: u64) -> usize {
    let t = epoch() + chrono::Duration::seconds(step as i64 * PERIOD_S);
    let mut events = 0;
    for truck in fleet.iter_mut() {
        if let ReportBody::Fix(fix) = &mut truck.report.body {
            fix.seq = step;
            fix.t = t;
            fix.point = truck.drive[step as usize % truck.drive.len()];
        }
        truck.report.received_at = t;
        events += engine.apply(&mut truck.track, &truck.report, t).len();
    }
    events
}

fn full_check(c: &mut Criterion) {
    let atlas = Atlas::embedded().expect("the shipped maps load");
    let started = Instant::now();
    let indexed = Engine::new(Arc::new(GeofenceIndex::new(&atlas)));
    eprintln!("index built in {:?}", started.elapsed());
    let naive = Engine::new(Arc::new(GeofenceIndex::naive(
        &atlas,
        GeofenceConfig::default(),
    )));

    let mut group = c.benchmark_group("geofence_full_check");
    group.throughput(Throughput::Elements(DEVICES as u64));
    for (name, engine, samples) in [("indexed", &indexed, 50), ("naive", &naive, 10)] {
        let mut trucks = fleet(engine, &atlas);
        let mut step = 0u64;
        group.sample_size(samples);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    black_box(round(engine, &mut trucks, step));
                    elapsed += started.elapsed();
                    step += 1;
                }
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, full_check);
criterion_main!(benches);
