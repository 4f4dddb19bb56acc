//! Folding one device's accepted reports into its state: duplicates, the geofence engine,
//! the transit rules, the historian, and the writes that record it all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::geo::{self, Geo};
use super::transits::TransitStep;
use super::Tracked;
use crate::historian::{Historian, ReportContext};
use crate::metrics::Metrics;
use crate::store::Write;
use crate::telemetry::{DeviceId, Reject, Report};

/// Where accepted reports are evaluated, counted and copied, besides the store.
pub(super) struct Sinks<'a> {
    pub metrics: &'a Metrics,
    pub historian: &'a Historian,
    pub geo: &'a Geo,
    pub transits: &'a mut TransitStep,
}

/// Folds a device's reports, oldest first, into its state, runs the geofence engine on them,
/// and adds the writes that record it all.
pub(super) fn track(
    tracked: &mut Tracked,
    device_id: &DeviceId,
    mut reports: Vec<Report>,
    detected_at: DateTime<Utc>,
    sinks: Sinks<'_>,
    writes: &mut Vec<Write>,
) {
    let Sinks {
        metrics,
        historian,
        geo,
        transits,
    } = sinks;
    // A backlog batch is evaluated in device-time order, whatever order it arrived in.
    reports.sort_by_key(|r| (r.occurred_at(), r.seq()));
    reports.retain(|report| {
        let fresh = report.seq().is_none_or(|seq| tracked.seqs.insert(seq));
        if !fresh {
            metrics.duplicates.inc();
        }
        fresh
    });
    if reports.is_empty() {
        return;
    }
    let (country_before, lost_before) =
        (tracked.geo.country_part(), tracked.geo.signal_lost_since());
    let events = geo.evaluate(&mut tracked.geo, &reports, detected_at);
    let mut transit_writes = Vec::new();
    transits.after_reports(&reports, &events, detected_at, &mut transit_writes);
    transits.assign_route(geo.engine(), &mut tracked.geo);
    let geo_state = geo.engine().snapshot(&tracked.geo);
    let context = ReportContext {
        transit_id: None,
        country: geo_state.country.as_ref().map(|c| c.as_str()),
        corridor: geo_state.corridor.as_ref().map(|c| c.id.as_str()),
    };
    let mut state = tracked.state();
    for report in reports {
        metrics.message(report.kind());
        state.apply(&report);
        historian.record_report(&report, &context);
        writes.push(Write::Report(report));
    }
    for event in &events {
        metrics.geofence_event(event.kind_str());
        geo.record_crossing(event, historian);
        writes.push(Write::Event(geo::logged(event)));
    }
    writes.append(&mut transit_writes);
    tracked.kept.keep(&state);
    let written = tracked.written(state, geo_state);
    // What readers filter and decide on beyond the reports themselves (the country, which
    // decides who may see the device, the zones, which change only with an event, and an
    // outstanding signal loss) is written in this commit when it changed; a state that only
    // moved on waits for the next fold of the report tail (`store::device_state`).
    let changed = !events.is_empty()
        || tracked.geo.country_part() != country_before
        || written.signal_lost_since.as_deref().copied() != lost_before;
    let (id, state) = (device_id.clone(), Box::new(written));
    writes.push(if changed {
        Write::DeviceState(id, state)
    } else {
        Write::DeviceProgress(id, state)
    });
}

pub(super) fn log_reject(
    logged: &mut HashMap<Option<DeviceId>, DateTime<Utc>>,
    device_id: &Option<DeviceId>,
    reject: &Reject,
    now: DateTime<Utc>,
) {
    // Garbage topics could grow this without bound; forgetting just allows a few more logs.
    if logged.len() > 10_000 {
        logged.clear();
    }
    let last = logged.get(device_id);
    if last.is_some_and(|t| now - *t < chrono::Duration::minutes(1)) {
        return;
    }
    logged.insert(device_id.clone(), now);
    let device = device_id.as_ref().map_or("-", DeviceId::as_str);
    warn!(device_id = device, reason = %reject.reason, detail = %reject.detail, "Refused a message.");
}
