//! Property tests of both protocols: arbitrary bytes never panic or stall the framers and
//! decoders, generated valid messages survive encoding, splitting and escaping, and
//! whatever a device sends, what is published stays within the wire contract's limits.

use chrono::NaiveDate;
use firmware_bridge::device::DeviceId;
use firmware_bridge::framing::Framing;
use firmware_bridge::jt808::{self, Batch, Header, Location};
use firmware_bridge::registry::{DeviceProfile, InputRule};
use firmware_bridge::report::{Report, SealEventKind};
use firmware_bridge::teltonika::{self, framing, AvlRecord, Codec, Gps, IoElement, IoValue};
use firmware_bridge::wire;
use proptest::prelude::*;

const MAX_FRAME: usize = 4096;

/// Feeds `chunks` to `framer` as a connection would, returning each whole frame; stops at
/// the first invalid frame when `stop_on_invalid` (stream protocols without a delimiter).
fn feed(
    chunks: &[&[u8]],
    framer: impl Fn(&[u8]) -> Framing,
    stop_on_invalid: bool,
) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match framer(&buf) {
                Framing::Incomplete => break,
                Framing::Frame { len } => {
                    assert!(len > 0 && len <= buf.len());
                    frames.push(buf.drain(..len).collect());
                }
                Framing::Invalid { skip, .. } => {
                    assert!(
                        skip > 0 && skip <= buf.len(),
                        "skip {skip} of {}",
                        buf.len()
                    );
                    if stop_on_invalid {
                        return frames;
                    }
                    buf.drain(..skip);
                }
            }
        }
    }
    frames
}

fn io_value(wide: bool) -> BoxedStrategy<IoValue> {
    let fixed = prop_oneof![
        any::<u8>().prop_map(IoValue::U8),
        any::<u16>().prop_map(IoValue::U16),
        any::<u32>().prop_map(IoValue::U32),
        any::<u64>().prop_map(IoValue::U64),
    ];
    if wide {
        prop_oneof![
            fixed,
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(IoValue::Bytes)
        ]
        .boxed()
    } else {
        fixed.boxed()
    }
}

fn record(codec: Codec) -> impl Strategy<Value = AvlRecord> {
    let wide = codec == Codec::Codec8Extended;
    let id = if wide {
        any::<u16>().boxed()
    } else {
        (0u16..256).boxed()
    };
    let io = proptest::collection::vec((id.clone(), io_value(wide)), 0..12).prop_map(|mut io| {
        // The wire groups values by width; generate them already in that order.
        io.sort_by_key(|(_, v)| match v {
            IoValue::U8(_) => 0,
            IoValue::U16(_) => 1,
            IoValue::U32(_) => 2,
            IoValue::U64(_) => 3,
            IoValue::Bytes(_) => 4,
        });
        io.into_iter()
            .map(|(id, value)| IoElement { id, value })
            .collect::<Vec<_>>()
    });
    let gps = (
        any::<i32>(),
        any::<i32>(),
        any::<i16>(),
        0u16..360,
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(lon_e7, lat_e7, altitude_m, angle_deg, satellites, speed_kmh)| Gps {
                lon_e7,
                lat_e7,
                altitude_m,
                angle_deg,
                satellites,
                speed_kmh,
            },
        );
    (any::<u64>(), any::<u8>(), gps, id, io).prop_map(
        |(timestamp_ms, priority, gps, event_io, io)| AvlRecord {
            timestamp_ms,
            priority,
            gps,
            event_io,
            io,
        },
    )
}

fn packet() -> impl Strategy<Value = (Codec, Vec<AvlRecord>)> {
    prop_oneof![Just(Codec::Codec8), Just(Codec::Codec8Extended)]
        .prop_flat_map(|codec| (Just(codec), proptest::collection::vec(record(codec), 1..6)))
}

