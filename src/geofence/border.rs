//! Border crossings, judged on settled positions so coarse border data and roads along a
//! border raise no alarm.
//!
//! A fix is *settled* in a country when it lies in a part that is not an enclave and farther
//! than the border tolerance from any border. The device's country only changes between
//! settled fixes. When it does, the movement since the last settled fix in the old country
//! must have passed near a post of a BCP serving either country; otherwise the crossing is
//! outside a BCP. Wobbling along a border never settles on the other side, and a road
//! through an enclave never settles inside it.
//!
//! An off-BCP crossing is evidence, so it is dated and placed where the movement first left
//! the old country: the point where the segment between the last fix inside it and the next
//! fix meets the border line, with the time interpolated along that segment. The fix that
//! settled the device in the new country (often kilometres and tens of minutes later) is kept
//! apart as the confirmation.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::engine::Found;
use super::event::EventKind;
use super::index::GeofenceIndex;
use super::presence::interpolate;
use super::track::Sample;
use crate::telemetry::GeoPoint;

/// Halvings of the movement segment when looking for the border line on it: a 100 km
/// segment is resolved to 6 m, finer than the border data.
const BISECTIONS: u32 = 24;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct BorderState {
    /// Country (index) of the last settled fix, and its time.
    settled: Option<(u16, DateTime<Utc>)>,
    /// The last time the movement passed near a post zone, and that zone.
    touch: Option<(DateTime<Utc>, u32)>,
    /// Where and when the movement first left the settled country since it settled there.
    /// Boxed: set only while a device is near a border, and every device carries the state.
    left: Option<Box<(Coord<f64>, DateTime<Utc>)>>,
}

impl BorderState {
    /// Whether the saved indices name one of `countries` countries and `zones` zones.
    pub(crate) fn fits(&self, countries: usize, zones: usize) -> bool {
        self.settled.is_none_or(|(c, _)| usize::from(c) < countries)
            && self.touch.is_none_or(|(_, z)| (z as usize) < zones)
    }

    pub(crate) fn touched(&mut self, t: DateTime<Utc>, post_zone: u32) {
        self.touch = Some((t, post_zone));
    }

    /// `prev` is the fix before `cur`, if it is still a trusted neighbour.
    pub(crate) fn update(
        &mut self,
        index: &GeofenceIndex,
        prev: Option<&Sample>,
        cur: &Sample,
        out: &mut Vec<Found>,
    ) {
        self.note_departure(index, prev, cur);
        let Some(part) = cur.country.part().filter(|_| cur.country.settled) else {
            return;
        };
        let to = index.countries.country_of(part);
        if let Some((from, _)) = self.settled.filter(|(from, _)| *from != to) {
            let (from_code, to_code) = (index.countries.code_of(from), index.countries.code(part));
            match self.via(from, to, index) {
                Some(zone) => {
                    let kind = EventKind::BorderCrossed {
                        from: from_code,
                        to: to_code,
                        bcp_id: index.zones.zone(zone).bcp_id.clone(),
                    };
                    out.push(Found::new(kind, cur.t, Some(cur.c)));
                }
                None => {
                    let (c, t) = self.left.as_deref().copied().unwrap_or((cur.c, cur.t));
                    let kind = EventKind::CrossingOutsideBcp {
                        from: from_code,
                        to: to_code,
                        confirmed_at: Some(cur.t),
                        confirmed_point: Some(point(cur.c)),
                    };
                    out.push(Found::new(kind, t, Some(c)));
                }
            }
        }
        self.settled = Some((to, cur.t));
        self.left = None;
    }

    /// Keeps the first place the movement left the settled country, between the previous
    /// fix (still inside it) and this one.
    fn note_departure(&mut self, index: &GeofenceIndex, prev: Option<&Sample>, cur: &Sample) {
        let (Some((home, _)), None) = (self.settled, &self.left) else {
            return;
        };
        let country = |s: &Sample| s.country.part().map(|p| index.countries.country_of(p));
        if country(cur) == Some(home) {
            return;
        }
        self.left = Some(Box::new(match prev {
            Some(p) if country(p) == Some(home) => line_crossing(index, home, (p.c, p.t), cur),
            _ => (cur.c, cur.t),
        }));
    }

    /// The post touched since the last settled fix, if it serves either country.
    fn via(&self, from: u16, to: u16, index: &GeofenceIndex) -> Option<u32> {
        let (settled_at, (touched_at, zone)) = (self.settled?.1, self.touch?);
        let z = index.zones.zone(zone);
        let codes = [index.countries.code_of(from), index.countries.code_of(to)];
        let serves = [z.country, z.peer]
            .iter()
            .flatten()
            .any(|c| codes.contains(c));
        (touched_at >= settled_at && serves).then_some(zone)
    }
}

/// Where the movement from `a` (inside `country`) to `b` (outside it) meets the border, and
/// when, interpolating device time along the segment.
pub(crate) fn line_crossing(
    index: &GeofenceIndex,
    country: u16,
    a: (Coord<f64>, DateTime<Utc>),
    b: &Sample,
) -> (Coord<f64>, DateTime<Utc>) {
    let countries = &index.countries;
    let at = |f: f64| Coord {
        x: a.0.x + (b.c.x - a.0.x) * f,
        y: a.0.y + (b.c.y - a.0.y) * f,
    };
    let (mut inside, mut outside) = (0.0, 1.0);
    let mut hint = None;
    for _ in 0..BISECTIONS {
        let mid = (inside + outside) / 2.0;
        let part = countries.part_at(at(mid), hint);
        hint = part.or(hint);
        if part.is_some_and(|p| countries.country_of(p) == country) {
            inside = mid;
        } else {
            outside = mid;
        }
    }
    (at(outside), interpolate(a.1, b.t, outside))
}

fn point(c: Coord<f64>) -> GeoPoint {
    GeoPoint { lat: c.y, lon: c.x }
}
