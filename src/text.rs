//! Text shared by reference count behind one thin pointer: the ids every per-truck record
//! holds.
//!
//! An id is parsed once and then copied onto every report, event and record, so it is shared
//! rather than copied: a clone costs a reference count. `Arc<str>` does that with a pointer
//! and a length (16 bytes in every holder); here the length sits in the shared block beside
//! the text, so a holder is one pointer (8 bytes). A truck's device id and transit id are held
//! by its track, its transit, the route it follows and the table that finds its transit by
//! device, a hundred thousand times over. The block itself is the same size as `Arc<str>`'s.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use triomphe::ThinArc;

/// An immutable string, cloned by reference count.
#[derive(Clone)]
pub struct SharedText(ThinArc<(), u8>);

impl SharedText {
    pub fn as_str(&self) -> &str {
        // Only ever built from a `str` (below), so the bytes are always UTF-8; the empty
        // string is never taken.
        std::str::from_utf8(&self.0.slice).unwrap_or_default()
    }

    /// Whether both are the same shared block (not only equal text).
    #[cfg(test)]
    pub fn shares(&self, other: &Self) -> bool {
        std::ptr::eq(self.0.slice.as_ptr(), other.0.slice.as_ptr())
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        Self(ThinArc::from_header_and_slice((), text.as_bytes()))
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl std::ops::Deref for SharedText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SharedText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedText {}

impl PartialOrd for SharedText {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedText {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// As the text itself, so a table keyed by it can be asked with a `&str`.
impl Hash for SharedText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SharedText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <std::borrow::Cow<'de, str>>::deserialize(d).map(|text| Self::from(&*text))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_holder_is_one_pointer() {
        assert_eq!(size_of::<SharedText>(), size_of::<usize>());
        assert_eq!(size_of::<Option<SharedText>>(), size_of::<usize>());
    }

    #[test]
    fn a_clone_shares_the_text_and_an_equal_text_is_found_by_str() {
        let id = SharedText::from("KG-24KG0101-000123");
        let copy = id.clone();
        assert!(copy.shares(&id));
        let again = SharedText::from("KG-24KG0101-000123");
        assert!(!again.shares(&id));
        assert_eq!(again, id);
        let table: HashMap<SharedText, u32> = [(id, 7)].into();
        assert_eq!(table.get("KG-24KG0101-000123"), Some(&7));
        assert_eq!(table.get(&again), Some(&7));
    }

    proptest! {
        /// Any text, empty and non-ASCII included, reads back, orders, and goes through
        /// JSON as the `String` it was made from.
        #[test]
        fn text_reads_back_and_orders_as_a_string(a in ".*", b in ".*") {
            let (x, y) = (SharedText::from(a.as_str()), SharedText::from(b.clone()));
            prop_assert_eq!(x.as_str(), a.as_str());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            let json = serde_json::to_string(&x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&json, &serde_json::to_string(&a).map_err(|e| TestCaseError::fail(e.to_string()))?);
            let back: SharedText = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, x);
        }
    }
}
