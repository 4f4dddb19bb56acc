//! What a transit is: the declaration as customs accepted it, its route, and what happened
//! to it since.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::Alert;
use super::inspection::Inspection;
use super::itinerary::Itinerary;
use super::motion::Motion;
use super::performance::{BcpPassage, SectionRun};
use super::risk::RiskAssessment;
use crate::maps::CountryCode;
use crate::telemetry::DeviceId;
use crate::text::SharedText;

/// A transit's identity: the issuing country and its declaration reference, e.g.
/// `KG-24KG0101-000123`. References are unique per issuing country, so this is unique.
///
/// Shared, not copied: the transit book keeps an open transit's id in its record, as the key
/// of the open transits, beside each of its devices and among every id ever declared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransitId(SharedText);

impl TransitId {
    pub fn new(country: CountryCode, reference: &str) -> Self {
        Self(format!("{country}-{reference}").into())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The id itself, for what names the transit by it (its approved route).
    pub(crate) fn shared(&self) -> SharedText {
        self.0.clone()
    }
}

impl From<&str> for TransitId {
    fn from(id: &str) -> Self {
        Self(id.into())
    }
}

impl From<String> for TransitId {
    fn from(id: String) -> Self {
        Self(id.into())
    }
}

impl Serialize for TransitId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TransitId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl fmt::Display for TransitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Who did something: an officer (by the identity the API authenticated) or Caravan itself
/// when a geofence event drove the change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    /// Changes derived from device data.
    pub fn system() -> Self {
        Self("system".into())
    }

    pub fn is_system(&self) -> bool {
        self.0 == "system"
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The person driving, as named on the declaration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub name: String,
    /// Passport or licence number, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// One line of the goods declaration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodsLine {
    /// Harmonized System code, 6 to 10 digits; its first two digits are the chapter.
    pub hs_code: String,
    pub description: String,
    pub gross_kg: f64,
    pub value: f64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

impl GoodsLine {
    pub fn chapter(&self) -> &str {
        self.hs_code.get(..2).unwrap_or("")
    }
}

/// A seal on the load: a plain customs seal, or an electronic seal that reports itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    pub id: String,
    /// The e-seal device reporting for this seal, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    pub applied_at: DateTime<Utc>,
    /// The office or post where it was applied.
    pub applied_at_place: String,
    pub state: SealCondition,
}

/// Whether a seal still protects the goods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealCondition {
    Intact,
    /// Reported opened, cut or breached outside a control place.
    Breached,
    /// Opened at a control place, waiting for the inspection that records it.
    OpenedAtControl,
    /// Removed by an officer at an inspection; no longer current.
    Removed,
}

/// Where a transit is in its journey. `Suspended` is not a stage: it is shown while a
/// critical alert is open, whatever the stage (see [`Transit::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Declared,
    Departed,
    InTransit,
    AtBcp,
    Arrived,
    Closed,
    Cancelled,
}

impl Stage {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled)
    }
}

/// The status shown to users: the stage, or `suspended` while a critical alert is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Declared,
    Departed,
    InTransit,
    AtBcp,
    Arrived,
    Closed,
    Cancelled,
    Suspended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared => "declared",
            Self::Departed => "departed",
            Self::InTransit => "in_transit",
            Self::AtBcp => "at_bcp",
            Self::Arrived => "arrived",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
            Self::Suspended => "suspended",
        }
    }
}

impl From<Stage> for Status {
    fn from(stage: Stage) -> Self {
        match stage {
            Stage::Declared => Self::Declared,
            Stage::Departed => Self::Departed,
            Stage::InTransit => Self::InTransit,
            Stage::AtBcp => Self::AtBcp,
            Stage::Arrived => Self::Arrived,
            Stage::Closed => Self::Closed,
            Stage::Cancelled => Self::Cancelled,
        }
    }
}

