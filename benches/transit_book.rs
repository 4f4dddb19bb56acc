//! What a change to an open transit costs in the transit book, which holds each record
//! packed between changes (`src/transit/packed.rs`): unpacked, changed, packed again. The
//! baseline, measured in the same run, is the JSON encoding of the same record that the
//! store's writer makes for every change anyway. The fix path, which reads only what is kept
//! decoded, is measured beside them.
//!
//! `cargo bench --bench transit_book -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;

use caravan::maps::Atlas;
use caravan::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody, Status};
use caravan::transit::declare::DeclaredSeal;
use caravan::transit::{
    Actor, Declaration, Driver, GoodsLine, RiskRules, TransitBook, TransitId, TransitRules,
};
use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};

fn declared_at() -> DateTime<Utc> {
    "2026-11-27T02:00:00Z".parse().unwrap_or_default()
}

/// Kashgar → Torugart → Akzhol → Almaty, with a seal and a goods line, like the fleet's.
fn declaration(n: usize) -> Declaration {
    Declaration {
        reference: format!("25CN{n:07}"),
        carrier: "kg-trans".into(),
        vehicle_plate: "01KG123ABC".into(),
        trailer_plates: vec![],
        driver: Driver {
            name: "Bakyt Asanov".into(),
            document: None,
        },
        devices: vec![format!("truck-{n}")],
        seals: vec![DeclaredSeal {
            id: format!("S-{n:07}"),
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
        itinerary: vec!["torugart".into(), "akzhol".into()],
        destination_office: "almaty".into(),
        deadline: declared_at() + Duration::days(10),
    }
}

fn report(device: &DeviceId, at: DateTime<Utc>, body: ReportBody) -> Report {
    Report {
        device_id: device.clone(),
        received_at: at,
        body,
    }
}

fn bench(c: &mut Criterion) {
    let (Ok(atlas), Ok(rules), Ok(risk)) = (
        Atlas::embedded(),
        TransitRules::embedded(),
        RiskRules::embedded(),
    ) else {
        return;
    };
    let mut book = TransitBook::new(Arc::new(atlas), rules, risk);
    // The first record declared is the packing dictionary: the measured one is another.
    let mut measured: Option<(TransitId, DeviceId)> = None;
    for n in 0..2 {
        let by = Actor("cn-kashgar-7".into());
        let Ok(change) = book.declare(declaration(n), &by, declared_at(), &|id| Some(id.clone()))
        else {
            return;
        };
        let Some(device) = change.transit.devices.first() else {
            return;
        };
        measured = Some((change.transit.id.clone(), device.clone()));
    }
    let Some((id, device)) = measured else { return };
    let at = declared_at() + Duration::hours(1);
    // A low battery raises an alert on the first report and counts a repeat on every
    // other: each one changes the record.
    let low = report(
        &device,
        at,
        ReportBody::Status(Status {
            seq: 1,
            t: at,
            battery_pct: Some(5.0),
            ext_power_v: None,
            gsm_rssi: None,
            jamming: None,
        }),
    );
    let Some(point) = GeoPoint::new(39.47, 75.99) else {
        return;
    };
    let fix = report(
        &device,
        at,
        ReportBody::Fix(Fix {
            seq: 1,
            t: at,
            point,
            speed_kmh: Some(60.0),
            heading_deg: None,
            hdop: None,
            sats: None,
            alt_m: None,
        }),
    );
    book.observe(&low, at);
    let Some(record) = book.transit(&id) else {
        return;
    };

    let mut g = c.benchmark_group("transit_book");
    g.bench_function("store_encoding_of_the_record (baseline)", |b| {
        b.iter(|| serde_json::to_vec(black_box(&record)).map(|v| v.len()))
    });
    g.bench_function("change_unpacked_and_packed", |b| {
        b.iter(|| book.observe(black_box(&low), at).is_some())
    });
    g.bench_function("record_unpacked", |b| {
        b.iter(|| book.transit(black_box(&id)).is_some())
    });
    g.bench_function("fix_on_what_is_kept_decoded", |b| {
        b.iter(|| book.observe(black_box(&fix), at).is_none())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
