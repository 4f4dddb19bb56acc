use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::SharedText;

/// A device's identity on the wire and in the store: 1–64 of `[A-Za-z0-9_-]`, often an IMEI.
///
/// The character set keeps ids safe inside MQTT topics, URLs and file names without escaping.
///
/// An id never changes once parsed and is copied onto every report, event, write and
/// per-device record, so its text is shared ([`SharedText`]): a clone costs a reference
/// count, not an allocation, and the pipeline's registry, the device's track and its transit
/// hold one copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(SharedText);

/// Why a string is not a [`DeviceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device id must be 1-64 characters of A-Z a-z 0-9 _ - (got {0:?})")]
pub struct InvalidDeviceId(pub String);

impl DeviceId {
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// [`InvalidDeviceId`] when `raw` is empty, longer than 64 bytes, or has other characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidDeviceId> {
        let valid_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.bytes().all(valid_char) {
            let shown: String = raw.chars().take(Self::MAX_LEN + 1).collect();
            return Err(InvalidDeviceId(shown));
        }
        Ok(Self(SharedText::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether both are the same copy of the id (not only equal ids).
    #[cfg(test)]
    pub fn shares(&self, other: &Self) -> bool {
        self.0.shares(&other.0)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DeviceId::parse(&raw).map_err(serde::de::Error::custom)
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
    fn ids_that_would_break_a_topic_or_url_are_refused() {
        for bad in ["", "a/b", "a+b", "a#", "dev 1", "é", &"x".repeat(65)] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
