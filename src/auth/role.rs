use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::maps::{Atlas, CountryCode};

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

/// A role naming a country, a BCP or a side of a BCP that the maps do not know. The message
/// lists the valid choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotInMaps(pub String);

impl Role {
    /// Checks the role's places against the maps: customs of a country the maps cover; a
    /// post by BCP id (not post id) and a country the BCP has a side in.
    ///
    /// # Errors
    /// What is wrong, with the valid choices.
    pub fn check(&self, atlas: &Atlas) -> Result<(), NotInMaps> {
        let countries = || {
            let mut codes: Vec<&str> = atlas.countries.iter().map(|c| c.code.as_str()).collect();
            codes.sort_unstable();
            codes.join(", ")
        };
        match self {
            Self::Coordinator | Self::Carrier(_) => Ok(()),
            Self::Customs(cc) if atlas.country(*cc).is_some() => Ok(()),
            Self::Customs(cc) => Err(NotInMaps(format!(
                "customs:{cc}: the maps have no country {cc}; one of {}",
                countries()
            ))),
            Self::Post { bcp_id, country } => {
                if let Some(bcp) = atlas.bcp(bcp_id) {
                    if bcp.posts.iter().any(|p| p.country == *country) {
                        return Ok(());
                    }
                    let sides: Vec<String> = bcp
                        .posts
                        .iter()
                        .map(|p| format!("post:{}:{}", bcp.id, p.country))
                        .collect();
                    return Err(NotInMaps(format!(
                        "BCP {bcp_id} has no side in {country}; one of {}",
                        sides.join(", ")
                    )));
                }
                if let Some((bcp, post)) = atlas.posts().find(|(_, p)| p.id == *bcp_id) {
                    return Err(NotInMaps(format!(
                        "{bcp_id} is a post id; a post role names the BCP and the side: post:{}:{}",
                        bcp.id, post.country
                    )));
                }
                let mut ids: Vec<&str> = atlas.bcps.iter().map(|b| b.id.as_str()).collect();
                ids.sort_unstable();
                Err(NotInMaps(format!(
                    "the maps have no BCP {bcp_id}; BCP ids: {}",
                    ids.join(", ")
                )))
            }
        }
    }

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
    fn roles_are_checked_against_the_maps() {
        let atlas = Atlas::embedded().unwrap();
        for ok in [
            "coordinator",
            "customs:KG",
            "post:irkeshtam:KG",
            "post:khorgos:CN",
        ] {
            let role: Role = ok.parse().unwrap();
            assert_eq!(role.check(&atlas), Ok(()), "{ok}");
        }
        let refused = |raw: &str| raw.parse::<Role>().unwrap().check(&atlas).unwrap_err().0;
        let post_id = refused("post:irkeshtam-kg:KG");
        assert!(post_id.contains("post:irkeshtam:KG"), "{post_id}");
        let nowhere = refused("post:nowhere:KG");
        assert!(
            nowhere.contains("irkeshtam") && nowhere.contains("khorgos"),
            "{nowhere}"
        );
        let wrong_side = refused("post:irkeshtam:KZ");
        assert!(wrong_side.contains("post:irkeshtam:CN"), "{wrong_side}");
        let country = refused("customs:XX");
        assert!(
            country.contains("KG") && country.contains("KZ"),
            "{country}"
        );
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
