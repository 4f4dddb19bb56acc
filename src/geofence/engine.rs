//! The pure update: (device state, report) → events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use geo::Coord;

use super::anomaly::Verdict;
use super::config::GeofenceConfig;
use super::event::{
    AnomalyReason, CorridorPosition, DeviceGeoState, EventKind, GeofenceEvent, ZoneKind,
};
use super::index::{GeofenceIndex, Route};
use super::metric::haversine_m;
use super::routes::RouteCache;
use super::track::{DeviceTrack, Sample};
use super::zones::ZoneSet;
use super::{late, presence, signal, GeofenceError};
use crate::telemetry::{Fix, GeoPoint, Report, ReportBody, SealEvent, Status};

/// An event before it is stamped with the device, lateness and detection time.
pub(crate) struct Found {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub point: Option<Coord<f64>>,
}

impl Found {
    pub(crate) fn new(kind: EventKind, at: DateTime<Utc>, point: Option<Coord<f64>>) -> Self {
        Self { kind, at, point }
    }
}

/// The zones near one fix, gathered in a single R-tree query.
pub(crate) struct ZoneScan {
    /// Zones containing the fix.
    pub at: ZoneSet,
    /// Zones whose box the movement segment comes near, for `cross`.
    pub near: ZoneSet,
    /// A post zone the movement passed within `bcp_proximity_m` of.
    pub touched_post: Option<u32>,
}

/// Runs the geofence checks. Cheap to clone; holds only the shared index.
#[derive(Clone)]
pub struct Engine {
    index: Arc<GeofenceIndex>,
}

impl Engine {
    pub fn new(index: Arc<GeofenceIndex>) -> Self {
        Self { index }
    }

    pub fn index(&self) -> &GeofenceIndex {
        &self.index
    }

    pub fn config(&self) -> &GeofenceConfig {
        &self.index.config
    }

    /// Resolves `route` and assigns it to the device.
    ///
    /// # Errors
    /// As [`GeofenceIndex::build_route`]; the track keeps its previous route then.
    pub fn assign_route(
        &self,
        track: &mut DeviceTrack,
        route: &Route,
    ) -> Result<(), GeofenceError> {
        let path = self.index.build_route(route)?;
        track.assign_route(path);
        Ok(())
    }

    /// As [`Engine::assign_route`], through `routes`, which builds the polyline of each
    /// distinct list of legs once and shares it.
    ///
    /// # Errors
    /// As [`GeofenceIndex::build_route`]; the track keeps its previous route then.
    pub fn assign_shared_route(
        &self,
        routes: &mut RouteCache,
        track: &mut DeviceTrack,
        route: &Route,
    ) -> Result<(), GeofenceError> {
        let path = routes.resolve(&self.index, route)?;
        track.assign_route(path);
        Ok(())
    }

    /// Evaluates one report. Reports older than what the device was already evaluated at are
    /// evaluated at their own time and their events are marked late (see the module docs).
    pub fn apply(
        &self,
        track: &mut DeviceTrack,
        report: &Report,
        detected_at: DateTime<Utc>,
    ) -> Vec<GeofenceEvent> {
        let t = report.occurred_at();
        let late = track.newest_t.is_some_and(|n| t < n);
        let mut events = Vec::new();
        let mut found = Vec::new();
        if !matches!(report.body, ReportBody::Conn { .. }) {
            if let Some(f) = track.signal.heard(report.received_at) {
                events.push(self.stamp(track, f, false, detected_at));
            }
            track.last_received_at = track.last_received_at.max(Some(report.received_at));
        }
        match &report.body {
            ReportBody::Fix(fix) if late => late::on_fix(self, track, fix, &mut found),
            ReportBody::Fix(fix) => self.on_fix(track, fix, &mut found),
            ReportBody::Seal(seal) => self.on_seal(track, seal, late, &mut found),
            ReportBody::Status(status) => self.on_status(track, status, late, &mut found),
            ReportBody::Conn { .. } => {}
        }
        if !late && !matches!(report.body, ReportBody::Conn { .. }) {
            track.newest_t = Some(t);
        }
        events.extend(
            found
                .into_iter()
                .map(|f| self.stamp(track, f, late, detected_at)),
        );
        events
    }

    /// Evaluates a batch (a backlog upload) in device-time order, whatever order it came in.
    pub fn apply_batch(
        &self,
        track: &mut DeviceTrack,
        reports: &[Report],
        detected_at: DateTime<Utc>,
    ) -> Vec<GeofenceEvent> {
        let mut order: Vec<&Report> = reports.iter().collect();
        order.sort_by_key(|r| (r.occurred_at(), r.seq()));
        order
            .into_iter()
            .flat_map(|r| self.apply(track, r, detected_at))
            .collect()
    }

