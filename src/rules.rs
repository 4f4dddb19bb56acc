//! The transit and risk rules in force. Customs services tune them: a file in `[rules] dir`,
//! or else in the data directory's `rules/`, replaces the built-in file of the same name
//! (`transit.toml`, `risk.toml`); a file that is not there falls back to the built-in one.
//! A file that is there but wrong stops the start, naming the file and the problem.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::transit::risk::{self, RiskRules};
use crate::transit::rules::{self as transit_rules, RulesError, TransitRules};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSettings {
    /// A directory holding `transit.toml` and/or `risk.toml`; unset looks in
    /// `DATA_DIR/rules/`, then uses the built-in files.
    pub dir: Option<PathBuf>,
}

/// The two rules files Caravan reads.
pub const TRANSIT: &str = "transit.toml";
pub const RISK: &str = "risk.toml";

/// Where a rules file came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built in"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The rules in force and where each came from.
#[derive(Clone, Debug)]
pub struct Rules {
    pub transit: TransitRules,
    pub risk: RiskRules,
    pub transit_from: Origin,
    pub risk_from: Origin,
}

/// A rules file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct RulesFileError {
    pub path: String,
    pub problem: String,
}

impl Rules {
    /// The rules for a server with these settings and this data directory.
    ///
    /// # Errors
    /// A rules file that exists but cannot be read, does not parse, or holds an impossible
    /// figure.
    pub fn load(settings: &RulesSettings, data_dir: &Path) -> Result<Self, RulesFileError> {
        let dir = settings
            .dir
            .clone()
            .unwrap_or_else(|| data_dir.join("rules"));
        let (transit, transit_from) = pick(&dir.join(TRANSIT), transit_rules::EMBEDDED, |t| {
            TransitRules::parse(t)
        })?;
        let (risk, risk_from) = pick(&dir.join(RISK), risk::EMBEDDED, RiskRules::parse)?;
        Ok(Self {
            transit,
            risk,
            transit_from,
            risk_from,
        })
    }

    /// The built-in rules.
    ///
    /// # Errors
    /// Only if the shipped files are broken, which the tests rule out.
    pub fn built_in() -> Result<Self, RulesError> {
        Ok(Self {
            transit: TransitRules::embedded()?,
            risk: RiskRules::embedded()?,
            transit_from: Origin::BuiltIn,
            risk_from: Origin::BuiltIn,
        })
    }
}

fn pick<T>(
    path: &Path,
    built_in: &str,
    parse: impl Fn(&str) -> Result<T, RulesError>,
) -> Result<(T, Origin), RulesFileError> {
    let failed = |problem: String| RulesFileError {
        path: path.display().to_string(),
        problem,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let rules = parse(&text).map_err(|e| failed(e.to_string()))?;
            Ok((rules, Origin::File(path.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let rules = parse(built_in).map_err(|e| failed(format!("built in: {e}")))?;
            Ok((rules, Origin::BuiltIn))
        }
        Err(e) => Err(failed(format!("cannot read the file: {e}"))),
    }
}

/// Checks one edited rules file, by its name (`transit.toml` or `risk.toml`); a file of
/// another name is tried as both. Returns which kind it is.
///
/// # Errors
/// The file cannot be read, or is not a valid rules file; the message says why.
pub fn check_file(path: &Path) -> Result<&'static str, RulesFileError> {
    let failed = |problem: String| RulesFileError {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(format!("cannot read: {e}")))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let as_transit = || TransitRules::parse(&text).map(|_| "transit rules");
    let as_risk = || RiskRules::parse(&text).map(|_| "risk rules");
    match name {
        TRANSIT => as_transit().map_err(|e| failed(e.to_string())),
        RISK => as_risk().map_err(|e| failed(e.to_string())),
        _ => as_transit().or_else(|transit| {
            as_risk().map_err(|risk| {
                failed(format!(
                    "neither transit rules ({transit}) nor risk rules ({risk}); name the file {TRANSIT} or {RISK} for one message"
                ))
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_data_directory_replaces_the_built_in_one_and_the_other_stays() {
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(data.path().join("rules")).expect("mkdir");
        let edited =
            transit_rules::EMBEDDED.replace("with_delay_kmh = 23.4", "with_delay_kmh = 30.0");
        assert_ne!(
            edited,
            transit_rules::EMBEDDED,
            "the shipped file names with_delay_kmh"
        );
        std::fs::write(data.path().join("rules").join(TRANSIT), edited).expect("write");
        let rules = Rules::load(&RulesSettings::default(), data.path()).expect("loads");
        assert_eq!(rules.transit.speed.with_delay_kmh, 30.0);
        assert!(matches!(rules.transit_from, Origin::File(_)));
        assert_eq!(rules.risk_from, Origin::BuiltIn);
    }

    #[test]
    fn a_configured_directory_wins_and_a_broken_file_names_itself() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(RISK), "lanes = 3").expect("write");
        let settings = RulesSettings {
            dir: Some(dir.path().to_owned()),
        };
        let error = Rules::load(&settings, data.path()).expect_err("broken");
        assert!(error.to_string().contains("risk.toml"), "{error}");
        assert!(check_file(&dir.path().join(RISK)).is_err());
    }

    #[test]
    fn the_shipped_files_check_and_a_nameless_file_is_tried_as_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edited.toml");
        std::fs::write(&path, risk::EMBEDDED).expect("write");
        assert_eq!(check_file(&path).expect("risk"), "risk rules");
        std::fs::write(&path, "speed = 1").expect("write");
        let error = check_file(&path).expect_err("neither");
        assert!(error.to_string().contains("neither"), "{error}");
    }
}
