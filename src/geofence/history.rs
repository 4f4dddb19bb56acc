//! A device's window of recent fixes, held in the bytes of their differences.
//!
//! Every tracked device keeps up to [`history_len`](super::EngineConfig::history_len) samples
//! (32 by default) so that a late fix can be placed between its time neighbours. Held as
//! structs that is 40 bytes a sample, 1,280 bytes a device once the window is full: the
//! largest part of a truck's memory. Consecutive fixes of one truck differ little, so the
//! window keeps the newest sample whole and each older one as its difference from the one
//! after it, in varints: about 10 bytes a sample.
//!
//! Nothing is rounded. A time is its whole seconds and nanoseconds. A coordinate is its
//! number of hundred-millionths of a degree when that number reads back to the very same
//! `f64`, which is so for every coordinate a device sends with up to eight decimals (the
//! nearest `f64` to a decimal is what both the JSON reader and the division give), and the
//! bits of its `f64` otherwise; a flag per coordinate says which. Each difference is taken on
//! those integers with wrapping arithmetic, so any sample reads back exactly as it went in,
//! and a few hundred metres between fixes is three bytes a coordinate rather than five.
//!
//! Newest first because that is what the hot path asks for: a fix in order reads the newest
//! sample and pushes a new one, which touches the head and copies the rest. A late fix, rare,
//! decodes the window, inserts and encodes it again.

use chrono::{DateTime, Utc};
use geo::Coord;

use super::country::CountryFix;
use super::track::Sample;
use super::zones::ZoneSet;

/// Recent samples in device-time order, newest encoded first.
#[derive(Default)]
pub(crate) struct History {
    /// How many samples there are (a varint), the newest sample whole, then each older one as
    /// its difference from the one after it; empty when there are none. The count is in the
    /// bytes rather than beside them, where it would take 8 bytes of every track.
    bytes: Box<[u8]>,
}

/// Units of a coordinate's decimal code: a hundred-millionth of a degree, about a millimetre.
const DECIMAL: f64 = 1e8;
/// Flags of [`Parts::decimal`]: the coordinate is coded in [`DECIMAL`] units.
const X_DECIMAL: u8 = 1;
const Y_DECIMAL: u8 = 2;

/// A coordinate's code and whether it is decimal (see the module docs).
fn code(v: f64) -> (u64, bool) {
    let units = (v * DECIMAL).round() as i64;
    if (units as f64 / DECIMAL).to_bits() == v.to_bits() {
        (units as u64, true)
    } else {
        (v.to_bits(), false)
    }
}

fn coordinate(code: u64, decimal: bool) -> f64 {
    if decimal {
        code as i64 as f64 / DECIMAL
    } else {
        f64::from_bits(code)
    }
}

/// A sample as the integers it is encoded from.
#[derive(Clone, Copy, Default)]
struct Parts {
    secs: i64,
    nanos: u32,
    /// [`X_DECIMAL`] and [`Y_DECIMAL`]: written with the nanoseconds, which are below 2^30.
    decimal: u8,
    x: u64,
    y: u64,
    zones: u64,
    country: u32,
}

impl Parts {
    fn of(s: &Sample) -> Self {
        let (x, x_decimal) = code(s.c.x);
        let (y, y_decimal) = code(s.c.y);
        Self {
            secs: s.t.timestamp(),
            nanos: s.t.timestamp_subsec_nanos(),
            decimal: if x_decimal { X_DECIMAL } else { 0 } | if y_decimal { Y_DECIMAL } else { 0 },
            x,
            y,
            zones: u64::from(s.zones),
            country: u32::from(s.country),
        }
    }

    fn sample(self) -> Sample {
        Sample {
            // Only this module's own encoding of a valid time is decoded here, so the time is
            // always in range; the default is never taken.
            t: DateTime::<Utc>::from_timestamp(self.secs, self.nanos).unwrap_or_default(),
            c: Coord {
                x: coordinate(self.x, self.decimal & X_DECIMAL != 0),
                y: coordinate(self.y, self.decimal & Y_DECIMAL != 0),
            },
            zones: ZoneSet::from(self.zones),
            country: CountryFix::from(self.country),
        }
    }

