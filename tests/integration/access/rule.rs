//! The table of `docs/access.md`, written again for the tests from the records as the
//! coordinator sees them (JSON), independently of the server's own rules.

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Who {
    Coordinator,
    Customs(String),
    Post(String, String),
    Carrier(String),
}

impl Who {
    pub fn parse(role: &str) -> Who {
        let parts: Vec<&str> = role.split(':').collect();
        match parts.as_slice() {
            ["customs", cc] => Who::Customs((*cc).into()),
            ["post", bcp, cc] => Who::Post((*bcp).into(), (*cc).into()),
            ["carrier", id] => Who::Carrier((*id).into()),
            _ => Who::Coordinator,
        }
    }

    fn country(&self) -> Option<&str> {
        match self {
            Who::Customs(cc) | Who::Post(_, cc) => Some(cc),
            _ => None,
        }
    }
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// Row "transit".
pub fn transit(who: &Who, t: &Value) -> bool {
    let checkpoints = t["itinerary"]["checkpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let legs = t["itinerary"]["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match who {
        Who::Coordinator => true,
        Who::Carrier(id) => t["carrier"] == id.as_str(),
        Who::Customs(cc) => legs.iter().any(|l| l["country"] == cc.as_str()),
        Who::Post(bcp, cc) => checkpoints.iter().any(|c| {
            c["id"] == bcp.as_str()
                && c["posts"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["country"] == cc.as_str()))
        }),
    }
}

/// "Addressed to CC": coordinators and carriers are not limited by country.
pub fn addressed(who: &Who, visible_to: &Value) -> bool {
    match who.country() {
        None => true,
        Some(cc) => strs(visible_to).contains(&cc),
    }
}

/// Rows "alert" and "inspection".
pub fn addressed_record(who: &Who, t: &Value, record: &Value) -> bool {
    transit(who, t) && addressed(who, &record["visible_to"])
}

fn carries(t: &Value, device: &str) -> bool {
    strs(&t["devices"]).contains(&device)
        || t["seals"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["device_id"] == device))
}

/// From the declaration to the close or cancellation, open-ended while under way.
fn serving(who: &Who, device: &str, transits: &[Value], at: DateTime<Utc>) -> bool {
    transits
        .iter()
        .filter(|t| carries(t, device) && transit(who, t))
        .any(|t| {
            let from = time(&t["declared_at"]);
            let ended = t["transitions"]
                .as_array()
                .and_then(|tr| {
                    tr.iter()
                        .rev()
                        .find(|tr| tr["to"] == "closed" || tr["to"] == "cancelled")
                })
                .and_then(|tr| time(&tr["at"]));
            from.is_some_and(|f| at >= f) && ended.is_none_or(|e| at <= e)
        })
}

/// Row "device": whether it exists for `who`.
pub fn device(who: &Who, d: &Value, transits: &[Value], now_in: Option<&str>) -> bool {
    let id = d["device_id"].as_str().unwrap_or_default();
    let on_visible = transits.iter().any(|t| carries(t, id) && transit(who, t));
    match who {
        Who::Coordinator => true,
        Who::Carrier(c) => d["carrier"] == c.as_str(),
        Who::Customs(cc) => on_visible || now_in == Some(cc.as_str()),
        Who::Post(..) => on_visible,
    }
}

/// Row "stretch of a device's history": one fact at `at` in `country`.
pub fn shows(
    who: &Who,
    d: &Value,
    transits: &[Value],
    at: DateTime<Utc>,
    country: Option<&str>,
) -> bool {
    let id = d["device_id"].as_str().unwrap_or_default();
    match who {
        Who::Coordinator => true,
        Who::Carrier(c) => d["carrier"] == c.as_str(),
        Who::Customs(cc) => match country {
            Some(here) => here == cc,
            None => serving(who, id, transits, at),
        },
        Who::Post(_, cc) => serving(who, id, transits, at) && country.is_none_or(|here| here == cc),
    }
}

/// Row "transit event".
pub fn transit_event(who: &Who, t: &Value, kind: &str, body: &Value) -> bool {
    if !transit(who, t) {
        return false;
    }
    match kind {
        "transit.alert_raised" | "transit.alert_updated" | "transit.inspection_recorded" => {
            addressed(who, &body["visible_to"])
        }
        _ => true,
    }
}

/// Rows of the statistics: a passage at a BCP with a side in CC, a section on a leg in CC.
pub fn passage(who: &Who, t: &Value, bcp: &str) -> bool {
    transit(who, t)
        && who.country().is_none_or(|cc| {
            t["itinerary"]["checkpoints"].as_array().is_some_and(|cps| {
                cps.iter().any(|c| {
                    c["id"] == bcp
                        && c["posts"]
                            .as_array()
                            .is_some_and(|p| p.iter().any(|p| p["country"] == cc))
                })
            })
        })
}
