//! Counters of what the bridge did, rendered as Prometheus text.
//!
//! Atomics for the hot counters; the reject table is behind a mutex because rejects are
//! rare and their reasons open-ended. Served on an optional HTTP port by [`serve`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::Protocol;

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_open: [AtomicI64; 3],
    pub connections_total: [AtomicU64; 3],
    /// Connections closed at once because the connection cap was reached.
    pub connections_refused: AtomicU64,
    pub frames: [AtomicU64; 3],
    rejects: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Values dropped from a kept record: out of the contract's range, or a malformed
    /// optional item.
    dropped_fields: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Limits warnings about bad device input to one a minute.
    pub bad_input_log: Throttle,
    /// Messages waiting in the disk queue (written, not yet acknowledged by the broker).
    pub queue_entries: AtomicI64,
    pub queue_bytes: AtomicU64,
    /// Device packets refused (not acknowledged) because the queue budget was full.
    pub queue_full: AtomicU64,
    pub queue_corrupt_segments: AtomicU64,
    pub published: AtomicU64,
    /// Queued messages not published because their device is no longer in the registry.
    pub unregistered_dropped: AtomicU64,
    pub mqtt_connected: AtomicI64,
}

impl Metrics {
    pub fn reject(&self, protocol: Protocol, reason: &'static str) {
        let mut rejects = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        *rejects.entry((protocol.name(), reason)).or_default() += 1;
    }

    pub fn rejects(&self, protocol: Protocol, reason: &str) -> u64 {
        let rejects = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        rejects
            .get(&(protocol.name(), reason))
            .copied()
            .unwrap_or(0)
    }

    pub fn drop_field(&self, protocol: Protocol, field: &'static str) {
        let mut dropped = self
            .dropped_fields
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *dropped.entry((protocol.name(), field)).or_default() += 1;
    }

    pub fn dropped_fields(&self, protocol: Protocol, field: &str) -> u64 {
        let dropped = self
            .dropped_fields
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        dropped.get(&(protocol.name(), field)).copied().unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, i64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let per_protocol = |values: &[i64; 3]| {
            Protocol::ALL
                .iter()
                .map(|p| (format!("{{protocol=\"{}\"}}", p.name()), values[p.index()]))
                .collect::<Vec<_>>()
        };
        let load = |a: &[AtomicU64; 3]| a.each_ref().map(|v| v.load(Relaxed) as i64);
        let open = self.connections_open.each_ref().map(|v| v.load(Relaxed));
        metric(
            "bridge_connections_open",
            "gauge",
            "Device connections open now.",
            per_protocol(&open),
        );
        metric(
            "bridge_connections_total",
            "counter",
            "Device connections accepted.",
            per_protocol(&load(&self.connections_total)),
        );
        metric(
            "bridge_frames_total",
            "counter",
            "Protocol frames received.",
            per_protocol(&load(&self.frames)),
        );
        let single = |v: i64| vec![(String::new(), v)];
        metric(
            "bridge_connections_refused_total",
            "counter",
            "Connections closed at once: cap reached.",
            single(self.connections_refused.load(Relaxed) as i64),
        );
        let rejects: Vec<_> = {
            let rejects = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
            rejects
                .iter()
                .map(|((p, r), n)| (format!("{{protocol=\"{p}\",reason=\"{r}\"}}"), *n as i64))
                .collect()
        };
        metric(
            "bridge_rejects_total",
            "counter",
            "Device input refused, by reason.",
            rejects,
        );
        let dropped: Vec<_> = {
            let dropped = self
                .dropped_fields
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            dropped
                .iter()
                .map(|((p, f), n)| (format!("{{protocol=\"{p}\",field=\"{f}\"}}"), *n as i64))
                .collect()
        };
        metric(
            "bridge_fields_dropped_total",
            "counter",
            "Values dropped from records that were kept, by field.",
            dropped,
        );
        metric(
            "bridge_queue_entries",
            "gauge",
            "Messages on disk not yet acknowledged by the broker.",
            single(self.queue_entries.load(Relaxed)),
        );
        metric(
            "bridge_queue_bytes",
            "gauge",
            "Bytes of queue segment files on disk.",
            single(self.queue_bytes.load(Relaxed) as i64),
        );
        metric(
            "bridge_queue_full_total",
            "counter",
            "Device data refused because the queue budget was full.",
            single(self.queue_full.load(Relaxed) as i64),
        );
        metric(
            "bridge_queue_corrupt_segments_total",
            "counter",
            "Segments whose tail was unreadable (torn writes).",
            single(self.queue_corrupt_segments.load(Relaxed) as i64),
        );
        metric(
            "bridge_published_total",
            "counter",
            "Messages acknowledged by the broker.",
            single(self.published.load(Relaxed) as i64),
        );
        metric(
            "bridge_unregistered_dropped_total",
            "counter",
            "Queued messages not published: their device left the registry.",
            single(self.unregistered_dropped.load(Relaxed) as i64),
        );
        metric(
            "bridge_mqtt_connected",
            "gauge",
            "1 while connected to the broker.",
            single(self.mqtt_connected.load(Relaxed)),
        );
        out
    }
}

/// Answers every HTTP request on `listener` with the metrics text (`GET /metrics`) or 404.
/// Deliberately minimal: one request per connection, no keep-alive, 8 KiB request cap.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, cancel: CancellationToken) {
    loop {
        let (mut stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "Could not accept a metrics connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(512);
            let mut chunk = [0u8; 1024];
            let read = async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .is_err()
            {
                return;
            }
            let (status, body) = if request.starts_with(b"GET /metrics ") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Binds the metrics port, if one is configured.
///
/// # Errors
/// The bind error.
pub async fn bind(addr: Option<SocketAddr>) -> std::io::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(TcpListener::bind(addr).await?)),
        None => Ok(None),
    }
}

/// Lets something happen at most once per `EVERY` (the first call always passes).
#[derive(Debug, Default)]
pub struct Throttle {
    /// Milliseconds since `EPOCH` of the last pass, plus one (0: never).
    last: AtomicU64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(60);

    pub fn allow(&self) -> bool {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
            + 1;
        let last = self.last.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= Self::EVERY.as_millis() as u64;
        due && self
            .last
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    }
}
