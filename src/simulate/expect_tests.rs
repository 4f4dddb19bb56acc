//! The alerts each truth record expects, the check of raised alerts against them, and the
//! truth file read back.

use chrono::{DateTime, Utc};

use super::*;

const TRANSIT: &str = "KG-T1-00001-1";
const DEVICE: &str = "sim1-00001";

fn incident(kind: IncidentKind, at: &str, until: Option<&str>) -> Injected {
    let mut incident = Injected {
        kind,
        device_id: DEVICE.into(),
        transit_id: Some(TRANSIT.into()),
        expected: Vec::new(),
        at: at.into(),
        until: until.map(str::to_owned),
        lat: 42.0,
        lon: 75.0,
        corridor: "carec-3-kg".into(),
        distance_m: None,
        bcp: None,
        seal_id: None,
        event: None,
        seq: None,
    };
    incident.expected = alerts_for(&incident);
    incident
}

fn seal_breach(at: &str, event: &str) -> Injected {
    let mut breach = incident(IncidentKind::SealBreach, at, None);
    breach.event = Some(event.into());
    breach.expected = alerts_for(&breach);
    breach
}

fn alert(n: u32, kind: &str, code: Option<&str>, at: &str, repeats: u32) -> SeenAlert {
    SeenAlert {
        id: format!("{TRANSIT}.{n}"),
        transit_id: TRANSIT.into(),
        kind: kind.into(),
        eaeu_code: code.map(str::to_owned),
        occurred_at: at.parse::<DateTime<Utc>>().expect("a time"),
        device_id: Some(DEVICE.into()),
        repeats,
    }
}

fn kinds(expected: &[ExpectedAlert]) -> Vec<(&str, Option<&str>, bool)> {
    expected
        .iter()
        .map(|e| (e.alert.as_str(), e.eaeu_code.as_deref(), e.required))
        .collect()
}

#[test]
fn a_rope_cut_expects_a_seal_breach_with_code_01_within_two_minutes() {
    let breach = seal_breach("2026-11-17T10:00:00Z", "rope_cut");
    assert_eq!(kinds(&breach.expected), [("seal_breach", Some("01"), true)]);
    let window = &breach.expected[0];
    assert_eq!(window.from.as_deref(), Some("2026-11-17T09:58:00Z"));
    assert_eq!(window.until.as_deref(), Some("2026-11-17T10:02:00Z"));
    let case = seal_breach("2026-11-17T10:00:00Z", "case_breach");
    assert_eq!(case.expected[0].eaeu_code.as_deref(), Some("02"));
}

#[test]
fn a_crossing_outside_a_bcp_also_expects_a_deviation_and_allows_a_skipped_bcp() {
    let crossing = incident(
        IncidentKind::CrossingOutsideBcp,
        "2026-11-17T10:00:00Z",
        Some("2026-11-17T11:00:00Z"),
    );
    assert_eq!(
        kinds(&crossing.expected),
        [
            ("crossing_outside_bcp", None, true),
            ("route_deviation", Some("03"), true),
            ("skipped_bcp", None, false),
        ]
    );
    assert_eq!(
        crossing.expected[1].until.as_deref(),
        Some("2026-11-17T11:02:00Z")
    );
    assert_eq!(crossing.expected[2].until, None);
}

#[test]
fn a_silence_expects_a_tracking_gap_from_the_last_fix_before_it_and_allows_signal_lost() {
    let silent = incident(
        IncidentKind::DeviceSilent,
        "2026-11-17T10:00:00Z",
        Some("2026-11-17T14:00:00Z"),
    );
    assert_eq!(
        kinds(&silent.expected),
        [
            ("tracking_gap", Some("06"), true),
            ("signal_lost", Some("06"), false)
        ]
    );
    assert_eq!(
        silent.expected[0].from.as_deref(),
        Some("2026-11-17T09:00:00Z")
    );
    assert_eq!(
        silent.expected[0].until.as_deref(),
        Some("2026-11-17T14:02:00Z")
    );
}

