//! Incidents the simulator injects, their rates, and the truth record of each one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::expect::ExpectedAlert;

/// What can go wrong on a transit, as the simulator stages it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// The vehicle leaves its corridor by well over the corridor width, then comes back.
    RouteDeviation,
    /// The vehicle stands still for 45–120 minutes outside any post, office or gap.
    UnauthorisedStop,
    /// The seal reports `rope_cut` or `case_breach` on the road.
    SealBreach,
    /// The vehicle goes round a BCP 15–25 km off the road, so it changes country outside
    /// the post zones (and deviates from its corridor while doing so).
    CrossingOutsideBcp,
    /// One fix lands 50–300 km away (a spoofed or broken receiver), the next is back.
    GnssJump,
    /// The device sends and records nothing for 2–6 hours outside any coverage gap.
    DeviceSilent,
    /// Not injected: the seal's battery ran below 15 % (long runs). Recorded so that a
    /// check expects its alert.
    LowBattery,
    /// Not injected: the vehicle passed its transit's deadline before arriving (BCP waits
    /// are cut short to avoid it, so this is rare). Recorded so that a check allows its alert.
    Overdue,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 6] = [
        Self::RouteDeviation,
        Self::UnauthorisedStop,
        Self::SealBreach,
        Self::CrossingOutsideBcp,
        Self::GnssJump,
        Self::DeviceSilent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RouteDeviation => "route_deviation",
            Self::UnauthorisedStop => "unauthorised_stop",
            Self::SealBreach => "seal_breach",
            Self::CrossingOutsideBcp => "crossing_outside_bcp",
            Self::GnssJump => "gnss_jump",
            Self::DeviceSilent => "device_silent",
            Self::LowBattery => "low_battery",
            Self::Overdue => "overdue",
        }
    }

    /// Default rate per vehicle and simulated day: rare enough to be incidents, frequent
    /// enough that a 20-vehicle demo shows some within an hour of accelerated time.
    pub fn default_rate(self) -> f64 {
        match self {
            Self::RouteDeviation | Self::UnauthorisedStop | Self::GnssJump => 0.05,
            Self::SealBreach | Self::DeviceSilent => 0.03,
            Self::CrossingOutsideBcp => 0.02,
            Self::LowBattery | Self::Overdue => 0.0,
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown incident {text:?}; one of {}", known.join(", "))
            })
    }
}

/// Rates per vehicle and simulated day, one per [`IncidentKind`].
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRates([f64; 6]);

impl Default for IncidentRates {
    fn default() -> Self {
        Self(IncidentKind::ALL.map(IncidentKind::default_rate))
    }
}

impl IncidentRates {
    pub fn none() -> Self {
        Self([0.0; 6])
    }

    /// The rate of an injected kind; 0 for the kinds that are only recorded.
    pub fn get(&self, kind: IncidentKind) -> f64 {
        self.0.get(kind as usize).copied().unwrap_or(0.0)
    }

    /// Sets one rate; negative or non-finite rates count as zero, and the kinds that are
    /// only recorded cannot be given one.
    pub fn set(&mut self, kind: IncidentKind, per_vehicle_day: f64) {
        if let Some(rate) = self.0.get_mut(kind as usize) {
            *rate = if per_vehicle_day.is_finite() {
                per_vehicle_day.max(0.0)
            } else {
                0.0
            };
        }
    }
}

/// One injected incident: a line of the `--truth` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    pub kind: IncidentKind,
    pub device_id: String,
    /// The transit the vehicle was on, when the run declares transits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_id: Option<String>,
    /// The alerts Caravan should raise for it on that transit (see [`ExpectedAlert`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<ExpectedAlert>,
    /// Device time the incident starts (RFC 3339).
    pub at: String,
    /// Device time it ends, for incidents that last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub until: Option<String>,
    /// Where the vehicle was on its corridor when it started.
    pub lat: f64,
    pub lon: f64,
    pub corridor: String,
    /// Furthest distance from the corridor (deviation, crossing) or of the jump, metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub distance_m: Option<f64>,
    /// The BCP that was bypassed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub bcp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub seal_id: Option<String>,
    /// The seal event sent (`rope_cut`, `case_breach`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub event: Option<String>,
    /// The seq of the message that carries the incident (seal breach, GNSS jump).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub seq: Option<u64>,
}
