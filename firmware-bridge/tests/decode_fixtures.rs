//! The decoders against fixture files made from the protocols' specifications, down to the
//! exact contract v1 JSON they turn into.

mod common;

use common::{hex_fixture, json_fixture};
use firmware_bridge::device::DeviceId;
use firmware_bridge::framing::Framing;
use firmware_bridge::jt808::{self, msg, seal::SealWatch, Batch, Location};
use firmware_bridge::registry::Registry;
use firmware_bridge::report::{Report, SealEvent};
use firmware_bridge::teltonika::{self, framing, mapping, Codec, IoValue, TeltonikaError};
use firmware_bridge::wire;

const REGISTRY: &str = r#"
    [models.FMB920]
    inputs = [{ din = 2, high = "closed", low = "opened" }, { din = 1, high = "armed" }]
    [[devices]]
    device_id = "356307042441013"
    model = "FMB920"
    seal_id = "KG-ES-000123"
    [[devices]]
    device_id = "13912345678"
    seal_id = "KG-ES-000200"
"#;

/// Renders reports as `{topic, payload}` objects with seqs from 1, as the queue would.
fn rendered(device: &str, reports: &[Report]) -> serde_json::Value {
    let device = DeviceId::parse(device).unwrap();
    let mut seq = 1;
    let messages: Vec<_> = reports
        .iter()
        .map(|r| {
            let m = wire::render(&device, r, seq);
            seq = m.last_seq + 1;
            let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            serde_json::json!({ "topic": m.topic, "payload": payload })
        })
        .collect();
    serde_json::Value::Array(messages)
}

fn teltonika_reports(fixture: &str) -> Vec<Report> {
    let bytes = hex_fixture(fixture);
    assert_eq!(
        framing::frame_avl(&bytes, 4096),
        Framing::Frame { len: bytes.len() }
    );
    let packet = teltonika::avl::decode(&bytes).unwrap();
    let registry = Registry::from_toml(REGISTRY).unwrap();
    let profile = registry
        .get(&DeviceId::parse("356307042441013").unwrap())
        .unwrap();
    mapping::reports(profile, &packet.records)
}

#[test]
fn the_teltonika_imei_handshake_example_gives_the_imei() {
    let bytes = hex_fixture("teltonika/imei.hex");
    assert_eq!(framing::frame_imei(&bytes), Framing::Frame { len: 17 });
    assert_eq!(&bytes[2..], b"356307042441013");
}

#[test]
fn the_codec8_examples_decode_with_their_documented_values() {
    let p = teltonika::avl::decode(&hex_fixture("teltonika/codec8_example1.hex")).unwrap();
    assert_eq!(p.codec, Codec::Codec8);
    let r = &p.records[0];
    assert_eq!(
        (r.timestamp_ms, r.priority, r.event_io),
        (0x0000016B40D8EA30, 1, 1)
    );
    assert_eq!(r.io(21), Some(&IoValue::U8(3)));
    assert_eq!(r.io(66), Some(&IoValue::U16(0x5E0F)));
    assert_eq!(r.io(241), Some(&IoValue::U32(0x601A)));
    assert_eq!(r.io(78), Some(&IoValue::U64(0)));

    let p = teltonika::avl::decode(&hex_fixture("teltonika/codec8_example3.hex")).unwrap();
    assert_eq!(p.records.len(), 2);
}

#[test]
fn the_codec8_extended_example_decodes_every_io_width() {
    let p = teltonika::avl::decode(&hex_fixture("teltonika/codec8e_example.hex")).unwrap();
    assert_eq!(p.codec, Codec::Codec8Extended);
    let r = &p.records[0];
    assert_eq!(r.io(0x11), Some(&IoValue::U16(0x1D)));
    assert_eq!(r.io(0x0B), Some(&IoValue::U64(0x3544C87A)));
    assert_eq!(r.io(0x0E), Some(&IoValue::U64(0x1DD7E06A)));
    assert_eq!(r.io.len(), 5);
}

#[test]
fn the_spec_examples_reencode_to_the_same_bytes() {
    for name in [
        "codec8_example1",
        "codec8_example2",
        "codec8_example3",
        "codec8e_example",
    ] {
        let bytes = hex_fixture(&format!("teltonika/{name}.hex"));
        let p = teltonika::avl::decode(&bytes).unwrap();
        assert_eq!(teltonika::avl::encode(p.codec, &p.records), bytes, "{name}");
    }
}

#[test]
fn a_flipped_bit_in_a_teltonika_example_is_a_crc_error() {
    let mut bytes = hex_fixture("teltonika/codec8_example2.hex");
    bytes[20] ^= 0x01;
    assert!(matches!(
        teltonika::avl::decode(&bytes),
        Err(TeltonikaError::BadCrc { .. })
    ));
}

#[test]
fn the_spec_example_without_a_fix_publishes_status_and_the_din1_seal_event() {
    let expected = json_fixture("teltonika/codec8_example1.expected.json");
    assert_eq!(
        rendered(
            "356307042441013",
            &teltonika_reports("teltonika/codec8_example1.hex")
        ),
        expected
    );
}

