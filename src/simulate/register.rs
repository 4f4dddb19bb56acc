//! Registers the fleet's devices through the API before anything is published.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use super::fleet::FleetDevice;

/// Requests in flight at once while registering.
const CONCURRENCY: usize = 32;
/// The carrier every simulated device belongs to.
pub const CARRIER: &str = "sim-carrier";

/// What registration found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registration {
    pub created: usize,
    pub already_registered: usize,
    /// The newest device time the server already holds for any of these devices: a rerun
    /// must start after it, or its fixes would not move the devices.
    pub newest_fix: Option<i64>,
}

enum Outcome {
    Created,
    Existing(Option<i64>),
}

/// POSTs every device to `{api}/api/v1/devices`, with `token` as the bearer token when
/// given; 409 (already registered) is fine.
///
/// # Errors
/// The API cannot be reached, or refuses a device for another reason.
pub async fn register(
    http: &reqwest::Client,
    api: &str,
    token: Option<&str>,
    devices: &[FleetDevice],
) -> anyhow::Result<Registration> {
    let api = Api::new(http, api, token);
    let mut result = Registration::default();
    for chunk in devices.chunks(CONCURRENCY) {
        let mut calls = JoinSet::new();
        for device in chunk {
            calls.spawn(register_one(api.clone(), device.clone()));
        }
        while let Some(outcome) = calls.join_next().await {
            match outcome.context("a registration task failed")?? {
                Outcome::Created => result.created += 1,
                Outcome::Existing(newest) => {
                    result.already_registered += 1;
                    result.newest_fix = result.newest_fix.max(newest);
                }
            }
        }
    }
    Ok(result)
}

/// The API as the simulator calls it: a base URL and the bearer token, if any.
#[derive(Clone)]
pub(super) struct Api {
    http: reqwest::Client,
    pub(super) base: String,
    token: Option<String>,
}

impl Api {
    pub(super) fn new(http: &reqwest::Client, base: &str, token: Option<&str>) -> Self {
        Self {
            http: http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
        }
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

async fn register_one(api: Api, device: FleetDevice) -> anyhow::Result<Outcome> {
    let body = serde_json::json!({
        "device_id": device.device_id,
        "carrier": CARRIER,
        "plate": device.plate,
    });
    let response = api
        .request(reqwest::Method::POST, "/api/v1/devices")
        .json(&body)
        .send()
        .await
        .with_context(|| format!("registering {} at {}", device.device_id, api.base))?;
    match response.status() {
        StatusCode::CREATED | StatusCode::OK => Ok(Outcome::Created),
        StatusCode::CONFLICT => Ok(Outcome::Existing(newest_fix(&api, &device.device_id).await)),
        status => {
            let text = response.text().await.unwrap_or_default();
            bail!(
                "the API refused device {} ({status}): {text}",
                device.device_id
            )
        }
    }
}

/// The device time of the device's stored position, if the API shows one.
async fn newest_fix(api: &Api, device_id: &str) -> Option<i64> {
    let response = api
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{device_id}"),
        )
        .send()
        .await
        .ok()?;
    let view: serde_json::Value = response.json().await.ok()?;
    let t = view.get("position")?.get("t")?.as_str()?;
    let t: DateTime<Utc> = t.parse().ok()?;
    Some(t.timestamp())
}
