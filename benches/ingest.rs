//! The hot stages of a fix before and after the geofence: decoding the MQTT payload at the
//! edge, and the group commit of reports to SQLite.
//!
//! `cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use caravan::device::{Device, DeviceState};
use caravan::store::{self, StoreWriter, Write};
use caravan::telemetry::{decode, DeviceId, Fix, GeoPoint, Limits, Report, ReportBody};
use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

const TOPIC: &str = "caravan/v1/dev/356307042441013/pos";
const DEVICES: usize = 1_000;

fn now() -> DateTime<Utc> {
    "2026-11-27T08:20:00Z".parse().unwrap_or_default()
}

fn fix_json(seq: u64) -> String {
    format!(
        r#"{{"seq":{seq},"t":"2026-11-27T08:15:30Z","lat":39.681,"lon":73.9215,"speed_kmh":54.2,"heading_deg":112,"hdop":0.9,"sats":11}}"#
    )
}

fn decoding(c: &mut Criterion) {
    let limits = Limits::default();
    let one = fix_json(1842);
    let backlog = format!("[{}]", (0..60).map(fix_json).collect::<Vec<_>>().join(","));
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one fix", |b| {
        b.iter(|| decode(TOPIC, black_box(one.as_bytes()), now(), &limits))
    });
    group.throughput(Throughput::Elements(60));
    group.bench_function("backlog of 60 fixes", |b| {
        b.iter(|| decode(TOPIC, black_box(backlog.as_bytes()), now(), &limits))
    });
    group.finish();
}

fn report(device: &DeviceId, seq: u64) -> Report {
    Report {
        device_id: device.clone(),
        received_at: now(),
        body: ReportBody::Fix(Fix {
            seq,
            t: now() - Duration::seconds(300) + Duration::milliseconds(seq as i64),
            point: GeoPoint::new(39.681, 73.9215).unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 }),
            speed_kmh: Some(54.2),
            heading_deg: Some(112.0),
            hdop: Some(0.9),
            sats: Some(11),
            alt_m: None,
        }),
    }
}

/// Commits of `n` reports spread over the devices, with (as the pipeline writes them today)
/// or without a device-state upsert after each report.
fn store_batch(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok((mut writer, _reader)) = store::open(dir.path()) else {
        return;
    };
    let devices: Vec<DeviceId> = (0..DEVICES)
        .filter_map(|i| DeviceId::parse(&format!("bench-{i:04}")).ok())
        .collect();
    let registrations: Vec<Write> = devices
        .iter()
        .map(|id| {
            Write::Device(Device {
                device_id: id.clone(),
                carrier: "bench".into(),
                plate: None,
                registered_at: now(),
            })
        })
        .collect();
    if writer.commit(&registrations).is_err() {
        return;
    }
    let mut seq = 0u64;
    let mut group = c.benchmark_group("store batch");
    for n in [100usize, 1_000] {
        for with_state in [false, true] {
            let name = if with_state {
                "reports + state"
            } else {
                "reports"
            };
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_batched(
                    || {
                        let mut writes = Vec::with_capacity(n * 2);
                        for k in 0..n {
                            let device = &devices[k % devices.len()];
                            seq += 1;
                            let report = report(device, seq);
                            if with_state {
                                let mut state = DeviceState::default();
                                state.apply(&report);
                                writes.push(Write::Report(report));
                                writes.push(Write::DeviceState(device.clone(), Box::new(state)));
                            } else {
                                writes.push(Write::Report(report));
                            }
                        }
                        writes
                    },
                    |writes| writer.commit(&writes),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decoding, store_batch);
criterion_main!(benches);
