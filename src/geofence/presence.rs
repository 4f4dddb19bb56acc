//! Zone presence with hysteresis: `enter` and `exit` from consecutive fixes, `cross` from a
//! segment through a zone.

use chrono::{DateTime, Utc};

use super::config::GeofenceConfig;
use super::engine::Found;
use super::event::EventKind;
use super::track::Sample;
use super::zones::{ZoneIndex, ZoneSet};

/// The device's standing with one zone: confirmed inside, or on the way to a flip.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ZoneState {
    pub zone: u32,
    pub inside: bool,
    /// Consecutive fixes on the other side of `inside`.
    pending: u32,
    pending_since: DateTime<Utc>,
}

impl ZoneState {
    pub(crate) fn is_settled_outside(&self) -> bool {
        !self.inside && self.pending == 0
    }
}

/// Updates `states` with the fix `cur`. A zone flips when a fix is `zone_margin_m` beyond its
/// edge or after `zone_confirm_fixes` fixes in a row on the new side; the event carries the
/// time of the first of those fixes.
pub(crate) fn update(
    index: &ZoneIndex,
    cfg: &GeofenceConfig,
    states: &mut Vec<ZoneState>,
    cur: &Sample,
    out: &mut Vec<Found>,
) {
    for z in cur.zones.iter() {
        if !states.iter().any(|s| s.zone == z) {
            states.push(ZoneState {
                zone: z,
                inside: false,
                pending: 0,
                pending_since: cur.t,
            });
        }
    }
    for s in states.iter_mut() {
        let raw = cur.zones.contains(s.zone);
        if raw == s.inside {
            s.pending = 0;
            continue;
        }
        s.pending += 1;
        if s.pending == 1 {
            s.pending_since = cur.t;
        }
        let confirmed = s.pending >= cfg.zone_confirm_fixes.max(1)
            || index.boundary_distance_m(s.zone, cur.c) >= cfg.zone_margin_m;
        if confirmed {
            s.inside = raw;
            s.pending = 0;
            let zone = index.zone(s.zone);
            let (zone_id, zone_kind) = (zone.id.clone(), zone.kind);
            let kind = if raw {
                EventKind::Enter { zone_id, zone_kind }
            } else {
                EventKind::Exit { zone_id, zone_kind }
            };
            out.push(Found::new(kind, s.pending_since, Some(cur.c)));
        }
    }
    states.retain(|s| s.inside || s.pending > 0);
}

/// `cross` for every zone the segment `prev`–`cur` passes through while neither fix, nor the
/// device's zone state, has it inside. The event time is interpolated at the entry point.
pub(crate) fn crossings(
    index: &ZoneIndex,
    states: &[ZoneState],
    candidates: &ZoneSet,
    prev: &Sample,
    cur: &Sample,
    out: &mut Vec<Found>,
) {
    for z in candidates.iter() {
        let known = states
            .iter()
            .any(|s| s.zone == z && !s.is_settled_outside());
        if known || prev.zones.contains(z) || cur.zones.contains(z) {
            continue;
        }
        if let Some(f) = index.first_crossing(z, prev.c, cur.c) {
            let zone = index.zone(z);
            let kind = EventKind::Cross {
                zone_id: zone.id.clone(),
                zone_kind: zone.kind,
            };
            out.push(Found::new(kind, interpolate(prev.t, cur.t, f), None));
        }
    }
}

/// The time at fraction `f` of the way from `a` to `b`.
pub(crate) fn interpolate(a: DateTime<Utc>, b: DateTime<Utc>, f: f64) -> DateTime<Utc> {
    let span_ms = (b - a).num_milliseconds() as f64;
    let offset = (span_ms * f.clamp(0.0, 1.0)).round() as i64;
    a + chrono::Duration::milliseconds(offset)
}
