//! The exchange between national instances: each customs service runs its own Caravan, and
//! the instance that holds a transit's declaration keeps every other instance on the route
//! informed, while their officers' actions on that transit travel back to it. The format is
//! `docs/exchange.md`; who may assert what is the access table of `docs/access.md`, applied
//! to a peer as to that country's customs.
//!
//! - [`message`]: what travels, signed with the instance key.
//! - [`routing`]: the pure rules: who receives what, and what a peer may assert.
//! - [`outbound`]: the pipeline's part: messages queued with the change they report, and
//!   messages received applied once.
//! - [`sender`]: one task per peer, delivering its outbox in order, with backoff.

pub mod message;
pub mod outbound;
pub mod routing;
pub mod sender;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::evidence::key::{fingerprint, parse_public};
use crate::maps::CountryCode;

pub use message::{Body, Message, Outcome, Signed, PROTOCOLS};
pub use outbound::Exchange;
pub use sender::{PeerStatus, Status};

/// `[exchange]`: this instance's countries and its peers. Without countries the exchange is
/// off and nothing is sent or accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeSettings {
    /// The countries whose customs service this instance is.
    pub countries: Vec<CountryCode>,
    /// The URL peers reach this instance's API at, as `caravan exchange identity` prints it.
    pub url: Option<String>,
    /// The longest pause between attempts to reach a peer that is down, seconds: how long
    /// after a peer is back it may take to hear from this instance.
    pub retry_max_s: u64,
    pub peers: Vec<PeerSettings>,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        Self {
            countries: Vec::new(),
            url: None,
            retry_max_s: 30,
            peers: Vec::new(),
        }
    }
}

/// One peer, as its operator gave it (`caravan exchange identity` on the peer's side).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// A short name for logs, metrics and the dashboard, e.g. `kz-customs`.
    pub name: String,
    /// Base URL of the peer's API, e.g. `https://caravan.customs.kz`.
    pub url: String,
    pub countries: Vec<CountryCode>,
    /// The peer's instance public key, 64 hex digits.
    pub key: String,
}

/// A configured peer, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub url: String,
    pub countries: Vec<CountryCode>,
    pub key: [u8; 32],
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeConfigError {
    #[error("[exchange] peer {0:?}: the key must be 64 hex digits (an instance's public key)")]
    BadKey(String),
    #[error("[exchange] peer {0:?}: the name must be 1-64 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("[exchange] peer {0:?}: the URL must start with http:// or https://")]
    BadUrl(String),
    #[error("[exchange] peer {0:?}: name every country it answers for")]
    NoCountries(String),
    #[error("[exchange] peer {0:?} is configured twice (by name or by key)")]
    Twice(String),
    #[error("[exchange] peer {0:?} has this instance's own key")]
    OwnKey(String),
    #[error("[exchange] peers are configured but not this instance's `countries`")]
    NoOwnCountries,
}

impl ExchangeSettings {
    /// The peers, checked; `own` is this instance's key fingerprint.
    ///
    /// # Errors
    /// A peer with a malformed key, name or URL, no countries, given twice, or with this
    /// instance's own key; or peers without this instance's countries.
    pub fn peers(&self, own: &str) -> Result<Vec<Arc<Peer>>, ExchangeConfigError> {
        if !self.peers.is_empty() && self.countries.is_empty() {
            return Err(ExchangeConfigError::NoOwnCountries);
        }
        let mut out: Vec<Arc<Peer>> = Vec::new();
        for p in &self.peers {
            let named = |e: fn(String) -> ExchangeConfigError| e(p.name.clone());
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if !(1..=64).contains(&p.name.len()) || !p.name.chars().all(ok) {
                return Err(named(ExchangeConfigError::BadName));
            }
            let key = parse_public(&p.key).ok_or_else(|| named(ExchangeConfigError::BadKey))?;
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(named(ExchangeConfigError::BadUrl));
            }
            if p.countries.is_empty() {
                return Err(named(ExchangeConfigError::NoCountries));
            }
            let fingerprint = fingerprint(&key);
            if fingerprint == own {
                return Err(named(ExchangeConfigError::OwnKey));
            }
            if out
                .iter()
                .any(|q| q.name == p.name || q.fingerprint == fingerprint)
            {
                return Err(named(ExchangeConfigError::Twice));
            }
            out.push(Arc::new(Peer {
                name: p.name.clone(),
                url: p.url.trim_end_matches('/').to_owned(),
                countries: p.countries.clone(),
                key,
                fingerprint,
            }));
        }
        Ok(out)
    }
}

/// What the API needs of the exchange: who this instance is to its peers, and how each
/// peer's delivery stands.
#[derive(Debug, Default)]
pub struct Directory {
    pub countries: Vec<CountryCode>,
    pub peers: Vec<Arc<Peer>>,
    pub status: Arc<Status>,
}

impl Directory {
    pub fn is_on(&self) -> bool {
        !self.countries.is_empty()
    }

    pub fn peer_by_key(&self, fingerprint: &str) -> Option<Arc<Peer>> {
        self.peers
            .iter()
            .find(|p| p.fingerprint == fingerprint)
            .cloned()
    }
}

#[cfg(test)]
mod tests;
