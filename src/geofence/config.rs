//! Thresholds of the geofence engine, read from the `[geofence]` section of the settings.

use serde::{Deserialize, Serialize};

/// Every threshold the engine applies. The defaults follow docs/domain.md (tracking semantics) and the
/// accuracy of the shipped maps (Natural Earth borders are good to 1–3 km in the region).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeofenceConfig {
    /// A fix this far inside (or outside) a zone flips the zone state at once; closer to the
    /// edge it takes `zone_confirm_fixes` fixes in a row, so GNSS noise on the boundary of a
    /// control zone does not produce enter/exit storms.
    pub zone_margin_m: f64,
    /// Consecutive fixes on the new side that flip a zone state without the margin.
    pub zone_confirm_fixes: u32,
    /// How far the border data may be off. A change of country is only judged once a fix is
    /// at least this far inside the new country, so roads along the border never alarm.
    pub border_tolerance_m: f64,
    /// A movement segment that passes this close to a post's control zone went through
    /// that BCP (post zones are sized by the confidence of their coordinates, and sparse
    /// fixes rarely fall inside them).
    pub bcp_proximity_m: f64,
    /// Country parts smaller than this (enclaves such as Sokh or Vorukh, small islands) are
    /// crossed on ordinary roads; being inside one does not change the settled country.
    pub enclave_max_area_km2: f64,
    /// A route deviation opens after this many consecutive fixes farther than the corridor
    /// width from the route...
    pub deviation_min_fixes: u32,
    /// ...spanning at least this long.
    pub deviation_min_s: i64,
    /// Chainage falling this far below the furthest point reached is travel the wrong way.
    pub wrong_direction_tolerance_m: f64,
    /// Nearest corridor shown for a device without a route, searched up to this distance.
    pub corridor_search_m: f64,
    /// Below this speed a vehicle counts as stopped...
    pub stop_speed_kmh: f64,
    /// ...while it stays within this radius of where it stopped...
    pub stop_radius_m: f64,
    /// ...and a stop longer than this outside a BCP post or customs office is unauthorised.
    pub stop_max_s: i64,
    /// Reporting period assumed until a device has shown its own.
    pub reporting_period_s: i64,
    /// The learned reporting period is capped here, so a truck parked with a sleeping
    /// tracker does not stretch the silence threshold for the rest of the trip.
    pub max_reporting_period_s: i64,
    /// A vehicle standing still is judged by this reporting period when it is longer than the
    /// learned one: a parked tracker records on its stop schedule (Teltonika FMB default:
    /// every 3600 s), so two of its periods are two hours, not two of its moving ones.
    pub stopped_reporting_period_s: i64,
    /// Silence longer than this many reporting periods is signal loss (EAEU code 06: two).
    pub silence_periods: u32,
    /// No truck moves faster than this; a fix implying more is a GNSS anomaly.
    pub max_speed_kmh: f64,
    /// Position changes shorter than this are never anomalies (GNSS noise at short intervals
    /// implies absurd speeds over a few metres).
    pub anomaly_min_distance_m: f64,
    /// An impossible move longer than this is reported as a teleport (spoofing, a bad cold
    /// start) rather than an implausible speed.
    pub teleport_m: f64,
    /// Fixes kept per device to place late fixes between their time neighbours.
    pub history_len: usize,
}

impl Default for GeofenceConfig {
    fn default() -> Self {
        Self {
            zone_margin_m: 50.0,
            zone_confirm_fixes: 2,
            border_tolerance_m: 3_000.0,
            bcp_proximity_m: 1_500.0,
            enclave_max_area_km2: 1_000.0,
            deviation_min_fixes: 2,
            deviation_min_s: 60,
            wrong_direction_tolerance_m: 1_000.0,
            corridor_search_m: 10_000.0,
            stop_speed_kmh: 5.0,
            stop_radius_m: 200.0,
            stop_max_s: 30 * 60,
            reporting_period_s: 300,
            max_reporting_period_s: 900,
            stopped_reporting_period_s: 3_600,
            silence_periods: 2,
            max_speed_kmh: 250.0,
            anomaly_min_distance_m: 1_000.0,
            teleport_m: 50_000.0,
            history_len: 32,
        }
    }
}
