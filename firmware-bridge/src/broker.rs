//! How the bridge reaches and identifies itself to the MQTT broker.
//!
//! Caravan's broker knows the bridge as a gateway account: its username is the bridge's
//! name and its password a credential Caravan issued. Brokers bind a client id to the
//! account that may use it, so when a username is set the client id is the username. The
//! password comes from a file or the environment so that it never sits on a command line
//! (visible to every local user in `ps`), and it never appears in `Debug` output or logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The broker's address, the account, and TLS when the URL is `mqtts://`.
#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    /// TLS to the broker: the client configuration holding the trusted CA certificates.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The flags and environment the broker settings are made from.
#[derive(Debug, Default, Clone)]
pub struct BrokerArgs {
    /// `mqtt://[user[:password]@]host[:port]` or `mqtts://…`.
    pub url: String,
    /// When set, the client id must be the username (or left unset).
    pub client_id: Option<String>,
    /// Overrides the URL's user.
    pub username: Option<String>,
    /// Read, trimmed; takes precedence over `password_env` and the URL's password.
    pub password_file: Option<PathBuf>,
    /// The value of `FIRMWARE_BRIDGE_MQTT_PASSWORD`, if set.
    pub password_env: Option<String>,
    /// PEM file of the CA certificates that may sign the broker's certificate (`mqtts://`).
    pub ca_file: Option<PathBuf>,
}

/// The client id when no username is set.
pub const DEFAULT_CLIENT_ID: &str = "firmware-bridge";

#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("the MQTT URL must look like mqtt[s]://[user[:password]@]host[:port], got {0:?}")]
    BadUrl(String),
    #[error("cannot read the MQTT password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the MQTT password is empty")]
    EmptyPassword,
    #[error("an MQTT password needs a username (--mqtt-username or user@ in the URL)")]
    PasswordWithoutUser,
    #[error(
        "the MQTT client id must be the username ({username:?}) when one is set, got {client_id:?}"
    )]
    ClientIdNotUsername { client_id: String, username: String },
    #[error("mqtts:// needs --mqtt-cafile (a PEM file of the CA certificates to trust)")]
    TlsWithoutCa,
    #[error("--mqtt-cafile is only for mqtts:// URLs")]
    CaWithoutTls,
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
}

struct ParsedUrl {
    tls: bool,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: u16,
}

impl MqttSettings {
    /// Parses a plain `mqtt://[user:password@]host[:port]` URL (`tcp://` too; port 1883 by
    /// default) with this client id.
    ///
    /// # Errors
    /// [`BrokerConfigError`] for another scheme, an empty host, a bad port or `mqtts://`
    /// (which needs a CA file: use [`MqttSettings::from_args`]).
    pub fn from_url(url: &str, client_id: &str) -> Result<Self, BrokerConfigError> {
        let parsed = parse_url(url)?;
        if parsed.tls {
            return Err(BrokerConfigError::TlsWithoutCa);
        }
        Ok(Self {
            host: parsed.host,
            port: parsed.port,
            client_id: client_id.to_owned(),
            credentials: parsed
                .user
                .map(|u| (u, parsed.password.unwrap_or_default())),
            tls: None,
        })
    }

    /// Resolves the URL, the account and TLS from the binary's flags and environment.
    ///
    /// # Errors
    /// [`BrokerConfigError`] when they are inconsistent or a file cannot be used.
    pub fn from_args(args: &BrokerArgs) -> Result<Self, BrokerConfigError> {
        let parsed = parse_url(&args.url)?;
        let user = args.username.clone().or(parsed.user);
        let password = match &args.password_file {
            Some(path) => Some(read_password(path)?),
            None => args.password_env.clone().or(parsed.password),
        };
        if password.as_deref().is_some_and(str::is_empty) {
            return Err(BrokerConfigError::EmptyPassword);
        }
        let credentials = match (user, password) {
            (Some(user), password) => Some((user, password.unwrap_or_default())),
            (None, Some(_)) => return Err(BrokerConfigError::PasswordWithoutUser),
            (None, None) => None,
        };
        let client_id = match (&credentials, &args.client_id) {
            (Some((user, _)), Some(id)) if id != user => {
                return Err(BrokerConfigError::ClientIdNotUsername {
                    client_id: id.clone(),
                    username: user.clone(),
                })
            }
            (Some((user, _)), _) => user.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => DEFAULT_CLIENT_ID.to_owned(),
        };
        let tls = match (parsed.tls, &args.ca_file) {
            (true, Some(path)) => Some(client_config(path)?),
            (true, None) => return Err(BrokerConfigError::TlsWithoutCa),
            (false, Some(_)) => return Err(BrokerConfigError::CaWithoutTls),
            (false, None) => None,
        };
        Ok(Self {
            host: parsed.host,
            port: parsed.port,
            client_id,
            credentials,
            tls,
        })
    }
}