/// One step of the lifecycle: who moved the transit, where, and when.
///
/// Two clocks, kept apart: `at` is when the step happened, in device time when device data
/// drove it (the fix that entered the zone, the alert that suspended the transit) and the
/// officer's action time otherwise; `recorded_at` is the server's clock when Caravan
/// recorded it. The history is ordered by `at`, so a replay or a late upload lists the
/// steps in the order they happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub at: DateTime<Utc>,
    /// Server time of recording (absent on steps recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
    pub by: Actor,
    /// The office, post or BCP where it happened, if at one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Device data arrived after the fact (the time is still the device's).
    #[serde(default)]
    pub late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A declared journey and everything that happened to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transit {
    pub id: TransitId,
    pub reference: String,
    /// The country of the office of departure, whose customs issued the declaration.
    pub issuing_country: CountryCode,
    pub carrier: String,
    pub vehicle_plate: String,
    pub trailer_plates: Vec<String>,
    pub driver: Driver,
    pub devices: Vec<DeviceId>,
    pub seals: Vec<Seal>,
    pub goods: Vec<GoodsLine>,
    pub itinerary: Itinerary,
    pub deadline: DateTime<Utc>,
    pub declared_at: DateTime<Utc>,
    pub declared_by: Actor,
    pub stage: Stage,
    /// Index of the leg the transit is on (or about to start); while at a BCP, the leg
    /// that ends there.
    pub leg: usize,
    pub transitions: Vec<Transition>,
    pub alerts: Vec<Alert>,
    pub inspections: Vec<Inspection>,
    pub passages: Vec<BcpPassage>,
    /// Completed runs over the sections between checkpoints, for corridor speeds.
    #[serde(default)]
    pub sections: Vec<SectionRun>,
    pub risk: RiskAssessment,
    #[serde(default)]
    pub motion: Motion,
    /// For a transit received from a peer instance (`docs/exchange.md`): that peer, which
    /// holds the declaration. Only its messages change the record here; officers' actions
    /// on it are applied here and sent to it. `None` for a transit declared here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

impl Transit {
    /// Adds a step to the history at its place in time (`at`): after every step at or
    /// before it.
    pub(crate) fn record_transition(&mut self, tr: Transition) {
        let at = self.transitions.partition_point(|x| x.at <= tr.at);
        self.transitions.insert(at, tr);
    }

    /// Gives back the room its lists were read into. Decoded from the store's JSON, a list
    /// of one alert holds room for four (serde cannot know the length ahead), which is a
    /// kilobyte per transit that a book of a hundred thousand open transits would keep for as
    /// long as they are open.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.trailer_plates.shrink_to_fit();
        self.devices.shrink_to_fit();
        self.seals.shrink_to_fit();
        self.goods.shrink_to_fit();
        self.transitions.shrink_to_fit();
        for a in &mut self.alerts {
            a.visible_to.shrink_to_fit();
            a.history.shrink_to_fit();
        }
        self.alerts.shrink_to_fit();
        self.inspections.shrink_to_fit();
        self.passages.shrink_to_fit();
        self.sections.shrink_to_fit();
        self.risk.reasons.shrink_to_fit();
        self.motion.speeds.shrink_to_fit();
    }

    /// The stage, or `suspended` while a critical alert is open on a transit still under way.
    pub fn status(&self) -> Status {
        if !self.stage.is_final() && self.alerts.iter().any(Alert::suspends) {
            Status::Suspended
        } else {
            self.stage.into()
        }
    }

    pub fn is_open(&self) -> bool {
        !self.stage.is_final()
    }

    /// Seals that still protect the goods (not removed at an inspection).
    pub fn current_seals(&self) -> impl Iterator<Item = &Seal> {
        self.seals
            .iter()
            .filter(|s| s.state != SealCondition::Removed)
    }

    /// The id of the checkpoint the transit is heading for, unless it has arrived.
    pub fn next_checkpoint(&self) -> Option<&str> {
        match self.stage {
            Stage::Arrived | Stage::Closed | Stage::Cancelled => None,
            _ => self
                .itinerary
                .checkpoints
                .get(self.leg + 1)
                .map(|c| c.id.as_str()),
        }
    }

    /// The country responsible for the transit now: that of its current leg.
    pub fn current_country(&self) -> Option<CountryCode> {
        self.itinerary.legs.get(self.leg).map(|l| l.country)
    }

    /// Countries of the legs from `leg` on: the authorities an inspection or an escalated
    /// alert on that leg is shown to.
    pub fn countries_from(&self, leg: usize) -> Vec<CountryCode> {
        self.itinerary.countries_from(leg)
    }

    /// Every country the transit passes: who may see it.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.countries_from(0)
    }
}
