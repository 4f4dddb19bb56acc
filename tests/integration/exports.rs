//! Exports as an officer or an analyst takes them: CSV of the API's lists, a track as GPX or
//! GeoJSON; the same answers, scoped the same way, in another format.

use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, fix, spawn_app, topic, TestApp};

/// Status, content type, attachment name and body of a GET with `accept`.
async fn fetch(
    app: &TestApp,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, String, String, String) {
    let mut request = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(&app.token);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.expect("the API answers");
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, disposition) = (header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
    let status = response.status();
    (
        status,
        content_type,
        disposition,
        response.text().await.expect("a body"),
    )
}

fn declaration() -> Value {
    let deadline = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    json!({
        "reference": "24CN0101-000888",
        "carrier": "kg-trans",
        "vehicle_plate": "01KG123ABC",
        "driver": {"name": "Bakyt Asanov"},
        "devices": ["csv-1"],
        "seals": [{"id": "CN-S-0888"}],
        "goods": [{"hs_code": "845011", "description": "washing machines, \"front-loading\"",
                   "gross_kg": 12400.0, "value": 48000.0, "currency": "USD"}],
        "departure_office": "kashgar",
        "itinerary": ["irkeshtam"],
        "destination_office": "osh",
        "deadline": deadline,
    })
}

#[tokio::test]
async fn every_list_exports_as_csv_by_accept_or_by_format() {
    let app = spawn_app().await;
    app.register("csv-1").await;
    app.register("csv-2").await;
    let (status, content_type, disposition, csv) =
        fetch(&app, "/api/v1/devices", Some("text/csv")).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(disposition, "attachment; filename=\"devices.csv\"");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].split(',').any(|c| c == "device_id"), "{csv}");
    assert!(
        lines[1].starts_with("csv-1,") || lines[2].starts_with("csv-1,"),
        "{csv}"
    );

    let (status, declared) = app.post("/api/v1/transits", &declaration()).await;
    assert_eq!(status, StatusCode::CREATED, "{declared}");
    let id = declared["id"].as_str().expect("an id").to_owned();
    let (status, _, _, csv) = fetch(&app, "/api/v1/transits?format=csv", None).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(csv.contains(&id), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");

    // A transit holds several lists: the export asks which, then gives it.
    let (status, _, _, body) =
        fetch(&app, &format!("/api/v1/transits/{id}?format=csv"), None).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert!(body.contains("rows="), "{body}");
    let path = format!("/api/v1/transits/{id}?format=csv&rows=goods");
    let (status, _, _, csv) = fetch(&app, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(
        csv.contains("\"washing machines, \"\"front-loading\"\"\""),
        "{csv}"
    );

    for path in [
        "/api/v1/alerts?format=csv",
        "/api/v1/stats/bcps/irkeshtam?format=csv&rows=passages",
        "/api/v1/stats/sections?format=csv",
        "/api/v1/posts/irkeshtam-kg/expected-arrivals?format=csv",
    ] {
        let (status, content_type, _, body) = fetch(&app, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(content_type, "text/csv; charset=utf-8", "{path}");
    }
    let (_, _, _, expected) = fetch(
        &app,
        "/api/v1/posts/irkeshtam-kg/expected-arrivals?format=csv",
        None,
    )
    .await;
    assert!(expected.contains(&id), "{expected}");
}

#[tokio::test]
async fn an_export_is_no_way_around_scope_or_errors() {
    let app = spawn_app().await;
    app.register("csv-1").await;
    let (status, declared) = app.post("/api/v1/transits", &declaration()).await;
    assert_eq!(status, StatusCode::CREATED, "{declared}");
    let id = declared["id"].as_str().expect("an id");
    let kz = app.token_for("customs:KZ");
    let response = app
        .http
        .get(format!(
            "{}/api/v1/transits/{id}?format=csv&rows=goods",
            app.base
        ))
        .bearer_auth(&kz)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .http
        .get(format!("{}/api/v1/transits?format=csv", app.base))
        .bearer_auth(&kz)
        .send()
        .await
        .expect("answers");
    let csv = response.text().await.expect("text");
    assert!(!csv.contains(id), "{csv}");
    let (status, content_type, _, body) = fetch(&app, "/api/v1/devices?format=xls", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(content_type.starts_with("application/json"));
    assert!(body.contains("format=xls"), "{body}");
}

#[tokio::test]
async fn a_track_exports_as_gpx_and_as_geojson() {
    let app = spawn_app().await;
    app.register("gpx-1").await;
    let device = app.mqtt("gpx-1").await;
    for (seq, lat, lon) in [(1, 39.73, 73.25), (2, 39.80, 73.30), (3, 39.90, 73.35)] {
        let at = 30 - seq as i64;
        device
            .publish_json(&topic("gpx-1", "pos"), &fix(seq, at, lat, lon))
            .await;
    }
    let path = "/api/v1/devices/gpx-1/track";
    eventually("three fixes stored", || async {
        let (_, track) = app.get(path).await;
        (track["properties"]["fixes"] == 3).then_some(())
    })
    .await;
    let (status, content_type, disposition, gpx) =
        fetch(&app, &format!("{path}?format=gpx"), None).await;
    assert_eq!(status, StatusCode::OK, "{gpx}");
    assert_eq!(content_type, "application/gpx+xml");
    assert_eq!(disposition, "attachment; filename=\"track.gpx\"");
    assert!(gpx.contains("<name>gpx-1</name>"), "{gpx}");
    assert_eq!(gpx.matches("<trkpt ").count(), 3, "{gpx}");
    let first = gpx
        .find("lat=\"39.73\" lon=\"73.25\"")
        .expect("the first fix");
    let last = gpx
        .find("lat=\"39.9\" lon=\"73.35\"")
        .expect("the last fix");
    assert!(first < last, "in time order: {gpx}");

    let (status, content_type, _, text) = fetch(&app, path, Some("application/geo+json")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type, "application/geo+json");
    let geojson: Value = serde_json::from_str(&text).expect("GeoJSON");
    assert_eq!(geojson["type"], "FeatureCollection");

    // A GPX of something that is not a track is refused, not invented.
    let (status, _, _, body) = fetch(&app, "/api/v1/devices?format=gpx", None).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
}