#[test]
fn recorded_kinds_expect_low_battery_and_allow_overdue() {
    let low = incident(IncidentKind::LowBattery, "2026-11-17T10:00:00Z", None);
    assert_eq!(kinds(&low.expected), [("low_battery", Some("05"), true)]);
    let late = incident(IncidentKind::Overdue, "2026-11-17T10:00:00Z", None);
    assert_eq!(kinds(&late.expected), [("overdue", None, false)]);
}

#[test]
fn an_alert_of_the_right_kind_code_and_time_matches_its_incident() {
    let truth = [incident(
        IncidentKind::RouteDeviation,
        "2026-11-17T10:00:00Z",
        Some("2026-11-17T10:30:00Z"),
    )];
    let alerts = [alert(
        1,
        "route_deviation",
        Some("03"),
        "2026-11-17T10:05:00Z",
        0,
    )];
    let verdict = check(&truth, &alerts);
    assert!(verdict.exact(), "{verdict:?}");
    assert_eq!(verdict.matched.len(), 1);
    assert_eq!(verdict.matched[0].1, format!("{TRANSIT}.1"));
}

#[test]
fn an_incident_without_its_alert_is_missed() {
    let truth = [seal_breach("2026-11-17T10:00:00Z", "rope_cut")];
    let verdict = check(&truth, &[]);
    assert!(!verdict.exact());
    assert_eq!(verdict.missed.len(), 1);
    assert_eq!(verdict.missed[0].alert.alert, "seal_breach");
}

#[test]
fn an_alert_no_incident_explains_is_unexpected() {
    let alerts = [alert(1, "gnss_anomaly", None, "2026-11-17T10:00:00Z", 0)];
    let verdict = check(&[], &alerts);
    assert!(!verdict.exact());
    assert_eq!(verdict.unexpected.len(), 1);
    assert_eq!(verdict.unexpected[0].kind, "gnss_anomaly");
}

#[test]
fn an_alert_outside_the_window_or_with_another_code_does_not_match() {
    let truth = [seal_breach("2026-11-17T10:00:00Z", "rope_cut")];
    let late = [alert(
        1,
        "seal_breach",
        Some("01"),
        "2026-11-17T11:00:00Z",
        0,
    )];
    let verdict = check(&truth, &late);
    assert_eq!((verdict.missed.len(), verdict.unexpected.len()), (1, 1));
    let other_code = [alert(
        1,
        "seal_breach",
        Some("02"),
        "2026-11-17T10:00:30Z",
        0,
    )];
    let verdict = check(&truth, &other_code);
    assert_eq!((verdict.missed.len(), verdict.unexpected.len()), (1, 1));
}

#[test]
fn a_repeated_alert_stands_for_as_many_incidents_as_it_was_seen() {
    let truth = [
        incident(IncidentKind::GnssJump, "2026-11-17T10:00:00Z", None),
        incident(IncidentKind::GnssJump, "2026-11-17T16:00:00Z", None),
    ];
    let once = [alert(1, "gnss_anomaly", None, "2026-11-17T10:00:10Z", 0)];
    let verdict = check(&truth, &once);
    assert_eq!(verdict.missed.len(), 1, "{verdict:?}");
    assert_eq!(verdict.missed[0].incident.at, "2026-11-17T16:00:00Z");
    let repeated = [alert(1, "gnss_anomaly", None, "2026-11-17T10:00:10Z", 1)];
    let verdict = check(&truth, &repeated);
    assert!(verdict.exact(), "{verdict:?}");
    assert_eq!(verdict.matched.len(), 2);
}

#[test]
fn an_allowed_alert_may_come_or_not() {
    let truth = [incident(
        IncidentKind::DeviceSilent,
        "2026-11-17T10:00:00Z",
        Some("2026-11-17T14:00:00Z"),
    )];
    let gap = alert(1, "tracking_gap", Some("06"), "2026-11-17T09:55:00Z", 0);
    let lost = alert(2, "signal_lost", Some("06"), "2026-11-17T10:30:00Z", 0);
    let without = [gap.clone()];
    assert!(check(&truth, &without).exact());
    let with = [gap, lost];
    let verdict = check(&truth, &with);
    assert!(verdict.exact(), "{verdict:?}");
    assert_eq!(verdict.matched.len(), 2);
}