    /// The nanoseconds and the coordinates' flags, in one varint (one byte for a whole second).
    fn nanos_and_flags(&self) -> u64 {
        u64::from(self.nanos) << 2 | u64::from(self.decimal)
    }

    /// Reads back [`Parts::nanos_and_flags`].
    fn split_nanos(word: u64) -> Option<(u32, u8)> {
        Some((u32::try_from(word >> 2).ok()?, (word & 3) as u8))
    }

    /// The newest sample: times and coordinates as they are. A coordinate's code is a varint
    /// too: five bytes for a decimal one in the region, rather than eight.
    fn put_whole(&self, out: &mut impl Out) {
        put(out, zigzag(self.secs));
        put(out, self.nanos_and_flags());
        put(out, zigzag(self.x as i64));
        put(out, zigzag(self.y as i64));
        put(out, self.zones);
        put(out, u64::from(self.country));
    }

    /// An older sample, as its difference from `newer`: small for fixes of one truck.
    fn put_older(&self, newer: &Parts, out: &mut impl Out) {
        put(out, zigzag(newer.secs.wrapping_sub(self.secs)));
        put(out, self.nanos_and_flags());
        put(out, zigzag(newer.x.wrapping_sub(self.x) as i64));
        put(out, zigzag(newer.y.wrapping_sub(self.y) as i64));
        put(out, newer.zones ^ self.zones);
        put(out, u64::from(newer.country ^ self.country));
    }
}

/// Reads the entries back, newest first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    newer: Option<Parts>,
}

impl Reader<'_> {
    fn take(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn next_parts(&mut self) -> Option<Parts> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let parts = match self.newer {
            None => {
                let secs = unzigzag(self.take()?);
                let (nanos, decimal) = Parts::split_nanos(self.take()?)?;
                Parts {
                    secs,
                    nanos,
                    decimal,
                    x: unzigzag(self.take()?) as u64,
                    y: unzigzag(self.take()?) as u64,
                    zones: self.take()?,
                    country: u32::try_from(self.take()?).ok()?,
                }
            }
            Some(n) => {
                let secs = n.secs.wrapping_sub(unzigzag(self.take()?));
                let (nanos, decimal) = Parts::split_nanos(self.take()?)?;
                Parts {
                    secs,
                    nanos,
                    decimal,
                    x: n.x.wrapping_sub(unzigzag(self.take()?) as u64),
                    y: n.y.wrapping_sub(unzigzag(self.take()?) as u64),
                    zones: n.zones ^ self.take()?,
                    country: n.country ^ u32::try_from(self.take()?).ok()?,
                }
            }
        };
        self.newer = Some(parts);
        Some(parts)
    }
}

impl Iterator for Reader<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        self.next_parts().map(Parts::sample)
    }
}

/// Where entries are written: the window's bytes, or the few bytes of a new head.
trait Out {
    fn push(&mut self, byte: u8);
}

impl Out for Vec<u8> {
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte);
    }
}

/// The longest the count of samples can be: a `u64` varint.
const COUNT_MAX: usize = 10;

/// The longest a whole entry and a difference entry can be together: varints of at most 10
/// bytes for a `u64` and 5 for a `u32`.
const HEAD_MAX: usize = (10 + 5 + 10 + 10 + 10 + 5) + (10 + 5 + 10 + 10 + 10 + 5);

/// The new head of a window, written before the window's bytes are allocated once at their
/// size: a fix in order then costs one allocation.
struct Head {
    bytes: [u8; HEAD_MAX],
    len: usize,
}

