//! The server under test as the load tool reads it: registration, /metrics, device views.

use anyhow::Context as _;
use caravan::simulate::{register, FleetDevice, Registration};

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
        register(&self.http, &self.base, self.token.as_deref(), &devices, "load-gateway").await
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

    /// Committed position fixes.
    pub async fn committed_fixes(&self) -> u64 {
        self.metric(r#"caravan_messages_total{kind="pos"}"#).await as u64
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
