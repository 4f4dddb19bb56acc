//! What Caravan should raise for each truth record, and the check of the alerts it raised
//! against the truth: matched, missed and unexpected.
//!
//! Each incident kind maps to the alert kinds the tracking semantics (docs/domain.md) give it:
//!
//! | incident | alerts (EAEU code) |
//! |---|---|
//! | `route_deviation` | `route_deviation` (03) |
//! | `unauthorised_stop` | `unauthorised_stop` |
//! | `seal_breach` | `seal_breach` (01 rope cut, 02 case breach) |
//! | `crossing_outside_bcp` | `crossing_outside_bcp` and `route_deviation` (03), since the detour leaves the corridor; `skipped_bcp` once the transit reaches a later checkpoint (allowed, not required) |
//! | `gnss_jump` | `gnss_anomaly` |
//! | `device_silent` | `tracking_gap` (06) when the device is heard again; `signal_lost` (06) when Caravan's own clock sees the silence, which depends on the speedup (allowed) |
//! | `low_battery` (recorded) | `low_battery` (05) |
//! | `overdue` (recorded) | `overdue`, once Caravan's clock passes the declared deadline (allowed) |
//!
//! An alert repeated while unresolved is counted on the open one (`repeats`), so one alert
//! may stand for several incidents of the same kind on the same transit.
//!
//! When the run stops, its devices fall silent, and Caravan's own clock raises
//! `signal_lost` on every transit still open: those timed at or after the run stopped are
//! set aside ([`Verdict::after_end`]), neither expected nor unexpected.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::incident::{IncidentKind, Injected};
use super::truth::EndOfRun;

/// Clock slack on every window: fixes are whole seconds and detection needs a fix or two.
const SLACK_S: i64 = 120;
/// How long before the silence the tracking gap may start: the last fix before it.
const LAST_FIX_BEFORE_S: i64 = 3600;
/// How long after an incident its evidence may still be on the way: the next fixes (hourly
/// while stopped) that show it, or show it over.
const EVIDENCE_AFTER_S: i64 = 3600;

/// One alert Caravan should raise for an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedAlert {
    /// The alert kind as the API names it, e.g. `route_deviation`.
    pub alert: String,
    /// The EAEU navigation-seal code the alert must carry, where the kind has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eaeu_code: Option<String>,
    /// The alert's `occurred_at` falls in this window (RFC 3339; open when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// False for an alert that may or may not come, depending on timing the simulator does
    /// not control; it is then allowed, not required.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn shifted(t: &str, by_s: i64) -> Option<String> {
    let t = parse(t)? + Duration::seconds(by_s);
    Some(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

impl ExpectedAlert {
    fn new(alert: &str, code: Option<&str>, from: Option<String>, until: Option<String>) -> Self {
        Self {
            alert: alert.to_owned(),
            eaeu_code: code.map(str::to_owned),
            from,
            until,
            required: true,
        }
    }

    fn allowed(mut self) -> Self {
        self.required = false;
        self
    }

    /// Whether an alert that occurred at `t` fits the window.
    fn fits(&self, t: DateTime<Utc>) -> bool {
        let after = self.from.as_deref().and_then(parse).is_none_or(|f| t >= f);
        let before = self.until.as_deref().and_then(parse).is_none_or(|u| t <= u);
        after && before
    }
}

/// The alerts Caravan should raise for `incident` (see the module table).
pub fn alerts_for(incident: &Injected) -> Vec<ExpectedAlert> {
    let at = incident.at.as_str();
    let from = shifted(at, -SLACK_S);
    let end = incident.until.as_deref().unwrap_or(at);
    let until = shifted(end, SLACK_S);
    let window = |alert, code| ExpectedAlert::new(alert, code, from.clone(), until.clone());
    match incident.kind {
        IncidentKind::RouteDeviation => vec![window("route_deviation", Some("03"))],
        IncidentKind::UnauthorisedStop => vec![window("unauthorised_stop", None)],
        IncidentKind::SealBreach => {
            let code = match incident.event.as_deref() {
                Some("rope_cut") => "01",
                Some("case_breach") => "02",
                _ => "07",
            };
            vec![window("seal_breach", Some(code))]
        }
        IncidentKind::CrossingOutsideBcp => vec![
            window("crossing_outside_bcp", None),
            window("route_deviation", Some("03")),
            ExpectedAlert::new("skipped_bcp", None, from.clone(), None).allowed(),
        ],
        IncidentKind::GnssJump => vec![window("gnss_anomaly", None)],
        IncidentKind::DeviceSilent => vec![
            ExpectedAlert::new(
                "tracking_gap",
                Some("06"),
                shifted(at, -LAST_FIX_BEFORE_S),
                until.clone(),
            ),
            ExpectedAlert::new("signal_lost", Some("06"), None, None).allowed(),
        ],
        IncidentKind::LowBattery => vec![ExpectedAlert::new(
            "low_battery",
            Some("05"),
            from.clone(),
            None,
        )],
        IncidentKind::Overdue => vec![ExpectedAlert::new("overdue", None, None, None).allowed()],
    }
}

/// An alert as the API shows it, with the fields the check reads.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SeenAlert {
    pub id: String,
    pub transit_id: String,
    pub kind: String,
    #[serde(default)]
    pub eaeu_code: Option<String>,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub device_id: Option<String>,
    /// Times the condition was seen again while the alert was unresolved.
    #[serde(default)]
    pub repeats: u32,
}

