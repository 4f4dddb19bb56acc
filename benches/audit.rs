//! The time of a full `audit verify` over a store of many positions: builds the store through
//! the real writer (1,000 reports per group commit over 1,000 devices, as under load), then
//! times each part of the audit.
//!
//! `CARAVAN_AUDIT_POSITIONS=10000000 cargo bench --bench audit` (default 1,000,000; the store
//! is written to a temporary directory, about 300 bytes per position).

use std::time::Instant;

use caravan::device::Device;
use caravan::evidence::audit::{audit, Trust};
use caravan::store::{self, StoreReader, StoreWriter, Write};
use caravan::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};
use chrono::{DateTime, Duration, Utc};

const DEVICES: usize = 1_000;
const PER_COMMIT: usize = 1_000;

fn now() -> DateTime<Utc> {
    "2026-11-27T08:20:00Z".parse().unwrap_or_default()
}

fn main() {
    let positions: usize = std::env::var("CARAVAN_AUDIT_POSITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok((mut writer, reader)) = store::open(dir.path()) else {
        return;
    };
    let devices: Vec<DeviceId> = (0..DEVICES)
        .filter_map(|i| DeviceId::parse(&format!("audit-{i:04}")).ok())
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
    let started = Instant::now();
    let mut seq = 0u64;
    while (seq as usize) < positions {
        let writes: Vec<Write> = (0..PER_COMMIT)
            .map(|k| {
                seq += 1;
                let device = &devices[k % DEVICES];
                let t = now() - Duration::days(20) + Duration::milliseconds(seq as i64 * 10);
                Write::Report(Report {
                    device_id: device.clone(),
                    received_at: now(),
                    body: ReportBody::Fix(Fix {
                        seq,
                        t,
                        point: GeoPoint::new(39.681 + (seq % 1000) as f64 * 1e-5, 73.9215)
                            .unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 }),
                        speed_kmh: Some(54.2),
                        heading_deg: Some(112.0),
                        hdop: Some(0.9),
                        sats: Some(11),
                        alt_m: None,
                    }),
                })
            })
            .collect();
        if let Err(e) = writer.commit(&writes) {
            eprintln!("commit failed: {e}");
            return;
        }
    }
    drop(writer);
    println!(
        "wrote {seq} positions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let trust = Trust {
        checkpoint_dirs: Vec::new(),
        public: None,
    };
    let started = Instant::now();
    let mut progress = |_: i64, _: u64| {};
    match audit(&reader, &trust, &mut progress) {
        Ok(report) => println!(
            "audit verify: {} reports in {} batches, {} problems, in {:.1} s ({:.2} µs per position)",
            report.positions.reports,
            report.positions.batches,
            report.positions.problems.len(),
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() * 1e6 / report.positions.reports.max(1) as f64
        ),
        Err(e) => eprintln!("audit failed: {e}"),
    }
    let started = Instant::now();
    if let Ok(head) = reader.chain_head() {
        let _ = reader.chain_roots(&head);
        println!(
            "checkpoint roots over {} batches: {:.2} s",
            head.batches,
            started.elapsed().as_secs_f64()
        );
    }
}
