//! Risk: a score and a lane (green, yellow, red) per transit, with the reasons that produced
//! it, from the rules in `rules/risk.toml`. Recomputed whenever an input changes: the
//! declaration, the carrier's history, or the transit's live alerts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::Transit;
use super::rules::RulesError;
use crate::geofence::Severity;

pub const EMBEDDED: &str = include_str!("../../rules/risk.toml");

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRules {
    pub lanes: Lanes,
    #[serde(default)]
    pub hs_chapters: Vec<ChapterRule>,
    #[serde(default)]
    pub value: Vec<ValueRule>,
    pub carrier: CarrierRule,
    pub alerts: AlertPoints,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lanes {
    pub yellow_from: u32,
    pub red_from: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapterRule {
    pub chapters: Vec<String>,
    pub points: u32,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueRule {
    pub currency: String,
    pub above: f64,
    pub points: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierRule {
    pub points_per_seizure: u32,
    pub points_per_confirmed_breach: u32,
    pub points_per_false_alarm: u32,
    pub cap: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertPoints {
    pub warning: u32,
    pub critical: u32,
}

impl RiskRules {
    /// # Errors
    /// Not TOML of this shape, or lanes out of order.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let rules: Self = toml::from_str(text)?;
        if rules.lanes.yellow_from > rules.lanes.red_from {
            return Err(RulesError::Invalid(
                "yellow_from must not exceed red_from".into(),
            ));
        }
        Ok(rules)
    }

    /// # Errors
    /// Only if the shipped file is broken, which the tests rule out.
    pub fn embedded() -> Result<Self, RulesError> {
        Self::parse(EMBEDDED)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    #[default]
    Green,
    Yellow,
    Red,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub points: u32,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub score: u32,
    pub lane: Lane,
    pub reasons: Vec<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessed_at: Option<DateTime<Utc>>,
}

/// What earlier transits of a carrier ended in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierHistory {
    pub seizures: u32,
    /// Seal breaches not resolved as a false alarm.
    pub confirmed_breaches: u32,
    pub false_alarms: u32,
}

/// Scores a transit.
pub fn assess(
    rules: &RiskRules,
    transit: &Transit,
    history: &CarrierHistory,
    at: DateTime<Utc>,
) -> RiskAssessment {
    let mut reasons = Vec::new();
    goods_reasons(rules, transit, &mut reasons);
    let c = &rules.carrier;
    let carrier = (history.seizures * c.points_per_seizure
        + history.confirmed_breaches * c.points_per_confirmed_breach
        + history.false_alarms * c.points_per_false_alarm)
        .min(c.cap);
    if carrier > 0 {
        reasons.push(Reason {
            points: carrier,
            reason: format!(
                "carrier history: {} seizure(s), {} confirmed seal breach(es)",
                history.seizures, history.confirmed_breaches
            ),
        });
    }
    for alert in transit.alerts.iter().filter(|a| a.is_unresolved()) {
        let points = match alert.severity {
            Severity::Critical => rules.alerts.critical,
            Severity::Warning => rules.alerts.warning,
            Severity::Info => 0,
        };
        if points > 0 {
            let reason = format!("open alert {} ({})", alert.id, alert.kind.as_str());
            reasons.push(Reason { points, reason });
        }
    }
    let score = reasons.iter().map(|r| r.points).sum();
    let lane = if score >= rules.lanes.red_from {
        Lane::Red
    } else if score >= rules.lanes.yellow_from {
        Lane::Yellow
    } else {
        Lane::Green
    };
    RiskAssessment {
        score,
        lane,
        reasons,
        assessed_at: Some(at),
    }
}

fn goods_reasons(rules: &RiskRules, transit: &Transit, reasons: &mut Vec<Reason>) {
    for rule in &rules.hs_chapters {
        let hit = transit
            .goods
            .iter()
            .any(|g| rule.chapters.iter().any(|c| c == g.chapter()));
        if hit {
            reasons.push(Reason {
                points: rule.points,
                reason: rule.reason.clone(),
            });
        }
    }
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for g in &transit.goods {
        *totals.entry(g.currency.as_str()).or_default() += g.value;
    }
    for (currency, total) in totals {
        let best = rules
            .value
            .iter()
            .filter(|r| r.currency == currency && total > r.above)
            .max_by_key(|r| r.points);
        match best {
            Some(rule) => reasons.push(Reason {
                points: rule.points,
                reason: format!(
                    "declared value {total:.0} {currency} above {:.0}",
                    rule.above
                ),
            }),
            None if !rules.value.iter().any(|r| r.currency == currency) => reasons.push(Reason {
                points: 0,
                reason: format!("value in {currency} is not scored: no rule for that currency"),
            }),
            None => {}
        }
    }
}
