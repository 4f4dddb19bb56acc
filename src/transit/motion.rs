//! What the transit knows of its vehicle's movement: the newest fix, progress along the
//! route, the recent moving speed (for the ETA) and the time spent stationary (for the
//! corridor speeds without delay).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use geo::Coord;
use serde::{Deserialize, Serialize};

use super::line::{haversine_m, RouteLine};
use super::rules::TransitRules;
use crate::telemetry::GeoPoint;

/// Recent speeds kept at most; the time window of the rules usually binds first.
const MAX_RECENT: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_t: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
    /// Progress along the route at the newest fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chainage_m: Option<f64>,
    /// Moving speeds of recent fixes, oldest first.
    #[serde(default)]
    pub recent: VecDeque<(DateTime<Utc>, f64)>,
    /// Stationary time outside BCPs since the current section started.
    #[serde(default)]
    pub stopped_s: i64,
    /// When the transit left the checkpoint that starts its current section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_started_at: Option<DateTime<Utc>>,
}

impl Motion {
    /// Folds in one fix. Fixes older than the newest are history: the ETA and the section
    /// speeds only look forward, so they are left out here (the engine still checks them).
    pub fn observe(
        &mut self,
        rules: &TransitRules,
        line: &RouteLine,
        t: DateTime<Utc>,
        point: GeoPoint,
        speed_kmh: Option<f64>,
        at_bcp: bool,
    ) {
        if self.last_t.is_some_and(|last| t <= last) {
            return;
        }
        let here = Coord {
            x: point.lon,
            y: point.lat,
        };
        let implied = match (self.last_t, self.point) {
            (Some(t0), Some(p0)) => {
                let dt = (t - t0).num_milliseconds() as f64 / 1000.0;
                let d = haversine_m(
                    Coord {
                        x: p0.lon,
                        y: p0.lat,
                    },
                    here,
                );
                (dt > 0.0).then(|| d / dt * 3.6)
            }
            _ => None,
        };
        let speed = speed_kmh.or(implied).unwrap_or(0.0);
        if let Some(t0) = self.last_t {
            if speed < rules.speed.moving_above_kmh && !at_bcp {
                self.stopped_s += (t - t0).num_seconds();
            }
        }
        if speed >= rules.speed.moving_above_kmh {
            self.recent.push_back((t, speed));
        }
        let window = Duration::minutes(rules.speed.recent_window_min);
        while self
            .recent
            .front()
            .is_some_and(|(t0, _)| t - *t0 > window || self.recent.len() > MAX_RECENT)
        {
            self.recent.pop_front();
        }
        self.last_t = Some(t);
        self.point = Some(point);
        self.chainage_m = line.locate(here).map(|a| a.chainage_m);
    }

    /// Mean speed of the recent moving fixes, if there are any.
    pub fn moving_speed_kmh(&self) -> Option<f64> {
        let n = self.recent.len();
        (n > 0).then(|| self.recent.iter().map(|(_, s)| s).sum::<f64>() / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0)
            .single()
            .expect("time")
            + Duration::minutes(minute)
    }

    #[test]
    fn the_moving_speed_forgets_fixes_older_than_the_window() {
        let rules = TransitRules::embedded().expect("rules");
        let line = RouteLine::new(vec![Coord { x: 73.0, y: 40.0 }, Coord { x: 74.0, y: 40.0 }]);
        let mut motion = Motion::default();
        let p = |lon| GeoPoint { lat: 40.0, lon };
        motion.observe(&rules, &line, at(0), p(73.0), Some(80.0), false);
        motion.observe(&rules, &line, at(90), p(73.1), Some(40.0), false);
        motion.observe(&rules, &line, at(100), p(73.2), Some(60.0), false);
        assert_eq!(motion.moving_speed_kmh(), Some(50.0));
    }

    #[test]
    fn stationary_time_outside_a_bcp_counts_as_stopped() {
        let rules = TransitRules::embedded().expect("rules");
        let line = RouteLine::new(vec![Coord { x: 73.0, y: 40.0 }, Coord { x: 74.0, y: 40.0 }]);
        let mut motion = Motion::default();
        let p = GeoPoint {
            lat: 40.0,
            lon: 73.5,
        };
        motion.observe(&rules, &line, at(0), p, Some(0.0), false);
        motion.observe(&rules, &line, at(30), p, Some(0.0), false);
        motion.observe(&rules, &line, at(50), p, Some(0.0), true);
        motion.observe(&rules, &line, at(10), p, Some(0.0), false);
        assert_eq!(motion.stopped_s, 30 * 60);
        assert!(motion.chainage_m.is_some_and(|c| c > 40_000.0));
    }
}
