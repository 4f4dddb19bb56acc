use chrono::TimeZone;

use super::*;
use crate::telemetry::{Fix, GeoPoint, SealEvent, SealEventKind, Status};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn device() -> DeviceId {
    DeviceId::parse("356307042441013").unwrap()
}

fn report(body: ReportBody) -> Report {
    Report {
        device_id: device(),
        received_at: at(1_795_767_360),
        body,
    }
}

#[test]
fn a_fix_becomes_a_position_line_tagged_with_its_transit_country_and_corridor() {
    let fix = Fix {
        seq: 1842,
        t: at(1_795_767_330),
        point: GeoPoint::new(39.681, 73.9215).unwrap(),
        speed_kmh: Some(54.2),
        heading_deg: Some(112.0),
        hdop: None,
        sats: Some(11),
        alt_m: Some(2850.0),
    };
    let ctx = ReportContext {
        transit_id: Some("KG-2026-0001"),
        country: Some("KG"),
        corridor: Some("CAREC-2"),
    };
    assert_eq!(
        report_line(&report(ReportBody::Fix(fix)), &ctx).as_deref(),
        Some(
            "position,corridor=CAREC-2,country=KG,device=356307042441013,transit=KG-2026-0001 \
             lat=39.681,lon=73.9215,speed_kmh=54.2,heading_deg=112,sats=11i,alt_m=2850,\
             seq=1842i,delay_s=30 1795767330000\n"
        )
    );
}

#[test]
fn a_seal_event_keeps_the_seal_id_as_a_field_and_the_event_as_a_tag() {
    let seal = SealEvent {
        seq: 1843,
        t: at(1_795_767_362),
        seal_id: "KG-ES-000123".into(),
        event: SealEventKind::RopeCut,
        battery_pct: Some(71.0),
        point: None,
    };
    assert_eq!(
        report_line(&report(ReportBody::Seal(seal)), &ReportContext::default()).as_deref(),
        Some(
            "seal,device=356307042441013,event=rope_cut seal_id=\"KG-ES-000123\",breach=true,\
             battery_pct=71,seq=1843i,delay_s=-2 1795767362000\n"
        )
    );
}

#[test]
fn a_status_report_writes_only_the_values_the_device_sent() {
    let status = Status {
        seq: 7,
        t: at(1_795_767_300),
        battery_pct: Some(70.0),
        ext_power_v: None,
        gsm_rssi: Some(-91.0),
        jamming: Some(false),
    };
    assert_eq!(
        report_line(
            &report(ReportBody::Status(status)),
            &ReportContext::default()
        )
        .as_deref(),
        Some(
            "device_status,device=356307042441013 battery_pct=70,gsm_rssi=-91,jamming=false,\
             seq=7i,delay_s=60 1795767300000\n"
        )
    );
}

#[test]
fn a_connection_change_is_stamped_with_the_receive_time() {
    let conn = report(ReportBody::Conn {
        state: ConnState::Offline,
    });
    assert_eq!(
        report_line(&conn, &ReportContext::default()).as_deref(),
        Some("device_conn,device=356307042441013 online=false 1795767360000\n")
    );
}

#[test]
fn an_alert_counts_one_and_keeps_free_text_out_of_the_tags() {
    let alert = AlertRecord {
        t: at(1_795_767_330),
        kind: "seal_breach".into(),
        severity: "critical".into(),
        device_id: device(),
        transit_id: Some("KG-2026-0001".into()),
        country: Some("KG".into()),
        code: Some("01".into()),
        detail: Some("rope cut near \"Sary-Tash\"".into()),
    };
    assert_eq!(
        alert_line(&alert).as_deref(),
        Some(
            "alert,code=01,country=KG,device=356307042441013,kind=seal_breach,severity=critical,\
             transit=KG-2026-0001 count=1i,detail=\"rope cut near \\\"Sary-Tash\\\"\" \
             1795767330000\n"
        )
    );
}

#[test]
fn a_bcp_exit_carries_the_dwell_time() {
    let crossing = BcpCrossingRecord {
        t: at(1_795_767_330),
        device_id: device(),
        transit_id: None,
        bcp_id: "irkeshtam".into(),
        post_id: "irkeshtam-kg".into(),
        country: "KG".into(),
        event: BcpEvent::Exit,
        dwell_s: Some(5400.0),
    };
    assert_eq!(
        bcp_crossing_line(&crossing).as_deref(),
        Some(
            "bcp_crossing,bcp=irkeshtam,country=KG,device=356307042441013,event=exit,\
             post=irkeshtam-kg count=1i,dwell_s=5400 1795767330000\n"
        )
    );
}