fn location() -> impl Strategy<Value = Location> {
    let time = (0u32..100, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60).prop_map(
        |(y, mo, d, h, mi, s)| {
            NaiveDate::from_ymd_opt(2000 + y as i32, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
        },
    );
    let extras = proptest::collection::vec(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..8)),
        0..4,
    );
    (
        any::<u32>(),
        any::<u32>(),
        0u32..90_000_000,
        0u32..180_000_000,
        any::<u16>(),
        any::<u16>(),
        0u16..360,
        time,
        extras,
    )
        .prop_map(
            |(
                alarm,
                status,
                lat_e6,
                lon_e6,
                altitude_m,
                speed_dkmh,
                direction_deg,
                time_gmt8,
                extras,
            )| Location {
                alarm,
                status,
                lat_e6,
                lon_e6,
                altitude_m,
                speed_dkmh,
                direction_deg,
                time_gmt8,
                extras,
                truncated_extra: None,
            },
        )
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u16>(),
        proptest::option::of(any::<u8>()),
        "[0-9]{12}",
        any::<u16>(),
    )
        .prop_map(|(msg_id, version, phone, serial)| Header {
            msg_id,
            version,
            // A 2019 phone is 20 digits; the 2013 one 12.
            phone: if version.is_some() {
                format!("00000000{phone}")
            } else {
                phone
            },
            serial,
            encryption: 0,
            subpackage: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_stall_the_teltonika_framers(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        feed(&[&bytes], |b| framing::frame_avl(b, MAX_FRAME), true);
        feed(&[&bytes], framing::frame_imei, true);
        let _ = teltonika::avl::decode(&bytes);
    }

    #[test]
    fn an_arbitrary_body_behind_a_valid_header_never_panics_the_teltonika_decoder(body in proptest::collection::vec(any::<u8>(), 3..400)) {
        let mut bytes = vec![0, 0, 0, 0];
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        let crc = crc::Crc::<u16>::new(&crc::CRC_16_ARC).checksum(&body);
        bytes.extend_from_slice(&u32::from(crc).to_be_bytes());
        let _ = teltonika::avl::decode(&bytes);
    }

    #[test]
    fn a_teltonika_packet_round_trips_through_encode_and_decode((codec, records) in packet()) {
        let bytes = teltonika::avl::encode(codec, &records);
        let packet = teltonika::avl::decode(&bytes).unwrap();
        prop_assert_eq!(packet.codec, codec);
        prop_assert_eq!(packet.records, records);
    }

    #[test]
    fn two_teltonika_packets_split_anywhere_frame_the_same((c1, r1) in packet(), (c2, r2) in packet(), cut in any::<prop::sample::Index>()) {
        let mut stream = teltonika::avl::encode(c1, &r1);
        let first_len = stream.len();
        stream.extend(teltonika::avl::encode(c2, &r2));
        let cut = cut.index(stream.len() + 1);
        let frames = feed(&[&stream[..cut], &stream[cut..]], |b| framing::frame_avl(b, MAX_FRAME), true);
        prop_assert_eq!(frames.len(), 2);
        prop_assert_eq!(frames[0].len(), first_len);
        prop_assert_eq!(teltonika::avl::decode(&frames[1]).unwrap().records, r2);
    }

    #[test]
    fn one_flipped_bit_in_a_teltonika_data_field_is_always_refused((codec, records) in packet(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = teltonika::avl::encode(codec, &records);
        let data = 8..bytes.len() - 4;
        let i = data.start + at.index(data.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(teltonika::avl::decode(&bytes).is_err());
    }

    #[test]
    fn escaping_round_trips_and_leaves_no_delimiter(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let escaped = jt808::frame::escape(&raw);
        prop_assert!(!escaped.contains(&0x7E));
        prop_assert_eq!(jt808::frame::unescape(&escaped).unwrap(), raw);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_stall_the_jt808_framer(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for frame in feed(&[&bytes], |b| jt808::frame::frame(b, 256), false) {
            if let Ok(m) = jt808::frame::decode(&frame) {
                let _ = Location::decode(&m.body);
                let _ = Batch::decode(&m.body);
                let _ = jt808::session::auth_code(&m.header, &m.body);
            }
        }
    }

    #[test]
    fn a_jt808_message_round_trips_through_encode_and_decode(header in header(), body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let frame = jt808::frame::encode(&header, &body);
        let m = jt808::frame::decode(&frame).unwrap();
        prop_assert_eq!(m.header, header);
        prop_assert_eq!(m.body, body);
    }

    #[test]
    fn a_location_and_a_batch_round_trip(items in proptest::collection::vec(location(), 1..5), kind in 0u8..2) {
        prop_assert_eq!(&Location::decode(&items[0].encode()).unwrap(), &items[0]);
        let batch = Batch { kind, items };
        prop_assert_eq!(Batch::decode(&batch.encode()).unwrap(), batch);
    }

    #[test]
    fn a_jt808_stream_with_garbage_split_anywhere_yields_the_same_messages(
        header in header(), loc in location(), garbage in proptest::collection::vec(any::<u8>().prop_filter("no delimiter", |b| *b != 0x7E), 0..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = jt808::frame::encode(&header, &loc.encode());
        let mut stream = garbage;
        stream.extend_from_slice(&frame);
        stream.extend_from_slice(&frame);
        let cut = cut.index(stream.len() + 1);
        let frames = feed(&[&stream[..cut], &stream[cut..]], |b| jt808::frame::frame(b, MAX_FRAME), false);
        prop_assert_eq!(frames.len(), 2);
        for f in frames {
            prop_assert_eq!(Location::decode(&jt808::frame::decode(&f).unwrap().body).unwrap(), loc.clone());
        }
    }
}

/// Whether a rendered message respects wire contract v1's limits (as Caravan checks them).
fn within_contract(payload: &serde_json::Value) -> Result<(), String> {
    let in_range = |key: &str, lo: f64, hi: f64| match payload.get(key) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(()),
            _ => Err(format!("{key} = {v} outside {lo}..={hi}")),
        },
    };
    let t = payload["t"].as_str().ok_or("no t")?;
    chrono::DateTime::parse_from_rfc3339(t).map_err(|e| format!("t = {t}: {e}"))?;
    in_range("lat", -90.0, 90.0)?;
    in_range("lon", -180.0, 180.0)?;
    in_range("speed_kmh", 0.0, 500.0)?;
    in_range("heading_deg", 0.0, 360.0)?;
    in_range("hdop", 0.0, 100.0)?;
    in_range("sats", 0.0, 128.0)?;
    in_range("alt_m", -500.0, 9000.0)?;
    in_range("battery_pct", 0.0, 100.0)?;
    in_range("ext_power_v", 0.0, 100.0)?;
    in_range("gsm_rssi", -150.0, 0.0)
}

fn every_message_within_contract(reports: Vec<Report>) -> Result<(), TestCaseError> {
    let device = DeviceId::parse("356307042441013").unwrap();
    let (reports, _) = firmware_bridge::contract::check(reports);
    for report in &reports {
        let m = wire::render(&device, report, 1);
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let items = match v {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            within_contract(&item).map_err(TestCaseError::fail)?;
        }
    }
    Ok(())
}

fn profile() -> DeviceProfile {
    DeviceProfile {
        device_id: DeviceId::parse("356307042441013").unwrap(),
        seal_id: "KG-ES-000123".into(),
        inputs: vec![InputRule {
            din: 2,
            high: Some(SealEventKind::Closed),
            low: Some(SealEventKind::Opened),
        }],
        auth_code: String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn whatever_a_teltonika_device_sends_what_is_published_is_within_the_contract((_, records) in packet()) {
        every_message_within_contract(teltonika::mapping::reports(&profile(), &records))?;
    }

    #[test]
    fn whatever_a_jt808_terminal_sends_what_is_published_is_within_the_contract(
        items in proptest::collection::vec(location(), 1..4), kind in 0u8..2, msg_id in prop_oneof![Just(0x0200u16), Just(0x0704u16)],
    ) {
        let body = if msg_id == 0x0200 { items[0].encode() } else { Batch { kind, items }.encode() };
        let header = Header { msg_id, version: None, phone: "013912345678".into(), serial: 1, encryption: 0, subpackage: None };
        let m = jt808::Message { header, body };
        let mut watch = jt808::seal::SealWatch::default();
        let reports = jt808::reports::location_reports(&m, &profile(), &mut watch).unwrap();
        every_message_within_contract(reports.reports)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_basic_location_never_lose_it(loc in location(), tail in proptest::collection::vec(any::<u8>(), 0..40)) {
        let basic = Location { extras: vec![], ..loc };
        let mut body = basic.encode();
        body.extend_from_slice(&tail);
        let decoded = Location::decode(&body).unwrap();
        prop_assert_eq!(decoded.fix(), basic.fix());
        prop_assert_eq!((decoded.alarm, decoded.status), (basic.alarm, basic.status));
    }
}
