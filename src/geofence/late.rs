//! Late fixes: evaluated at their own time against their neighbours in the history window.
//!
//! A late fix adds facts and never rewrites the present: the device's current zone, border,
//! route and stop state stay as the newer fixes made them. What the late fix reveals about
//! the past is recorded with its true time:
//!
//! - a zone it is inside while neither time neighbour was (and the neighbours' segment did
//!   not already give `cross`) is a visit: `enter` and `exit`, timed where the segments
//!   from and to the neighbours meet the zone edge;
//! - a settled position in a country neither neighbour was in is an excursion across the
//!   border and back, judged like any crossing (near a post, or outside a BCP);
//! - a position implausible against both neighbours is a GNSS anomaly and is not kept.
//!
//! Deviation, wrong direction, stops and tracking gaps follow the device-time sequence as it
//! was evaluated and are not rewound.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::anomaly::implausible;
use super::engine::{coord, Engine, Found};
use super::event::EventKind;
use super::presence::interpolate;
use super::track::{DeviceTrack, Sample};
use crate::telemetry::Fix;

pub(crate) fn on_fix(engine: &Engine, track: &mut DeviceTrack, fix: &Fix, found: &mut Vec<Found>) {
    let cfg = engine.config();
    let c = coord(fix.point);
    let window = track.history.to_vec();
    let at = window.partition_point(|s| s.t <= fix.t);
    let prev = at.checked_sub(1).and_then(|i| window.get(i)).copied();
    let next = window.get(at).copied();
    let bad_prev = prev.and_then(|p| implausible(cfg, p.c, p.t, c, fix.t));
    let bad_next = next.and_then(|n| implausible(cfg, c, fix.t, n.c, n.t));
    let agrees = (prev.is_some() && bad_prev.is_none()) || (next.is_some() && bad_next.is_none());
    if let (false, Some(kind)) = (agrees, bad_prev.or(bad_next)) {
        return found.push(Found::new(kind, fix.t, Some(c)));
    }
    let index = engine.index();
    let hint = prev.or(next).and_then(|s| s.country.part());
    let cur = Sample {
        t: fix.t,
        c,
        zones: index.zones.at(c),
        country: index.countries.locate(c, hint),
    };
    visits(engine, prev.as_ref(), &cur, next.as_ref(), found);
    excursion(engine, prev.as_ref(), &cur, next.as_ref(), found);
    track.insert(at, cur, cfg.history_len);
}

fn visits(
    engine: &Engine,
    prev: Option<&Sample>,
    cur: &Sample,
    next: Option<&Sample>,
    found: &mut Vec<Found>,
) {
    let zones = &engine.index().zones;
    for z in cur.zones.iter() {
        let seen = |s: Option<&Sample>| s.is_some_and(|s| s.zones.contains(z));
        if seen(prev) || seen(next) {
            continue;
        }
        if let (Some(p), Some(n)) = (prev, next) {
            if zones.first_crossing(z, p.c, n.c).is_some() {
                continue;
            }
        }
        let zone = zones.zone(z);
        let enter_at = prev.map_or(cur.t, |p| {
            interpolate(
                p.t,
                cur.t,
                zones.first_crossing(z, p.c, cur.c).unwrap_or(1.0),
            )
        });
        let exit_at = next.map_or(cur.t, |n| {
            interpolate(
                cur.t,
                n.t,
                zones.first_crossing(z, cur.c, n.c).unwrap_or(0.0),
            )
        });
        let (zone_id, zone_kind) = (zone.id.clone(), zone.kind);
        let enter = EventKind::Enter {
            zone_id: zone_id.clone(),
            zone_kind,
        };
        found.push(Found::new(enter, enter_at, Some(cur.c)));
        if next.is_some() {
            found.push(Found::new(
                EventKind::Exit { zone_id, zone_kind },
                exit_at,
                None,
            ));
        }
    }
}

fn excursion(
    engine: &Engine,
    prev: Option<&Sample>,
    cur: &Sample,
    next: Option<&Sample>,
    found: &mut Vec<Found>,
) {
    let countries = &engine.index().countries;
    let Some(part) = cur.country.part().filter(|_| cur.country.settled) else {
        return;
    };
    let to = countries.country_of(part);
    let country = |s: Option<&Sample>| {
        s.and_then(|s| s.country.part())
            .map(|p| countries.country_of(p))
    };
    let (Some(before), after) = (country(prev), country(next)) else {
        return;
    };
    if before == to || after == Some(to) {
        return;
    }
    let (from, to_code) = (countries.code_of(before), countries.code(part));
    let near_post = |a: Coord<f64>, b: Coord<f64>| engine.scan(Some(a), b).touched_post;
    let via_in = prev.and_then(|p| near_post(p.c, cur.c));
    let via_out = next.and_then(|n| near_post(cur.c, n.c));
    let bcp = |z: u32| engine.index().zones.zone(z).bcp_id.clone();
    match (via_in, via_out) {
        (Some(zin), _) => {
            let kind = EventKind::BorderCrossed {
                from,
                to: to_code,
                bcp_id: bcp(zin),
            };
            found.push(Found::new(kind, cur.t, Some(cur.c)));
        }
        _ => {
            // Dated where the movement from the earlier neighbour met the border line.
            let (c, t) = prev.map_or((cur.c, cur.t), |p| {
                super::border::line_crossing(engine.index(), before, (p.c, p.t), cur)
            });
            let kind = EventKind::CrossingOutsideBcp {
                from,
                to: to_code,
                confirmed_at: Some(cur.t),
                confirmed_point: Some(crate::telemetry::GeoPoint {
                    lat: cur.c.y,
                    lon: cur.c.x,
                }),
            };
            found.push(Found::new(kind, t, Some(c)));
        }
    }
}

/// Where the device was at `t`: the last kept fix at or before it, else the first after.
pub(crate) fn position_at(track: &DeviceTrack, t: DateTime<Utc>) -> Option<Coord<f64>> {
    let window = track.history.to_vec();
    let at = window.partition_point(|s| s.t <= t);
    at.checked_sub(1)
        .and_then(|i| window.get(i))
        .or_else(|| window.get(at))
        .map(|s| s.c)
}
