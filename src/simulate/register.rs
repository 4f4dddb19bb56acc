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
    /// The MQTT login the fleet publishes with: its gateway account (username, secret).
    pub login: Option<(String, String)>,
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
///
/// The fleet shares a few MQTT connections, as a gateway such as firmware-bridge does, so it
/// first gets a gateway account named `gateway` (which takes a coordinator's token) and
/// binds every device to it.
pub async fn register(
    http: &reqwest::Client,
    api: &str,
    token: Option<&str>,
    devices: &[FleetDevice],
    gateway: &str,
) -> anyhow::Result<Registration> {
    let api = Api::new(http, api, token);
    let secret = gateway_secret(&api, gateway).await?;
    let bound = secret.is_some().then(|| gateway.to_owned());
    let mut result = Registration {
        login: secret.map(|s| (gateway.to_owned(), s)),
        ..Registration::default()
    };
    for chunk in devices.chunks(CONCURRENCY) {
        let mut calls = JoinSet::new();
        for device in chunk {
            calls.spawn(register_one(api.clone(), device.clone(), bound.clone()));
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

/// Creates the gateway account, or gives it a new secret; returns the secret. `None` from a
/// server without MQTT accounts (an older build, measured against in the load tool).
async fn gateway_secret(api: &Api, gateway: &str) -> anyhow::Result<Option<String>> {
    let response = api
        .request(reqwest::Method::POST, "/api/v1/gateways")
        .json(&serde_json::json!({ "name": gateway }))
        .send()
        .await
        .with_context(|| format!("creating the gateway account {gateway} at {}", api.base))?;
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match body["password"].as_str() {
        Some(secret) if status.is_success() => Ok(Some(secret.to_owned())),
        _ => bail!(
            "the API refused the fleet's gateway account {gateway} ({status}): {body}; the fleet publishes as a gateway and needs a coordinator's token"
        ),
    }
}

async fn register_one(
    api: Api,
    device: FleetDevice,
    gateway: Option<String>,
) -> anyhow::Result<Outcome> {
    let mut body = serde_json::json!({
        "device_id": device.device_id,
        "carrier": CARRIER,
        "plate": device.plate,
    });
    if let Some(gateway) = gateway {
        body["gateway"] = gateway.into();
    }
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
