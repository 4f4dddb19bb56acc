//! Tokens, roles and jurisdiction: every endpoint has an allowed and a refused principal, and
//! an out-of-scope record answers exactly like a missing one.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{eventually, fix, spawn_app, topic};

#[tokio::test]
async fn without_a_valid_token_the_api_answers_401() {
    let app = spawn_app().await;
    let (status, body) = app.get_as("cvn_not-a-token", "/api/v1/devices").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let response = app
        .http
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Health and metrics stay open for the operator's monitoring.
    let (status, _) = app.get_as("", "/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn me_names_the_principal_and_its_role() {
    let app = spawn_app().await;
    let post = app.token_for("post:irkeshtam:KG");
    let (status, me) = app.get_as(&post, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "post:irkeshtam:KG");
}

#[tokio::test]
async fn a_carrier_sees_and_registers_only_its_own_devices() {
    let app = spawn_app().await;
    app.register("kg-1").await;
    let other = json!({"device_id": "tj-1", "carrier": "tj-cargo"});
    assert_eq!(
        app.post("/api/v1/devices", &other).await.0,
        StatusCode::CREATED
    );

    let kg = app.token_for("carrier:kg-trans");
    let (_, list) = app.get_as(&kg, "/api/v1/devices").await;
    let ids: Vec<_> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].clone())
        .collect();
    assert_eq!(ids, [json!("kg-1")]);
    assert_eq!(
        app.get_as(&kg, "/api/v1/devices/kg-1").await.0,
        StatusCode::OK
    );

    // Another carrier's device is indistinguishable from a device that does not exist.
    let (status, hidden) = app.get_as(&kg, "/api/v1/devices/tj-1").await;
    let (_, missing) = app.get_as(&kg, "/api/v1/devices/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hidden["error"]["code"], missing["error"]["code"]);
    for path in ["/api/v1/devices/tj-1/track", "/api/v1/devices/tj-1/events"] {
        assert_eq!(
            app.get_as(&kg, path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    let own = json!({"device_id": "kg-2", "carrier": "kg-trans"});
    assert_eq!(
        app.post_as(&kg, "/api/v1/devices", &own).await.0,
        StatusCode::CREATED
    );
    let foreign = json!({"device_id": "tj-2", "carrier": "tj-cargo"});
    let (status, body) = app.post_as(&kg, "/api/v1/devices", &foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn customs_see_the_trucks_in_their_country_and_not_the_others() {
    let app = spawn_app().await;
    app.register("in-kg").await;
    app.register("in-kz").await;
    let in_kg = app.mqtt("in-kg").await;
    in_kg
        .publish_json(&topic("in-kg", "pos"), &fix(1, 1, 42.87, 74.59))
        .await; // Bishkek
    let in_kz = app.mqtt("in-kz").await;
    in_kz
        .publish_json(&topic("in-kz", "pos"), &fix(1, 1, 43.25654, 76.92848))
        .await; // Almaty
    eventually("both countries are known", || async {
        let a = app.device("in-kg").await;
        let b = app.device("in-kz").await;
        (a["geo"]["country"] == "KG" && b["geo"]["country"] == "KZ").then_some(())
    })
    .await;

    let kg = app.token_for("customs:KG");
    let (_, list) = app.get_as(&kg, "/api/v1/devices").await;
    let ids: Vec<_> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].clone())
        .collect();
    assert_eq!(ids, [json!("in-kg")]);
    assert_eq!(
        app.get_as(&kg, "/api/v1/devices/in-kg").await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&kg, "/api/v1/devices/in-kz").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = app
        .post_as(
            &kg,
            "/api/v1/devices",
            &json!({"device_id": "x", "carrier": "kg-trans"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_coordinator_manages_tokens_and_a_revoked_token_stops_at_once() {
    let app = spawn_app().await;
    let (status, made) = app
        .post(
            "/api/v1/tokens",
            &json!({"name": "Osh customs desk", "role": "customs:KG"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_as(&token, "/api/v1/me").await.1["role"],
        "customs:KG"
    );

    // Not a coordinator: cannot list or make tokens.
    assert_eq!(
        app.get_as(&token, "/api/v1/tokens").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = app
        .post_as(
            &token,
            "/api/v1/tokens",
            &json!({"name": "x", "role": "coordinator"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, list) = app.get("/api/v1/tokens").await;
    let listed = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Osh customs desk")
        .cloned()
        .unwrap();
    assert!(
        !list.to_string().contains(&token),
        "the token text is never listed"
    );
    let id = listed["id"].as_i64().unwrap();
    let response = app
        .http
        .delete(format!("{}/api/v1/tokens/{id}", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_as(&token, "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, body) = app
        .post("/api/v1/tokens", &json!({"name": "x", "role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("role"));
}

#[test]
fn the_cli_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let caravan = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .envs(crate::test_store::env_for(dir.path()))
            .output()
            .unwrap()
    };
    let made = caravan(&[
        "token",
        "create",
        "--role",
        "post:irkeshtam:KG",
        "--name",
        "Irkeshtam shift B",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    assert!(token.starts_with("cvn_"));
    let listed = String::from_utf8_lossy(&caravan(&["token", "list"]).stdout).into_owned();
    assert!(
        listed.contains("post:irkeshtam:KG") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&token));
    let id = listed.split('\t').next().unwrap().to_owned();
    assert!(caravan(&["token", "revoke", &id]).status.success());
    let listed = String::from_utf8_lossy(&caravan(&["token", "list"]).stdout).into_owned();
    assert!(listed.contains("revoked"), "{listed}");
    let bad = caravan(&["token", "create", "--role", "king", "--name", "x"]);
    assert!(!bad.status.success());
}
