//! Times written as chrono writes them, but without its cost per character.
//!
//! chrono serialises a `DateTime` through `collect_str`: its RFC 3339 writer emits one
//! character at a time, and serde_json escapes each one as a string of its own. Every
//! committed fix writes several times (the report body, the device state), and in a profile
//! under load that path was about 4 % of Caravan's CPU. Here the same text is put together
//! in a buffer on the stack and written once.
//!
//! The text is part of what the evidence hashes (a report's body), so it must stay exactly
//! chrono's (`to_rfc3339_opts(AutoSi, true)`, what its `Serialize` writes): years outside
//! 0–9999 are left to chrono, and the tests compare the two over the whole range of times.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// For `#[serde(serialize_with = "...")]` on a `DateTime<Utc>`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0_u8; 32];
    match write(t, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` in `buf`; `None` for a year
/// outside 0–9999, which chrono writes with a sign.
fn write<'a>(t: &DateTime<Utc>, buf: &'a mut [u8; 32]) -> Option<&'a str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut nano = t.nanosecond();
    let mut sec = t.second();
    // chrono holds a leap second as nanoseconds past one second, and writes it as second 60.
    if nano >= 1_000_000_000 {
        sec += 1;
        nano -= 1_000_000_000;
    }
    let mut out = Out { buf, len: 0 };
    out.number(year, 4);
    out.byte(b'-');
    out.number(t.month(), 2);
    out.byte(b'-');
    out.number(t.day(), 2);
    out.byte(b'T');
    out.number(t.hour(), 2);
    out.byte(b':');
    out.number(t.minute(), 2);
    out.byte(b':');
    out.number(sec, 2);
    // As chrono's `AutoSi`: no fraction, or milli-, micro- or nanoseconds, the fewest digits
    // that hold it exactly.
    if nano != 0 {
        out.byte(b'.');
        if nano % 1_000_000 == 0 {
            out.number(nano / 1_000_000, 3);
        } else if nano % 1_000 == 0 {
            out.number(nano / 1_000, 6);
        } else {
            out.number(nano, 9);
        }
    }
    out.byte(b'Z');
    let len = out.len;
    std::str::from_utf8(&buf[..len]).ok()
}

/// ASCII written into a buffer long enough for any time above (at most 30 bytes).
struct Out<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl Out<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` in `width` decimal digits, zero-padded.
    fn number(&mut self, mut value: u32, width: usize) {
        for i in (0..width).rev() {
            // A digit is below 10, so the cast keeps it whole.
            self.buf[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

/// For `#[serde(serialize_with = "...")]` on an `Option<DateTime<Utc>>`.
pub fn serialize_option<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serializer.serialize_some(&Text(t)),
        None => serializer.serialize_none(),
    }
}

/// A time that serialises as [`serialize`] writes it.
struct Text<'a>(&'a DateTime<Utc>);

impl serde::Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize)]
    struct Ours {
        #[serde(serialize_with = "serialize")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "serialize_option")]
        o: Option<DateTime<Utc>>,
    }

    #[derive(serde::Serialize)]
    struct Chrono {
        t: DateTime<Utc>,
        o: Option<DateTime<Utc>>,
    }

    fn same(t: DateTime<Utc>) {
        for o in [Some(t), None] {
            let ours = serde_json::to_string(&Ours { t, o }).unwrap();
            let chrono = serde_json::to_string(&Chrono { t, o }).unwrap();
            assert_eq!(ours, chrono);
            let ours = postcard::to_allocvec(&Ours { t, o }).unwrap();
            let chrono = postcard::to_allocvec(&Chrono { t, o }).unwrap();
            assert_eq!(ours, chrono);
        }
    }

    #[test]
    fn every_kind_of_fraction_is_written_as_chrono_writes_it() {
        for text in [
            "2026-12-07T02:11:57Z",
            "2026-12-07T02:11:57.900Z",
            "2026-12-07T02:11:57.934396Z",
            "2026-12-07T02:11:57.934396001Z",
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            same(text.parse().unwrap());
        }
        // A leap second, as chrono holds it (nanoseconds past 1e9), and years outside 0-9999.
        same(DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        same(DateTime::<Utc>::MIN_UTC);
        same(DateTime::<Utc>::MAX_UTC);
    }

    proptest! {
        #[test]
        fn any_time_is_written_as_chrono_writes_it(
            secs in -62_000_000_000_i64..300_000_000_000,
            nanos in prop_oneof![Just(0_u32), (0_u32..1000).prop_map(|m| m * 1_000_000),
                                 (0_u32..1_000_000).prop_map(|u| u * 1000), 0_u32..2_000_000_000],
        ) {
            if let Some(t) = DateTime::from_timestamp(secs, nanos) {
                same(t);
            }
        }
    }
}