/// One expected alert of one incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation<'a> {
    pub incident: &'a Injected,
    pub alert: &'a ExpectedAlert,
}

/// The outcome of the check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict<'a> {
    /// Each required or allowed expectation with the id of the alert that met it.
    pub matched: Vec<(Expectation<'a>, String)>,
    /// Required expectations no alert met.
    pub missed: Vec<Expectation<'a>>,
    /// Alerts on the run's transits that no incident explains.
    pub unexpected: Vec<&'a SeenAlert>,
    /// Required expectations not met whose evidence had not reached Caravan when the run
    /// ended (see [`Verdict::hold_pending`]): neither met nor missed.
    pub pending: Vec<Expectation<'a>>,
    /// Alerts that follow from the run ending, not from anything a vehicle did (see
    /// [`Verdict::set_aside_end_of_run`]): neither expected nor unexpected.
    pub after_end: Vec<&'a SeenAlert>,
}

impl Verdict<'_> {
    /// True when every required alert was raised and no alert is unexplained.
    pub fn exact(&self) -> bool {
        self.missed.is_empty() && self.unexpected.is_empty()
    }

    /// Moves to `pending` the missed expectations whose evidence Caravan could not have had
    /// when the run ended: incidents of a device that still held fixes or seal events out of
    /// coverage, from an hour before the oldest held one; and incidents that ended within
    /// the run's last hour (or after it, such as a silence not yet over).
    pub fn hold_pending(&mut self, end: &EndOfRun) {
        let ended = parse(&end.at);
        let (pending, missed) = std::mem::take(&mut self.missed).into_iter().partition(|e| {
            let incident = e.incident;
            let Some(last) = parse(incident.until.as_deref().unwrap_or(&incident.at)) else {
                return false;
            };
            let reach = last + Duration::seconds(EVIDENCE_AFTER_S);
            let held = end.held.iter().any(|h| {
                h.device_id == incident.device_id && parse(&h.since).is_some_and(|s| reach >= s)
            });
            held || ended.is_some_and(|end| reach >= end)
        });
        self.missed = missed;
        self.pending.extend(pending);
    }
}

impl<'a> Verdict<'a> {
    /// Moves out of `unexpected` the `signal_lost` alerts timed at or after the moment the
    /// run stopped publishing (`wall_at`, or `at` for older truth files): Caravan raises
    /// them, on its own clock, for every device on a transit once the devices have stopped.
    /// A device that fell silent during the run is timed before it, and stays unexpected.
    pub fn set_aside_end_of_run(&mut self, end: &EndOfRun) {
        let Some(stopped) = parse(end.wall_at.as_deref().unwrap_or(&end.at)) else {
            return;
        };
        let (after, during) = std::mem::take(&mut self.unexpected)
            .into_iter()
            .partition(|a| a.kind == "signal_lost" && a.occurred_at >= stopped);
        self.unexpected = during;
        self.after_end.extend::<Vec<_>>(after);
    }
}

/// Checks `alerts` (of the run's transits) against the incidents of the truth.
///
/// An alert meets an expectation of the same kind on the same transit (and device, when
/// the alert names one) whose window holds its `occurred_at`, with the EAEU code expected.
/// Each alert meets one expectation, plus one more per repeat (a repeated condition is
/// counted on the open alert); required expectations are served first, earliest first.
pub fn check<'a>(incidents: &'a [Injected], alerts: &'a [SeenAlert]) -> Verdict<'a> {
    let mut capacity: BTreeMap<&str, u32> = alerts
        .iter()
        .map(|a| (a.id.as_str(), a.repeats.saturating_add(1)))
        .collect();
    let mut used: BTreeMap<&str, bool> = BTreeMap::new();
    let mut expectations: Vec<Expectation<'a>> = incidents
        .iter()
        .flat_map(|incident| {
            incident
                .expected
                .iter()
                .map(move |alert| Expectation { incident, alert })
        })
        .collect();
    expectations.sort_by(|a, b| {
        (!a.alert.required, &a.incident.at).cmp(&(!b.alert.required, &b.incident.at))
    });
    let mut verdict = Verdict::default();
    for e in expectations {
        let fits = |a: &&SeenAlert| {
            let first = !used.get(a.id.as_str()).copied().unwrap_or(false);
            Some(a.transit_id.as_str()) == e.incident.transit_id.as_deref()
                && a.kind == e.alert.alert
                && a.device_id
                    .as_deref()
                    .is_none_or(|d| d == e.incident.device_id)
                && capacity.get(a.id.as_str()).copied().unwrap_or(0) > 0
                // A repeat has no time or code of its own: only the first use checks them.
                && (!first
                    || (e.alert.fits(a.occurred_at)
                        && (e.alert.eaeu_code.is_none() || a.eaeu_code == e.alert.eaeu_code)))
        };
        // Prefer an alert not used yet, so that each incident finds its own when it can.
        let pick = alerts
            .iter()
            .filter(fits)
            .min_by_key(|a| used.get(a.id.as_str()).copied().unwrap_or(false));
        match pick {
            Some(a) => {
                if let Some(left) = capacity.get_mut(a.id.as_str()) {
                    *left -= 1;
                }
                used.insert(a.id.as_str(), true);
                verdict.matched.push((e, a.id.clone()));
            }
            None if e.alert.required => verdict.missed.push(e),
            None => {}
        }
    }
    verdict.unexpected = alerts
        .iter()
        .filter(|a| !used.get(a.id.as_str()).copied().unwrap_or(false))
        .collect();
    verdict
}
