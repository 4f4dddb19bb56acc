//! Border crossings, judged on settled positions so coarse border data and roads along a
//! border raise no alarm.
//!
//! A fix is *settled* in a country when it lies in a part that is not an enclave and farther
//! than the border tolerance from any border. The device's country only changes between
//! settled fixes. When it does, the movement since the last settled fix in the old country
//! must have passed near a post of a BCP serving either country; otherwise the crossing is
//! outside a BCP. Wobbling along a border never settles on the other side, and a road
//! through an enclave never settles inside it.

use chrono::{DateTime, Utc};

use super::engine::Found;
use super::event::EventKind;
use super::index::GeofenceIndex;
use super::track::Sample;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BorderState {
    /// Country (index) of the last settled fix, and its time.
    settled: Option<(u16, DateTime<Utc>)>,
    /// The last time the movement passed near a post zone, and that zone.
    touch: Option<(DateTime<Utc>, u32)>,
}

impl BorderState {
    pub(crate) fn touched(&mut self, t: DateTime<Utc>, post_zone: u32) {
        self.touch = Some((t, post_zone));
    }

    pub(crate) fn update(&mut self, index: &GeofenceIndex, cur: &Sample, out: &mut Vec<Found>) {
        let Some(part) = cur.country.part.filter(|_| cur.country.settled) else {
            return;
        };
        let to = index.countries.country_of(part);
        if let Some((from, _)) = self.settled.filter(|(from, _)| *from != to) {
            let (from_code, to_code) = (index.countries.code_of(from), index.countries.code(part));
            let kind = match self.via(from, to, index) {
                Some(zone) => EventKind::BorderCrossed {
                    from: from_code,
                    to: to_code,
                    bcp_id: index.zones.zone(zone).bcp_id.clone(),
                },
                None => EventKind::CrossingOutsideBcp {
                    from: from_code,
                    to: to_code,
                },
            };
            out.push(Found::new(kind, cur.t, Some(cur.c)));
        }
        self.settled = Some((to, cur.t));
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
