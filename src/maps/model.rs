//! The atlas: countries, border crossing points, customs offices, corridors and coverage gaps.
//!
//! Coordinates follow `geo`: `x` is the longitude and `y` the latitude, in WGS 84 degrees.

use std::fmt;
use std::str::FromStr;

use geo::{LineString, MultiPolygon, Point, Polygon};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything the geofence engine and the operator tools know about the region's geography.
#[derive(Debug, Clone, Default)]
pub struct Atlas {
    pub countries: Vec<Country>,
    pub bcps: Vec<Bcp>,
    pub offices: Vec<Office>,
    pub corridors: Vec<Corridor>,
    pub coverage_gaps: Vec<CoverageGap>,
}

impl Atlas {
    /// The country with this code, if the atlas covers it.
    pub fn country(&self, code: CountryCode) -> Option<&Country> {
        self.countries.iter().find(|c| c.code == code)
    }

    /// The border crossing point with this id (e.g. `irkeshtam`).
    pub fn bcp(&self, id: &str) -> Option<&Bcp> {
        self.bcps.iter().find(|b| b.id == id)
    }

    /// The customs office with this id (e.g. `osh`).
    pub fn office(&self, id: &str) -> Option<&Office> {
        self.offices.iter().find(|o| o.id == id)
    }

    /// The corridor with this id.
    pub fn corridor(&self, id: &str) -> Option<&Corridor> {
        self.corridors.iter().find(|c| c.id == id)
    }

    /// The BCP post with this id (e.g. `irkeshtam-kg`), with its BCP.
    pub fn post(&self, id: &str) -> Option<(&Bcp, &Post)> {
        self.posts().find(|(_, p)| p.id == id)
    }

    /// Every post of every BCP, with the BCP it belongs to.
    pub fn posts(&self) -> impl Iterator<Item = (&Bcp, &Post)> {
        self.bcps
            .iter()
            .flat_map(|bcp| bcp.posts.iter().map(move |post| (bcp, post)))
    }
}

/// A country, with its territory from Natural Earth 1:10m (good to 1–3 km in this region).
#[derive(Debug, Clone)]
pub struct Country {
    pub code: CountryCode,
    pub name: String,
    /// Every part of the territory, enclaves and exclaves included.
    pub area: MultiPolygon<f64>,
}

/// An ISO 3166-1 alpha-2 country code, always two uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

/// A string that is not two ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 3166 alpha-2 country code")]
pub struct InvalidCountryCode(pub String);

impl CountryCode {
    /// Parses two ASCII letters, in either case, into an uppercase code.
    ///
    /// # Errors
    /// When the input is not exactly two ASCII letters.
    pub fn parse(text: &str) -> Result<Self, InvalidCountryCode> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountryCode(text.to_owned())),
        }
    }

    /// The code as text, e.g. `"KG"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A border crossing point: a pair of posts, one on each side of the border.
#[derive(Debug, Clone)]
pub struct Bcp {
    /// Stable id, e.g. `irkeshtam`.
    pub id: String,
    pub name: String,
    /// One post per country; each zone lies on its own side, overlapping the border line
    /// only by the tolerance of the border data.
    pub posts: Vec<Post>,
    /// Ids of the corridors (in `corridors.geojson`) that pass this crossing.
    pub corridors: Vec<String>,
    /// How well the reference coordinate is known; it sized the post zones.
    pub confidence: Confidence,
    /// The reference coordinate of the crossing, from the shared reference data.
    pub location: Point<f64>,
    /// CAREC corridor numbers as given by the reference data (may carry `?` when unverified).
    pub carec: Option<String>,
}

/// One side of a BCP, with its control zone.
#[derive(Debug, Clone)]
pub struct Post {
    /// Stable id, `{bcp_id}-{country in lowercase}`, e.g. `irkeshtam-kg`.
    pub id: String,
    pub name: String,
    pub country: CountryCode,
    /// The country on the other side of the crossing.
    pub peer_country: CountryCode,
    pub zone: Polygon<f64>,
}

/// How precisely a BCP's reference coordinate locates the crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// The crossing feature itself: pass summit, bridge or gate.
    High,
    /// The port or town at the gate, or a coordinate given to the minute (±1.8 km).
    Medium,
    /// The nearest settlement; the post may be several kilometres away.
    Low,
}

impl Confidence {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

impl FromStr for Confidence {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "high" => Ok(Self::High),
            "medium" => Ok(Self::Medium),
            "low" => Ok(Self::Low),
            other => Err(format!("`{other}` is not one of high, medium, low")),
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inland customs office of departure or destination.
#[derive(Debug, Clone)]
pub struct Office {
    /// Stable id, e.g. `osh`.
    pub id: String,
    pub name: String,
    pub country: CountryCode,
    pub zone: Polygon<f64>,
}

/// A road route with the distance a vehicle may stray from it before it deviates.
#[derive(Debug, Clone)]
pub struct Corridor {
    pub id: String,
    pub name: String,
    /// Largest allowed distance from `route`, in metres, on either side.
    pub width_m: f64,
    pub route: LineString<f64>,
    /// Ids of the BCPs and offices the route passes, in order.
    pub joins: Vec<String>,
    /// CAREC corridor number, when the route belongs to one.
    pub carec: Option<String>,
    /// The named points the route was drawn through, in order.
    pub waypoints: Vec<String>,
}

/// A stretch of road without mobile coverage, where devices are expected to go quiet.
#[derive(Debug, Clone)]
pub struct CoverageGap {
    pub id: String,
    pub name: String,
    pub zone: Polygon<f64>,
    /// Silence tolerated inside the zone before a signal-loss alert.
    pub signal_loss_timeout_s: u32,
    /// The corridor whose stretch this gap covers.
    pub corridor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_country_code_parses_either_case_and_prints_uppercase() {
        let code = CountryCode::parse("kg").expect("two letters");
        assert_eq!(code.to_string(), "KG");
        assert_eq!(serde_json::to_string(&code).ok().as_deref(), Some("\"KG\""));
    }

    #[test]
    fn a_country_code_rejects_anything_but_two_letters() {
        for bad in ["", "K", "KGZ", "K1", "К Г"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(serde_json::from_str::<CountryCode>("\"417\"").is_err());
    }
}
