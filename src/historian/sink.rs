//! The one place that talks to InfluxDB: a request body in, success or a classified failure out.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::WriteDataPoint;
use influxdb2::{Client, ClientBuilder, RequestError};

use super::settings::{Checked, HistorianSettings};
use super::HistorianError;

/// Why a write failed, decided by whether sending the same body again can succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// Network error, timeout, 5xx, 429, or an auth/bucket problem an operator can fix:
    /// keep the batch and try again later.
    Retryable(String),
    /// The server refused the body itself (400, 413, 422): retrying would fail forever.
    Rejected(String),
}

#[derive(Clone)]
pub(crate) struct Sink {
    client: Client,
    org: String,
    bucket: String,
    gzip: bool,
    timeout: Duration,
}

impl Sink {
    pub(crate) fn new(
        settings: &HistorianSettings,
        checked: &Checked,
    ) -> Result<Self, HistorianError> {
        // `ClientBuilder::new` panics on a URL it cannot parse; `Checked` has parsed it already
        // with the same `url` crate.
        let builder = ClientBuilder::new(
            checked.url.as_str(),
            settings.org.as_str(),
            settings.token.as_str(),
        );
        let builder = if settings.gzip {
            builder.gzip(true)
        } else {
            builder
        };
        let client = builder
            .build()
            .map_err(|e| HistorianError::Client(e.to_string()))?;
        Ok(Self {
            client,
            org: settings.org.clone(),
            bucket: settings.bucket.clone(),
            gzip: settings.gzip,
            timeout: checked.request_timeout,
        })
    }

    /// One request, owning everything it needs so the writer can keep it pending while it
    /// goes on gathering lines. Precision is milliseconds, which both InfluxDB and
    /// VictoriaMetrics store exactly.
    pub(crate) fn write(
        &self,
        body: Bytes,
    ) -> impl Future<Output = Result<(), WriteError>> + Send + 'static {
        let this = self.clone();
        async move {
            let request = async {
                if this.gzip {
                    // Only the `DataPoint` stream path of the client compresses.
                    let stream = futures_util::stream::iter([Body(body)]);
                    this.client
                        .write_with_precision(
                            &this.bucket,
                            stream,
                            TimestampPrecision::Milliseconds,
                        )
                        .await
                } else {
                    let precision = TimestampPrecision::Milliseconds;
                    this.client
                        .write_line_protocol_with_precision(
                            &this.org,
                            &this.bucket,
                            body,
                            precision,
                        )
                        .await
                }
            };
            match tokio::time::timeout(this.timeout, request).await {
                Ok(result) => result.map_err(classify),
                Err(_) => Err(WriteError::Retryable(format!(
                    "no response within {:?}",
                    this.timeout
                ))),
            }
        }
    }
}

/// A whole pre-rendered body handed to the client's `DataPoint` writer.
struct Body(Bytes);

impl WriteDataPoint for Body {
    fn write_data_point_to<W: io::Write>(&self, mut w: W) -> io::Result<()> {
        w.write_all(&self.0)
    }
}

/// Turns the client's error into a short message without the URL (it may carry credentials)
/// and decides whether a retry can help.
fn classify(error: RequestError) -> WriteError {
    match error {
        RequestError::Http { status, text } => {
            let text: String = text.trim().chars().take(300).collect();
            let message = format!("HTTP {status}: {text}");
            if matches!(status.as_u16(), 400 | 413 | 422) {
                WriteError::Rejected(message)
            } else {
                WriteError::Retryable(message)
            }
        }
        RequestError::ReqwestProcessing { source } => {
            let source = source.without_url();
            let mut message = source.to_string();
            let mut cause = std::error::Error::source(&source);
            while let Some(inner) = cause {
                message.push_str(": ");
                message.push_str(&inner.to_string());
                cause = inner.source();
            }
            WriteError::Retryable(message)
        }
        other => WriteError::Retryable(other.to_string()),
    }
}
