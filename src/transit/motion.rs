//! What the transit knows of its vehicle's movement: the newest fix, progress along the
//! route, the recent moving speed (for the ETA) and the time spent stationary (for the
//! corridor speeds without delay).

use chrono::{DateTime, Utc};
use geo::Coord;
use serde::{Deserialize, Serialize};

use super::line::{haversine_m, RouteLine};
use super::rules::TransitRules;
use crate::telemetry::GeoPoint;

/// Slots the window of recent speeds is cut into: the mean is exact to a twelfth of the
/// window (five minutes of the shipped hour).
const SLOTS: i64 = 12;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "MotionRecord")]
pub struct Motion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_t: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
    /// Progress along the route at the newest fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chainage_m: Option<f64>,
    /// Moving speeds of recent fixes, summed per slot of time, oldest first.
    #[serde(default, skip_serializing_if = "RecentSpeeds::is_empty")]
    pub speeds: RecentSpeeds,
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
        let window_min = rules.speed.recent_window_min;
        if speed >= rules.speed.moving_above_kmh {
            self.speeds.add(t, speed, window_min);
        }
        self.speeds.forget_before(t, window_min);
        self.last_t = Some(t);
        self.point = Some(point);
        self.chainage_m = line.locate(here).map(|a| a.chainage_m);
    }

    /// Mean speed of the recent moving fixes, if there are any.
    pub fn moving_speed_kmh(&self) -> Option<f64> {
        self.speeds.mean_kmh()
    }
}

/// The moving speeds of the last window of time, as a sum and a count per slot (a twelfth
/// of the window). The ETA needs only their mean; a list of every fix's speed held up to
/// 256 entries per truck (kilobytes each, and in every transit record written).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentSpeeds(Vec<SpeedSlot>);

/// 16 bytes: a truck that drives holds a window of these.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedSlot {
    /// Start of the slot, in whole minutes since 1970 (device time): `i32` reaches the year
    /// 6053. A record written with a larger number (by a peer, or edited) is read at the
    /// bound rather than refused.
    #[serde(deserialize_with = "minutes")]
    from_min: i32,
    fixes: u32,
    sum_kmh: f64,
}

/// Minutes as `i32`, a number beyond it at its bound.
fn minutes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    i64::deserialize(d).map(clamped)
}

fn clamped(minutes: i64) -> i32 {
    i32::try_from(minutes).unwrap_or(if minutes < 0 { i32::MIN } else { i32::MAX })
}

impl RecentSpeeds {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    fn slot_min(window_min: i64) -> i64 {
        (window_min / SLOTS).max(1)
    }

    /// Counts a moving fix at `t`, newer than every fix counted before.
    fn add(&mut self, t: DateTime<Utc>, speed_kmh: f64, window_min: i64) {
        let slot = Self::slot_min(window_min);
        let from_min = clamped(t.timestamp().div_euclid(60).div_euclid(slot) * slot);
        match self.0.last_mut() {
            Some(last) if last.from_min >= from_min => {
                last.fixes = last.fixes.saturating_add(1);
                last.sum_kmh += speed_kmh;
            }
            _ => {
                if self.0.capacity() == 0 {
                    // Room for the whole window at once: the deque never grows past it.
                    self.0.reserve_exact(SLOTS as usize + 2);
                }
                self.0.push(SpeedSlot {
                    from_min,
                    fixes: 1,
                    sum_kmh: speed_kmh,
                });
            }
        }
    }

    /// Drops the slots whose every fix is older than the window before `t`.
    fn forget_before(&mut self, t: DateTime<Utc>, window_min: i64) {
        let slot = Self::slot_min(window_min);
        let now_min = t.timestamp().div_euclid(60);
        let stale = self
            .0
            .iter()
            .take_while(|s| now_min.saturating_sub(i64::from(s.from_min) + slot) >= window_min)
            .count();
        // A dozen slots at most: shifting them costs less than a ring's extra word in every
        // transit.
        self.0.drain(..stale);
    }

    fn mean_kmh(&self) -> Option<f64> {
        let fixes: f64 = self.0.iter().map(|s| f64::from(s.fixes)).sum();
        let sum: f64 = self.0.iter().map(|s| s.sum_kmh).sum();
        (fixes > 0.0).then(|| sum / fixes)
    }

    /// The newest slots a window holds, of slots read from a record (a peer's or an edited
    /// one could hold any number).
    fn newest(mut self) -> Self {
        let keep = SLOTS as usize + 1;
        if self.0.len() > keep {
            self.0.drain(..self.0.len() - keep);
        }
        self.0.shrink_to_fit();
        self
    }

    /// Speeds as records written before the slots held them: one entry per fix.
    fn from_fixes(fixes: &[(DateTime<Utc>, f64)]) -> Self {
        let mut speeds = Self::default();
        let mut newest: Option<DateTime<Utc>> = None;
        for (t, kmh) in fixes {
            if newest.is_none_or(|n| *t > n) {
                speeds.add(*t, *kmh, SLOTS * 5);
                newest = Some(*t);
            }
        }
        speeds.newest()
    }
}