#[test]
fn evidence_held_out_of_coverage_at_the_end_makes_a_miss_pending() {
    let truth = [
        incident(IncidentKind::GnssJump, "2026-11-17T02:00:00Z", None),
        incident(IncidentKind::GnssJump, "2026-11-17T09:30:00Z", None),
        incident(IncidentKind::GnssJump, "2026-11-17T11:40:00Z", None),
    ];
    let end = EndOfRun {
        at: "2026-11-17T12:00:00Z".into(),
        held: vec![HeldEvidence {
            device_id: DEVICE.into(),
            since: "2026-11-17T10:00:00Z".into(),
            fixes: 12,
        }],
        wall_at: None,
    };
    let mut verdict = check(&truth, &[]);
    verdict.hold_pending(&end);
    let at = |v: &[Expectation<'_>]| v.iter().map(|e| e.incident.at.clone()).collect::<Vec<_>>();
    assert_eq!(at(&verdict.missed), ["2026-11-17T02:00:00Z"]);
    assert_eq!(
        at(&verdict.pending),
        ["2026-11-17T09:30:00Z", "2026-11-17T11:40:00Z"]
    );
}

#[test]
fn a_signal_loss_timed_after_the_run_stopped_is_set_aside_but_one_during_it_is_not() {
    let alerts = [
        alert(1, "signal_lost", Some("06"), "2026-11-17T11:59:50Z", 0),
        alert(2, "signal_lost", Some("06"), "2026-11-17T12:00:14Z", 0),
        alert(3, "wrong_direction", None, "2026-11-17T12:00:20Z", 0),
    ];
    let end = EndOfRun {
        at: "2026-11-17T11:00:00Z".into(),
        held: Vec::new(),
        wall_at: Some("2026-11-17T12:00:00.250Z".into()),
    };
    let mut verdict = check(&[], &alerts);
    verdict.set_aside_end_of_run(&end);
    let ids = |v: &[&SeenAlert]| v.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&verdict.after_end), [format!("{TRANSIT}.2")]);
    assert_eq!(
        ids(&verdict.unexpected),
        [format!("{TRANSIT}.1"), format!("{TRANSIT}.3")]
    );
    assert!(!verdict.exact());
}

#[test]
fn a_truth_file_reads_back_every_kind_of_line() {
    let transit = DeclaredTransit {
        transit_id: TRANSIT.into(),
        device_id: DEVICE.into(),
        departure_office: "kg-bishkek".into(),
        destination_office: "kz-almaty".into(),
        bcps: vec!["kordai".into()],
        declared_at: "2026-11-17T08:00:00Z".into(),
    };
    let lines = [
        TruthLine::Transit {
            transit: transit.clone(),
        },
        TruthLine::Incident(Box::new(seal_breach("2026-11-17T10:00:00Z", "rope_cut"))),
        TruthLine::Closed {
            closed: ClosedTransit {
                transit_id: TRANSIT.into(),
                at: "2026-11-17T20:00:00Z".into(),
            },
        },
        TruthLine::End {
            end_of_run: EndOfRun {
                at: "2026-11-17T21:00:00Z".into(),
                held: Vec::new(),
                wall_at: None,
            },
        },
    ];
    let text: Vec<std::io::Result<String>> = lines
        .iter()
        .map(|l| Ok(serde_json::to_string(l).expect("json")))
        .collect();
    let truth = Truth::parse(text.into_iter()).expect("the lines read back");
    assert_eq!(truth.transits, [transit]);
    assert_eq!(truth.incidents.len(), 1);
    assert_eq!(truth.incidents[0].kind, IncidentKind::SealBreach);
    assert_eq!(truth.closed.len(), 1);
    assert_eq!(truth.end.map(|e| e.at), Some("2026-11-17T21:00:00Z".into()));
    let bad = vec![Ok("{\"nothing\": 1}".to_owned())];
    let error = Truth::parse(bad.into_iter()).expect_err("not a truth line");
    assert!(format!("{error:#}").contains("line 1"), "{error:#}");
}
