//! GNSS anomalies: moves no truck can make, and jamming the device reports.
//!
//! An anomalous fix is reported and kept out of zone, border and corridor state, so one
//! spoofed position cannot raise a crossing alarm. If the next fix agrees with the rejected
//! one rather than with the track, the track re-anchors there (the earlier fixes were the
//! bad ones), without judging the jump as a movement.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::config::GeofenceConfig;
use super::event::{AnomalyReason, EventKind};
use super::metric::{haversine_m, M_PER_DEG};

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct AnomalyState {
    /// The last rejected fix. Boxed: nearly every device has none, and every device would
    /// otherwise carry its room.
    suspect: Option<Box<(Coord<f64>, DateTime<Utc>)>>,
    /// The device reported jamming and has not reported its end.
    pub jamming: bool,
}

/// What to do with a fix after the plausibility check.
pub(crate) enum Verdict {
    Accept,
    /// Accept, but the move from the previous fix is not a movement to judge.
    Reanchor,
    Reject(EventKind),
}

/// The anomaly implied by moving from `a` at `ta` to `b` at `tb`, if any.
pub(crate) fn implausible(
    cfg: &GeofenceConfig,
    a: Coord<f64>,
    ta: DateTime<Utc>,
    b: Coord<f64>,
    tb: DateTime<Utc>,
) -> Option<EventKind> {
    // The flat-degree distance bounds the true one from above, so short moves (nearly
    // every fix) skip the trigonometry.
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    if (dx * dx + dy * dy).sqrt() * M_PER_DEG <= cfg.anomaly_min_distance_m {
        return None;
    }
    let distance = haversine_m(a, b);
    if distance.is_nan() || distance <= cfg.anomaly_min_distance_m {
        return None;
    }
    let dt_s = (tb - ta).num_milliseconds().abs() as f64 / 1000.0;
    let speed = if dt_s > 0.0 {
        distance / dt_s * 3.6
    } else {
        f64::INFINITY
    };
    if speed <= cfg.max_speed_kmh {
        return None;
    }
    let reason = if dt_s == 0.0 {
        AnomalyReason::Jump
    } else if distance > cfg.teleport_m {
        AnomalyReason::Teleport
    } else {
        AnomalyReason::ImpossibleSpeed
    };
    Some(EventKind::GnssAnomaly {
        reason,
        implied_speed_kmh: speed.is_finite().then_some(speed),
        distance_m: Some(distance),
    })
}

impl AnomalyState {
    pub(crate) fn judge(
        &mut self,
        cfg: &GeofenceConfig,
        last: Option<(Coord<f64>, DateTime<Utc>)>,
        c: Coord<f64>,
        t: DateTime<Utc>,
    ) -> Verdict {
        let Some((lc, lt)) = last else {
            self.suspect = None;
            return Verdict::Accept;
        };
        let Some(kind) = implausible(cfg, lc, lt, c, t) else {
            self.suspect = None;
            return Verdict::Accept;
        };
        let agrees_with_suspect = self
            .suspect
            .as_deref()
            .is_some_and(|&(sc, st)| implausible(cfg, sc, st, c, t).is_none());
        if agrees_with_suspect {
            self.suspect = None;
            return Verdict::Reanchor;
        }
        self.suspect = Some(Box::new((c, t)));
        Verdict::Reject(kind)
    }
}
