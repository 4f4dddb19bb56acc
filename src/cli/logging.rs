//! The log: human lines (coloured only on a terminal) or one JSON object per line, to stderr.

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; ANSI colour only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for journald, Loki or Elasticsearch.
    Json,
}

/// The default filter: Caravan at info; the MQTT client library's chatter at warn.
const DEFAULT_FILTER: &str = "info,rumqttc=warn";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (text, json) = match format {
        LogFormat::Text => (
            Some(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            ),
            None,
        ),
        LogFormat::Json => (None, Some(fmt::layer().json().with_writer(std::io::stderr))),
    };
    tracing_subscriber::registry()
        .with(QuietDisconnects)
        .with(filter)
        .with(text)
        .with(json)
        .init();
}

/// Drops the HTTP server's "connection error" for a client that went away mid-request (a
/// browser closing a tab, a proxy's idle timeout): the server logs those at ERROR, but
/// nothing is wrong with Caravan and nothing can be done about them.
pub struct QuietDisconnects;

/// How the HTTP stack describes a peer that left.
const ORDINARY_DISCONNECTS: [&str; 5] = [
    "IncompleteMessage",
    "ConnectionReset",
    "BrokenPipe",
    "ConnectionAborted",
    "UnexpectedEof",
];

impl<S: Subscriber> Layer<S> for QuietDisconnects {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        if !event.metadata().target().starts_with("warp::server") {
            return true;
        }
        let mut message = MessageText(String::new());
        event.record(&mut message);
        !ORDINARY_DISCONNECTS
            .iter()
            .any(|kind| message.0.contains(kind))
    }
}

struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut out) = self.0.lock() {
                out.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn text(captured: &Captured) -> String {
        String::from_utf8_lossy(&captured.0.lock().map(|v| v.clone()).unwrap_or_default())
            .into_owned()
    }

    #[test]
    fn a_client_that_went_away_is_not_an_error_but_other_server_errors_are() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(QuietDisconnects)
            .with(fmt::layer().with_writer(out.clone()).with_ansi(false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "warp::server", "server connection error: hyper::Error(IncompleteMessage)");
            tracing::error!(target: "warp::server", "accept error: Too many open files");
            tracing::error!("IncompleteMessage in our own words stays");
        });
        let log = text(&out);
        assert!(!log.contains("server connection error"), "{log}");
        assert!(log.contains("Too many open files"), "{log}");
        assert!(log.contains("in our own words"), "{log}");
        assert!(!log.contains('\u{1b}'), "no colour codes: {log}");
    }

    #[test]
    fn the_json_format_writes_one_object_per_line() {
        let out = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(fmt::layer().json().with_writer(out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(device = "d-1", "A device is \"late\".");
        });
        let log = text(&out);
        let line: serde_json::Value = serde_json::from_str(log.trim()).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["device"], "d-1");
        assert_eq!(line["fields"]["message"], "A device is \"late\".");
    }
}