fn parse_url(url: &str) -> Result<ParsedUrl, BrokerConfigError> {
    let bad = || BrokerConfigError::BadUrl(redact(url));
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (false, rest)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    let (user, password, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p.to_owned())),
                None => (userinfo, None),
            };
            (Some(user.to_owned()), password, host_port)
        }
        None => (None, None, rest),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
        None => (host_port, default_port),
    };
    if host.is_empty() || user.as_deref() == Some("") {
        return Err(bad());
    }
    Ok(ParsedUrl {
        tls,
        user,
        password,
        host: host.to_owned(),
        port,
    })
}

/// The file's content without surrounding whitespace (editors add a final newline).
fn read_password(path: &Path) -> Result<String, BrokerConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| BrokerConfigError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim().to_owned())
}

/// A rustls client configuration trusting exactly the certificates in `ca_file`, with the
/// ring provider (the bridge builds without aws-lc's C toolchain).
fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, BrokerConfigError> {
    let fail = |reason: String| BrokerConfigError::CaFile {
        path: ca_file.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| fail(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificate in it".into()));
    }
    // rustls 0.23.48 deprecates ring's provider because ring has no post-quantum key
    // exchange; ring is kept because aws-lc needs cmake and a C toolchain to build, and the
    // broker link is short-lived data, not secrets to keep for decades.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> BrokerArgs {
        BrokerArgs {
            url: url.into(),
            ..BrokerArgs::default()
        }
    }

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

    #[test]
    fn the_password_file_is_read_trimmed_and_the_client_id_is_the_username() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "cvg_k3y\n").unwrap();
        let s = MqttSettings::from_args(&BrokerArgs {
            username: Some("firmware-bridge".into()),
            password_file: Some(file),
            password_env: Some("ignored".into()),
            ..args("mqtt://127.0.0.1")
        })
        .unwrap();
        assert_eq!(
            s.credentials,
            Some(("firmware-bridge".into(), "cvg_k3y".into()))
        );
        assert_eq!(s.client_id, "firmware-bridge");
        assert!(!format!("{s:?}").contains("cvg_k3y"));
    }

    #[test]
    fn the_environment_password_is_used_without_a_file() {
        let s = MqttSettings::from_args(&BrokerArgs {
            username: Some("gw".into()),
            password_env: Some("cvg_env".into()),
            ..args("mqtt://h")
        })
        .unwrap();
        assert_eq!(s.credentials, Some(("gw".into(), "cvg_env".into())));
    }

    #[test]
    fn inconsistent_accounts_are_refused() {
        let err = |a: BrokerArgs| MqttSettings::from_args(&a).unwrap_err();
        assert!(matches!(
            err(BrokerArgs {
                password_env: Some("x".into()),
                ..args("mqtt://h")
            }),
            BrokerConfigError::PasswordWithoutUser
        ));
        assert!(matches!(
            err(BrokerArgs {
                username: Some("gw".into()),
                client_id: Some("other".into()),
                ..args("mqtt://h")
            }),
            BrokerConfigError::ClientIdNotUsername { .. }
        ));
        assert!(matches!(
            err(BrokerArgs {
                username: Some("gw".into()),
                password_env: Some(String::new()),
                ..args("mqtt://h")
            }),
            BrokerConfigError::EmptyPassword
        ));
    }

    #[test]
    fn mqtts_needs_a_ca_file_with_certificates_and_defaults_to_8883() {
        assert!(matches!(
            MqttSettings::from_args(&args("mqtts://h")),
            Err(BrokerConfigError::TlsWithoutCa)
        ));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            MqttSettings::from_args(&BrokerArgs {
                ca_file: Some(empty.clone()),
                ..args("mqtts://h")
            }),
            Err(BrokerConfigError::CaFile { .. })
        ));
        assert!(matches!(
            MqttSettings::from_args(&BrokerArgs {
                ca_file: Some(empty),
                ..args("mqtt://h")
            }),
            Err(BrokerConfigError::CaWithoutTls)
        ));
        assert_eq!(parse_url("mqtts://h").unwrap().port, 8883);
    }

    #[test]
    fn without_a_username_the_client_id_is_the_flag_or_the_default() {
        let s = MqttSettings::from_args(&args("mqtt://h")).unwrap();
        assert_eq!(
            (s.client_id.as_str(), s.credentials),
            (DEFAULT_CLIENT_ID, None)
        );
    }
}
