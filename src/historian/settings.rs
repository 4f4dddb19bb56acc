use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HistorianError;

/// The `[historian]` section of the settings. Without `url` the historian is off and
/// `caravan serve` runs without it.
///
/// `Debug` is written by hand and `Serialize` skips the token: the token grants write access
/// to the whole bucket and must never reach a log line or a settings dump.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorianSettings {
    /// Base URL of a server speaking the InfluxDB v2 write API, e.g. `http://influxdb:8086`.
    pub url: Option<String>,
    pub org: String,
    pub bucket: String,
    /// InfluxDB API token with write permission on the bucket; empty sends no token.
    #[serde(skip_serializing)]
    pub token: String,
    /// Lines per request: InfluxDB recommends about 5000 for throughput.
    pub batch_lines: usize,
    /// Longest time a line waits for its batch to fill while the writer is idle.
    pub flush_interval_ms: u64,
    /// Compress request bodies (line protocol shrinks 5-10x); costs CPU on this side.
    pub gzip: bool,
    /// Bound of each in-memory stage (the intake channel and the sealed batches waiting to be
    /// sent), in lines. Beyond it, batches go to the spill directory.
    pub queue_lines: usize,
    /// Disk space the spill segments may use; beyond it the oldest segments are dropped.
    pub spill_budget_bytes: u64,
    /// First delay after a failed request; doubled on each further failure.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// A request taking longer than this counts as failed (the server is treated as down).
    pub request_timeout_ms: u64,
    /// On shutdown, how long to keep sending before the rest is spilled to disk.
    pub shutdown_flush_ms: u64,
}

impl Default for HistorianSettings {
    fn default() -> Self {
        Self {
            url: None,
            org: "caravan".into(),
            bucket: "caravan".into(),
            token: String::new(),
            batch_lines: 5000,
            flush_interval_ms: 1000,
            gzip: false,
            queue_lines: 100_000,
            spill_budget_bytes: 256 * 1024 * 1024,
            retry_min_ms: 250,
            retry_max_ms: 30_000,
            request_timeout_ms: 10_000,
            shutdown_flush_ms: 3000,
        }
    }
}

impl fmt::Debug for HistorianSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("HistorianSettings")
            .field("url", &self.url.as_deref().map(without_password))
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &token)
            .field("batch_lines", &self.batch_lines)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("gzip", &self.gzip)
            .field("queue_lines", &self.queue_lines)
            .field("spill_budget_bytes", &self.spill_budget_bytes)
            .field("retry_min_ms", &self.retry_min_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("shutdown_flush_ms", &self.shutdown_flush_ms)
            .finish()
    }
}

/// A URL may carry credentials (`http://user:secret@host`); they are hidden like the token.
fn without_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<invalid url>".into(),
    }
}

/// Settings checked once, so the writer never meets a zero batch size or a backwards backoff.
/// No `Debug`: the URL may carry credentials.
#[derive(Clone)]
pub(crate) struct Checked {
    pub url: String,
    pub batch_lines: usize,
    pub queue_lines: usize,
    pub flush_interval: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub request_timeout: Duration,
    pub shutdown_flush: Duration,
}

impl HistorianSettings {
    /// `Ok(None)` when the historian is off.
    pub(crate) fn check(&self) -> Result<Option<Checked>, HistorianError> {
        let Some(raw) = self.url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let invalid = |why: &str| Err(HistorianError::InvalidSettings(why.to_owned()));
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => return invalid("url must be an http:// or https:// URL with a host"),
        }
        if self.bucket.is_empty() || self.org.is_empty() {
            return invalid("org and bucket must not be empty");
        }
        if self.batch_lines == 0 || self.queue_lines < self.batch_lines {
            return invalid("batch_lines must be at least 1 and queue_lines at least batch_lines");
        }
        if self.retry_min_ms == 0 || self.retry_min_ms > self.retry_max_ms {
            return invalid("retry_min_ms must be at least 1 and at most retry_max_ms");
        }
        Ok(Some(Checked {
            url: raw.to_owned(),
            batch_lines: self.batch_lines,
            queue_lines: self.queue_lines,
            flush_interval: Duration::from_millis(self.flush_interval_ms),
            retry_min: Duration::from_millis(self.retry_min_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            shutdown_flush: Duration::from_millis(self.shutdown_flush_ms),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token_or_a_password_in_the_url() {
        let settings = HistorianSettings {
            url: Some("http://writer:hunter2@influx:8086".into()),
            token: "s3cr3t-token".into(),
            ..HistorianSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cr3t-token") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("<redacted>") && shown.contains("influx:8086"),
            "{shown}"
        );
    }

    #[test]
    fn serialized_settings_leave_the_token_out() {
        let settings = HistorianSettings {
            token: "s3cr3t-token".into(),
            ..Default::default()
        };
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert!(
            !json.contains("s3cr3t") && json.contains("batch_lines"),
            "{json}"
        );
    }

    #[test]
    fn without_a_url_the_historian_is_off() {
        assert!(matches!(HistorianSettings::default().check(), Ok(None)));
    }

    #[test]
    fn a_url_that_is_not_http_is_refused() {
        let settings = HistorianSettings {
            url: Some("influx:8086".into()),
            ..Default::default()
        };
        assert!(matches!(
            settings.check(),
            Err(HistorianError::InvalidSettings(_))
        ));
    }

    #[test]
    fn a_section_with_only_url_and_token_takes_the_defaults_for_the_rest() {
        let settings: HistorianSettings =
            serde_json::from_str(r#"{"url": "http://localhost:8086", "token": "t"}"#).unwrap();
        let checked = settings.check().unwrap().unwrap();
        assert_eq!(
            (checked.batch_lines, settings.spill_budget_bytes),
            (5000, 256 << 20)
        );
    }
}
