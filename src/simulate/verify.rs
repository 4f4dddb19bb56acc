//! Checking a run afterwards: the alerts Caravan raised on the run's transits against the
//! run's truth file.

use anyhow::{bail, Context as _};
use reqwest::{Method, StatusCode};

use super::expect::{check, SeenAlert, Verdict};
use super::register::Api;
use super::truth::Truth;

/// Alert states, all of which the check reads: an alert worked by an officer still counts.
const STATES: [&str; 3] = ["open", "acknowledged", "resolved"];
const PAGE: usize = 1000;

/// Every alert the token sees, in every state, from `GET /api/v1/alerts`.
///
/// # Errors
/// The API cannot be reached, refuses the token, or answers something else than a list of
/// alerts.
pub async fn fetch_alerts(
    http: &reqwest::Client,
    api: &str,
    token: Option<&str>,
) -> anyhow::Result<Vec<SeenAlert>> {
    let api = Api::new(http, api, token);
    let mut alerts = Vec::new();
    for state in STATES {
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/alerts?state={state}&limit={PAGE}");
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let response = api
                .request(Method::GET, &path)
                .send()
                .await
                .with_context(|| format!("asking {} for its {state} alerts", api.base))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                bail!(
                    "the API refused the token ({status}); pass one with --token or CARAVAN_TOKEN"
                );
            }
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                bail!("GET {path} answered {status}: {text}");
            }
            let page: Page = response
                .json()
                .await
                .with_context(|| format!("reading the answer to GET {path}"))?;
            alerts.extend(page.alerts);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(alerts)
}

#[derive(serde::Deserialize)]
struct Page {
    alerts: Vec<SeenAlert>,
    next: Option<String>,
}

impl Truth {
    /// The alerts of `all` raised on this run's transits.
    pub fn alerts_of_run(&self, all: Vec<SeenAlert>) -> Vec<SeenAlert> {
        let ours = self.transit_ids();
        all.into_iter()
            .filter(|a| ours.contains(a.transit_id.as_str()))
            .collect()
    }

    /// [`check`] of this run's incidents against `alerts` (those of the run's transits), with
    /// the incidents whose evidence had not arrived when the run ended counted as pending,
    /// and the signal losses that the end of the run caused set aside.
    /// Incidents off any transit expect nothing: Caravan raises alerts only on transits.
    pub fn verdict<'a>(&'a self, alerts: &'a [SeenAlert]) -> Verdict<'a> {
        let mut verdict = check(&self.incidents, alerts);
        verdict.missed.retain(|e| e.incident.transit_id.is_some());
        if let Some(end) = &self.end {
            verdict.hold_pending(end);
            verdict.set_aside_end_of_run(end);
        }
        verdict
    }

    /// Incidents on no transit (a run that only registers devices records them all so).
    pub fn off_transit(&self) -> usize {
        self.incidents
            .iter()
            .filter(|i| i.transit_id.is_none())
            .count()
    }
}
