use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::maps::CountryCode;

/// What a principal is allowed to see and do (docs/domain.md, roles).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Regional coordinator: sees everything.
    Coordinator,
    /// A country's customs authority: what touches its territory.
    Customs(CountryCode),
    /// One side of a BCP: what its country sees for transits through this post.
    Post {
        bcp_id: String,
        country: CountryCode,
    },
    /// A carrier: its own devices and transits.
    Carrier(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be coordinator, customs:CC, post:BCP_ID:CC or carrier:ID (got {0:?})")]
pub struct InvalidRole(pub String);

fn valid_id(id: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (1..=64).contains(&id.len()) && id.chars().all(ok)
}

impl FromStr for Role {
    type Err = InvalidRole;

    fn from_str(raw: &str) -> Result<Self, InvalidRole> {
        let bad = || InvalidRole(raw.chars().take(80).collect());
        let country = |cc: &str| cc.parse::<CountryCode>().map_err(|_| bad());
        let parts: Vec<&str> = raw.split(':').collect();
        match parts.as_slice() {
            ["coordinator"] => Ok(Self::Coordinator),
            ["customs", cc] => Ok(Self::Customs(country(cc)?)),
            ["post", bcp, cc] if valid_id(bcp) => Ok(Self::Post {
                bcp_id: (*bcp).to_owned(),
                country: country(cc)?,
            }),
            ["carrier", id] if valid_id(id) => Ok(Self::Carrier((*id).to_owned())),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Coordinator => f.write_str("coordinator"),
            Self::Customs(cc) => write!(f, "customs:{cc}"),
            Self::Post { bcp_id, country } => write!(f, "post:{bcp_id}:{country}"),
            Self::Carrier(id) => write!(f, "carrier:{id}"),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl Role {
    /// The country whose view this role has, for customs and posts.
    pub fn country(&self) -> Option<CountryCode> {
        match self {
            Self::Customs(cc) | Self::Post { country: cc, .. } => Some(*cc),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_as_written() {
        for raw in [
            "coordinator",
            "customs:KG",
            "post:irkeshtam:KG",
            "carrier:kg-trans",
        ] {
            let role: Role = raw.parse().unwrap();
            assert_eq!(role.to_string(), raw);
        }
    }

    #[test]
    fn malformed_roles_are_refused() {
        for raw in [
            "",
            "admin",
            "customs",
            "customs:KGZ",
            "post:irkeshtam",
            "carrier:",
            "carrier:a/b",
            "coordinator:KG",
        ] {
            assert!(raw.parse::<Role>().is_err(), "{raw:?} was accepted");
        }
    }
}
