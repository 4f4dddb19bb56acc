//! `caravan device add|list`: through the running server's API, or straight into the store
//! when no server is running.

use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::Subcommand;

use crate::device::Device;
use crate::settings::Settings;
use crate::store::{self, StoreReader, StoreWriter, Write};
use crate::telemetry::DeviceId;

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device so its messages are accepted.
    Add {
        /// The device id, usually its IMEI.
        device_id: String,
        #[arg(long)]
        carrier: String,
        #[arg(long)]
        plate: Option<String>,
        /// The API of the running server (default: the configured HTTP address).
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        /// A coordinator's or the carrier's API token.
        #[arg(long, env = "CARAVAN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// List registered devices.
    List {
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        #[arg(long, env = "CARAVAN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

fn api_base(api: Option<String>, settings: &Settings) -> String {
    api.unwrap_or_else(|| format!("http://{}", settings.http.listen))
        .trim_end_matches('/')
        .to_owned()
}

pub async fn run(command: DeviceCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Add {
            device_id,
            carrier,
            plate,
            api,
            token,
        } => {
            let api = Api {
                base: api_base(api, settings),
                token,
            };
            add(&api, settings, device_id, carrier, plate).await
        }
        DeviceCommand::List { api, token } => {
            let api = Api {
                base: api_base(api, settings),
                token,
            };
            list(&api).await
        }
    }
}

/// The running server's API and the caller's token.
struct Api {
    base: String,
    token: Option<String>,
}

impl Api {
    /// What to tell the user when the server answers 401: no token sent, or one refused.
    fn refused(&self) -> anyhow::Error {
        match &self.token {
            None => anyhow::anyhow!(
                "the server at {} wants a token: pass --token or set CARAVAN_TOKEN (see caravan token create)",
                self.base
            ),
            Some(_) => anyhow::anyhow!(
                "the server at {} refused the token (unknown or revoked; check CARAVAN_TOKEN or --token, or make one with caravan token create)",
                self.base
            ),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

async fn add(
    api: &Api,
    settings: &Settings,
    device_id: String,
    carrier: String,
    plate: Option<String>,
) -> anyhow::Result<()> {
    let base = &api.base;
    let body = serde_json::json!({ "device_id": device_id, "carrier": carrier, "plate": plate });
    let response = api
        .request(reqwest::Method::POST, "/api/v1/devices")
        .json(&body)
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => {
            println!("Registered {device_id} with the running server at {base}.");
            Ok(())
        }
        Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
            Err(api.refused())
        }
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("the server refused the device ({status}): {text}")
        }
        Err(e) if e.is_connect() => {
            let id = DeviceId::parse(&device_id)?;
            add_offline(settings, id, carrier, plate)?;
            println!(
                "No server answers at {base}; registered {device_id} in {} (it takes effect at the next start).",
                settings.store.data_dir.display()
            );
            Ok(())
        }
        Err(e) => Err(e).context("calling the Caravan API"),
    }
}

fn add_offline(
    settings: &Settings,
    device_id: DeviceId,
    carrier: String,
    plate: Option<String>,
) -> anyhow::Result<()> {
    let (mut writer, reader) = store::open(&settings.store.data_dir)?;
    if reader.device(&device_id)?.is_some() {
        bail!("device {device_id} is already registered");
    }
    let device = Device {
        device_id,
        carrier,
        plate,
        registered_at: Utc::now(),
    };
    writer.commit(&[Write::Device(device)])?;
    Ok(())
}

async fn list(api: &Api) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let mut path = "/api/v1/devices?limit=1000".to_owned();
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let response = api
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .with_context(|| format!("calling {}{path}; is Caravan running?", api.base))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(api.refused());
        }
        let page: serde_json::Value = response.error_for_status()?.json().await?;
        for device in page["devices"].as_array().into_iter().flatten() {
            println!(
                "{}\t{}\t{}",
                device["device_id"].as_str().unwrap_or("?"),
                device["carrier"].as_str().unwrap_or("?"),
                device["plate"].as_str().unwrap_or("-"),
            );
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(()),
        }
    }
}
