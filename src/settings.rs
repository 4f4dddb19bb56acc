//! One settings tree, layered: built-in defaults < TOML file < `CARAVAN__SECTION__KEY`
//! environment variables < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::geofence::GeofenceConfig;
use crate::historian::HistorianSettings;
use crate::telemetry::Limits;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub mqtt: MqttSettings,
    pub store: StoreSettings,
    pub ingest: IngestSettings,
    pub historian: HistorianSettings,
    pub maps: MapsSettings,
    pub rules: crate::rules::RulesSettings,
    pub geofence: GeofenceConfig,
    pub dead_letters: DeadLetterSettings,
    pub evidence: crate::evidence::writer::EvidenceSettings,
    pub exchange: crate::exchange::ExchangeSettings,
}

/// How much of refused messages is kept: they come from outside, so the store must not grow
/// without bound because a device (or an attacker with a device's secret) sends garbage.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterSettings {
    /// Bytes of a refused payload kept; the rest is cut, and its length and SHA-256 noted.
    pub max_payload_bytes: usize,
    /// Dead letters older than this are deleted.
    pub retention_days: i64,
    /// All dead letters together, in MiB; the oldest go first beyond it.
    pub max_total_mib: u64,
}

impl DeadLetterSettings {
    pub fn policy(&self) -> crate::store::DeadLetterPolicy {
        crate::store::DeadLetterPolicy {
            max_payload_bytes: self.max_payload_bytes,
            retention: chrono::Duration::days(self.retention_days.max(1)),
            max_total_bytes: self.max_total_mib.max(1) * 1024 * 1024,
        }
    }
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        Self {
            max_payload_bytes: 4096,
            retention_days: 30,
            max_total_mib: 256,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapsSettings {
    /// A directory of map files (as in `maps/`); unset uses the maps built into the binary.
    pub dir: Option<PathBuf>,
}

impl MapsSettings {
    /// The configured directory; else the data directory's `maps/` when it exists; else
    /// none (the built-in maps).
    pub fn resolved(&self, data_dir: &Path) -> MapsSettings {
        let in_data = data_dir.join("maps");
        let dir = self
            .dir
            .clone()
            .or_else(|| in_data.is_dir().then_some(in_data));
        MapsSettings { dir }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Loopback by default: the API speaks plain HTTP (tokens travel in it), so it faces a
    /// network only behind a TLS proxy.
    pub listen: SocketAddr,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSettings {
    /// Where Caravan's own MQTT endpoint listens (ignored when `url` names an external broker).
    pub listen: SocketAddr,
    /// `mqtt://HOST:PORT` of an external broker; when set, Caravan's own endpoint does not start.
    pub url: Option<String>,
    /// The ingest's client id. Its session is persistent, so the broker keeps what arrives
    /// while Caravan restarts.
    pub client_id: String,
    /// Unacknowledged QoS 1 messages the ingest may hold; also bounds the ingest queue.
    pub inflight: u16,
    pub keep_alive_s: u64,
    /// Credentials for an external broker with authentication (see deploy/mosquitto).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// MQTT over TLS for devices on the embedded endpoint, with `tls_cert` (PEM chain, leaf
    /// first) and `tls_key` (PEM private key).
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Open device connections to the embedded endpoint, in all.
    pub max_connections: usize,
    /// Connections that have not yet authenticated: kept small so that a flood of them
    /// cannot lock registered devices out.
    pub max_unauthenticated: usize,
    /// Time a new connection has for its TLS handshake and CONNECT.
    pub connect_timeout_s: u64,
}

/// A value that must never appear in logs: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"(secret)\"")
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            url: None,
            client_id: "caravan-ingest".into(),
            inflight: 100,
            keep_alive_s: 30,
            username: None,
            password: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            max_connections: 50_000,
            max_unauthenticated: 256,
            connect_timeout_s: 10,
        }
    }
}

impl MqttSettings {
    /// The embedded endpoint's settings.
    ///
    /// # Errors
    /// A TLS listener without its certificate or key, or files without a listener.
    pub fn endpoint(&self) -> Result<crate::endpoint::EndpointSettings, SettingsError> {
        let tls =
            match (self.tls_listen, &self.tls_cert, &self.tls_key) {
                (Some(listen), Some(cert), Some(key)) => Some(crate::endpoint::TlsListen {
                    listen,
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                (None, None, None) => None,
                _ => return Err(SettingsError::Incomplete(
                    "[mqtt] tls_listen, tls_cert and tls_key go together: set all three or none",
                )),
            };
        Ok(crate::endpoint::EndpointSettings {
            listen: self.listen,
            tls,
            max_connections: self.max_connections.max(1),
            max_unauthenticated: self.max_unauthenticated.max(1),
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_s.max(1)),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// The instance key, checkpoints, historian spill and (without `url`) the SQLite store.
    pub data_dir: PathBuf,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` to keep the store in PostgreSQL; unset,
    /// it is the embedded SQLite file in `data_dir`.
    pub url: Option<crate::store::StoreUrl>,
    /// Most writes in one group commit.
    pub max_batch: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./caravan-data"),
            url: None,
            max_batch: 16_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub max_payload_bytes: usize,
    /// How far a device clock may run ahead of ours before its reports are refused.
    pub max_future_s: i64,
    /// Reports older than this are refused as `too_old`.
    pub retention_days: i64,
    /// Messages waiting and nothing committed for this long: `/healthz` turns unhealthy.
    pub stall_after_s: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            max_payload_bytes: limits.max_payload_bytes,
            max_future_s: limits.max_future.num_seconds(),
            retention_days: limits.retention.num_days(),
            stall_after_s: 30,
        }
    }
}

impl IngestSettings {
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_future: chrono::Duration::seconds(self.max_future_s),
            retention: chrono::Duration::days(self.retention_days),
        }
    }
}

/// The flags of `caravan serve` that override the other layers; `None` leaves a value alone.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    pub http_listen: Option<SocketAddr>,
    pub mqtt_listen: Option<SocketAddr>,
    pub mqtt_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `--store`: may carry a password, so it is kept as a [`crate::store::StoreUrl`].
    pub store_url: Option<crate::store::StoreUrl>,
}

impl Overrides {
    fn as_tree(&self) -> serde_json::Value {
        let mut tree = serde_json::json!({});
        let mut set = |section: &str, key: &str, value: serde_json::Value| {
            tree[section][key] = value;
        };
        if let Some(addr) = self.http_listen {
            set("http", "listen", addr.to_string().into());
        }
        if let Some(addr) = self.mqtt_listen {
            set("mqtt", "listen", addr.to_string().into());
        }
        if let Some(url) = &self.mqtt_url {
            set("mqtt", "url", url.clone().into());
        }
        if let Some(dir) = &self.data_dir {
            set("store", "data_dir", dir.display().to_string().into());
        }
        if let Some(url) = &self.store_url {
            set("store", "url", url.0.clone().into());
        }
        tree
    }
}

/// Why the settings could not be loaded; the message names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error(transparent)]
    Invalid(#[from] Box<figment::Error>),
    #[error("{0}")]
    Incomplete(&'static str),
}

impl Settings {
    /// Layers the sources; `env` is passed in (not read here) so tests control it.
    ///
    /// # Errors
    /// A missing config file, or a value of the wrong type anywhere in the layers.
    pub fn load(
        file: Option<&Path>,
        env: Env,
        overrides: &Overrides,
    ) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment
            .merge(env)
            .merge(Serialized::defaults(overrides.as_tree()))
            .extract()
            .map_err(|e| SettingsError::Invalid(Box::new(e)))
    }

    /// The environment layer: `CARAVAN__HTTP__LISTEN=0.0.0.0:8080` sets `http.listen`.
    pub fn env() -> Env {
        Env::prefixed("CARAVAN__").split("__")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's test jail returns its own large error type.
mod tests {
    use super::*;

    #[test]
    fn maps_come_from_the_setting_else_the_data_directory_else_the_binary() {
        let data = tempfile::tempdir().unwrap();
        assert_eq!(MapsSettings::default().resolved(data.path()).dir, None);
        std::fs::create_dir(data.path().join("maps")).unwrap();
        let found = MapsSettings::default().resolved(data.path()).dir;
        assert_eq!(found, Some(data.path().join("maps")));
        let set = MapsSettings {
            dir: Some("/etc/caravan/maps".into()),
        };
        assert_eq!(set.resolved(data.path()).dir, set.dir);
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "caravan.toml",
                "[http]\nlisten = \"127.0.0.1:9000\"\n[store]\ndata_dir = \"/var/lib/caravan\"\n[mqtt]\nclient_id = \"from-file\"\n",
            )?;
            jail.set_env("CARAVAN__HTTP__LISTEN", "127.0.0.1:9100");
            jail.set_env("CARAVAN__MQTT__CLIENT_ID", "from-env");
            let flags = Overrides {
                http_listen: Some("127.0.0.1:0".parse().unwrap()),
                ..Overrides::default()
            };
            let s =
                Settings::load(Some(Path::new("caravan.toml")), Settings::env(), &flags).unwrap();
            assert_eq!(s.http.listen.port(), 0);
            assert_eq!(s.mqtt.client_id, "from-env");
            assert_eq!(s.store.data_dir, PathBuf::from("/var/lib/caravan"));
            assert_eq!(
                s.mqtt.listen.port(),
                1883,
                "untouched values keep their default"
            );
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_key_in_the_file_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("caravan.toml", "[http]\nlisen = \"127.0.0.1:9000\"\n")?;
            let err = Settings::load(
                Some(Path::new("caravan.toml")),
                Settings::env(),
                &Overrides::default(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_broker_password_never_shows_in_debug_output() {
        let mut settings = Settings::default();
        settings.mqtt.password = Some(Secret("hunter2".into()));
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn the_store_url_comes_from_the_file_the_environment_or_the_flag() {
        figment::Jail::expect_with(|jail| {
            let url = |s: &Settings| s.store.url.as_ref().map(|u| u.0.clone());
            let load = |flags: &Overrides| {
                Settings::load(Some(Path::new("caravan.toml")), Settings::env(), flags)
            };
            jail.create_file("caravan.toml", "[store]\ndata_dir = \"/var/lib/caravan\"\n")?;
            let s = load(&Overrides::default()).unwrap();
            assert_eq!(url(&s), None, "no URL: the embedded SQLite");
            jail.create_file(
                "caravan.toml",
                "[store]\nurl = \"postgres://caravan@db/file\"\n",
            )?;
            assert_eq!(
                url(&load(&Overrides::default()).unwrap()).as_deref(),
                Some("postgres://caravan@db/file")
            );
            jail.set_env("CARAVAN__STORE__URL", "postgres://caravan@db/env");
            assert_eq!(
                url(&load(&Overrides::default()).unwrap()).as_deref(),
                Some("postgres://caravan@db/env")
            );
            let flags = Overrides {
                store_url: Some(crate::store::StoreUrl("postgres://caravan@db/flag".into())),
                ..Overrides::default()
            };
            let s = load(&flags).unwrap();
            assert_eq!(url(&s).as_deref(), Some("postgres://caravan@db/flag"));
            assert_eq!(s.store.data_dir, PathBuf::from("./caravan-data"));
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Settings::load(
            Some(Path::new("/nonexistent/caravan.toml")),
            Settings::env(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, SettingsError::MissingFile(_)));
    }
}