    /// Signal loss, for the pipeline's timer: `Some` once when the device has been silent
    /// longer than its allowance at `now`; nothing more until it is heard again.
    pub fn check_silence(
        &self,
        track: &mut DeviceTrack,
        now: DateTime<Utc>,
    ) -> Option<GeofenceEvent> {
        let mut period = track.signal.period_s(self.config());
        if track.stop.is_still() {
            period = period.max(self.config().stopped_reporting_period_s);
        }
        let last_fix = track.last();
        let found = track.signal.check(
            &self.index.zones,
            self.config(),
            period,
            last_fix.as_ref(),
            track.last_received_at,
            now,
        )?;
        Some(self.stamp(track, found, false, now))
    }

    /// Where the device is now, for the device view.
    pub fn snapshot(&self, track: &DeviceTrack) -> DeviceGeoState {
        let last = track.last();
        let corridor = match &track.route {
            Some(r) => r
                .last
                .map(|p| (p, &*r.path.network, Some(r.path.id().to_owned()))),
            None => track
                .corridor
                .as_deref()
                .map(|p| (*p, &self.index.corridors, None)),
        };
        DeviceGeoState {
            country: last
                .and_then(|s| s.country.part())
                .map(|p| self.index.countries.code(p)),
            zones: track
                .zones
                .iter()
                .filter(|z| z.inside)
                .map(|z| self.index.zones.zone(z.zone).id.clone())
                .collect(),
            corridor: corridor.map(|(p, net, route_id)| CorridorPosition {
                id: net.corridor_id(p.corridor).to_owned(),
                route_id,
                distance_m: p.distance_m,
                chainage_m: p.chainage_m,
            }),
            last_fix_at: last.map(|s| s.t),
            point: last.map(|s| GeoPoint {
                lat: s.c.y,
                lon: s.c.x,
            }),
        }
    }

    fn on_fix(&self, track: &mut DeviceTrack, fix: &Fix, found: &mut Vec<Found>) {
        let cfg = self.config();
        let c = coord(fix.point);
        let last_sample = track.last();
        let last = last_sample.map(|s| (s.c, s.t));
        let prev = match track.anomaly.judge(cfg, last, c, fix.t) {
            Verdict::Reject(kind) => return found.push(Found::new(kind, fix.t, Some(c))),
            Verdict::Accept => last_sample,
            Verdict::Reanchor => None,
        };
        let scan = self.scan(prev.as_ref().map(|p| p.c), c);
        let hint = last_sample.and_then(|s| s.country.part());
        let cur = Sample {
            t: fix.t,
            c,
            zones: scan.at,
            country: self.index.countries.locate(c, hint),
        };
        // Worked on as a `Vec`, held without room to spare (see `DeviceTrack::zones`).
        let mut states = std::mem::take(&mut track.zones).into_vec();
        presence::update(&self.index.zones, cfg, &mut states, &cur, found);
        track.zones = states.into_boxed_slice();
        if let Some(p) = &prev {
            presence::crossings(&self.index.zones, &track.zones, &scan.near, p, &cur, found);
            self.tracking_gap(track, p, &cur, found);
        }
        if let Some(z) = scan.touched_post {
            track.border.touched(cur.t, z);
        }
        track.border.update(&self.index, prev.as_ref(), &cur, found);
        self.corridor(track, &cur, found);
        let speed = fix
            .speed_kmh
            .or_else(|| prev.map(|p| implied_kmh(&p, &cur)));
        let authorised = self.at_control_place(track, &cur.zones).is_some();
        track.stop.update(cfg, c, fix.t, speed, authorised, found);
        track.push(cur, cfg.history_len);
        track.signal.fix_accepted(&track.history);
    }

    /// One R-tree query around the movement segment `prev`–`c` answers containment, `cross`
    /// candidates and BCP proximity together.
    pub(crate) fn scan(&self, prev: Option<Coord<f64>>, c: Coord<f64>) -> ZoneScan {
        let zones = &self.index.zones;
        let proximity = self.config().bcp_proximity_m;
        let a = prev.unwrap_or(c);
        let mut scan = ZoneScan {
            at: ZoneSet::default(),
            near: ZoneSet::default(),
            touched_post: None,
        };
        zones.for_each_near(a, c, proximity, |z| {
            let post = zones.zone(z).kind == ZoneKind::Post;
            if zones.contains(z, c) {
                scan.at.insert(z);
                if post {
                    scan.touched_post = Some(z);
                }
                return;
            }
            if prev.is_some() {
                scan.near.insert(z);
            }
            if post && scan.touched_post.is_none() && zones.segment_distance_m(z, a, c) <= proximity
            {
                scan.touched_post = Some(z);
            }
        });
        scan
    }

