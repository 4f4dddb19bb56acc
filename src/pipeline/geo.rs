//! The geofence step of the pipeline: runs the pure engine and turns its events into log
//! entries and historian records.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::geofence::{DeviceTrack, Engine, EventKind, GeofenceEvent, GeofenceIndex, ZoneKind};
use crate::historian::{BcpCrossingRecord, BcpEvent, Historian};
use crate::maps::{Atlas, CountryCode};
use crate::store::LoggedEvent;
use crate::telemetry::{DeviceId, Report};

/// The engine, plus what the pipeline needs to name a post's crossing.
pub struct Geo {
    engine: Engine,
    /// Post id to its BCP id and country.
    posts: HashMap<String, (String, CountryCode)>,
}

impl Geo {
    pub fn new(index: Arc<GeofenceIndex>, atlas: &Atlas) -> Self {
        let posts = atlas
            .bcps
            .iter()
            .flat_map(|bcp| {
                bcp.posts
                    .iter()
                    .map(|post| (post.id.clone(), (bcp.id.clone(), post.country)))
            })
            .collect();
        Self {
            engine: Engine::new(index),
            posts,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Rebuilds a device's geofence state from its last stored reports, without raising
    /// again the events they raised the first time.
    pub fn restore(&self, device_id: DeviceId, recent: &[Report]) -> DeviceTrack {
        let mut track = DeviceTrack::new(device_id);
        let detected_at = recent.last().map_or_else(Utc::now, |r| r.received_at);
        let _replayed = self.engine.apply_batch(&mut track, recent, detected_at);
        track
    }

    /// Evaluates newly accepted reports (already in device-time order).
    pub fn evaluate(
        &self,
        track: &mut DeviceTrack,
        reports: &[Report],
        detected_at: DateTime<Utc>,
    ) -> Vec<GeofenceEvent> {
        self.engine.apply_batch(track, reports, detected_at)
    }

    /// Copies a crossing of a BCP post zone to the historian.
    pub fn record_crossing(&self, event: &GeofenceEvent, historian: &Historian) {
        let (zone_id, kind, direction) = match &event.kind {
            EventKind::Enter { zone_id, zone_kind } => (zone_id, zone_kind, BcpEvent::Enter),
            EventKind::Exit { zone_id, zone_kind } => (zone_id, zone_kind, BcpEvent::Exit),
            EventKind::Cross { zone_id, zone_kind } => (zone_id, zone_kind, BcpEvent::Cross),
            _ => return,
        };
        if *kind != ZoneKind::Post {
            return;
        }
        let Some((bcp_id, country)) = self.posts.get(zone_id) else {
            return;
        };
        historian.record_bcp_crossing(&BcpCrossingRecord {
            t: event.occurred_at,
            device_id: event.device_id.clone(),
            transit_id: None,
            bcp_id: bcp_id.clone(),
            post_id: zone_id.clone(),
            country: country.to_string(),
            event: direction,
            dwell_s: None,
        });
    }
}

/// The event-log entry of a geofence event; the whole event is the body.
pub fn logged(event: &GeofenceEvent) -> LoggedEvent {
    LoggedEvent {
        kind: event.kind_str().to_owned(),
        device_id: Some(event.device_id.clone()),
        transit_id: None,
        occurred_at: event.occurred_at,
        detected_at: event.detected_at,
        late: event.late,
        actor: None,
        body: serde_json::to_value(event).unwrap_or_default(),
    }
}
