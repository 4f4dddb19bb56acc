//! Signal loss, with the longer allowance of known coverage gaps.
//!
//! Silence is a property of time passing, so the pipeline asks on a timer
//! ([`Engine::check_silence`](super::Engine::check_silence)) instead of the engine reading a
//! clock. What the device did while silent is judged from its buffered fixes once they
//! arrive: each pair of consecutive fixes further apart than the allowance is a
//! `tracking_gap`, whether it arrived live or in a backlog.

use chrono::{DateTime, Utc};

use super::config::GeofenceConfig;
use super::engine::Found;
use super::event::{EventKind, ZoneKind};
use super::history::History;
use super::track::Sample;
use super::zones::ZoneIndex;

/// Fixes between two re-estimations of the reporting period (the median costs a sort).
const PERIOD_REFRESH: u32 = 8;

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SignalState {
    /// Set while a `signal_lost` is outstanding.
    lost_since: Option<DateTime<Utc>>,
    /// The device's own reporting period, once it has shown one. `u32` seconds (136 years)
    /// rather than `i64`: every device carries this state, and the 8 bytes count.
    period_s: Option<u32>,
    fixes_since_estimate: u32,
}

/// The median interval of the fixes in `history`, once there are enough of them.
fn median_interval_s(history: &[Sample]) -> Option<i64> {
    let mut gaps: Vec<i64> = history
        .windows(2)
        .map(|w| (w[1].t - w[0].t).num_seconds())
        .filter(|g| *g > 0)
        .collect();
    if gaps.len() < 3 {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

/// Silence allowed after a fix: the coverage gap's timeout inside one, else the configured
/// number of reporting periods.
pub(crate) fn allowance_s(
    zones: &ZoneIndex,
    cfg: &GeofenceConfig,
    period_s: i64,
    at: Option<&Sample>,
) -> (i64, Option<u32>) {
    let normal = period_s * i64::from(cfg.silence_periods.max(1));
    let gap = at.and_then(|s| {
        s.zones
            .iter()
            .filter(|z| zones.zone(*z).kind == ZoneKind::CoverageGap)
            .max_by_key(|z| zones.zone(*z).timeout_s.unwrap_or(0))
    });
    match gap.and_then(|z| Some((i64::from(zones.zone(z).timeout_s?), z))) {
        Some((timeout, z)) if timeout > normal => (timeout, Some(z)),
        _ => (normal, None),
    }
}

impl SignalState {
    /// The device's reporting period: the median interval of its recent fixes, capped, or
    /// the configured one until it has shown enough fixes.
    pub(crate) fn period_s(&self, cfg: &GeofenceConfig) -> i64 {
        self.period_s
            .map_or(cfg.reporting_period_s, i64::from)
            .min(cfg.max_reporting_period_s)
    }

    pub(crate) fn fix_accepted(&mut self, history: &History) {
        self.fixes_since_estimate += 1;
        // A new device gets its period as soon as its fixes show one. Past the first few
        // fixes, one without a period (its times do not advance: no GNSS time yet, or many
        // fixes within a second) waits for the refresh like the others, rather than sorting
        // its whole history on every fix.
        let early = self.period_s.is_none() && history.len() <= PERIOD_REFRESH as usize;
        if early || self.fixes_since_estimate >= PERIOD_REFRESH {
            self.fixes_since_estimate = 0;
            self.period_s = median_interval_s(&history.to_vec())
                .and_then(|p| u32::try_from(p).ok())
                .or(self.period_s);
        }
    }

    pub(crate) fn check(
        &mut self,
        zones: &ZoneIndex,
        cfg: &GeofenceConfig,
        track_period_s: i64,
        last_fix: Option<&Sample>,
        last_received: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Found> {
        let last = last_received?;
        if self.lost_since.is_some() {
            return None;
        }
        let (allowed, gap) = allowance_s(zones, cfg, track_period_s, last_fix);
        let silent_s = (now - last).num_seconds();
        if silent_s <= allowed {
            return None;
        }
        self.lost_since = Some(last);
        let kind = EventKind::SignalLost {
            silent_s,
            coverage_gap_id: gap.map(|z| zones.zone(z).id.clone()),
        };
        let at = last + chrono::Duration::seconds(allowed);
        Some(Found::new(kind, at, last_fix.map(|s| s.c)))
    }

    /// The last time the device was heard, while a loss is outstanding.
    pub(crate) fn lost_since(&self) -> Option<DateTime<Utc>> {
        self.lost_since
    }

    /// Resumes a loss raised before a restart, so that it is not raised again.
    pub(crate) fn resume_lost(&mut self, since: DateTime<Utc>) {
        self.lost_since = Some(since);
    }

    /// A message arrived: closes an outstanding loss.
    pub(crate) fn heard(&mut self, received_at: DateTime<Utc>) -> Option<Found> {
        let since = self.lost_since.take()?;
        let kind = EventKind::SignalRestored {
            silent_s: (received_at - since).num_seconds(),
        };
        Some(Found::new(kind, received_at, None))
    }
}