#[test]
fn two_teltonika_fixes_publish_one_backlog_array_a_door_event_and_statuses() {
    let expected = json_fixture("teltonika/codec8_irkeshtam_two_fixes.expected.json");
    let reports = teltonika_reports("teltonika/codec8_irkeshtam_two_fixes.hex");
    assert_eq!(rendered("356307042441013", &reports), expected);
}

fn jt808_message(fixture: &str) -> jt808::Message {
    let bytes = hex_fixture(fixture);
    assert_eq!(
        jt808::frame::frame(&bytes, 4096),
        Framing::Frame { len: bytes.len() }
    );
    jt808::frame::decode(&bytes).unwrap()
}

#[test]
fn the_jt808_registration_auth_and_heartbeat_fixtures_decode() {
    let reg = jt808_message("jt808/register_2013.hex");
    assert_eq!(
        (
            reg.header.msg_id,
            reg.header.terminal_id(),
            reg.header.serial
        ),
        (msg::REGISTER, "13912345678", 1)
    );
    let auth = jt808_message("jt808/auth_2013.hex");
    assert_eq!(
        jt808::session::auth_code(&auth.header, &auth.body),
        "CV13912345678"
    );
    let beat = jt808_message("jt808/heartbeat_2013.hex");
    assert_eq!((beat.header.msg_id, beat.body.len()), (msg::HEARTBEAT, 0));
}

#[test]
fn an_escaped_jt808_location_decodes_to_a_utc_fix() {
    let m = jt808_message("jt808/location_2013.hex");
    assert_eq!(m.header.serial, 0x7E);
    let loc = Location::decode(&m.body).unwrap();
    assert_eq!(loc.gsm_rssi(), Some(-69));
    let fix = loc.fix().unwrap();
    let expected = json_fixture("jt808/location_2013.expected.json");
    assert_eq!(
        rendered("13912345678", &[Report::Fixes(vec![fix])]),
        expected
    );
}

#[test]
fn a_jt808_backlog_is_one_array_and_its_door_alarm_a_seal_event() {
    let m = jt808_message("jt808/batch_2013.hex");
    let batch = Batch::decode(&m.body).unwrap();
    assert_eq!((batch.kind, batch.items.len()), (1, 2));
    let mut watch = SealWatch::default();
    let mut reports = vec![Report::Fixes(
        batch.items.iter().filter_map(Location::fix).collect(),
    )];
    for item in &batch.items {
        for event in watch.observe(item) {
            reports.push(Report::Seal(SealEvent {
                t: item.time_utc(),
                seal_id: "KG-ES-000200".into(),
                event,
                battery_pct: None,
                position: item.fix().map(|f| (f.lat, f.lon)),
            }));
        }
    }
    let expected = json_fixture("jt808/batch_2013.expected.json");
    assert_eq!(rendered("13912345678", &reports), expected);
}

#[test]
fn a_2019_location_reads_the_long_phone_and_the_hemisphere_bits() {
    let m = jt808_message("jt808/location_2019.hex");
    assert_eq!(
        (m.header.version, m.header.terminal_id()),
        (Some(1), "13912345678")
    );
    let fix = Location::decode(&m.body).unwrap().fix().unwrap();
    assert_eq!(
        (fix.lat, fix.lon, fix.t.to_rfc3339()),
        (-33.8688, -151.2093, "2026-01-01T00:00:00+00:00".to_owned())
    );
}

#[test]
fn every_fixture_reencodes_to_its_own_bytes() {
    for name in [
        "register_2013",
        "auth_2013",
        "heartbeat_2013",
        "location_2013",
        "batch_2013",
        "location_2019",
        "location_out_of_contract_2013",
    ] {
        let bytes = hex_fixture(&format!("jt808/{name}.hex"));
        let m = jt808::frame::decode(&bytes).unwrap();
        assert_eq!(jt808::frame::encode(&m.header, &m.body), bytes, "{name}");
    }
}

#[test]
fn a_tamper_alarm_with_impossible_values_and_a_runaway_item_keeps_its_fix() {
    let m = jt808_message("jt808/location_out_of_contract_2013.hex");
    let registry = Registry::from_toml(REGISTRY).unwrap();
    let profile = registry
        .get(&DeviceId::parse("13912345678").unwrap())
        .unwrap();
    let mut watch = SealWatch::default();
    let got = jt808::reports::location_reports(&m, profile, &mut watch).unwrap();
    assert_eq!(got.truncated_extras, [0x31]);
    let (reports, findings) = firmware_bridge::contract::check(got.reports);
    assert_eq!(findings.dropped_fields, ["speed_kmh", "alt_m"]);
    let expected = json_fixture("jt808/location_out_of_contract_2013.expected.json");
    assert_eq!(rendered("13912345678", &reports), expected);
}
