//! MQTT accounts: the credential a device, or a gateway such as firmware-bridge, presents
//! when it connects to the embedded endpoint, and whom each may speak for.
//!
//! A secret is 256 random bits, shown once when it is issued. The store keeps a salted
//! SHA-512 of it in Mosquitto's `$6$` password-file format, so the same accounts can be
//! exported to a Mosquitto password file (`caravan device mosquitto-passwd`). A fast hash is
//! enough for a random 256-bit secret: there is nothing to guess, as there is with a password.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use super::token::RandomError;
use crate::telemetry::DeviceId;

/// Names a device or a gateway may not take: Caravan's own accounts on an external broker,
/// and the operator's (deploy/mosquitto/acl gives each of them rights no device may have).
const RESERVED_FOR_SERVICES: [&str; 3] = ["caravan", "caravan-ingest", "operator"];
/// The shipped gateway account; a device may not take its name either.
pub const BRIDGE_GATEWAY: &str = "firmware-bridge";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Publishes only under its own `caravan/v1/dev/{username}/`.
    Device,
    /// Publishes for the devices bound to it (`gateway` of their account).
    Gateway,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Gateway => "gateway",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Device, Self::Gateway]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Device => "cvd_",
            Self::Gateway => "cvg_",
        }
    }
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub username: String,
    pub kind: AccountKind,
    /// `$6$salt$digest`; `None` once revoked.
    #[serde(skip)]
    pub hash: Option<String>,
    /// For a device behind a gateway: the gateway that may publish for it.
    pub gateway: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Account {
    /// True when `secret` is this account's live secret.
    pub fn admits(&self, secret: &str) -> bool {
        self.revoked_at.is_none() && self.hash.as_deref().is_some_and(|h| verify(secret, h))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountNameError {
    #[error("{0:?} is reserved for Caravan's own broker accounts; choose another id")]
    Reserved(String),
    #[error("a gateway name is 1-64 characters of A-Z a-z 0-9 _ -")]
    Invalid,
}

/// Checks that a device id may become an MQTT username.
///
/// # Errors
/// The id is one of the service accounts' names.
pub fn device_username(id: &DeviceId) -> Result<String, AccountNameError> {
    let name = id.as_str();
    if RESERVED_FOR_SERVICES.contains(&name) || name == BRIDGE_GATEWAY {
        return Err(AccountNameError::Reserved(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Checks a gateway name: the device id alphabet, and not a service account's name.
///
/// # Errors
/// Invalid characters or length, or a reserved name.
pub fn gateway_username(name: &str) -> Result<String, AccountNameError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !(1..=64).contains(&name.len()) || !name.chars().all(ok) {
        return Err(AccountNameError::Invalid);
    }
    if RESERVED_FOR_SERVICES.contains(&name) {
        return Err(AccountNameError::Reserved(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// A fresh secret and its stored hash.
pub struct Issued {
    pub secret: String,
    pub hash: String,
}

/// Makes a new secret for an account of `kind`.
///
/// # Errors
/// The operating system's random source is unavailable.
pub fn issue(kind: AccountKind) -> Result<Issued, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{}{hex}", kind.prefix());
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| RandomError(e.to_string()))?;
    let hash = hash_with_salt(&secret, &salt);
    Ok(Issued { secret, hash })
}

/// Mosquitto's `$6$` format: base64 of the salt, base64 of SHA-512(secret ‖ salt).
fn hash_with_salt(secret: &str, salt: &[u8]) -> String {
    let digest = Sha512::new()
        .chain_update(secret.as_bytes())
        .chain_update(salt)
        .finalize();
    format!("$6${}${}", STANDARD.encode(salt), STANDARD.encode(digest))
}

/// True when `secret` hashes to `stored`; compares in constant time.
pub fn verify(secret: &str, stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$6$") else {
        return false;
    };
    let Some((salt, _)) = rest.split_once('$') else {
        return false;
    };
    let Ok(salt) = STANDARD.decode(salt) else {
        return false;
    };
    let computed = hash_with_salt(secret, &salt);
    computed.len() == stored.len()
        && computed
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// One line of a Mosquitto password file, or `None` for a revoked account.
pub fn mosquitto_passwd_line(account: &Account) -> Option<String> {
    let hash = account
        .hash
        .as_ref()
        .filter(|_| account.revoked_at.is_none())?;
    Some(format!("{}:{hash}", account.username))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_against_its_hash_and_nothing_else_does() {
        let issued = issue(AccountKind::Device).unwrap();
        assert!(issued.secret.starts_with("cvd_") && issued.secret.len() == 4 + 64);
        assert!(verify(&issued.secret, &issued.hash));
        assert!(!verify("cvd_wrong", &issued.hash));
        assert!(!verify(&issued.secret[..20], &issued.hash));
        assert!(!verify(&issued.secret, "plain"));
        assert!(!issued.hash.contains(&issued.secret[4..20]));
    }

    #[test]
    fn two_issues_differ_in_secret_and_salt() {
        let (a, b) = (
            issue(AccountKind::Gateway).unwrap(),
            issue(AccountKind::Gateway).unwrap(),
        );
        assert!(a.secret.starts_with("cvg_"));
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn the_hash_has_mosquittos_sha512_layout() {
        // Salt "salt" (c2FsdA==); digest of "secret" ‖ "salt" computed independently.
        let hash = hash_with_salt("secret", b"salt");
        assert!(hash.starts_with("$6$c2FsdA==$"), "{hash}");
        let digest = STANDARD.decode(hash.rsplit('$').next().unwrap()).unwrap();
        assert_eq!(digest.len(), 64);
        assert_eq!(digest.as_slice(), Sha512::digest(b"secretsalt").as_slice());
    }

    #[test]
    fn a_revoked_account_admits_nobody_and_is_not_exported() {
        let issued = issue(AccountKind::Device).unwrap();
        let mut account = Account {
            username: "d1".into(),
            kind: AccountKind::Device,
            hash: Some(issued.hash),
            gateway: None,
            created_at: Utc::now(),
            revoked_at: None,
        };
        assert!(account.admits(&issued.secret));
        assert!(mosquitto_passwd_line(&account).is_some_and(|l| l.starts_with("d1:$6$")));
        account.revoked_at = Some(Utc::now());
        assert!(!account.admits(&issued.secret));
        assert_eq!(mosquitto_passwd_line(&account), None);
    }

    #[test]
    fn service_names_cannot_be_taken() {
        for name in ["caravan-ingest", "operator", "firmware-bridge", "caravan"] {
            let id = DeviceId::parse(name).unwrap();
            assert!(device_username(&id).is_err(), "{name}");
        }
        assert!(gateway_username("firmware-bridge").is_ok());
        assert!(gateway_username("caravan-ingest").is_err());
        assert_eq!(gateway_username("a b"), Err(AccountNameError::Invalid));
    }
}
