//! Jointech JT701 e-locks: published frames (Traccar's test suite) down to the exact
//! contract JSON, the lock's seal events, and property tests of the framer and decoder.

mod common;

use common::{hex_fixture, json_fixture};
use firmware_bridge::device::DeviceId;
use firmware_bridge::framing::Framing;
use firmware_bridge::jt701::{self, mapping, Jt701Error};
use firmware_bridge::registry::Registry;
use firmware_bridge::report::{Report, SealEventKind};
use firmware_bridge::wire;
use proptest::prelude::*;

pub const LOCKS: &str = r#"
    [[devices]]
    device_id = "7520150926"
    seal_id = "LOCK-7520150926"
    [[devices]]
    device_id = "8041300978"
    seal_id = "LOCK-8041300978"
    [[devices]]
    device_id = "7880703537"
    seal_id = "LOCK-7880703537"
    [[devices]]
    device_id = "7581029743"
    seal_id = "LOCK-7581029743"
"#;

fn decoded(name: &str) -> jt701::Report {
    let bytes = hex_fixture(&format!("jt701/{name}.hex"));
    assert_eq!(
        jt701::frame(&bytes, 4096),
        Framing::Frame { len: bytes.len() }
    );
    jt701::decode(&bytes).unwrap()
}

/// The checked reports of a sequence of frames from one connection, rendered with seqs
/// from 1 as the queue would.
fn published(reports: &[jt701::Report]) -> serde_json::Value {
    let registry = Registry::from_toml(LOCKS).unwrap();
    let mut watch = mapping::LockWatch::default();
    let mut seq = 1;
    let mut out = Vec::new();
    for report in reports {
        let device = DeviceId::parse(report.device_id()).unwrap();
        let profile = registry.get(&device).unwrap();
        let (checked, _) =
            firmware_bridge::contract::check(mapping::reports(profile, report, &mut watch));
        for r in &checked {
            let m = wire::render(&device, r, seq);
            seq = m.last_seq + 1;
            let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            out.push(serde_json::json!({ "topic": m.topic, "payload": payload }));
        }
    }
    serde_json::Value::Array(out)
}

#[test]
fn traccars_jt701_frames_publish_their_exact_contract_messages() {
    for name in ["v16_locked_ack", "v19_west", "v17_charging", "v17_no_fix"] {
        let expected = json_fixture(&format!("jt701/{name}.expected.json"));
        assert_eq!(published(&[decoded(name)]), expected, "{name}");
    }
}

#[test]
fn every_fixture_reencodes_to_its_own_bytes() {
    for name in ["v16_locked_ack", "v19_west", "v17_charging", "v17_no_fix"] {
        let bytes = hex_fixture(&format!("jt701/{name}.hex"));
        assert_eq!(
            jt701::encode(&jt701::decode(&bytes).unwrap()),
            bytes,
            "{name}"
        );
    }
}

#[test]
fn the_acknowledgement_follows_the_protocol_version() {
    assert_eq!(
        mapping::acknowledgement(&decoded("v16_locked_ack")),
        Some(b"(P35)".to_vec())
    );
    assert_eq!(
        mapping::acknowledgement(&decoded("v19_west")),
        Some(b"(P69,0,110)".to_vec())
    );
    assert_eq!(mapping::acknowledgement(&decoded("v17_charging")), None);
}

/// The first fixture with another status word.
fn with_status(status: u16) -> jt701::Report {
    let mut report = decoded("v16_locked_ack");
    report.records[0].status = status;
    jt701::decode(&jt701::encode(&report)).unwrap()
}

