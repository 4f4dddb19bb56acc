//! Everything the bridge needs to run, built by the binary from its flags or by a test.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::queue::QueueLimits;
use crate::registry::Registry;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Teltonika listener; `None` disables the protocol. Port 0 picks a free port.
    pub teltonika: Option<SocketAddr>,
    pub jt808: Option<SocketAddr>,
    /// Prometheus text on `GET /metrics`; `None` serves nothing (metrics are still logged).
    pub metrics: Option<SocketAddr>,
    pub mqtt: MqttSettings,
    pub registry: Arc<Registry>,
    /// Holds the disk queue (`queue/`).
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub queue: QueueLimits,
}

/// Protections against misbehaving or hostile devices.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Device connections open at once, all protocols together; more are closed at once.
    pub max_connections: usize,
    /// The largest message accepted from a device, in bytes on the wire.
    pub max_frame_bytes: usize,
    /// A connection silent for this long is closed (devices reconnect when they have data).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_frame_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            budget_bytes: 1024 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Where the broker is. The password never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
#[error("the MQTT URL must look like mqtt://[user:password@]host[:port], got {0:?}")]
pub struct BadMqttUrl(String);

impl MqttSettings {
    /// Parses `mqtt://[user:password@]host[:port]` (`tcp://` too; port 1883 by default).
    ///
    /// # Errors
    /// [`BadMqttUrl`] for another scheme, an empty host or a bad port.
    pub fn from_url(url: &str, client_id: &str) -> Result<Self, BadMqttUrl> {
        let bad = || BadMqttUrl(redact(url));
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(bad)?
            .trim_end_matches('/');
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((user.to_owned(), password.to_owned())), host_port)
            }
            None => (None, rest),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
            None => (host_port, 1883),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            client_id: client_id.to_owned(),
            credentials,
        })
    }
}

fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, host)) => format!("mqtt://***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mqtt_url_gives_host_port_and_credentials() {
        let s = MqttSettings::from_url("mqtt://bridge:s3cret@broker.local:1884", "fb").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("broker.local", 1884));
        assert_eq!(s.credentials, Some(("bridge".into(), "s3cret".into())));
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn the_port_defaults_to_1883_and_other_schemes_are_refused() {
        assert_eq!(
            MqttSettings::from_url("mqtt://127.0.0.1", "fb")
                .unwrap()
                .port,
            1883
        );
        let err = MqttSettings::from_url("http://u:pw@h", "fb").unwrap_err();
        assert!(!err.to_string().contains("pw"));
    }
}
