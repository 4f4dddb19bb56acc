//! Frames decoded per second per protocol, against baselines measured over the same bytes
//! in the same run: a plain copy and each protocol's own checksum pass.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firmware_bridge::device::DeviceId;
use firmware_bridge::framing::Framing;
use firmware_bridge::jt808::{self, Location};
use firmware_bridge::registry::Registry;
use firmware_bridge::teltonika::{avl, framing, mapping};

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<String>();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn teltonika(c: &mut Criterion) {
    let frame = hex(include_str!(
        "../tests/fixtures/teltonika/codec8_irkeshtam_two_fixes.hex"
    ));
    let registry = Registry::from_toml("[[devices]]\nid = \"356307042441013\"").unwrap();
    let profile = registry
        .get(&DeviceId::parse("356307042441013").unwrap())
        .unwrap()
        .clone();
    let crc = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_ARC);
    let mut g = c.benchmark_group("teltonika_codec8_2_records");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_copy", |b| {
        b.iter(|| black_box(black_box(&frame).to_vec()))
    });
    g.bench_function("baseline_crc16", |b| {
        b.iter(|| black_box(crc.checksum(black_box(&frame[8..frame.len() - 4]))))
    });
    g.bench_function("frame_and_decode", |b| {
        b.iter(|| {
            let Framing::Frame { len } = framing::frame_avl(black_box(&frame), 65536) else {
                unreachable!()
            };
            black_box(avl::decode(&frame[..len]).unwrap())
        })
    });
    g.bench_function("frame_decode_and_map", |b| {
        b.iter(|| {
            let Framing::Frame { len } = framing::frame_avl(black_box(&frame), 65536) else {
                unreachable!()
            };
            let packet = avl::decode(&frame[..len]).unwrap();
            black_box(mapping::reports(&profile, &packet.records))
        })
    });
    g.finish();
}

fn jt808_location(c: &mut Criterion) {
    let frame = hex(include_str!("../tests/fixtures/jt808/location_2013.hex"));
    let mut g = c.benchmark_group("jt808_0x0200");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_copy", |b| {
        b.iter(|| black_box(black_box(&frame).to_vec()))
    });
    g.bench_function("baseline_xor", |b| {
        b.iter(|| black_box(jt808::frame::checksum(black_box(&frame))))
    });
    g.bench_function("frame_and_decode", |b| {
        b.iter(|| {
            let Framing::Frame { len } = jt808::frame::frame(black_box(&frame), 65536) else {
                unreachable!()
            };
            let m = jt808::frame::decode(&frame[..len]).unwrap();
            black_box(Location::decode(&m.body).unwrap())
        })
    });
    g.bench_function("frame_decode_and_map", |b| {
        b.iter(|| {
            let Framing::Frame { len } = jt808::frame::frame(black_box(&frame), 65536) else {
                unreachable!()
            };
            let m = jt808::frame::decode(&frame[..len]).unwrap();
            black_box(Location::decode(&m.body).unwrap().fix())
        })
    });
    g.finish();
}

criterion_group!(benches, teltonika, jt808_location);
criterion_main!(benches);
