//! Every role × every write action on the fleet, against the action table. Each action is
//! chosen so that an allowed principal meets a refusal of the domain (409 or 422) or a
//! harmless success, and a principal outside its mandate a 403 (or a 404 for a record it
//! does not see): the fleet stays as it was for the next role.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::fleet::{self, declaration, seal_alert, Route, ROLES};
use super::rule::{self, Who};
use crate::helpers::{spawn_app, TestApp};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Allowed,
    Forbidden,
    Hidden,
}

fn judge(status: StatusCode) -> Option<Expect> {
    match status.as_u16() {
        200 | 201 | 409 | 422 => Some(Expect::Allowed),
        403 => Some(Expect::Forbidden),
        404 => Some(Expect::Hidden),
        _ => None,
    }
}

/// Where a place of the fleet's itineraries is: offices and posts.
fn place_country(place: &str) -> &'static str {
    match place {
        "bishkek" | "osh" | "akzhol-kg" | "irkeshtam-kg" | "karasuu-kg" => "KG",
        "almaty" | "akzhol-kz" => "KZ",
        "kashgar" | "irkeshtam-cn" => "CN",
        _ => "UZ",
    }
}

/// The action table of docs/access.md for one transit action.
fn allowed(who: &Who, t: &Value, action: &str, place: Option<&str>) -> Expect {
    if !rule::transit(who, t) {
        return Expect::Hidden;
    }
    let issuing = t["issuing_country"].as_str().unwrap_or_default();
    let destination = t["itinerary"]["legs"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["country"].as_str())
        .unwrap_or_default();
    let ok = match (who, action) {
        (Who::Coordinator, _) => true,
        (Who::Carrier(_), _) => false,
        (Who::Customs(cc), "close") => cc == destination,
        (Who::Customs(cc), "cancel" | "confirm_departure") => cc == issuing,
        (Who::Customs(cc), _) => place.is_some_and(|p| place_country(p) == cc),
        (Who::Post(..), "close" | "cancel" | "confirm_departure") => false,
        (Who::Post(bcp, cc), _) => place == Some(format!("{bcp}-{}", cc.to_lowercase()).as_str()),
    };
    if ok {
        Expect::Allowed
    } else {
        Expect::Forbidden
    }
}

async fn transit(app: &TestApp, id: &str) -> Value {
    fleet::transit(app, id).await
}

#[tokio::test]
async fn every_role_acts_only_within_its_mandate() {
    let app = spawn_app().await;
    let _fleet = fleet::build(&app).await;
    let mut problems = Vec::new();
    let t1 = transit(&app, "KG-ACC-T1").await;
    let t3 = transit(&app, "CN-ACC-T3").await;
    let t2 = transit(&app, "CN-ACC-T2").await;
    let escalated = seal_alert(&t1);
    let cn_alert = seal_alert(&t2);
    for role in ROLES {
        let who = Who::parse(role);
        let token = app.token_for(role);
        let mut check = |what: String, status: StatusCode, expected: Expect| {
            if judge(status) != Some(expected) {
                problems.push(format!(
                    "{role}: {what}: got {status}, expected {expected:?}"
                ));
            }
        };
        // Closing a transit that has not arrived: 409 for those who may close.
        for t in [&t1, &t3] {
            let id = t["id"].as_str().unwrap_or_default();
            let path = format!("/api/v1/transits/{id}/actions");
            let (status, _) = app
                .post_as(&token, &path, &json!({"action": "close"}))
                .await;
            check(
                format!("close {id}"),
                status,
                allowed(&who, t, "close", None),
            );
            // An inspection removing a seal the load does not carry: 409 where allowed.
            let places: Vec<String> = t["itinerary"]["checkpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| {
                    let posts: Vec<String> = c["posts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["id"].as_str().map(str::to_owned))
                        .collect();
                    if posts.is_empty() {
                        vec![c["id"].as_str().unwrap_or_default().to_owned()]
                    } else {
                        posts
                    }
                })
                .collect();
            for place in &places {
                let body =
                    json!({"place": place, "result": "cleared", "seals_removed": ["NOT-ON-LOAD"]});
                let path = format!("/api/v1/transits/{id}/inspections");
                let (status, _) = app.post_as(&token, &path, &body).await;
                let expected = allowed(&who, t, "inspect", Some(place));
                check(format!("inspect {id} at {place}"), status, expected);
            }
        }
        // Acknowledging an alert: the escalated one is resolved (409 where allowed); the CN
        // one is open (acknowledging it again is harmless).
        for (alert, t) in [(&escalated, &t1), (&cn_alert, &t2)] {
            let path = format!("/api/v1/alerts/{alert}/actions");
            let (status, _) = app
                .post_as(&token, &path, &json!({"action": "acknowledge"}))
                .await;
            let a = t["alerts"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["id"] == alert.as_str()))
                .cloned()
                .unwrap_or_default();
            let expected = if !rule::addressed_record(&who, t, &a) {
                Expect::Hidden
            } else if matches!(who, Who::Carrier(_)) {
                Expect::Forbidden
            } else {
                Expect::Allowed
            };
            check(format!("acknowledge {alert}"), status, expected);
        }
        // Declarations past their deadline: 422 where the principal may declare at all.
        let past = chrono::Utc::now() - chrono::Duration::days(1);
        let tm_only = declaration(
            "ACC-TM",
            "sim-carrier",
            "acc-d7",
            ("turkmenabat", &[], "mary"),
            past,
        );
        let (status, _) = app.post_as(&token, "/api/v1/transits", &tm_only).await;
        let expected = match &who {
            Who::Coordinator => Expect::Allowed,
            Who::Customs(cc) if cc == "TM" => Expect::Allowed,
            Who::Carrier(c) if c == "sim-carrier" => Expect::Allowed,
            _ => Expect::Forbidden,
        };
        check("declare a TM-only transit".into(), status, expected);
        let route: Route<'_> = ("bishkek", &["akzhol"], "almaty");
        let foreign = declaration("ACC-FD", "other", "acc-d6", route, past);
        let (status, _) = app.post_as(&token, "/api/v1/transits", &foreign).await;
        check(
            "declare on another carrier's device".into(),
            status,
            Expect::Forbidden,
        );
    }
    assert!(
        problems.is_empty(),
        "{} answers differ from docs/access.md:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn a_carrier_cannot_take_another_carrier_s_idle_device() {
    let app = spawn_app().await;
    let body = json!({"device_id": "idle-1", "carrier": "sim-carrier"});
    let (status, _) = app.post("/api/v1/devices", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = chrono::Utc::now() + chrono::Duration::days(2);
    let route: Route<'_> = ("bishkek", &["akzhol"], "almaty");
    let other = app.token_for("carrier:other");
    let theirs = declaration("ACC-X1", "other", "idle-1", route, deadline);
    let (status, body) = app.post_as(&other, "/api/v1/transits", &theirs).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app.get_as(&other, "/api/v1/devices/idle-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let owner = app.token_for("carrier:sim-carrier");
    let own = declaration("ACC-X2", "sim-carrier", "idle-1", route, deadline);
    let (status, body) = app.post_as(&owner, "/api/v1/transits", &own).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the owner's own declaration: {body}"
    );
}
