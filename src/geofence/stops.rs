//! Stops outside authorised places.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::config::GeofenceConfig;
use super::engine::Found;
use super::event::EventKind;
use super::metric::Local;

/// Where and since when the vehicle has been stationary.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct StopState {
    anchor: Option<(Coord<f64>, DateTime<Utc>)>,
    last_still: Option<DateTime<Utc>>,
    alarmed: bool,
    /// The newest fix's speed, reported or implied, showed the vehicle standing still.
    still: bool,
}

impl StopState {
    /// The vehicle stood still at its newest fix (a speed, not only the lack of one, said so).
    pub(crate) fn is_still(&self) -> bool {
        self.still
    }

    /// `speed_kmh` is the device's, or implied by the previous fix; `authorised` says the fix
    /// is inside a BCP post or customs office zone.
    pub(crate) fn update(
        &mut self,
        cfg: &GeofenceConfig,
        c: Coord<f64>,
        t: DateTime<Utc>,
        speed_kmh: Option<f64>,
        authorised: bool,
        out: &mut Vec<Found>,
    ) {
        let slow = speed_kmh.is_none_or(|s| s < cfg.stop_speed_kmh);
        self.still = speed_kmh.is_some_and(|s| s < cfg.stop_speed_kmh);
        let near = slow
            && self
                .anchor
                .is_some_and(|(a, _)| Local::at(a).distance(c) <= cfg.stop_radius_m);
        match self.anchor {
            Some((_, since)) if slow && near => {
                self.last_still = Some(t);
                let duration_s = (t - since).num_seconds();
                if !self.alarmed && !authorised && duration_s > cfg.stop_max_s {
                    self.alarmed = true;
                    let kind = EventKind::UnauthorisedStop { since, duration_s };
                    out.push(Found::new(kind, t, Some(c)));
                }
            }
            Some((a, since)) if !self.alarmed && !authorised => {
                // Leaving a stop that no fix inside showed to be long (a parked tracker may
                // record only hourly): the first moving fix, still at the stop, shows it.
                let duration_s = (t - since).num_seconds();
                if duration_s > cfg.stop_max_s && Local::at(a).distance(c) <= cfg.stop_radius_m {
                    let kind = EventKind::UnauthorisedStop { since, duration_s };
                    out.push(Found::new(kind, t, Some(c)));
                    out.push(Found::new(EventKind::StopEnded { duration_s }, t, Some(c)));
                }
                self.last_still = None;
                self.anchor = slow.then_some((c, t));
            }
            _ => {
                if let (true, Some((_, since)), Some(still)) =
                    (self.alarmed, self.anchor, self.last_still)
                {
                    let kind = EventKind::StopEnded {
                        duration_s: (still - since).num_seconds(),
                    };
                    out.push(Found::new(kind, t, Some(c)));
                }
                self.alarmed = false;
                self.last_still = None;
                self.anchor = slow.then_some((c, t));
            }
        }
    }
}
