//! The run's customs desk: lodges the fleet's declarations and closes its completed transits
//! through the API, at the moments the model gives them.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

use super::register::Api;
use crate::transit::{Declaration, OfficerAction};

/// How long a close is retried while Caravan has not yet seen the vehicle arrive (its last
/// fixes may still be on their way through the broker and the pipeline).
const CLOSE_PATIENCE: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Attempts at a declaration the API did not answer (network, 5xx).
const DECLARE_ATTEMPTS: u32 = 5;

/// What became of a declaration or a close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    /// Why not, in the API's words.
    Refused(String),
}

pub(super) struct Desk {
    api: Api,
    cancel: CancellationToken,
}

impl Desk {
    pub(super) fn new(api: Api, cancel: CancellationToken) -> Self {
        Self { api, cancel }
    }

    /// `POST /api/v1/transits` with `declaration`, its deadline moved `lag_s` later: the
    /// model's deadline is in simulated time, which trails the server's clock by `lag_s`, and
    /// the server judges deadlines on its own clock.
    pub(super) async fn declare(&self, mut declaration: Declaration, lag_s: i64) -> Outcome {
        declaration.deadline += chrono::Duration::seconds(lag_s.max(0));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .api
                .request(Method::POST, "/api/v1/transits")
                .json(&declaration)
                .send()
                .await;
            let last = match sent {
                Ok(r) if r.status() == StatusCode::CREATED => return Outcome::Done,
                Ok(r) if r.status().is_server_error() => refusal(r).await,
                Ok(r) => return Outcome::Refused(refusal(r).await),
                Err(e) => format!("the API did not answer: {e}"),
            };
            if attempt >= DECLARE_ATTEMPTS || self.pause().await {
                return Outcome::Refused(last);
            }
        }
    }

    /// `POST /api/v1/transits/{id}/actions` `{"action": "close"}`, the office of destination
    /// closing a completed transit; retried while Caravan has the transit short of `arrived`
    /// (the vehicle's last fixes still on their way), not when alerts hold it.
    pub(super) async fn close(&self, transit_id: &str) -> Outcome {
        let give_up = Instant::now() + CLOSE_PATIENCE;
        let path = format!("/api/v1/transits/{transit_id}/actions");
        loop {
            let sent = self
                .api
                .request(Method::POST, &path)
                .json(&OfficerAction::Close)
                .send()
                .await;
            let last = match sent {
                Ok(r) if r.status().is_success() => return Outcome::Done,
                Ok(r) if r.status() == StatusCode::CONFLICT => {
                    let why = refusal(r).await;
                    match self.status(transit_id).await.as_deref() {
                        Some("closed") => return Outcome::Done,
                        // Arrived, or suspended by a critical alert, and still refused:
                        // unresolved alerts, not timing. Retrying would hold up the whole
                        // fleet, and every device would fall silent on Caravan's clock.
                        Some("arrived" | "suspended") => return Outcome::Refused(why),
                        _ => why,
                    }
                }
                Ok(r) if r.status().is_server_error() => refusal(r).await,
                Ok(r) => return Outcome::Refused(refusal(r).await),
                Err(e) => format!("the API did not answer: {e}"),
            };
            if Instant::now() >= give_up {
                let waited = CLOSE_PATIENCE.as_secs();
                return Outcome::Refused(format!("still refused after {waited} s: {last}"));
            }
            if self.pause().await {
                return Outcome::Refused(format!("the run stopped first: {last}"));
            }
        }
    }

    /// The transit's status as the API shows it.
    async fn status(&self, transit_id: &str) -> Option<String> {
        let path = format!("/api/v1/transits/{transit_id}");
        let response = self.api.request(Method::GET, &path).send().await.ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        body.get("status")?.as_str().map(str::to_owned)
    }

    /// Waits before the next attempt; true when the run was cancelled meanwhile.
    async fn pause(&self) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => true,
            () = tokio::time::sleep(RETRY_EVERY) => false,
        }
    }
}

/// The status and the API's error message (or body) of a refused request.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| {
            let error = body.get("error")?;
            let message = error.get("message")?.as_str()?.to_owned();
            Some(match error.get("fields") {
                Some(fields) => format!("{message}: {fields}"),
                None => message,
            })
        })
        .unwrap_or(text);
    format!("{status}: {message}")
}
