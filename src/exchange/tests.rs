//! The exchange's rules on a transit declared through the real transit book and maps:
//! Urumqi → Khorgos → Ak-Zhol → Bishkek, issued in China, with legs in CN, KZ and KG.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::routing::{check_action, check_record, view_for, Holder};
use super::*;
use crate::evidence::key::fingerprint;
use crate::maps::{Atlas, CountryCode};
use crate::store::{ExchangeCursors, Write};
use crate::telemetry::DeviceId;
use crate::transit::{
    Action, Actor, AlertAction, Declaration, Driver, GoodsLine, InspectionReport, InspectionResult,
    OfficerAction, RiskRules, Transit, TransitBook, TransitRules,
};

fn cc(code: &str) -> CountryCode {
    code.parse().unwrap()
}

fn peer(name: &str, countries: &[&str], key_byte: u8) -> Peer {
    let key = [key_byte; 32];
    Peer {
        name: name.into(),
        url: format!("http://{name}.example"),
        countries: countries.iter().map(|c| cc(c)).collect(),
        key,
        fingerprint: fingerprint(&key),
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap()
}

fn book() -> TransitBook {
    TransitBook::new(
        Arc::new(Atlas::embedded().unwrap()),
        TransitRules::embedded().unwrap(),
        RiskRules::embedded().unwrap(),
    )
}

fn declaration() -> Declaration {
    Declaration {
        reference: "65CN0101-000777".into(),
        carrier: "cn-freight".into(),
        vehicle_plate: "XJ-A-12345".into(),
        trailer_plates: vec![],
        driver: Driver {
            name: "Li Wei".into(),
            document: None,
        },
        devices: vec!["truck-cn-1".into()],
        seals: vec![],
        goods: vec![GoodsLine {
            hs_code: "850440".into(),
            description: "inverters".into(),
            gross_kg: 9_000.0,
            value: 70_000.0,
            currency: "USD".into(),
        }],
        departure_office: "urumqi".into(),
        itinerary: vec!["khorgos".into(), "akzhol".into()],
        destination_office: "bishkek".into(),
        deadline: at() + Duration::days(3),
    }
}

/// The transit as its holder declared it, in the holder's book.
fn declared(book: &mut TransitBook) -> Transit {
    *book
        .declare(declaration(), &Actor("cn".into()), at(), &|id| {
            Some(id.clone())
        })
        .expect("a valid declaration")
        .transit
}

/// The same transit after its deadline: an overdue alert, addressed where it occurred.
fn overdue(book: &mut TransitBook) -> Transit {
    let t = declared(book);
    let changes = book.tick(t.deadline + Duration::hours(1));
    *changes
        .into_iter()
        .next()
        .expect("an overdue alert")
        .transit
}

#[test]
fn a_peer_is_sent_what_its_customs_would_see_and_no_more() {
    let mut holder = book();
    let t = overdue(&mut holder);
    let alert = t.alerts.first().expect("the overdue alert");
    assert_eq!(
        alert.visible_to,
        vec![cc("CN")],
        "raised on the Chinese leg"
    );
    let in_china = |_: f64, _: f64| Some(cc("CN"));
    let mut moving = t.clone();
    moving.motion.point = Some(crate::telemetry::GeoPoint {
        lat: 43.8,
        lon: 87.6,
    });
    let kz = view_for(&[cc("KZ")], &moving, &in_china);
    assert!(kz.alerts.is_empty(), "a Chinese alert is not Kazakhstan's");
    assert!(
        kz.motion.point.is_none(),
        "nor is the truck's position in China"
    );
    let cn = view_for(&[cc("CN")], &moving, &in_china);
    assert_eq!(cn.alerts.len(), 1);
    assert!(cn.motion.point.is_some());

    // Escalated by China, the alert is Kazakhstan's business too.
    let escalate = Action::Alert {
        alert_id: alert.id.clone(),
        action: AlertAction::Resolve {
            outcome: crate::transit::Outcome::Escalated,
            notes: None,
        },
    };
    let later = t.deadline + Duration::hours(2);
    let escalated = holder
        .act(&t.id, escalate, &Actor("cn officer".into()), later)
        .unwrap();
    let kz = view_for(&[cc("KZ")], &escalated.transit, &in_china);
    assert_eq!(kz.alerts.len(), 1, "escalated to the next country");
}

#[test]
fn a_record_is_taken_only_from_the_issuing_countrys_instance_about_our_own_transits() {
    let mut holder = book();
    let t = declared(&mut holder);
    let cn = peer("cn", &["CN"], 1);
    let kz = peer("kz", &["KZ"], 2);
    let ours = [cc("KG")];
    assert_eq!(check_record(&cn, &ours, &t, &Holder::Unknown), Ok(()));
    assert_eq!(
        check_record(&cn, &ours, &t, &Holder::Peer("cn".into())),
        Ok(())
    );
    let forged = check_record(&kz, &ours, &t, &Holder::Unknown).unwrap_err();
    assert!(forged.contains("issued in CN"), "{forged}");
    let elsewhere = check_record(&cn, &[cc("TJ")], &t, &Holder::Unknown).unwrap_err();
    assert!(elsewhere.contains("no leg"), "{elsewhere}");
    assert!(check_record(&cn, &ours, &t, &Holder::Here).is_err());
    assert!(check_record(&cn, &ours, &t, &Holder::Peer("uz".into())).is_err());
}

#[test]
fn a_peer_asserts_only_facts_about_its_own_countries() {
    let mut holder = book();
    let t = overdue(&mut holder);
    let kz = peer("kz", &["KZ"], 2);
    let exit = |place: &str| {
        Action::Lifecycle(OfficerAction::ConfirmExit {
            place: place.into(),
        })
    };
    let inspect = |place: &str| {
        Action::Inspect(InspectionReport {
            place: place.into(),
            result: InspectionResult::Cleared,
            seals_removed: vec![],
            seals_applied: vec![],
            notes: None,
            checklist: vec![],
        })
    };
    assert_eq!(check_action(&kz, &t, &exit("akzhol-kz")), Ok(()));
    assert_eq!(check_action(&kz, &t, &inspect("khorgos-kz")), Ok(()));
    let at_kg_post = check_action(&kz, &t, &exit("akzhol-kg")).unwrap_err();
    assert!(at_kg_post.contains("only in KZ"), "{at_kg_post}");
    assert!(check_action(&kz, &t, &inspect("akzhol-kg")).is_err());
    assert!(check_action(&kz, &t, &Action::Lifecycle(OfficerAction::Close)).is_err());
    let alert_id = t.alerts[0].id.clone();
    let resolve = Action::Alert {
        alert_id,
        action: AlertAction::Acknowledge { note: None },
    };
    assert!(
        check_action(&kz, &t, &resolve).is_err(),
        "a Chinese alert is not Kazakhstan's to work"
    );
}

fn exchange(peers: Vec<Peer>) -> Exchange {
    let locate: outbound::Locate = Arc::new(|_, _| None);
    let mut ex = Exchange::new(
        [9; 32],
        vec![cc("CN")],
        peers.into_iter().map(Arc::new).collect(),
        locate,
    );
    let mut cursors = ExchangeCursors::default();
    cursors.last_queued.insert("kz".into(), 41);
    ex.resume(cursors);
    ex
}

fn outbox(writes: &[Write]) -> Vec<(String, i64, Message)> {
    writes
        .iter()
        .filter_map(|w| match w {
            Write::Outbox(m) => Some((
                m.peer.clone(),
                m.seq,
                serde_json::from_str(&m.message).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn each_concerned_peer_gets_the_record_numbered_after_what_it_was_sent_before() {
    let mut holder = book();
    let t = declared(&mut holder);
    let mut ex = exchange(vec![
        peer("kz", &["KZ"], 2),
        peer("kg", &["KG"], 3),
        peer("tj", &["TJ"], 4),
    ]);
    let sent = outbox(&ex.queue_record(&t, at()));
    let to: Vec<(&str, i64)> = sent.iter().map(|(p, s, _)| (p.as_str(), *s)).collect();
    assert_eq!(to, vec![("kz", 42), ("kg", 1)], "TJ is not on the route");
    let (_, _, message) = &sent[0];
    assert_eq!(message.to, fingerprint(&[2; 32]));
    assert_eq!(message.from, fingerprint(&[9; 32]));
    match &message.body {
        Body::Transit(r) => assert_eq!(r.id, t.id),
        other => panic!("a record was expected, not {}", other.kind()),
    }
    // A transit received from a peer is not passed on.
    let mut mirror = t.clone();
    mirror.held_by = Some("cn".into());
    assert!(ex.queue_record(&mirror, at()).is_empty());
}

#[test]
fn an_action_on_a_received_transit_goes_to_its_holder_only() {
    let mut holder = book();
    let mut t = declared(&mut holder);
    let mut ex = exchange(vec![peer("kz", &["KZ"], 2), peer("cn", &["CN"], 1)]);
    let exit = Action::Lifecycle(OfficerAction::ConfirmExit {
        place: "khorgos-cn".into(),
    });
    assert!(
        ex.queue_action(&t, exit.clone(), &Actor("x".into()), at())
            .is_none(),
        "held here: nobody to send it to"
    );
    t.held_by = Some("cn".into());
    let w = ex.queue_action(&t, exit, &Actor("x".into()), at());
    let sent = outbox(&w.into_iter().collect::<Vec<_>>());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "cn");
    assert!(matches!(sent[0].2.body, Body::Action { .. }));
}

#[test]
fn a_message_is_applied_once_by_its_sequence_number() {
    let mut ex = exchange(vec![peer("cn", &["CN"], 1)]);
    let cn = peer("cn", &["CN"], 1);
    let mut holder = book();
    let t = declared(&mut holder);
    let message = Message {
        protocol: 1,
        from: cn.fingerprint.clone(),
        to: fingerprint(&[9; 32]),
        seq: 7,
        queued_at: at(),
        transit_id: t.id.clone(),
        body: Body::Transit(Box::new(t)),
    };
    let signed = Signed {
        message: serde_json::to_string(&message).unwrap(),
        signature: "00".into(),
    };
    assert!(!ex.seen(&cn, 7));
    let writes = ex.settle(&cn, &message, &signed, &Outcome::Applied { seq: 7 }, at());
    assert!(ex.seen(&cn, 7) && ex.seen(&cn, 3) && !ex.seen(&cn, 8));
    let evidence = writes.iter().find_map(|w| match w {
        Write::Event(e) => Some(e),
        _ => None,
    });
    let evidence = evidence.expect("the message is kept as evidence");
    assert_eq!(evidence.kind, "exchange.received");
    assert_eq!(evidence.body["message"], signed.message);
    assert!(writes
        .iter()
        .any(|w| matches!(w, Write::Applied { seq: 7, .. })));
}

#[test]
fn a_received_transit_is_the_holders_business_not_this_instances() {
    let mut holder = book();
    let t = declared(&mut holder);
    let mut here = book();
    let change = here.receive(t.clone(), "cn", at());
    assert_eq!(change.transit.held_by.as_deref(), Some("cn"));
    assert_eq!(here.holder(&t.id), Holder::Peer("cn".into()));
    let device = DeviceId::parse("truck-cn-1").unwrap();
    assert!(
        here.transit_of(&device).is_none(),
        "its device reports to the holder, not here"
    );
    assert!(
        here.tick(t.deadline + Duration::hours(1)).is_empty(),
        "the holder raises its overdue alert"
    );
    assert_eq!(holder.holder(&t.id), Holder::Here);
    // A local declaration cannot take the received transit's reference.
    let again = here.declare(declaration(), &Actor("x".into()), at(), &|id| {
        Some(id.clone())
    });
    assert!(again.is_err());
}

#[test]
fn peers_are_checked_when_configured() {
    let own = fingerprint(&[9; 32]);
    let key = |b: u8| crate::evidence::merkle::to_hex(&[b; 32]);
    let settings = |peers: Vec<PeerSettings>| ExchangeSettings {
        countries: vec![cc("KZ")],
        peers,
        ..ExchangeSettings::default()
    };
    let p = |name: &str, url: &str, k: String| PeerSettings {
        name: name.into(),
        url: url.into(),
        countries: vec![cc("CN")],
        key: k,
    };
    let ok = settings(vec![p("cn", "http://cn.example/", key(1))]);
    let peers = ok.peers(&own).unwrap();
    assert_eq!(peers[0].url, "http://cn.example", "no trailing slash");
    let bad = [
        settings(vec![p("cn", "http://cn", "abc".into())]),
        settings(vec![p("c n", "http://cn", key(1))]),
        settings(vec![p("cn", "ftp://cn", key(1))]),
        settings(vec![p("cn", "http://cn", key(9))]),
        settings(vec![
            p("cn", "http://a", key(1)),
            p("cn2", "http://b", key(1)),
        ]),
    ];
    for s in bad {
        assert!(s.peers(&own).is_err(), "{:?}", s.peers);
    }
    let mut no_countries = ok.clone();
    no_countries.countries.clear();
    assert_eq!(
        no_countries.peers(&own).unwrap_err(),
        ExchangeConfigError::NoOwnCountries
    );
}

#[test]
fn an_inspection_recorded_at_a_peer_carries_its_signature_to_every_later_leg() {
    let dir = tempfile::tempdir().unwrap();
    let kz_key = crate::evidence::InstanceKey::load_or_create(dir.path()).unwrap();
    let kz = Peer {
        name: "kz".into(),
        url: "http://kz.example".into(),
        countries: vec![cc("KZ")],
        key: kz_key.public(),
        fingerprint: kz_key.fingerprint(),
    };
    let mut holder = book();
    let t = declared(&mut holder);
    let report = InspectionReport {
        place: "khorgos-kz".into(),
        result: InspectionResult::Cleared,
        seals_removed: vec![],
        seals_applied: vec![],
        notes: Some("load as declared".into()),
        checklist: vec![],
    };
    let message = Message {
        protocol: 1,
        from: kz.fingerprint.clone(),
        to: fingerprint(&[1; 32]),
        seq: 3,
        queued_at: at(),
        transit_id: t.id.clone(),
        body: Body::Action {
            action: Action::Inspect(report.clone()),
            by: Actor("officer (post:khorgos:KZ)".into()),
            at: at(),
        },
    };
    let text = serde_json::to_string(&message).unwrap();
    let signed = Signed {
        signature: kz_key.sign(text.as_bytes()),
        message: text,
    };
    let change = holder
        .act_attested(
            &t.id,
            Action::Inspect(report),
            &Actor("officer via kz".into()),
            at(),
            Some(Exchange::attestation(&kz, &signed)),
        )
        .unwrap();
    let record = *change.transit;
    let logged = &change.records[0];
    assert_eq!(logged.kind, "transit.inspection_recorded");
    assert_eq!(
        logged.body["attested"]["signature"], signed.signature,
        "the log keeps the signature, so a rebuild from it shows the same"
    );

    // Kyrgyzstan, which knows Kazakhstan's key, checks it; an instance that does not,
    // cannot; a changed message or a signer of another country fails.
    let kg = |peers: Vec<Peer>| {
        let locate: outbound::Locate = Arc::new(|_, _| None);
        Exchange::new(
            [7; 32],
            vec![cc("KG")],
            peers.into_iter().map(Arc::new).collect(),
            locate,
        )
    };
    let verified = |ex: &Exchange, t: &Transit| {
        let mut t = t.clone();
        ex.check_attestations(&mut t);
        t.inspections[0].attested.as_ref().and_then(|a| a.verified)
    };
    assert_eq!(verified(&kg(vec![kz.clone()]), &record), Some(true));
    assert_eq!(verified(&kg(vec![]), &record), None);
    let mut changed = record.clone();
    if let Some(a) = changed.inspections[0].attested.as_mut() {
        a.message = a.message.replace("load as declared", "seals intact");
    }
    assert_eq!(verified(&kg(vec![kz.clone()]), &changed), Some(false));
    let mut elsewhere = record.clone();
    elsewhere.inspections[0].place = "akzhol-kz".into();
    assert_eq!(
        verified(&kg(vec![kz.clone()]), &elsewhere),
        Some(false),
        "signed for another place"
    );
    let mut as_uz = kz.clone();
    as_uz.countries = vec![cc("UZ")];
    assert_eq!(verified(&kg(vec![as_uz]), &record), Some(false));
}

#[test]
fn positions_go_to_the_peers_whose_territory_they_lie_in() {
    let mut holder = book();
    let t = declared(&mut holder);
    // North of 43.5° is Kazakhstan here, the rest China.
    let locate: outbound::Locate =
        Arc::new(|lat, _| Some(if lat > 43.5 { cc("KZ") } else { cc("CN") }));
    let mut ex = Exchange::new(
        [9; 32],
        vec![cc("CN")],
        vec![
            Arc::new(peer("kz", &["KZ"], 2)),
            Arc::new(peer("kg", &["KG"], 3)),
        ],
        locate,
    );
    let fix = |seq: u64, lat: f64| crate::telemetry::Fix {
        seq,
        t: at() + Duration::minutes(seq as i64),
        point: crate::telemetry::GeoPoint { lat, lon: 80.0 },
        speed_kmh: Some(60.0),
        heading_deg: None,
        hdop: None,
        sats: None,
        alt_m: None,
    };
    let (a, b, c) = (fix(1, 43.0), fix(2, 44.0), fix(3, 44.1));
    let device = DeviceId::parse("truck-cn-1").unwrap();
    let sent = outbox(&ex.queue_positions(&t.id, &t.itinerary, &device, &[&a, &b, &c], at()));
    assert_eq!(sent.len(), 1, "Kyrgyzstan gets none: no fix is on its soil");
    assert_eq!(sent[0].0, "kz");
    match &sent[0].2.body {
        Body::Positions { device_id, fixes } => {
            assert_eq!(device_id, &device);
            let seqs: Vec<u64> = fixes.iter().map(|f| f.seq).collect();
            assert_eq!(seqs, vec![2, 3], "only the fixes in Kazakhstan");
        }
        other => panic!("positions were expected, not {}", other.kind()),
    }

    // The receiver moves its copy's truck to the newest, and ignores older ones.
    let mut here = book();
    here.receive(t.clone(), "cn", at());
    let Body::Positions { fixes, .. } = &sent[0].2.body else {
        unreachable!()
    };
    let moved = here.follow(&t.id, &device, fixes).expect("open here");
    assert_eq!(moved.transit.motion.point.map(|p| p.lat), Some(44.1));
    let older = [fixes[0].clone()];
    let still = here.follow(&t.id, &device, &older).expect("open here");
    assert_eq!(still.transit.motion.point.map(|p| p.lat), Some(44.1));
    let other = DeviceId::parse("someone-else").unwrap();
    assert!(
        here.follow(&t.id, &other, fixes).is_none(),
        "not its device"
    );
}