fn seal_events(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["topic"].as_str().unwrap().ends_with("/seal"))
        .map(|m| m["payload"]["event"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn unlocking_cutting_the_rope_opening_the_cover_and_relocking_are_seal_events() {
    use mapping::{STATUS_COVER_OPENED, STATUS_LOCKED, STATUS_ROPE_CUT, STATUS_UNLOCK_ALARM};
    let sequence = [
        with_status(STATUS_LOCKED),
        with_status(0),
        with_status(STATUS_ROPE_CUT),
        with_status(STATUS_ROPE_CUT | STATUS_COVER_OPENED),
        with_status(STATUS_LOCKED),
        with_status(STATUS_UNLOCK_ALARM),
    ];
    assert_eq!(
        seal_events(&published(&sequence)),
        ["opened", "rope_cut", "case_breach", "closed", "opened"]
    );
    let event = &published(&sequence[..2])[3];
    assert_eq!(
        event["payload"],
        serde_json::json!({"seq": 4, "t": "2015-10-13T03:46:47Z", "seal_id": "LOCK-7520150926",
            "event": "opened", "battery_pct": 100, "lat": 22.5526, "lon": 113.925515})
    );
}

#[test]
fn the_short_tracker_form_and_bad_lengths_are_refused() {
    // Also from Traccar's test suite: a JT600 vehicle tracker (identifier 3110216001).
    let short =
        hex::decode("24311021600111001B16021105591022329862114046227B0598095080012327951435161F");
    assert_eq!(jt701::decode(&short), Err(Jt701Error::ShortFormat));
    let mut bytes = hex_fixture("jt701/v16_locked_ack.hex");
    bytes[9] -= 1;
    bytes.pop();
    assert!(matches!(
        jt701::decode(&bytes),
        Err(Jt701Error::RecordLength { .. })
    ));
}

#[test]
fn a_text_message_is_framed_whole_and_garbage_skipped_to_the_next_message() {
    let text =
        b"(7520150926,P45,131015,034647,22.552600,N,113.925515,E,A,0,0,1,0,0000000000,0,0,1)";
    assert_eq!(jt701::frame(text, 4096), Framing::Frame { len: text.len() });
    assert_eq!(
        jt701::frame(b"xx$", 4096),
        Framing::Invalid {
            skip: 2,
            reason: "garbage"
        }
    );
    assert_eq!(jt701::frame(b"(no end", 4096), Framing::Incomplete);
}

mod hex {
    pub fn decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}

fn record() -> impl Strategy<Value = jt701::Record> {
    let time = (0u32..100, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60).prop_map(
        |(y, mo, d, h, mi, s)| {
            chrono::NaiveDate::from_ymd_opt(2000 + y as i32, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
        },
    );
    let coordinate =
        |max_deg: u32| (0..=max_deg, 0u32..600_000).prop_map(|(d, m)| d * 1_000_000 + m);
    (
        time,
        coordinate(99),
        coordinate(999),
        0u8..16,
        0u8..100,
        any::<u8>(),
        any::<(u32, u8, u32, u16, u8)>(),
        any::<(u16, u16, u8)>(),
    )
        .prop_map(
            |(time, lat_raw, lon_raw, flags, speed_knots, course_half_deg, a, b)| jt701::Record {
                time,
                lat_raw,
                lon_raw,
                flags,
                speed_knots,
                course_half_deg,
                odometer_km: a.0,
                satellites: a.1,
                vehicle_id: a.2,
                status: a.3,
                battery: a.4,
                cell_id: b.0,
                lac: b.1,
                signal: b.2,
                extension: Vec::new(),
            },
        )
}

fn report() -> impl Strategy<Value = jt701::Report> {
    (
        7_000_000_000u64..10_000_000_000,
        prop_oneof![Just(0x16u8), Just(0x17), Just(0x19)],
        any::<u8>(),
        proptest::collection::vec(record(), 1..4),
        proptest::collection::vec(any::<u8>(), 4..20),
        any::<u8>(),
    )
        .prop_map(|(id, protocol_version, version, mut records, ext, index)| {
            if jt701::has_extension(protocol_version) {
                records.truncate(1);
                records[0].extension = ext;
            }
            jt701::Report {
                id_digits: id.to_string(),
                protocol_version,
                version,
                records,
                index,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_stall_the_jt701_framer_and_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = bytes.as_slice();
        loop {
            match jt701::frame(buf, 4096) {
                Framing::Incomplete => break,
                Framing::Frame { len } => {
                    prop_assert!(len > 0 && len <= buf.len());
                    let _ = jt701::decode(&buf[..len]);
                    buf = &buf[len..];
                }
                Framing::Invalid { skip, .. } => {
                    prop_assert!(skip > 0 && skip <= buf.len());
                    buf = &buf[skip..];
                }
            }
        }
    }

    #[test]
    fn an_arbitrary_body_behind_a_lock_header_never_panics_the_decoder(body in proptest::collection::vec(any::<u8>(), 0..200), pv in any::<u8>()) {
        let mut bytes = vec![b'$', 0x75, 0x20, 0x15, 0x09, 0x26, pv, 0x11];
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&body);
        let _ = jt701::decode(&bytes);
    }

    #[test]
    fn a_jt701_report_round_trips_and_frames_whole_when_split_anywhere(r in report(), cut in any::<prop::sample::Index>()) {
        let bytes = jt701::encode(&r);
        prop_assert_eq!(jt701::decode(&bytes).unwrap(), r.clone());
        let cut = cut.index(bytes.len());
        prop_assert_eq!(jt701::frame(&bytes[..cut], 4096), Framing::Incomplete);
        prop_assert_eq!(jt701::frame(&bytes, 4096), Framing::Frame { len: bytes.len() });
    }

    #[test]
    fn whatever_a_lock_sends_what_is_published_is_within_the_contract(r in report()) {
        let registry = Registry::from_toml(&format!("[[devices]]\ndevice_id = \"{}\"", r.device_id())).unwrap();
        let profile = registry.get(&DeviceId::parse(r.device_id()).unwrap()).unwrap();
        let (checked, _) = firmware_bridge::contract::check(mapping::reports(profile, &r, &mut mapping::LockWatch::default()));
        for report in &checked {
            if let Report::Fixes(fixes) = report {
                for f in fixes {
                    prop_assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0);
                    prop_assert!(f.speed_kmh.is_none_or(|s| (0.0..=500.0).contains(&s)));
                    prop_assert!(f.sats.is_none_or(|n| n <= 128));
                }
            }
            if let Report::Seal(e) = report {
                prop_assert!(e.event != SealEventKind::Armed);
            }
        }
    }
}
