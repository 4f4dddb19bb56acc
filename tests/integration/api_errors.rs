//! Every API error has the one JSON shape and the right status.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

fn assert_error(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_devices_and_routes_are_404_with_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/devices/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = app.get("/api/v1/devices/nobody/track").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

#[tokio::test]
async fn bad_ids_queries_and_bodies_are_400_naming_the_problem() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/devices/bad.id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_request");

    let (status, body) = app.get("/api/v1/devices/x/track?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_request");

    let (status, body) = app
        .post("/api/v1/devices", &json!({"device_id": "ok-1"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("carrier"),
        "{body}"
    );

    let (status, body) = app
        .post(
            "/api/v1/devices",
            &json!({"device_id": "a/b", "carrier": "kg-trans"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("device_id"),
        "{body}"
    );
}

#[tokio::test]
async fn registering_a_device_twice_is_a_conflict() {
    let app = spawn_app().await;
    app.register("twice").await;
    let (status, body) = app
        .post(
            "/api/v1/devices",
            &json!({"device_id": "twice", "carrier": "other"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "conflict");
    assert_eq!(
        app.device("twice").await["carrier"],
        "kg-trans",
        "the first registration stands"
    );
}

#[tokio::test]
async fn an_oversize_body_is_refused_before_it_is_read() {
    let app = spawn_app().await;
    let huge = json!({"device_id": "big", "carrier": "x".repeat(100_000)});
    let (status, body) = app.post("/api/v1/devices", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large");
}

#[tokio::test]
async fn healthz_reports_the_broker_link_and_the_store() {
    let app = spawn_app().await;
    // The tracking state is restored after the API is up: `restoring` for a moment.
    let body = crate::helpers::eventually("the tracking state is restored", || async {
        let (status, body) = app.get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        (body["tracking"] == "ok").then_some(body)
    })
    .await;
    // The only instance is active; on PostgreSQL it holds the lease's first epoch, on
    // SQLite there is no lease.
    assert_eq!(body["role"], "active");
    let mut body = body;
    let epoch = body.as_object_mut().and_then(|b| {
        b.remove("role");
        b.remove("epoch")
    });
    assert!(
        matches!(epoch, Some(Value::Null) | Some(Value::Number(_))),
        "{epoch:?}"
    );
    assert_eq!(
        body,
        json!({"status": "ok", "broker": "connected", "store": "ok", "historian": "off", "tracking": "ok", "intake": "ok",
               "exchange": {"status": "off"}})
    );
}

#[tokio::test]
async fn a_bad_query_parameter_is_named_in_the_error() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/devices?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("query parameter limit=many:"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/devices?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    // A token never travels in a URL: as a query parameter it is refused like any other.
    let url = format!(
        "{}/api/v1/devices?limit=5&access_token={}",
        app.base, app.token
    );
    assert_eq!(
        app.http.get(url).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_bad_request() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/api/v1/stream", app.base))
        .bearer_auth(&app.token)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_border_post_is_listed_with_its_bcp_and_country() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/posts").await;
    assert_eq!(status, StatusCode::OK);
    let posts = body["posts"].as_array().unwrap();
    let kg = posts
        .iter()
        .find(|p| p["id"] == "irkeshtam-kg")
        .expect("Irkeshtam's Kyrgyz post");
    assert_eq!(kg["bcp_id"], "irkeshtam");
    assert_eq!(kg["country"], "KG");
    assert_eq!(kg["peer_country"], "CN");
    assert_eq!(posts.len() % 2, 0, "every BCP is a pair of posts");
}
