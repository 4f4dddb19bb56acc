//! Transits declared through the real book and maps, for tests in other modules.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{Actor, Declaration, Driver, GoodsLine, RiskRules, Transit, TransitBook, TransitRules};
use crate::maps::Atlas;

/// When [`bishkek_almaty`] is declared.
pub(crate) fn declared_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap()
}

/// Bishkek → Akzhol → Almaty (KG, KZ) on `truck-1` of `kg-trans`, declared by `kg` at
/// [`declared_at`].
pub(crate) fn bishkek_almaty() -> Transit {
    let mut book = TransitBook::new(
        Arc::new(Atlas::embedded().unwrap()),
        TransitRules::embedded().unwrap(),
        RiskRules::embedded().unwrap(),
    );
    let at = declared_at();
    let decl = Declaration {
        reference: "24KG0101-000001".into(),
        carrier: "kg-trans".into(),
        vehicle_plate: "01KG123ABC".into(),
        trailer_plates: vec![],
        driver: Driver {
            name: "Bakyt Asanov".into(),
            document: None,
        },
        devices: vec!["truck-1".into()],
        seals: vec![],
        goods: vec![GoodsLine {
            hs_code: "845011".into(),
            description: "washing machines".into(),
            gross_kg: 12_400.0,
            value: 48_000.0,
            currency: "USD".into(),
        }],
        departure_office: "bishkek".into(),
        itinerary: vec!["akzhol".into()],
        destination_office: "almaty".into(),
        deadline: at + Duration::days(3),
    };
    *book
        .declare(decl, &Actor("kg".into()), at, &|_| true)
        .expect("a valid declaration")
        .transit
}