impl Out for Head {
    fn push(&mut self, byte: u8) {
        // Never full: `HEAD_MAX` bounds what is written here.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }
}

fn put(out: &mut impl Out, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The offset just past `entries` difference entries from `at`: each is six varints, and a
/// varint ends at its first byte below 0x80. Cheaper than decoding them, which a full window
/// would otherwise do at every fix to find where its oldest entry starts.
fn skip(bytes: &[u8], at: usize, entries: usize) -> usize {
    let mut ends = entries * DIFFERENCE_FIELDS;
    if ends == 0 {
        return at;
    }
    for (i, byte) in bytes.iter().enumerate().skip(at) {
        if byte & 0x80 == 0 {
            ends -= 1;
            if ends == 0 {
                return i + 1;
            }
        }
    }
    bytes.len()
}

/// Varints in a difference entry ([`Parts::put_older`]).
const DIFFERENCE_FIELDS: usize = 6;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl History {
    pub fn len(&self) -> usize {
        self.counted().0
    }

    /// The number of samples, and where the first of them starts.
    fn counted(&self) -> (usize, usize) {
        let mut reader = Reader {
            bytes: &self.bytes,
            at: 0,
            newer: None,
        };
        let len = Reader::take(&mut reader).map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        (len, reader.at)
    }

    fn newest_first(&self) -> Reader<'_> {
        Reader {
            bytes: &self.bytes,
            at: self.counted().1,
            newer: None,
        }
    }

    /// The newest sample.
    pub fn last(&self) -> Option<Sample> {
        self.newest_first().next()
    }

    /// Every sample, oldest first.
    pub fn to_vec(&self) -> Vec<Sample> {
        let mut samples: Vec<Sample> = self.newest_first().collect();
        samples.reverse();
        samples
    }

    /// Appends an in-order sample, keeping at most `cap` (and at least one).
    pub fn push(&mut self, sample: Sample, cap: usize) {
        let cap = cap.max(1);
        let new = Parts::of(&sample);
        let mut head = Head {
            bytes: [0; HEAD_MAX],
            len: 0,
        };
        new.put_whole(&mut head);
        let mut reader = self.newest_first();
        let mut kept = 1;
        let mut rest: &[u8] = &[];
        if let Some(old_head) = reader.next_parts().filter(|_| cap > 1) {
            old_head.put_older(&new, &mut head);
            kept += 1;
            // The older entries keep their bytes: each is a difference from the one after
            // it, and none of those changed. What would overflow the window is left off.
            let older = self.len().saturating_sub(1).min(cap - kept);
            kept += older;
            let from = reader.at;
            rest = self
                .bytes
                .get(from..skip(&self.bytes, from, older))
                .unwrap_or_default();
        }
        let head = head.bytes.get(..head.len).unwrap_or_default();
        let mut bytes = Vec::with_capacity(COUNT_MAX + head.len() + rest.len());
        put(&mut bytes, kept as u64);
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(rest);
        self.bytes = bytes.into_boxed_slice();
    }

    /// Inserts a late sample at index `at` (oldest first); the oldest entry goes if the window
    /// is full, unless the late sample itself would be the oldest.
    pub fn insert(&mut self, at: usize, sample: Sample, cap: usize) {
        let cap = cap.max(1);
        let mut samples = self.to_vec();
        if samples.len() >= cap {
            if at == 0 {
                return;
            }
            samples.remove(0);
            samples.insert(at - 1, sample);
        } else {
            samples.insert(at.min(samples.len()), sample);
        }
        *self = Self::from_oldest_first(&samples);
    }

    /// The window of `samples`, oldest first.
    pub fn from_oldest_first(samples: &[Sample]) -> Self {
        let mut out = Vec::with_capacity(COUNT_MAX + 16 * samples.len() + 24);
        if !samples.is_empty() {
            put(&mut out, samples.len() as u64);
        }
        let mut newer: Option<Parts> = None;
        for s in samples.iter().rev() {
            let parts = Parts::of(s);
            match &newer {
                None => parts.put_whole(&mut out),
                Some(n) => parts.put_older(n, &mut out),
            }
            newer = Some(parts);
        }
        Self {
            bytes: out.into_boxed_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// Any coordinate: any `f64` bits (NaN, infinities and negative zero included), or a
    /// decimal of up to eight places or of fewer, as a device sends them.
    fn any_coordinate() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (-18_000_000_000i64..=18_000_000_000).prop_map(|units| units as f64 / 1e8),
            (-1_800_000i64..=1_800_000).prop_map(|units| units as f64 / 1e4),
            (-180.0f64..180.0),
        ]
    }

    /// Any sample at all: times across chrono's whole range, any coordinates, any zone and
    /// country words the types accept.
    fn any_sample() -> impl Strategy<Value = Sample> {
        let min = DateTime::<Utc>::MIN_UTC.timestamp();
        let max = DateTime::<Utc>::MAX_UTC.timestamp();
        (
            min..=max,
            0u32..1_000_000_000,
            any_coordinate(),
            any_coordinate(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(|(secs, nanos, x, y, zones, country)| Sample {
                t: DateTime::from_timestamp(secs, nanos).unwrap_or_default(),
                c: Coord { x, y },
                zones: ZoneSet::from(zones),
                country: CountryFix::from(country),
            })
    }

    /// A truck reporting every 30 s or so, moving a few hundred metres between fixes, its
    /// coordinates with six decimals as the wire carries them.
    fn a_drive(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                t: DateTime::from_timestamp(1_796_000_000 + 30 * i as i64, 0).unwrap(),
                c: Coord {
                    x: (74_583_612 + 3_100 * i as i64) as f64 / 1e6,
                    y: (42_874_221 - 1_700 * i as i64) as f64 / 1e6,
                },
                zones: ZoneSet::default(),
                country: CountryFix::default(),
            })
            .collect()
    }

    fn same_bits(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                a.t == b.t
                    && a.c.x.to_bits() == b.c.x.to_bits()
                    && a.c.y.to_bits() == b.c.y.to_bits()
                    && a.zones == b.zones
                    && a.country == b.country
            })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(Sample),
        Insert(usize, Sample),
    }

    proptest! {
        #[test]
        fn the_window_reads_back_exactly_what_a_list_of_samples_would_hold(
            ops in prop::collection::vec(
                prop_oneof![
                    any_sample().prop_map(Op::Push),
                    (0usize..40, any_sample()).prop_map(|(at, s)| Op::Insert(at, s)),
                ],
                0..80,
            ),
            cap in 1usize..40,
        ) {
            let mut history = History::default();
            let mut model: VecDeque<Sample> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(s) => {
                        history.push(s, cap);
                        while model.len() >= cap {
                            model.pop_front();
                        }
                        model.push_back(s);
                    }
                    Op::Insert(at, s) => {
                        let at = at.min(model.len());
                        history.insert(at, s, cap);
                        if model.len() >= cap {
                            if at > 0 {
                                model.pop_front();
                                model.insert(at - 1, s);
                            }
                        } else {
                            model.insert(at, s);
                        }
                    }
                }
                let model: Vec<Sample> = model.iter().copied().collect();
                prop_assert!(same_bits(&history.to_vec(), &model));
                prop_assert_eq!(history.len(), model.len());
                prop_assert!(same_bits(&history.last().into_iter().collect::<Vec<_>>(),
                    &model.last().copied().into_iter().collect::<Vec<_>>()));
                prop_assert!(same_bits(&History::from_oldest_first(&model).to_vec(), &model));
            }
        }
    }

    #[test]
    fn a_full_window_of_a_drive_holds_about_ten_bytes_a_fix() {
        // 40 bytes a sample held as structs; a truck's fixes differ little from one another,
        // and its coordinates are decimals: three bytes each of a few hundred metres.
        let drive = a_drive(32);
        let mut history = History::default();
        for s in &drive {
            history.push(*s, 32);
        }
        assert!(same_bits(&history.to_vec(), &drive));
        let held = history.bytes.len();
        assert!(held < 32 * 11, "{held} bytes for 32 samples");
    }

    #[test]
    fn a_coordinate_is_coded_as_a_decimal_only_when_it_reads_back_to_the_same_bits() {
        for v in [42.874_221, -0.000_000_01, 180.0, 74.583_612_35] {
            assert!(code(v).1, "{v}");
            assert_eq!(coordinate(code(v).0, true).to_bits(), v.to_bits());
        }
        // Not the nearest `f64` to any decimal of eight places: 0.30000000000000004.
        let computed = 0.1 + 0.2;
        for v in [
            computed,
            1.0 / 3.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
            1e-300,
        ] {
            assert!(!code(v).1, "{v}");
        }
    }

    #[test]
    fn a_window_set_smaller_than_a_saved_one_keeps_the_newest() {
        let drive = a_drive(10);
        let mut history = History::from_oldest_first(&drive);
        let next = a_drive(11)[10];
        history.push(next, 4);
        assert!(same_bits(
            &history.to_vec(),
            &[drive[7], drive[8], drive[9], next]
        ));
    }
}
