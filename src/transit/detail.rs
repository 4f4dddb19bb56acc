//! An alert's `detail` as an open transit holds it.
//!
//! The detail is free-form JSON (the geofence event that raised the alert, the post, the
//! deadline), almost always a small object of two to five fields. As a `serde_json::Value`
//! such an object is a B-tree whose first node has room for eleven entries, about 630 bytes
//! for every alert of every open transit, which at 100,000 trucks each with a `signal_lost`
//! was the largest single part of the transit book. Here an object is kept as its entries,
//! sorted by key as the B-tree iterates them, in a boxed slice of exactly their number.
//!
//! It serialises through the same calls as the `Value` it came from (a map of the same length,
//! the same entries in the same order), so the stored, announced and hashed JSON is the same
//! in any serializer, compact or pretty, with no text parsed again.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum AlertDetail {
    /// An object's entries in key order; nested values stay `Value`s (they are rare).
    Object(Box<[(Box<str>, Value)]>),
    /// Anything that is not an object (`null` when a rule gives no detail).
    Other(Value),
}

impl AlertDetail {
    /// The detail as a JSON value, for a reader that wants to look inside it.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            Self::Other(v) => v.clone(),
        }
    }
}

/// As JSON, the way `Value` displays.
impl std::fmt::Display for AlertDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(std::fmt::Error),
        }
    }
}

impl From<Value> for AlertDetail {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(map) => Self::Object(
                map.into_iter()
                    .map(|(k, v)| (k.into_boxed_str(), v))
                    .collect(),
            ),
            other => Self::Other(other),
        }
    }
}

impl Serialize for AlertDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // What `Value::Object` does: a map of known length, entry by entry.
            Self::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries.iter() {
                    map.serialize_entry(&**k, v)?;
                }
                map.end()
            }
            Self::Other(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for AlertDetail {
    /// Through `Value`, so keys come out sorted and duplicates resolved as before.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_json(v: Value) {
        let d = AlertDetail::from(v.clone());
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
        assert_eq!(
            serde_json::to_string_pretty(&d).unwrap(),
            serde_json::to_string_pretty(&v).unwrap()
        );
        assert_eq!(serde_json::to_value(&d).unwrap(), v);
        assert_eq!(d.to_value(), v);
        let back: AlertDetail = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn a_detail_serialises_to_the_same_json_as_the_value_it_came_from() {
        same_json(json!({ "type": "signal_lost", "silent_s": 3600, "coverage_gap_id": "KZ-G1" }));
        same_json(
            json!({ "zeta": 1.0000000000000002, "alpha": [1, 2], "mid": { "b": 1, "a": null } }),
        );
        same_json(json!({}));
        same_json(Value::Null);
        same_json(json!("text"));
        same_json(json!([{ "b": 2, "a": 1 }]));
    }

    #[test]
    fn an_object_detail_holds_its_entries_not_a_b_tree() {
        // The saving is that the object lives in a slice of its entries: a signal_lost's two
        // fields take two 48-byte slots instead of a B-tree node with room for eleven.
        let d = AlertDetail::from(json!({ "type": "signal_lost", "silent_s": 3600 }));
        match d {
            AlertDetail::Object(entries) => assert_eq!(entries.len(), 2),
            AlertDetail::Other(v) => panic!("an object kept as a Value: {v}"),
        }
        assert!(std::mem::size_of::<AlertDetail>() <= std::mem::size_of::<Value>());
    }
}
