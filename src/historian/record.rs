//! What the historian stores: the measurement schema of `docs/historian.md`, rendered from the
//! domain facts the pipeline already has.
//!
//! Tags are limited to values with bounded cardinality (device, transit, country, corridor,
//! BCP, post and small enumerations). Sequence numbers, seal ids and free text are fields,
//! because every distinct tag value creates a series that InfluxDB keeps in its index.

use chrono::{DateTime, Utc};

use super::line::Line;
use crate::telemetry::{ConnState, DeviceId, Report, ReportBody};

/// What the pipeline knows about a report beyond the report itself (from the geofence and
/// transit state); all parts are optional because a device may be outside any transit.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReportContext<'a> {
    pub transit_id: Option<&'a str>,
    /// ISO 3166-1 alpha-2 code of the country the fix lies in.
    pub country: Option<&'a str>,
    pub corridor: Option<&'a str>,
}

/// An alert as the historian keeps it; the transit module will produce these.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRecord {
    /// When the condition occurred (device time), not when it was detected.
    pub t: DateTime<Utc>,
    /// Alert kind, e.g. `seal_breach`, `route_deviation` (a small fixed set).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub device_id: DeviceId,
    pub transit_id: Option<String>,
    pub country: Option<String>,
    /// EAEU navigation-seal code (`01`..`06`) where one exists.
    pub code: Option<String>,
    /// Human-readable detail; stored as a field since free text must never be a tag.
    pub detail: Option<String>,
}

/// Whether a device entered, left or passed through a border post's control zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BcpEvent {
    Enter,
    Exit,
    Cross,
}

impl BcpEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Enter => "enter",
            Self::Exit => "exit",
            Self::Cross => "cross",
        }
    }
}

/// A device at a border crossing point; the geofence module will produce these.
#[derive(Clone, Debug, PartialEq)]
pub struct BcpCrossingRecord {
    pub t: DateTime<Utc>,
    pub device_id: DeviceId,
    pub transit_id: Option<String>,
    pub bcp_id: String,
    /// The post (one side of the BCP) whose control zone this is.
    pub post_id: String,
    pub country: String,
    pub event: BcpEvent,
    /// On `exit`: seconds since the matching `enter`, so dashboards get BCP dwell directly.
    pub dwell_s: Option<f64>,
}

/// Seconds between device time and arrival, the lateness of buffered data.
fn delay_s(report: &Report, t: DateTime<Utc>) -> Option<f64> {
    Some((report.received_at - t).num_milliseconds() as f64 / 1000.0)
}

fn seq(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// The line for a report, or `None` for a report with nothing to store.
pub(crate) fn report_line(report: &Report, ctx: &ReportContext<'_>) -> Option<String> {
    let device = Some(report.device_id.as_str());
    match &report.body {
        ReportBody::Fix(fix) => Line::new("position")
            .tag("corridor", ctx.corridor)
            .tag("country", ctx.country)
            .tag("device", device)
            .tag("transit", ctx.transit_id)
            .float("lat", Some(fix.point.lat))
            .float("lon", Some(fix.point.lon))
            .float("speed_kmh", fix.speed_kmh)
            .float("heading_deg", fix.heading_deg)
            .float("hdop", fix.hdop)
            .int("sats", fix.sats.map(i64::from))
            .float("alt_m", fix.alt_m)
            .int("seq", seq(fix.seq))
            .float("delay_s", delay_s(report, fix.t))
            .finish(fix.t.timestamp_millis()),
        ReportBody::Seal(seal) => Line::new("seal")
            .tag("country", ctx.country)
            .tag("device", device)
            .tag("event", Some(seal_event_name(seal.event)))
            .tag("transit", ctx.transit_id)
            .string("seal_id", Some(&seal.seal_id))
            .boolean("breach", Some(seal.event.is_breach()))
            .float("battery_pct", seal.battery_pct)
            .float("lat", seal.point.map(|p| p.lat))
            .float("lon", seal.point.map(|p| p.lon))
            .int("seq", seq(seal.seq))
            .float("delay_s", delay_s(report, seal.t))
            .finish(seal.t.timestamp_millis()),
        ReportBody::Status(status) => Line::new("device_status")
            .tag("device", device)
            .tag("transit", ctx.transit_id)
            .float("battery_pct", status.battery_pct)
            .float("ext_power_v", status.ext_power_v)
            .float("gsm_rssi", status.gsm_rssi)
            .boolean("jamming", status.jamming)
            .int("seq", seq(status.seq))
            .float("delay_s", delay_s(report, status.t))
            .finish(status.t.timestamp_millis()),
        ReportBody::Conn { state } => Line::new("device_conn")
            .tag("device", device)
            .boolean("online", Some(*state == ConnState::Online))
            .finish(report.received_at.timestamp_millis()),
    }
}

fn seal_event_name(kind: crate::telemetry::SealEventKind) -> &'static str {
    use crate::telemetry::SealEventKind as K;
    match kind {
        K::Armed => "armed",
        K::Opened => "opened",
        K::Closed => "closed",
        K::RopeCut => "rope_cut",
        K::CaseBreach => "case_breach",
        K::LowBattery => "low_battery",
        K::Fault => "fault",
    }
}

pub(crate) fn alert_line(alert: &AlertRecord) -> Option<String> {
    Line::new("alert")
        .tag("code", alert.code.as_deref())
        .tag("country", alert.country.as_deref())
        .tag("device", Some(alert.device_id.as_str()))
        .tag("kind", Some(&alert.kind))
        .tag("severity", Some(&alert.severity))
        .tag("transit", alert.transit_id.as_deref())
        .int("count", Some(1))
        .string("detail", alert.detail.as_deref())
        .finish(alert.t.timestamp_millis())
}

pub(crate) fn bcp_crossing_line(crossing: &BcpCrossingRecord) -> Option<String> {
    Line::new("bcp_crossing")
        .tag("bcp", Some(&crossing.bcp_id))
        .tag("country", Some(&crossing.country))
        .tag("device", Some(crossing.device_id.as_str()))
        .tag("event", Some(crossing.event.as_str()))
        .tag("post", Some(&crossing.post_id))
        .tag("transit", crossing.transit_id.as_deref())
        .int("count", Some(1))
        .float("dwell_s", crossing.dwell_s)
        .finish(crossing.t.timestamp_millis())
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
