//! Declaring a transit: the declaration as submitted, and its validation against the maps
//! and the transits already known, with one error per field so the officer can fix them all
//! at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::itinerary::{self, Request};
use super::model::{Actor, Driver, GoodsLine, Seal, SealCondition, Stage, Transit, TransitId};
use super::risk::RiskAssessment;
use super::rules::TransitRules;
use crate::maps::Atlas;
use crate::telemetry::DeviceId;

/// A seal as declared: its number, and the e-seal device reporting for it, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredSeal {
    pub id: String,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// A transit declaration as submitted to the office of departure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub reference: String,
    pub carrier: String,
    pub vehicle_plate: String,
    #[serde(default)]
    pub trailer_plates: Vec<String>,
    pub driver: Driver,
    pub devices: Vec<String>,
    #[serde(default)]
    pub seals: Vec<DeclaredSeal>,
    pub goods: Vec<GoodsLine>,
    pub departure_office: String,
    /// BCP ids in the order the transit passes them.
    pub itinerary: Vec<String>,
    pub destination_office: String,
    pub deadline: DateTime<Utc>,
}

/// One thing wrong with one field of a declaration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field, e.g. `itinerary[1]` or `goods[0].hs_code`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a declaration is checked against besides the maps.
pub struct Known<'a> {
    /// Whether a transit of this id was ever declared: references are unique per issuing
    /// country.
    pub declared: &'a dyn Fn(&TransitId) -> bool,
    /// The open transit a device is on, if any.
    pub device_on: &'a dyn Fn(&DeviceId) -> Option<TransitId>,
    /// The registered device of this id, as the registry holds it: the transit keeps that
    /// copy of the id rather than one of its own.
    pub device_registered: &'a dyn Fn(&DeviceId) -> Option<DeviceId>,
}

fn token_ok(text: &str, max: usize) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (1..=max).contains(&text.len()) && text.chars().all(ok)
}

fn text_ok(text: &str, max: usize) -> bool {
    let trimmed = text.trim();
    !trimmed.is_empty() && trimmed.chars().count() <= max
}

/// Checks every field and builds the transit.
///
/// # Errors
/// Every problem found, one per field.
pub fn declare(
    decl: Declaration,
    atlas: &Atlas,
    rules: &TransitRules,
    known: &Known<'_>,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<Transit, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_parties(&decl, &mut errors);
    let devices = check_devices(&decl.devices, known, &mut errors);
    // A seal's device is checked against what the declaration lists, not against the
    // devices that passed their own checks: a device refused there (not registered, already
    // on a transit) has its own error, and the seal is not wrong to name it.
    let listed: Vec<DeviceId> = decl
        .devices
        .iter()
        .filter_map(|d| DeviceId::parse(d).ok())
        .collect();
    let seals = check_seals(&decl, &listed, now, &mut errors);
    check_goods(&decl.goods, &mut errors);
    if decl.deadline <= now {
        errors.push(FieldError::new("deadline", "the deadline is in the past"));
    }
    let country = itinerary::place_country(atlas, &decl.departure_office);
    let id = country.map(|c| TransitId::new(c, &decl.reference));
    if let Some(id) = id.as_ref().filter(|id| (known.declared)(id)) {
        let msg = format!("{id} is already declared: references are unique per country");
        errors.push(FieldError::new("reference", msg));
    }
    let req = Request {
        transit_id: id.as_ref().map_or("", TransitId::as_str),
        departure: &decl.departure_office,
        bcps: &decl.itinerary,
        destination: &decl.destination_office,
    };
    let itinerary = itinerary::build(atlas, rules, &req).map_err(|mut e| {
        errors.append(&mut e);
    });
    let (Some(id), Some(country), Ok(itinerary), true) =
        (id, country, itinerary, errors.is_empty())
    else {
        return Err(errors);
    };
    Ok(Transit {
        id,
        reference: decl.reference,
        issuing_country: country,
        carrier: decl.carrier,
        vehicle_plate: decl.vehicle_plate.trim().to_owned(),
        trailer_plates: decl
            .trailer_plates
            .iter()
            .map(|p| p.trim().to_owned())
            .collect(),
        driver: decl.driver,
        devices,
        seals,
        goods: decl.goods,
        itinerary,
        deadline: decl.deadline,
        declared_at: now,
        declared_by: by.clone(),
        stage: Stage::Declared,
        leg: 0,
        transitions: Vec::new(),
        alerts: Vec::new(),
        inspections: Vec::new(),
        passages: Vec::new(),
        sections: Vec::new(),
        risk: RiskAssessment::default(),
        motion: Default::default(),
        held_by: None,
    })
}

