//! Inspections at posts and offices, and seal continuity: seals removed must be the
//! transit's current seals, and seals applied become current. An inspection travels with the
//! transit, so the authorities of every later leg can rely on it (mutual recognition).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Actor, Seal, SealCondition, Transit};
use crate::maps::CountryCode;
use crate::telemetry::DeviceId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionResult {
    /// Goods as declared, seals in order.
    Cleared,
    /// A discrepancy was found and recorded; the transit continues.
    Discrepancy,
    /// Goods detained.
    Detained,
}

/// A seal applied at an inspection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedSeal {
    pub id: String,
    #[serde(default)]
    pub device_id: Option<DeviceId>,
}

/// What the officer records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionReport {
    /// The post (e.g. `irkeshtam-kg`) or office where the control took place.
    pub place: String,
    pub result: InspectionResult,
    #[serde(default)]
    pub seals_removed: Vec<String>,
    #[serde(default)]
    pub seals_applied: Vec<AppliedSeal>,
    #[serde(default)]
    pub notes: Option<String>,
    /// The load checklist as the officer filled it in (a uniform checklist, as at
    /// Erenhot–Zamyn-Uud, travels with the inspection to the next post).
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
}

/// One line of a load checklist: what was checked, and whether it was in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub item: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Checklist lines one inspection may hold, and characters per line or note.
pub const MAX_CHECKLIST: usize = 100;
pub const MAX_CHECKLIST_TEXT: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: String,
    pub officer: Actor,
    pub place: String,
    pub country: CountryCode,
    pub at: DateTime<Utc>,
    pub result: InspectionResult,
    pub seals_removed: Vec<String>,
    pub seals_applied: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The leg it was done on; the authorities of this and every later leg see it.
    pub leg: usize,
    pub visible_to: Vec<CountryCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<ChecklistItem>,
    /// For an inspection recorded at a peer instance (`docs/exchange.md`): that instance's
    /// signed message, so that every authority it reaches can check who recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested: Option<Attestation>,
}

/// A fact recorded at a peer instance, as that instance signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The peer's name, as the instance that applied the fact knows it.
    pub peer: String,
    /// The fingerprint of the key that signed.
    pub key: String,
    /// The message as signed (JSON text) and its Ed25519 signature.
    pub message: String,
    pub signature: String,
    /// Whether this instance checked the signature with the key it has for that peer:
    /// absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectionError {
    #[error("`{0}` is not a post or office on this transit's itinerary")]
    UnknownPlace(String),
    #[error("seal {0} is not one of the transit's current seals")]
    NotCurrent(String),
    #[error("seal {0} is already on the load")]
    AlreadyApplied(String),
    #[error("seal ids are 1-40 characters")]
    BadSealId,
    #[error("a load checklist has at most {MAX_CHECKLIST} lines, each item 1-{MAX_CHECKLIST_TEXT} characters and each note at most {MAX_CHECKLIST_TEXT}")]
    BadChecklist,
    #[error("the transit is {0} and takes no more inspections")]
    Finished(&'static str),
}

/// The country of a post or office of the itinerary, and the leg an inspection there
/// belongs to.
fn place_of(transit: &Transit, place: &str) -> Option<(CountryCode, usize)> {
    let it = &transit.itinerary;
    let last_leg = it.legs.len().saturating_sub(1);
    for (k, cp) in it.checkpoints.iter().enumerate() {
        if cp.id == place && cp.posts.is_empty() {
            let leg = k.min(last_leg);
            return it.legs.get(leg).map(|l| (l.country, leg));
        }
        if let Some(post) = cp.posts.iter().find(|p| p.id == place) {
            // The near post closes leg k-1; the far post opens leg k.
            let leg = if Some(post.country) == it.legs.get(k).map(|l| l.country) {
                k
            } else {
                k.saturating_sub(1)
            };
            return Some((post.country, leg.min(last_leg)));
        }
    }
    None
}

/// Records an inspection after checking seal continuity; on error nothing changes.
///
/// # Errors
/// An unknown place, a removed seal that is not current, an applied seal already on the
/// load, or a finished transit.
pub fn record<'t>(
    transit: &'t mut Transit,
    report: InspectionReport,
    officer: &Actor,
    at: DateTime<Utc>,
) -> Result<&'t Inspection, InspectionError> {
    if transit.stage.is_final() {
        return Err(InspectionError::Finished(transit.status().as_str()));
    }
    let (country, leg) = place_of(transit, &report.place)
        .ok_or_else(|| InspectionError::UnknownPlace(report.place.clone()))?;
    let text_fits = |t: &str| t.chars().count() <= MAX_CHECKLIST_TEXT;
    let checklist_fits = report.checklist.len() <= MAX_CHECKLIST
        && report.checklist.iter().all(|c| {
            !c.item.trim().is_empty()
                && text_fits(&c.item)
                && c.note.as_deref().is_none_or(text_fits)
        });
    if !checklist_fits {
        return Err(InspectionError::BadChecklist);
    }
    for id in &report.seals_removed {
        if !transit.current_seals().any(|s| &s.id == id) {
            return Err(InspectionError::NotCurrent(id.clone()));
        }
    }
    for (i, s) in report.seals_applied.iter().enumerate() {
        let id = s.id.trim();
        if id.is_empty() || id.chars().count() > 40 {
            return Err(InspectionError::BadSealId);
        }
        let kept = transit
            .current_seals()
            .any(|c| c.id == id && !report.seals_removed.contains(&c.id));
        let twice = report.seals_applied[..i].iter().any(|o| o.id.trim() == id);
        if kept || twice {
            return Err(InspectionError::AlreadyApplied(id.to_owned()));
        }
    }
    for seal in transit.seals.iter_mut() {
        if report.seals_removed.contains(&seal.id) && seal.state != SealCondition::Removed {
            seal.state = SealCondition::Removed;
        }
    }
    for s in &report.seals_applied {
        transit.seals.push(Seal {
            id: s.id.trim().to_owned(),
            device_id: s.device_id.clone(),
            applied_at: at,
            applied_at_place: report.place.clone(),
            state: SealCondition::Intact,
        });
    }
    let inspection = Inspection {
        id: format!("{}.i{}", transit.id, transit.inspections.len() + 1),
        officer: officer.clone(),
        place: report.place,
        country,
        at,
        result: report.result,
        seals_removed: report.seals_removed,
        seals_applied: report.seals_applied.into_iter().map(|s| s.id).collect(),
        notes: report.notes,
        leg,
        visible_to: transit.countries_from(leg),
        checklist: report.checklist,
        attested: None,
    };
    transit.inspections.push(inspection);
    transit
        .inspections
        .last()
        .ok_or(InspectionError::Finished("empty"))
}
