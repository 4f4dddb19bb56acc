//! Roles checked against the maps, tokens kept out of URLs, stream tickets, bounded streams.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::streams::Sse;
use crate::helpers::spawn_app;

#[tokio::test]
async fn roles_naming_places_the_maps_lack_are_refused_with_the_valid_choices() {
    let app = spawn_app().await;
    let cases = [
        ("post:irkeshtam-kg:KG", "post:irkeshtam:KG"),
        ("customs:XX", "KZ"),
        ("post:nowhere:KG", "irkeshtam"),
        ("post:irkeshtam:KZ", "post:irkeshtam:CN"),
    ];
    for (role, hint) in cases {
        let body = json!({"name": "t", "role": role});
        let (status, answer) = app.post("/api/v1/tokens", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{role}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(hint), "{role}: {message}");
    }
    for role in [
        "customs:KG",
        "post:irkeshtam:KG",
        "carrier:kg-trans",
        "coordinator",
    ] {
        let body = json!({"name": "t", "role": role});
        let (status, answer) = app.post("/api/v1/tokens", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{role}: {answer}");
    }
}

#[tokio::test]
async fn tokens_never_travel_in_urls_and_a_stream_ticket_opens_one_stream() {
    let app = spawn_app().await;
    let url = |path: &str| format!("{}{path}", app.base);
    let token = &app.token;
    for path in ["/api/v1/transits", "/api/v1/devices", "/api/v1/stream"] {
        let response = app
            .http
            .get(url(&format!("{path}?access_token={token}")))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 400 | 401),
            "{path} with a token in the URL answered {}",
            response.status()
        );
    }
    let (status, ticket) = app.post("/api/v1/stream/ticket", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    assert!(!ticket.contains(&token[4..]), "the ticket is not the token");
    let open = || {
        app.http
            .get(url(&format!("/api/v1/stream?ticket={ticket}")))
            .send()
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = open().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "a ticket opens one stream"
    );
    // A ticket is good for nothing but the stream.
    let response = app
        .http
        .get(url("/api/v1/transits"))
        .bearer_auth(&ticket)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_holds_a_bounded_number_of_streams_and_gets_them_back_when_clients_leave() {
    let app = spawn_app().await;
    let token = app.token_for("carrier:kg-trans");
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(
            Sse::open(&app, &token, Some(0))
                .await
                .expect("within the cap"),
        );
    }
    let refused = Sse::open(&app, &token, Some(0)).await.err();
    assert_eq!(refused, Some(StatusCode::TOO_MANY_REQUESTS));
    // Another principal is not affected.
    let other = app.token_for("carrier:other");
    assert!(Sse::open(&app, &other, None).await.is_ok());
    drop(open);
    // The server notices a client gone at the latest with its next keep-alive (5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if Sse::open(&app, &token, None).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the streams of clients that left are still counted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_expired_token_no_longer_authenticates() {
    use caravan::store::StoreWriter;
    let app = spawn_app().await;
    let role: caravan::auth::Role = "customs:KG".parse().unwrap();
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let expired = caravan::tokens::issue_until("old shift", role.clone(), Some(past)).unwrap();
    let current = caravan::tokens::issue_until("this shift", role, Some(future)).unwrap();
    let (mut writer, _) = app.open_store();
    writer.commit(&[expired.write, current.write]).unwrap();
    let (status, _) = app.get_as(&expired.text, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, me) = app.get_as(&current.text, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let body = json!({"name": "temp", "role": "customs:KG", "expires_in_s": 3600});
    let (status, issued) = app.post("/api/v1/tokens", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert!(issued["expires_at"].is_string(), "{issued}");
    let body = json!({"name": "temp", "role": "customs:KG", "expires_in_s": 5});
    let (status, _) = app.post("/api/v1/tokens", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