/// A transit record's motion as stored or received: records written before the speeds
/// were held per slot carry one entry per fix under `recent`.
#[derive(Deserialize)]
struct MotionRecord {
    #[serde(default)]
    last_t: Option<DateTime<Utc>>,
    #[serde(default)]
    point: Option<GeoPoint>,
    #[serde(default)]
    chainage_m: Option<f64>,
    #[serde(default)]
    speeds: Option<RecentSpeeds>,
    #[serde(default)]
    recent: Vec<(DateTime<Utc>, f64)>,
    #[serde(default)]
    stopped_s: i64,
    #[serde(default)]
    section_started_at: Option<DateTime<Utc>>,
}

impl From<MotionRecord> for Motion {
    fn from(r: MotionRecord) -> Self {
        Self {
            last_t: r.last_t,
            point: r.point,
            chainage_m: r.chainage_m,
            speeds: r
                .speeds
                .map(RecentSpeeds::newest)
                .unwrap_or_else(|| RecentSpeeds::from_fixes(&r.recent)),
            stopped_s: r.stopped_s,
            section_started_at: r.section_started_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

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

    #[test]
    fn a_day_of_fixes_every_ten_seconds_holds_a_window_of_slots() {
        let rules = TransitRules::embedded().expect("rules");
        let line = RouteLine::new(vec![Coord { x: 73.0, y: 40.0 }, Coord { x: 74.0, y: 40.0 }]);
        let mut motion = Motion::default();
        let start = at(0);
        for i in 0..8_640_i32 {
            let t = start + Duration::seconds(10 * i64::from(i));
            let lon = 73.0 + f64::from(i) * 0.001;
            // 60 km/h for the first hours, 90 km/h for the last hour.
            let kmh = if i >= 8_640 - 360 { 90.0 } else { 60.0 };
            motion.observe(
                &rules,
                &line,
                t,
                GeoPoint { lat: 40.0, lon },
                Some(kmh),
                false,
            );
        }
        assert!(motion.speeds.0.len() <= SLOTS as usize + 1);
        assert!(motion.speeds.0.capacity() <= SLOTS as usize + 2);
        // The last hour, to a slot: the mean is the last hour's speed, not the day's.
        let mean = motion.moving_speed_kmh().expect("moving");
        assert!((85.0..=90.0).contains(&mean), "{mean}");
        // The record written for the transit stays a few hundred bytes.
        let json = serde_json::to_string(&motion).expect("json");
        assert!(json.len() < 1_000, "{} bytes: {json}", json.len());
    }

    #[test]
    fn a_record_written_with_one_speed_per_fix_is_read_into_slots() {
        let json = serde_json::json!({
            "last_t": at(10),
            "recent": [[at(0), 40.0], [at(5), 60.0], [at(10), 80.0]],
            "stopped_s": 30,
        });
        let motion: Motion = serde_json::from_value(json).expect("an earlier record");
        assert_eq!(motion.moving_speed_kmh(), Some(60.0));
        assert_eq!(motion.stopped_s, 30);
        let again: Motion =
            serde_json::from_str(&serde_json::to_string(&motion).expect("json")).expect("read");
        assert_eq!(again, motion);
    }

    /// A driving truck holds a window of slots ([`SLOTS`] and two of room).
    #[test]
    fn a_speed_slot_stays_within_its_memory_budget() {
        assert!(size_of::<SpeedSlot>() <= 16, "{} B", size_of::<SpeedSlot>());
    }

    #[test]
    fn a_record_with_more_slots_than_a_window_keeps_the_newest() {
        let slots: Vec<serde_json::Value> = (0..1_000_i64)
            .map(|i| serde_json::json!({ "from_min": i * 5, "fixes": u32::MAX, "sum_kmh": 60.0 }))
            .chain([serde_json::json!({ "from_min": i64::MAX, "fixes": 1, "sum_kmh": 1.0 })])
            .collect();
        let json = serde_json::json!({ "speeds": slots });
        let mut motion: Motion = serde_json::from_value(json).expect("slots");
        assert_eq!(motion.speeds.0.len(), SLOTS as usize + 1);
        // Beyond what a slot holds: read at the bound.
        assert_eq!(motion.speeds.0.last().map(|s| s.from_min), Some(i32::MAX));
        // Counting on and forgetting from the extremes neither panics nor wraps.
        let rules = TransitRules::embedded().expect("rules");
        let line = RouteLine::new(vec![Coord { x: 73.0, y: 40.0 }, Coord { x: 74.0, y: 40.0 }]);
        motion.observe(
            &rules,
            &line,
            at(0),
            GeoPoint {
                lat: 40.0,
                lon: 73.0,
            },
            Some(80.0),
            false,
        );
        assert!(motion.speeds.0.len() <= SLOTS as usize + 1);
        assert!(motion.moving_speed_kmh().is_some());
    }
}
