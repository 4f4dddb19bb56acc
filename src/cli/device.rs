//! `caravan device ...`: registration and MQTT credentials, through the running server's API
//! (or straight into the store when no server is running), and the export of the accounts
//! for Mosquitto.

use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::Subcommand;

use crate::auth::account::{self, AccountKind};
use crate::device::Device;
use crate::settings::Settings;
use crate::store::{LoggedEvent, NewAccount, StoreWriter, Write};
use crate::telemetry::DeviceId;

/// The running server's API and the caller's token.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The API of the running server (default: the configured HTTP address).
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// An API token (a coordinator's, or the device's carrier's).
    #[arg(long, env = "CARAVAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device so it may connect and its messages are accepted; prints its MQTT
    /// credential once.
    Add {
        /// The device id, usually its IMEI: also its MQTT username.
        device_id: String,
        #[arg(long)]
        carrier: String,
        #[arg(long)]
        plate: Option<String>,
        /// A gateway (such as firmware-bridge) that may publish for this device.
        #[arg(long)]
        gateway: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List registered devices.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give a device a new MQTT credential; the old one stops working at once.
    Rotate {
        device_id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a device's MQTT credential: it can no longer connect.
    Revoke {
        device_id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create (or give a new secret to) a gateway account, such as firmware-bridge's.
    Gateway {
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print every live MQTT account as a Mosquitto password file (hashes only), from the
    /// store in the data directory, for a deployment with an external Mosquitto.
    MosquittoPasswd,
}

impl ApiArgs {
    fn resolve(self, settings: &Settings) -> Api {
        let base = self
            .api
            .unwrap_or_else(|| format!("http://{}", settings.http.listen))
            .trim_end_matches('/')
            .to_owned();
        Api {
            base,
            token: self.token,
        }
    }
}

pub async fn run(command: DeviceCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Add {
            device_id,
            carrier,
            plate,
            gateway,
            api,
        } => {
            let new = NewDevice {
                device_id,
                carrier,
                plate,
                gateway,
            };
            add(&api.resolve(settings), settings, new).await
        }
        DeviceCommand::List { api } => list(&api.resolve(settings)).await,
        DeviceCommand::Rotate { device_id, api } => {
            let path = format!("/api/v1/devices/{device_id}/credential");
            let body = api
                .resolve(settings)
                .call(reqwest::Method::POST, &path, None)
                .await?;
            print_credential(&body);
            Ok(())
        }
        DeviceCommand::Revoke { device_id, api } => {
            let path = format!("/api/v1/devices/{device_id}/credential");
            api.resolve(settings)
                .call(reqwest::Method::DELETE, &path, None)
                .await?;
            println!("Revoked the MQTT credential of {device_id}; it is disconnected.");
            Ok(())
        }
        DeviceCommand::Gateway { name, api } => {
            let body = serde_json::json!({ "name": name });
            let body = api
                .resolve(settings)
                .call(reqwest::Method::POST, "/api/v1/gateways", Some(body))
                .await?;
            print_credential(&body);
            Ok(())
        }
        DeviceCommand::MosquittoPasswd => {
            let (_, reader) = super::open_store(settings)?;
            for account in reader.accounts()? {
                if let Some(line) = account::mosquitto_passwd_line(&account) {
                    println!("{line}");
                }
            }
            Ok(())
        }
    }
}

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

    /// One call that must succeed; its JSON answer (`null` when it has none).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {}{path}; is Caravan running?", self.base))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(self.refused());
        }
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("the server answered {status}: {text}")
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }
}

/// Prints a credential the way a device installer needs it.
fn print_credential(body: &serde_json::Value) {
    let field = |name: &str| body[name].as_str().unwrap_or("?").to_owned();
    println!("MQTT username: {}", field("username"));
    println!("MQTT password: {}", field("password"));
    println!("(shown only now; Caravan keeps only a hash of it)");
}

struct NewDevice {
    device_id: String,
    carrier: String,
    plate: Option<String>,
    gateway: Option<String>,
}

async fn add(api: &Api, settings: &Settings, new: NewDevice) -> anyhow::Result<()> {
    let base = &api.base;
    let body = serde_json::json!({
        "device_id": new.device_id, "carrier": new.carrier, "plate": new.plate,
        "gateway": new.gateway,
    });
    let response = api
        .request(reqwest::Method::POST, "/api/v1/devices")
        .json(&body)
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => {
            println!(
                "Registered {} with the running server at {base}.",
                new.device_id
            );
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            print_credential(&body["credential"]);
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
            let device_id = new.device_id.clone();
            let secret = add_offline(settings, new)?;
            println!(
                "No server answers at {base}; registered {device_id} in the store ({}); it takes effect at the next start.",
                crate::store::Location::of(&settings.store)?
            );
            print_credential(&serde_json::json!({"username": device_id, "password": secret}));
            Ok(())
        }
        Err(e) => Err(e).context("calling the Caravan API"),
    }
}

/// Registers the device and its account straight into the store; returns the secret.
fn add_offline(settings: &Settings, new: NewDevice) -> anyhow::Result<String> {
    let device_id = DeviceId::parse(&new.device_id)?;
    let username = account::device_username(&device_id)?;
    let gateway = new
        .gateway
        .as_deref()
        .map(account::gateway_username)
        .transpose()?;
    let (mut writer, reader) = super::open_store(settings)?;
    if reader.device(&device_id)?.is_some() {
        bail!("device {device_id} is already registered");
    }
    let issued = account::issue(AccountKind::Device)?;
    let now = Utc::now();
    let device = Device {
        device_id: device_id.clone(),
        carrier: new.carrier,
        plate: new.plate,
        registered_at: now,
    };
    let logged = LoggedEvent {
        kind: "device_registered".into(),
        device_id: Some(device_id),
        transit_id: None,
        occurred_at: now,
        detected_at: now,
        late: false,
        actor: Some("caravan device add (offline, on the store)".into()),
        body: serde_json::to_value(&device)?,
    };
    writer.commit(&[
        Write::Device(device),
        Write::Event(logged),
        Write::Account(NewAccount {
            username,
            kind: AccountKind::Device,
            hash: issued.hash,
            gateway,
            created_at: now,
        }),
    ])?;
    Ok(issued.secret)
}

async fn list(api: &Api) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let mut path = "/api/v1/devices?limit=1000".to_owned();
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page = api.call(reqwest::Method::GET, &path, None).await?;
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
