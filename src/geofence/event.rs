//! What the engine tells the rest of Caravan: events, and the current view of a device.
//!
//! Events serialise flat with a stable `kind` string, so the store and the live stream can
//! keep them as JSON and filter on `kind` without knowing every variant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::maps::CountryCode;
use crate::telemetry::{DeviceId, GeoPoint, SealEventKind};

/// How urgently a human should look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What kind of place a zone is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// The control zone of one post of a BCP.
    Post,
    /// An inland customs office.
    Office,
    /// A known stretch without mobile coverage.
    CoverageGap,
}

/// Why a fix or status counts as a GNSS anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyReason {
    /// The move from the previous fix implies a speed no truck reaches.
    ImpossibleSpeed,
    /// An impossible move of tens of kilometres: spoofing or a bad cold start.
    Teleport,
    /// Two fixes at the same instant in different places.
    Jump,
    /// The device itself reports jamming.
    Jamming,
}

/// One fact the engine derived, with when it happened and when it was noticed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeofenceEvent {
    pub device_id: DeviceId,
    #[serde(flatten)]
    pub kind: EventKind,
    pub severity: Severity,
    /// Device time of the fact (interpolated between fixes for `cross` and late visits).
    pub occurred_at: DateTime<Utc>,
    /// When the engine evaluated the report that revealed it.
    pub detected_at: DateTime<Utc>,
    /// The report was older than what the device had already been evaluated at.
    pub late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
}

impl GeofenceEvent {
    /// The stable `kind` string, as serialised.
    pub fn kind_str(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// The events, each with the ids a reader needs to act on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The device is now inside the zone (Tile38 `enter`).
    Enter {
        zone_id: String,
        zone_kind: ZoneKind,
    },
    /// The device has left the zone (Tile38 `exit`).
    Exit {
        zone_id: String,
        zone_kind: ZoneKind,
    },
    /// Two fixes either side of a zone whose segment passes through it (Tile38 `cross`).
    Cross {
        zone_id: String,
        zone_kind: ZoneKind,
    },
    /// The device settled in another country after passing a BCP.
    BorderCrossed {
        from: CountryCode,
        to: CountryCode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bcp_id: Option<String>,
    },
    /// The device settled in another country without passing near any BCP. The event's
    /// time and point are those of the crossing: where the movement met the border line,
    /// interpolated between the fixes either side of it. The fix that confirmed the device
    /// inside the new country is kept apart.
    CrossingOutsideBcp {
        from: CountryCode,
        to: CountryCode,
        /// Device time of the first settled fix in the new country.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmed_at: Option<DateTime<Utc>>,
        /// Where that fix was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmed_point: Option<GeoPoint>,
    },
    /// Farther than the corridor width from the assigned route for long enough.
    RouteDeviation {
        route_id: String,
        corridor_id: String,
        distance_m: f64,
        width_m: f64,
    },
    /// An open deviation went farther from the route than the critical distance: the first
    /// fix beyond it, so the alert escalates when the evidence grows.
    RouteDeviationCritical {
        route_id: String,
        corridor_id: String,
        distance_m: f64,
        limit_m: f64,
        /// When the deviation began.
        since: DateTime<Utc>,
    },
    /// Back within the corridor after a deviation.
    RouteDeviationEnded {
        route_id: String,
        duration_s: i64,
        max_distance_m: f64,
    },
    /// Progress along the route went backwards beyond the tolerance.
    WrongDirection {
        route_id: String,
        chainage_m: f64,
        regressed_m: f64,
    },
    /// Stationary too long outside a BCP post or customs office.
    UnauthorisedStop {
        since: DateTime<Utc>,
        duration_s: i64,
    },
    /// The vehicle moved on after an unauthorised stop.
    StopEnded { duration_s: i64 },
    /// No message for longer than the device's allowance.
    SignalLost {
        silent_s: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coverage_gap_id: Option<String>,
    },
    /// The first message after a signal loss.
    SignalRestored { silent_s: i64 },
    /// Consecutive fixes further apart in device time than the allowance: the buffered
    /// backlog does not cover the silence either.
    TrackingGap { gap_s: i64, allowed_s: i64 },
    GnssAnomaly {
        reason: AnomalyReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        implied_speed_kmh: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        distance_m: Option<f64>,
    },
    /// A seal reported `opened`, `rope_cut` or `case_breach`.
    SealAlarm {
        seal_id: String,
        event: SealEventKind,
        /// The post or office zone the device was in, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone_id: Option<String>,
        /// Inside a post or office zone, where seals are opened for inspection.
        at_control_place: bool,
    },
    /// Any other seal event (armed, closed, fault, low battery).
    Seal {
        seal_id: String,
        event: SealEventKind,
    },
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Enter { .. } => "enter",
            Self::Exit { .. } => "exit",
            Self::Cross { .. } => "cross",
            Self::BorderCrossed { .. } => "border_crossed",
            Self::CrossingOutsideBcp { .. } => "crossing_outside_bcp",
            Self::RouteDeviation { .. } => "route_deviation",
            Self::RouteDeviationCritical { .. } => "route_deviation_critical",
            Self::RouteDeviationEnded { .. } => "route_deviation_ended",
            Self::WrongDirection { .. } => "wrong_direction",
            Self::UnauthorisedStop { .. } => "unauthorised_stop",
            Self::StopEnded { .. } => "stop_ended",
            Self::SignalLost { .. } => "signal_lost",
            Self::SignalRestored { .. } => "signal_restored",
            Self::TrackingGap { .. } => "tracking_gap",
            Self::GnssAnomaly { .. } => "gnss_anomaly",
            Self::SealAlarm { .. } => "seal_alarm",
            Self::Seal { .. } => "seal",
        }
    }

    /// The default urgency of each kind; transit rules may raise it (an inspection open at
    /// the post turns a seal alarm into a record).
    pub fn severity(&self) -> Severity {
        match self {
            Self::CrossingOutsideBcp { .. } | Self::RouteDeviationCritical { .. } => {
                Severity::Critical
            }
            Self::SealAlarm {
                at_control_place, ..
            } => {
                if *at_control_place {
                    Severity::Warning
                } else {
                    Severity::Critical
                }
            }
            Self::RouteDeviation { .. }
            | Self::WrongDirection { .. }
            | Self::UnauthorisedStop { .. }
            | Self::SignalLost { .. }
            | Self::TrackingGap { .. }
            | Self::GnssAnomaly { .. } => Severity::Warning,
            Self::Seal {
                event: SealEventKind::Fault | SealEventKind::LowBattery,
                ..
            } => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// Where a device is now, for the API's device view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceGeoState {
    /// Country of the last fix.
    pub country: Option<CountryCode>,
    /// Zones the device is confirmed inside (ids of posts, offices, coverage gaps).
    pub zones: Vec<String>,
    pub corridor: Option<CorridorPosition>,
    #[serde(serialize_with = "crate::telemetry::rfc3339::serialize_option")]
    pub last_fix_at: Option<DateTime<Utc>>,
    pub point: Option<GeoPoint>,
}

/// Position relative to the assigned route, or to the nearest corridor without one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorridorPosition {
    /// The corridor under the device (for a route, the leg it is on).
    pub id: String,
    /// The assigned route, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_id: Option<String>,
    pub distance_m: f64,
    /// Distance along the route (or the corridor) from its start.
    pub chainage_m: f64,
}
