//! Corridor performance in the CAREC CPMM sense: time at each BCP, and speed with and
//! without delay on each section of a corridor.
//!
//! - **Time at a BCP**: from entering the first post's control zone to leaving the far
//!   post's zone, per transit; over a period, its median and 90th percentile.
//! - **Section speed** between two consecutive checkpoints: the distance along the route
//!   over the time from leaving one to leaving the next (so the dwell at a BCP ending the
//!   section is part of it). *With delay* divides by all of that time; *without delay*
//!   leaves out the time at the BCP and the time stationary elsewhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One transit's passage of one BCP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BcpPassage {
    pub bcp_id: String,
    pub transit_id: String,
    /// Entering the first post's zone.
    pub entered_at: DateTime<Utc>,
    pub entered_post: String,
    /// Leaving the far post's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_post: Option<String>,
}

impl BcpPassage {
    pub fn duration_s(&self) -> Option<i64> {
        self.left_at.map(|l| (l - self.entered_at).num_seconds())
    }
}

/// One transit's run over one section (two consecutive checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectionRun {
    pub from: String,
    pub to: String,
    pub transit_id: String,
    pub distance_m: f64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Time at the BCP ending the section plus time stationary outside BCPs.
    pub delay_s: i64,
}

impl SectionRun {
    pub fn total_s(&self) -> i64 {
        (self.ended_at - self.started_at).num_seconds()
    }
}

/// How long something took over a set of transits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub median_s: f64,
    pub p90_s: f64,
    pub mean_s: f64,
}

/// The distribution of `values` (seconds), or `None` when empty. Percentiles interpolate
/// linearly between the closest ranks.
pub fn distribution(values: &[i64]) -> Option<Distribution> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let rank = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
    };
    Some(Distribution {
        count: sorted.len(),
        median_s: pct(0.5),
        p90_s: pct(0.9),
        mean_s: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

/// Time at one BCP over the passages completed within `[from, to)`.
pub fn bcp_times(
    passages: &[BcpPassage],
    bcp_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<Distribution> {
    let values: Vec<i64> = passages
        .iter()
        .filter(|p| p.bcp_id == bcp_id && p.left_at.is_some_and(|l| l >= from && l < to))
        .filter_map(BcpPassage::duration_s)
        .collect();
    distribution(&values)
}

/// CPMM speeds of one section over a set of runs: total distance over total time, so long
/// runs weigh more than short ones, as in the CPMM averages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectionSpeed {
    pub from: String,
    pub to: String,
    pub runs: usize,
    pub speed_with_delay_kmh: f64,
    pub speed_without_delay_kmh: f64,
}

pub fn section_speed(runs: &[SectionRun]) -> Option<SectionSpeed> {
    let first = runs.first()?;
    let distance_km: f64 = runs.iter().map(|r| r.distance_m / 1000.0).sum();
    let total_h: f64 = runs.iter().map(|r| r.total_s() as f64 / 3600.0).sum();
    let moving_h: f64 = runs
        .iter()
        .map(|r| (r.total_s() - r.delay_s).max(0) as f64 / 3600.0)
        .sum();
    let speed = |h: f64| if h > 0.0 { distance_km / h } else { 0.0 };
    Some(SectionSpeed {
        from: first.from.clone(),
        to: first.to.clone(),
        runs: runs.len(),
        speed_with_delay_kmh: speed(total_h),
        speed_without_delay_kmh: speed(moving_h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0)
            .single()
            .expect("time")
    }

    fn passage(hours: i64) -> BcpPassage {
        BcpPassage {
            bcp_id: "irkeshtam".into(),
            transit_id: format!("t{hours}"),
            entered_at: t0(),
            entered_post: "irkeshtam-cn".into(),
            left_at: Some(t0() + Duration::hours(hours)),
            left_post: Some("irkeshtam-kg".into()),
        }
    }

    #[test]
    fn bcp_times_give_the_median_and_the_90th_percentile() {
        let passages: Vec<_> = (1..=10).map(passage).collect();
        let d = bcp_times(&passages, "irkeshtam", t0(), t0() + Duration::days(1))
            .expect("ten passages");
        assert_eq!(d.count, 10);
        assert_eq!(d.median_s, 5.5 * 3600.0);
        assert!((d.p90_s - 9.1 * 3600.0).abs() < 1.0, "{}", d.p90_s);
    }

    #[test]
    fn an_unfinished_passage_is_not_counted() {
        let mut open = passage(3);
        open.left_at = None;
        assert_eq!(
            bcp_times(&[open], "irkeshtam", t0(), t0() + Duration::days(1)),
            None
        );
    }

    #[test]
    fn speed_without_delay_leaves_out_the_delay() {
        let run = SectionRun {
            from: "kashgar".into(),
            to: "irkeshtam".into(),
            transit_id: "t".into(),
            distance_m: 210_000.0,
            started_at: t0(),
            ended_at: t0() + Duration::hours(10),
            delay_s: 5 * 3600,
        };
        let s = section_speed(&[run]).expect("one run");
        assert_eq!(s.speed_with_delay_kmh, 21.0);
        assert_eq!(s.speed_without_delay_kmh, 42.0);
    }

    proptest! {
        #[test]
        fn the_median_lies_between_the_extremes_and_below_the_p90(
            values in proptest::collection::vec(0i64..1_000_000, 1..50)
        ) {
            let d = distribution(&values).expect("non-empty");
            let (lo, hi) = (*values.iter().min().unwrap_or(&0), *values.iter().max().unwrap_or(&0));
            prop_assert!(d.median_s >= lo as f64 && d.median_s <= hi as f64);
            prop_assert!(d.median_s <= d.p90_s);
            prop_assert!(d.p90_s <= hi as f64);
        }
    }
}
