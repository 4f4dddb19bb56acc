//! The server under test as the load tool reads it: registration, /metrics, device views.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use caravan::simulate::{register, FleetDevice, Registration};

use crate::fleet::TransitFleet;
use crate::server::Server;

/// Requests in flight at once while declaring.
const CONCURRENCY: usize = 32;

/// Reports stored by a running (or stopped) Caravan: the rows a run's committed count is
/// checked against.
///
/// # Errors
/// The store cannot be opened or read.
pub fn stored_reports(server: &Server) -> anyhow::Result<u64> {
    match &server.store {
        Some(url) => crate::postgres::stored_reports(url),
        None => sqlite_reports(&server.data_dir),
    }
}

/// Reports in the data directory's SQLite file. A report folded from the tail and delivered
/// again can be in both tables for a moment; `UNION` counts it once.
fn sqlite_reports(data_dir: &Path) -> anyhow::Result<u64> {
    let path = data_dir.join("caravan.sqlite");
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT device_id, t_ms, seq FROM reports
         UNION SELECT device_id, t_ms, seq FROM reports_recent)",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub struct Api {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Registers every device id (409 counts as registered).
    ///
    /// # Errors
    /// The API refused or could not be reached.
    pub async fn register(&self, ids: &[String]) -> anyhow::Result<Registration> {
        let devices: Vec<FleetDevice> = ids
            .iter()
            .map(|id| FleetDevice {
                device_id: id.clone(),
                plate: "01LOAD001".into(),
                corridor: String::new(),
            })
            .collect();
        register(
            &self.http,
            &self.base,
            self.token.as_deref(),
            &devices,
            "load-gateway",
        )
        .await
    }

    /// A new secret for the gateway account `name` (created if need be), as an MQTT login.
    ///
    /// # Errors
    /// The API refused or could not be reached.
    pub async fn gateway_login(&self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        let mut request = self
            .http
            .post(format!("{}/api/v1/gateways", self.base))
            .json(&serde_json::json!({ "name": name }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let body: serde_json::Value = request.send().await?.error_for_status()?.json().await?;
        Ok(body["password"]
            .as_str()
            .map(|secret| (name.to_owned(), secret.to_owned())))
    }

    /// The sum of every sample line of /metrics that starts with `prefix` (so
    /// `caravan_rejects_total` adds all reasons); 0 when the scrape fails.
    pub async fn metric(&self, prefix: &str) -> f64 {
        let Ok(response) = self.get("/metrics").send().await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Reports the store has committed, counted after each commit
    /// (`caravan_committed_reports_total`; only fixes are published here). The count of
    /// accepted messages, `caravan_messages_total`, runs ahead of the store under load.
    pub async fn committed_fixes(&self) -> u64 {
        let committed = self.metric("caravan_committed_reports_total").await as u64;
        if committed > 0 || std::env::var_os("CARAVAN_LOAD_BIN").is_none() {
            return committed;
        }
        // An older build (CARAVAN_LOAD_BIN) has no committed counter; its accepted-report
        // counter is the nearest it has, and counts a little early.
        self.metric(r#"caravan_messages_total{kind="pos"}"#).await as u64
    }

    /// Declares every device's transit, `CONCURRENCY` at a time.
    ///
    /// # Errors
    /// The API refused a declaration or could not be reached.
    pub async fn declare(&self, fleet: &Arc<TransitFleet>) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..fleet.ids.len() {
            if calls.len() >= CONCURRENCY {
                if let Some(done) = calls.join_next().await {
                    done??;
                }
            }
            let request = self
                .post("/api/v1/transits")
                .json(&fleet.declaration(i, now));
            calls.spawn(async move {
                let response = request.send().await.context("declaring a transit")?;
                let status = response.status();
                if !status.is_success() {
                    let text = response.text().await.unwrap_or_default();
                    anyhow::bail!("the API refused transit {i} ({status}): {text}");
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = calls.join_next().await {
            done??;
        }
        Ok(())
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The device view, as JSON.
    ///
    /// # Errors
    /// The API could not be reached or did not answer JSON.
    pub async fn device(&self, id: &str) -> anyhow::Result<serde_json::Value> {
        self.get(&format!("/api/v1/devices/{id}"))
            .send()
            .await?
            .json()
            .await
            .context("a device view")
    }
}