    /// A gap between two fixes longer than the silence allowance, unless the vehicle did
    /// not move between them: a parked tracker records on its stop schedule (Teltonika:
    /// hourly), and there was nothing to track in between.
    fn tracking_gap(
        &self,
        track: &DeviceTrack,
        prev: &Sample,
        cur: &Sample,
        found: &mut Vec<Found>,
    ) {
        if haversine_m(prev.c, cur.c) <= self.config().stop_radius_m {
            return;
        }
        let gap_s = (cur.t - prev.t).num_seconds();
        let (allowed_s, _) = signal::allowance_s(
            &self.index.zones,
            self.config(),
            track.signal.period_s(self.config()),
            Some(prev),
        );
        if gap_s > allowed_s {
            let kind = EventKind::TrackingGap { gap_s, allowed_s };
            found.push(Found::new(kind, prev.t, Some(prev.c)));
        }
    }

    fn corridor(&self, track: &mut DeviceTrack, cur: &Sample, found: &mut Vec<Found>) {
        match &mut track.route {
            Some(route) => route.update(self.config(), cur, found),
            None => {
                let hint = track.corridor.as_ref().map(|p| (p.path, p.seg));
                let search = self.config().corridor_search_m;
                match (
                    self.index.corridors.locate(cur.c, hint, search, false),
                    &mut track.corridor,
                ) {
                    // Written in place: a device off any route is near a corridor fix
                    // after fix.
                    (Some(p), Some(held)) => **held = p,
                    (found, held) => *held = found.map(Box::new),
                }
            }
        }
    }

    /// The post or office zone among `zones`, or that the device is confirmed inside.
    pub(crate) fn at_control_place(&self, track: &DeviceTrack, zones: &ZoneSet) -> Option<u32> {
        let zi = &self.index.zones;
        let control = |z: &u32| zi.zone(*z).kind != ZoneKind::CoverageGap;
        zones.iter().find(control).or_else(|| {
            track
                .zones
                .iter()
                .filter(|s| s.inside)
                .map(|s| s.zone)
                .find(control)
        })
    }

    fn on_seal(&self, track: &DeviceTrack, seal: &SealEvent, late: bool, found: &mut Vec<Found>) {
        let c = seal
            .point
            .map(coord)
            .or_else(|| late::position_at(track, seal.t));
        let here = c.map(|c| self.index.zones.at(c)).unwrap_or_default();
        let zone = if late {
            here.iter()
                .find(|z| self.index.zones.zone(*z).kind != ZoneKind::CoverageGap)
        } else {
            self.at_control_place(track, &here)
        };
        let kind = if seal.event.is_breach() {
            EventKind::SealAlarm {
                seal_id: seal.seal_id.clone(),
                event: seal.event,
                zone_id: zone.map(|z| self.index.zones.zone(z).id.clone()),
                at_control_place: zone.is_some(),
            }
        } else {
            EventKind::Seal {
                seal_id: seal.seal_id.clone(),
                event: seal.event,
            }
        };
        found.push(Found::new(kind, seal.t, c));
    }

    fn on_status(
        &self,
        track: &mut DeviceTrack,
        status: &Status,
        late: bool,
        found: &mut Vec<Found>,
    ) {
        match status.jamming {
            Some(true) if late || !track.anomaly.jamming => {
                let kind = EventKind::GnssAnomaly {
                    reason: AnomalyReason::Jamming,
                    implied_speed_kmh: None,
                    distance_m: None,
                };
                found.push(Found::new(kind, status.t, track.last().map(|s| s.c)));
                track.anomaly.jamming |= !late;
            }
            Some(false) if !late => track.anomaly.jamming = false,
            _ => {}
        }
    }

    fn stamp(
        &self,
        track: &DeviceTrack,
        f: Found,
        late: bool,
        detected_at: DateTime<Utc>,
    ) -> GeofenceEvent {
        GeofenceEvent {
            device_id: track.device_id.clone(),
            severity: f.kind.severity(),
            kind: f.kind,
            occurred_at: f.at,
            detected_at,
            late,
            point: f.point.map(|c| GeoPoint { lat: c.y, lon: c.x }),
        }
    }
}

pub(crate) fn coord(p: GeoPoint) -> Coord<f64> {
    Coord { x: p.lon, y: p.lat }
}

fn implied_kmh(a: &Sample, b: &Sample) -> f64 {
    let dt = (b.t - a.t).num_milliseconds() as f64 / 1000.0;
    if dt <= 0.0 {
        return 0.0;
    }
    super::metric::haversine_m(a.c, b.c) / dt * 3.6
}
