//! The identity a device publishes under.

use std::fmt;

/// A device id as wire contract v1 allows it in a topic: 1–64 of `[A-Za-z0-9_-]`.
///
/// Parsed once at the edge (from an IMEI or a JT/T 808 phone number), so a device can never
/// make the bridge publish on a topic outside its own subtree (no `/`, `+` or `#`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

/// Why a string is not a device id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a device id is 1-64 of [A-Za-z0-9_-], got {0:?}")]
pub struct InvalidDeviceId(pub String);

impl DeviceId {
    /// # Errors
    /// [`InvalidDeviceId`] when `raw` is empty, longer than 64 or has another character.
    pub fn parse(raw: &str) -> Result<Self, InvalidDeviceId> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidDeviceId(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imei_is_a_device_id() {
        assert_eq!(
            DeviceId::parse("356307042441013").unwrap().as_str(),
            "356307042441013"
        );
    }

    #[test]
    fn topic_wildcards_and_separators_are_refused() {
        for bad in ["", "a/b", "a+", "#", "a b", &"x".repeat(65)] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
