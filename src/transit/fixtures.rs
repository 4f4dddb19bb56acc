//! Transits declared through the real book and maps, for tests in other modules.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::declare::DeclaredSeal;
use super::{Actor, Declaration, Driver, GoodsLine, RiskRules, Transit, TransitBook, TransitRules};
use crate::maps::Atlas;

/// A book on the shipped maps and rules.
pub(crate) fn book() -> TransitBook {
    TransitBook::new(
        Arc::new(Atlas::embedded().unwrap()),
        TransitRules::embedded().unwrap(),
        RiskRules::embedded().unwrap(),
    )
}

/// When [`bishkek_almaty`] is declared.
pub(crate) fn declared_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap()
}

/// Bishkek → Akzhol → Almaty (KG, KZ) on `truck-1` of `kg-trans`, declared by `kg` at
/// [`declared_at`].
pub(crate) fn bishkek_almaty() -> Transit {
    let mut book = book();
    let at = declared_at();
    let decl = Declaration {
        reference: "24KG0101-000001".into(),
        carrier: "kg-trans".into(),
        vehicle_plate: "01KG123ABC".into(),
        trailer_plates: vec![],
        driver: driver(),
        devices: vec!["truck-1".into()],
        seals: vec![],
        goods: washing_machines(),
        departure_office: "bishkek".into(),
        itinerary: vec!["akzhol".into()],
        destination_office: "almaty".into(),
        deadline: at + Duration::days(3),
    };
    *book
        .declare(decl, &Actor("kg".into()), at, &|id| Some(id.clone()))
        .expect("a valid declaration")
        .transit
}

/// The driver of both fixtures' truck.
fn driver() -> Driver {
    Driver {
        name: "Bakyt Asanov".into(),
        document: None,
    }
}

/// Both fixtures' load.
fn washing_machines() -> Vec<GoodsLine> {
    vec![GoodsLine {
        hs_code: "845011".into(),
        description: "washing machines".into(),
        gross_kg: 12_400.0,
        value: 48_000.0,
        currency: "USD".into(),
    }]
}

/// `minutes` after 08:00 on the day of [`kashgar_almaty`]'s declarations.
pub(crate) fn minutes_in(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// Kashgar → Torugart → Akzhol → Almaty (CN, KG, KZ) on `device` of `kg-trans`, sealed with
/// `S-{reference}`, due ten days after [`minutes_in`]`(0)`.
pub(crate) fn kashgar_almaty(reference: &str, device: &str) -> Declaration {
    Declaration {
        reference: reference.into(),
        carrier: "kg-trans".into(),
        vehicle_plate: "01KG123ABC".into(),
        trailer_plates: Vec::new(),
        driver: driver(),
        devices: vec![device.into()],
        seals: vec![DeclaredSeal {
            id: format!("S-{reference}"),
            device_id: None,
        }],
        goods: washing_machines(),
        departure_office: "kashgar".into(),
        itinerary: vec!["torugart".into(), "akzhol".into()],
        destination_office: "almaty".into(),
        deadline: minutes_in(10 * 24 * 60),
    }
}