fn check_parties(decl: &Declaration, errors: &mut Vec<FieldError>) {
    if !token_ok(&decl.reference, 35) {
        errors.push(FieldError::new(
            "reference",
            "1-35 characters of A-Z a-z 0-9 _ -",
        ));
    }
    if !token_ok(&decl.carrier, 64) {
        errors.push(FieldError::new(
            "carrier",
            "1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    if !text_ok(&decl.vehicle_plate, 20) {
        errors.push(FieldError::new("vehicle_plate", "1-20 characters"));
    }
    for (i, plate) in decl.trailer_plates.iter().enumerate() {
        if !text_ok(plate, 20) {
            errors.push(FieldError::new(
                format!("trailer_plates[{i}]"),
                "1-20 characters",
            ));
        }
    }
    if !text_ok(&decl.driver.name, 100) {
        errors.push(FieldError::new("driver.name", "1-100 characters"));
    }
}

fn check_devices(raw: &[String], known: &Known<'_>, errors: &mut Vec<FieldError>) -> Vec<DeviceId> {
    if raw.is_empty() {
        errors.push(FieldError::new(
            "devices",
            "a transit needs at least one tracking device",
        ));
    }
    let mut devices: Vec<DeviceId> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let field = format!("devices[{i}]");
        let id = match DeviceId::parse(text) {
            Ok(id) => id,
            Err(e) => {
                errors.push(FieldError::new(field, e.to_string()));
                continue;
            }
        };
        if devices.contains(&id) {
            errors.push(FieldError::new(
                field,
                format!("device {id} is listed twice"),
            ));
        } else {
            match ((known.device_registered)(&id), (known.device_on)(&id)) {
                (None, _) => errors.push(FieldError::new(
                    field,
                    format!("device {id} is not registered"),
                )),
                (Some(_), Some(other)) => {
                    let msg = format!("device {id} is already on open transit {other}");
                    errors.push(FieldError::new(field, msg));
                }
                (Some(registered), None) => devices.push(registered),
            }
        }
    }
    devices
}

fn check_seals(
    decl: &Declaration,
    devices: &[DeviceId],
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Vec<Seal> {
    let mut seals: Vec<Seal> = Vec::new();
    for (i, s) in decl.seals.iter().enumerate() {
        if !text_ok(&s.id, 40) {
            errors.push(FieldError::new(format!("seals[{i}].id"), "1-40 characters"));
            continue;
        }
        if seals.iter().any(|x| x.id == s.id) {
            errors.push(FieldError::new(format!("seals[{i}].id"), "listed twice"));
            continue;
        }
        let device_id = match s.device_id.as_deref().map(DeviceId::parse).transpose() {
            Ok(Some(d)) if !devices.contains(&d) => {
                let msg = format!("e-seal {d} must also be listed in devices");
                errors.push(FieldError::new(format!("seals[{i}].device_id"), msg));
                None
            }
            Ok(d) => d,
            Err(e) => {
                errors.push(FieldError::new(
                    format!("seals[{i}].device_id"),
                    e.to_string(),
                ));
                None
            }
        };
        seals.push(Seal {
            id: s.id.trim().to_owned(),
            device_id,
            applied_at: now,
            applied_at_place: decl.departure_office.clone(),
            state: SealCondition::Intact,
        });
    }
    seals
}

fn check_goods(goods: &[GoodsLine], errors: &mut Vec<FieldError>) {
    if goods.is_empty() {
        errors.push(FieldError::new("goods", "declare at least one goods line"));
    }
    for (i, g) in goods.iter().enumerate() {
        let digits = g.hs_code.chars().all(|c| c.is_ascii_digit());
        if !digits || !(6..=10).contains(&g.hs_code.len()) {
            errors.push(FieldError::new(
                format!("goods[{i}].hs_code"),
                "6 to 10 digits",
            ));
        }
        if !text_ok(&g.description, 500) {
            errors.push(FieldError::new(
                format!("goods[{i}].description"),
                "1-500 characters",
            ));
        }
        if !(g.gross_kg.is_finite() && g.gross_kg > 0.0) {
            errors.push(FieldError::new(
                format!("goods[{i}].gross_kg"),
                "a positive mass",
            ));
        }
        if !(g.value.is_finite() && g.value >= 0.0) {
            errors.push(FieldError::new(format!("goods[{i}].value"), "0 or more"));
        }
        let currency = g.currency.len() == 3 && g.currency.chars().all(|c| c.is_ascii_uppercase());
        if !currency {
            errors.push(FieldError::new(
                format!("goods[{i}].currency"),
                "an ISO 4217 code, e.g. USD",
            ));
        }
    }
}
