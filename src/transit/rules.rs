//! The figures the transit rules use, read from `rules/transit.toml` (see the comments there
//! for where each comes from). Kept as data so the customs services can tune them.

use std::collections::BTreeMap;

use chrono::Duration;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::maps::CountryCode;

/// The shipped rules, compiled in so Caravan runs with no configuration.
pub const EMBEDDED: &str = include_str!("../../rules/transit.toml");

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitRules {
    pub speed: SpeedRules,
    pub dwell: DwellRules,
    pub alerts: AlertRules,
    pub time_zone: TimeZoneRules,
}

/// The IANA time zone of each post: its own when listed, otherwise its country's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneRules {
    #[serde(default)]
    pub country: BTreeMap<String, String>,
    #[serde(default)]
    pub post: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedRules {
    pub without_delay_kmh: f64,
    pub with_delay_kmh: f64,
    pub moving_above_kmh: f64,
    pub recent_window_min: i64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DwellRules {
    pub default_bcp_h: f64,
    #[serde(default)]
    pub bcp_h: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRules {
    pub low_battery_pct: f64,
    pub deviation_critical_km: f64,
}

/// A rules file that does not parse or holds an impossible figure.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("the rules file does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the rules file is not usable: {0}")]
    Invalid(String),
}

impl TransitRules {
    /// # Errors
    /// The text is not valid TOML of this shape, or a speed or dwell is not positive.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let rules: Self = toml::from_str(text)?;
        let speeds = [rules.speed.with_delay_kmh, rules.speed.without_delay_kmh];
        if speeds.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(RulesError::Invalid("speeds must be positive".into()));
        }
        let dwells = std::iter::once(&rules.dwell.default_bcp_h).chain(rules.dwell.bcp_h.values());
        if dwells.clone().any(|h| !h.is_finite() || *h < 0.0) {
            return Err(RulesError::Invalid("dwell times must be 0 or more".into()));
        }
        let zones = rules.time_zone.country.iter().chain(&rules.time_zone.post);
        if let Some((key, zone)) = zones.into_iter().find(|(_, z)| z.parse::<Tz>().is_err()) {
            return Err(RulesError::Invalid(format!(
                "time zone {zone:?} of {key} is not in the IANA time zone database"
            )));
        }
        Ok(rules)
    }

    /// The shipped rules.
    ///
    /// # Errors
    /// Only if the shipped file is broken, which the tests rule out.
    pub fn embedded() -> Result<Self, RulesError> {
        Self::parse(EMBEDDED)
    }

    /// The shipped rules, parsed once per process, for readers that need them per request.
    ///
    /// # Errors
    /// The shipped file does not parse (a build defect, caught by the tests).
    pub fn shipped() -> Result<&'static Self, RulesError> {
        static SHIPPED: std::sync::OnceLock<TransitRules> = std::sync::OnceLock::new();
        if let Some(rules) = SHIPPED.get() {
            return Ok(rules);
        }
        let parsed = Self::embedded()?;
        Ok(SHIPPED.get_or_init(|| parsed))
    }

    /// Typical time from arriving at a BCP's first post to leaving its far post.
    pub fn dwell(&self, bcp_id: &str) -> Duration {
        let hours = self
            .dwell
            .bcp_h
            .get(bcp_id)
            .copied()
            .unwrap_or(self.dwell.default_bcp_h);
        Duration::seconds((hours * 3600.0) as i64)
    }

    /// Time to drive `metres` at `kmh`.
    pub fn drive(metres: f64, kmh: f64) -> Duration {
        if kmh <= 0.0 || !metres.is_finite() {
            return Duration::zero();
        }
        Duration::seconds((metres / 1000.0 / kmh * 3600.0) as i64)
    }

    /// The time zone of a post: its own, else its country's, else UTC.
    pub fn zone(&self, post_id: &str, country: CountryCode) -> Tz {
        let zones = &self.time_zone;
        zones
            .post
            .get(post_id)
            .or_else(|| zones.country.get(country.as_str()))
            .and_then(|name| name.parse().ok())
            .unwrap_or(Tz::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_parse_with_the_cpmm_figures() {
        let rules = TransitRules::embedded().expect("shipped rules");
        assert_eq!(rules.speed.with_delay_kmh, 23.4);
        assert_eq!(rules.speed.without_delay_kmh, 42.0);
        assert_eq!(rules.dwell("irkeshtam"), Duration::seconds(35_640));
        assert_eq!(rules.dwell("khorgos"), Duration::seconds(185_040));
    }

    /// The offset east of UTC, in hours, of `post_id` in December 2026.
    fn hours_east(rules: &TransitRules, post_id: &str, country: &str) -> f64 {
        use chrono::{Offset, TimeZone};
        let country = CountryCode::parse(country).expect("code");
        let zone = rules.zone(post_id, country);
        let instant = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        f64::from(
            instant
                .with_timezone(&zone)
                .offset()
                .fix()
                .local_minus_utc(),
        ) / 3600.0
    }

    #[test]
    fn each_post_keeps_the_clock_of_its_own_zone() {
        let rules = TransitRules::embedded().expect("shipped rules");
        assert_eq!(hours_east(&rules, "irkeshtam-kg", "KG"), 6.0);
        assert_eq!(hours_east(&rules, "irkeshtam-cn", "CN"), 8.0);
        assert_eq!(hours_east(&rules, "khorgos-kz", "KZ"), 5.0);
        assert_eq!(hours_east(&rules, "kyakhta-ru", "RU"), 8.0);
        assert_eq!(hours_east(&rules, "naushki-ru", "RU"), 8.0);
        assert_eq!(hours_east(&rules, "tashanta-ru", "RU"), 7.0);
        assert_eq!(hours_east(&rules, "tashanta-mn", "MN"), 7.0);
        assert_eq!(hours_east(&rules, "takeshiken-mn", "MN"), 7.0);
        assert_eq!(hours_east(&rules, "ulastai-mn", "MN"), 7.0);
        assert_eq!(hours_east(&rules, "erenhot-mn", "MN"), 8.0);
        assert_eq!(hours_east(&rules, "termez-af", "AF"), 4.5);
        assert_eq!(hours_east(&rules, "nowhere-zz", "ZZ"), 0.0);
    }

    #[test]
    fn a_rules_file_with_an_unknown_time_zone_is_refused() {
        let text = EMBEDDED.replace("\"Asia/Bishkek\"", "\"Asia/Frunze-Old\"");
        let refused = TransitRules::parse(&text);
        assert!(
            matches!(&refused, Err(RulesError::Invalid(m)) if m.contains("Asia/Frunze-Old")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_rules_file_with_a_zero_speed_is_refused() {
        let text = EMBEDDED.replace("with_delay_kmh = 23.4", "with_delay_kmh = 0.0");
        assert!(matches!(
            TransitRules::parse(&text),
            Err(RulesError::Invalid(_))
        ));
    }
}
