//! Duplicate detection by `(device, seq)` over a sliding window of 1,024 seqs.
//!
//! A seq below the window cannot be judged here; the store's unique index catches those, and
//! since device state only moves forward in device time, re-applying an old report is harmless.
//!
//! The window costs 32 bytes per device while the device counts up without gaps, which is
//! what nearly every device does: the 64 seqs nearest the top are a bitmap, and the older
//! ones a single count of how far the unbroken run of seen seqs reaches below them. Only a
//! pattern a run cannot describe (a seq that never arrived, or arrived out of order, then
//! moved more than 64 places below the top) takes a 120-byte bitmap for the rest of the
//! window, and gives it back once that pattern has slid out of the window.

/// Remembers which of the last [`SeqWindow::WIDTH`] seqs below the highest one were seen.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SeqWindow {
    /// Highest seq seen; meaningless while `recent` is zero.
    top: u64,
    /// Bit `i` set: seq `top - i` was seen, for `i` below 64. Bit 0, the top itself, is set by
    /// the first insert and stays set, so zero means nothing was seen yet.
    recent: u64,
    /// The seqs 64 to 1,023 places below the top.
    older: Older,
}

/// What was seen among the seqs [`NEAR`] or more places below the top.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Older {
    /// The first `n` of them (nearest the top first) were seen and none after: a device
    /// counting up without gaps always leaves this, so it needs no bitmap.
    Run(u16),
    /// Any other pattern. Bit `i` set: seq `top - NEAR - i` was seen.
    Map(Box<[u64; OLDER_WORDS]>),
}

impl Default for Older {
    fn default() -> Self {
        Self::Run(0)
    }
}

/// Seqs kept in `recent`.
const NEAR: u64 = 64;
/// Words of the bitmap for the seqs beyond `recent`.
const OLDER_WORDS: usize = 15;
/// The whole window as one bitmap: `recent`, then the older words.
type Bits = [u64; OLDER_WORDS + 1];

impl SeqWindow {
    pub const WIDTH: u64 = 1024;

    /// Whether a window read back from a saved track describes a window (a run no longer
    /// than the older part).
    pub fn is_sound(&self) -> bool {
        match self.older {
            Older::Run(n) => u64::from(n) <= Self::WIDTH - NEAR,
            Older::Map(_) => true,
        }
    }

    /// The highest seq seen, if any.
    pub fn highest(&self) -> Option<u64> {
        (self.recent != 0).then_some(self.top)
    }

    /// Records `seq`; returns false when it was already seen (a duplicate).
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.recent == 0 {
            self.top = seq;
            self.recent = 1;
            self.older = Older::Run(0);
            return true;
        }
        if seq > self.top {
            self.advance(seq - self.top);
            self.top = seq;
            self.recent |= 1;
            return true;
        }
        let offset = self.top - seq;
        if offset >= Self::WIDTH {
            return true;
        }
        if self.seen(offset) {
            return false;
        }
        self.mark(offset);
        true
    }

    fn seen(&self, offset: u64) -> bool {
        if offset < NEAR {
            return self.recent & (1 << offset) != 0;
        }
        let i = offset - NEAR;
        match &self.older {
            Older::Run(n) => i < u64::from(*n),
            Older::Map(map) => map[(i / 64) as usize] & (1 << (i % 64)) != 0,
        }
    }

    /// Marks an unseen `offset` inside the window as seen.
    fn mark(&mut self, offset: u64) {
        if offset < NEAR {
            self.recent |= 1 << offset;
            return;
        }
        match &mut self.older {
            // The seq just past the end of the run lengthens it.
            Older::Run(n) if offset - NEAR == u64::from(*n) => *n += 1,
            _ => {
                let mut bits = self.bits();
                bits[(offset / 64) as usize] |= 1 << (offset % 64);
                self.set_bits(&bits);
            }
        }
    }

    /// Moves every remembered seq `by` places further from the top.
    fn advance(&mut self, by: u64) {
        if let Older::Run(n) = self.older {
            if let Some(n) = run_after_advance(self.recent, n, by) {
                self.recent = if by >= NEAR { 0 } else { self.recent << by };
                self.older = Older::Run(n);
                return;
            }
        }
        let mut bits = self.bits();
        shift(&mut bits, by);
        self.set_bits(&bits);
    }

    /// The whole window as one bitmap (bit `i` of the window is word `i / 64`, bit `i % 64`).
    fn bits(&self) -> Bits {
        let mut bits = [0; OLDER_WORDS + 1];
        bits[0] = self.recent;
        match &self.older {
            Older::Run(n) => {
                let n = usize::from(*n);
                for (i, word) in bits[1..].iter_mut().enumerate() {
                    let ones = n.saturating_sub(i * 64).min(64);
                    *word = if ones == 64 {
                        u64::MAX
                    } else {
                        (1 << ones) - 1
                    };
                }
            }
            Older::Map(map) => bits[1..].copy_from_slice(&map[..]),
        }
        bits
    }

    /// Stores `bits`, as a run when the older part is one.
    fn set_bits(&mut self, bits: &Bits) {
        self.recent = bits[0];
        self.older = match run_length(&bits[1..]) {
            Some(n) => Older::Run(n),
            None => {
                let mut map = [0; OLDER_WORDS];
                map.copy_from_slice(&bits[1..]);
                Older::Map(Box::new(map))
            }
        };
    }

    /// Whether the window holds a bitmap beyond the 64 seqs nearest the top.
    #[cfg(test)]
    fn spilled(&self) -> bool {
        matches!(self.older, Older::Map(_))
    }
}

/// The run the older part becomes when the window moves `by` places, if it stays a run.
///
/// The `by` seqs nearest [`NEAR`] places below the new top are the ones leaving `recent`
/// (and, for a move past 64, seqs that never arrived); the old run follows right after them.
fn run_after_advance(recent: u64, run: u16, by: u64) -> Option<u16> {
    if by >= SeqWindow::WIDTH {
        return Some(0);
    }
    if by > NEAR {
        // The old top lands beyond seqs that were never seen: not a run.
        return None;
    }
    // Bit j: the seq that is now NEAR + j places below the top.
    let leaving = if by == NEAR {
        recent
    } else {
        recent >> (NEAR - by)
    };
    let ones = u64::from(leaving.trailing_ones());
    let max = (SeqWindow::WIDTH - NEAR) as u16;
    if ones == by {
        return Some((by as u16).saturating_add(run).min(max));
    }
    (leaving >> ones == 0 && run == 0).then_some(ones as u16)
}

/// The length of the run of set bits starting at bit 0 of `words`, if nothing is set after it.
fn run_length(words: &[u64]) -> Option<u16> {
    let full = words.iter().take_while(|w| **w == u64::MAX).count();
    let Some((partial, rest)) = words[full..].split_first() else {
        return Some((full * 64) as u16);
    };
    let ones = partial.trailing_ones();
    let contiguous = *partial >> ones == 0 && rest.iter().all(|w| *w == 0);
    contiguous.then_some((full * 64) as u16 + ones as u16)
}

/// Shifts the whole window `by` places away from the top; seqs pushed past its end are
/// forgotten.
fn shift(bits: &mut Bits, by: u64) {
    if by >= SeqWindow::WIDTH {
        *bits = [0; OLDER_WORDS + 1];
        return;
    }
    let words = (by / 64) as usize;
    let shift = (by % 64) as u32;
    let old = *bits;
    for (i, word) in bits.iter_mut().enumerate() {
        let lo = i.checked_sub(words).map_or(0, |j| old[j]);
        let carry = i
            .checked_sub(words + 1)
            .filter(|_| shift > 0)
            .map_or(0, |j| old[j] >> (64 - shift));
        *word = (lo << shift) | carry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// The window as it was first written, one 1,024-bit map per device: the reference the
    /// compact window must agree with.
    #[derive(Default)]
    struct Oracle {
        top: Option<u64>,
        seen: [u64; 16],
    }

    impl Oracle {
        fn insert(&mut self, seq: u64) -> bool {
            let Some(top) = self.top else {
                self.top = Some(seq);
                self.seen[0] |= 1;
                return true;
            };
            if seq > top {
                shift(&mut self.seen, seq - top);
                self.top = Some(seq);
                self.seen[0] |= 1;
                return true;
            }
            let offset = top - seq;
            if offset >= SeqWindow::WIDTH {
                return true;
            }
            let (word, bit) = ((offset / 64) as usize, 1 << (offset % 64));
            if self.seen[word] & bit != 0 {
                return false;
            }
            self.seen[word] |= bit;
            true
        }
    }

    #[test]
    fn a_repeated_seq_is_a_duplicate() {
        let mut w = SeqWindow::default();
        assert!(w.insert(10));
        assert!(w.insert(12));
        assert!(!w.insert(10));
        assert!(w.insert(11));
        assert!(!w.insert(12));
    }

    #[test]
    fn a_device_counting_up_needs_no_bitmap() {
        let mut w = SeqWindow::default();
        for seq in 5..5_000 {
            assert!(w.insert(seq));
        }
        assert!(!w.spilled());
        assert!(!w.insert(4_999 - 1_023), "the oldest seq in the window");
        assert!(w.insert(4_999 - 1_024), "below the window cannot be judged");
    }

    #[test]
    fn a_missing_seq_takes_a_bitmap_until_it_leaves_the_window() {
        let mut w = SeqWindow::default();
        for seq in (0..200).filter(|s| *s != 100) {
            assert!(w.insert(seq));
        }
        assert!(w.spilled());
        assert!(!w.insert(99) && !w.insert(101));
        for seq in 200..1_200 {
            w.insert(seq);
        }
        assert!(!w.spilled());
        assert!(
            w.insert(100),
            "the late seq 100 arrives: nothing says it was seen"
        );
    }

    #[test]
    fn a_late_seq_that_closes_the_gap_gives_the_bitmap_back() {
        let mut w = SeqWindow::default();
        for seq in (0..200).filter(|s| *s != 100) {
            w.insert(seq);
        }
        assert!(w.insert(100));
        assert!(!w.spilled());
        assert!(!w.insert(100));
    }

    /// Moves a device's counter would make: mostly the next seq, sometimes a gap, a repeat,
    /// an old seq, a jump, or a restart from zero.
    fn step() -> impl Strategy<Value = i64> {
        prop_oneof![
            8 => Just(1i64),
            2 => 2i64..80,
            2 => -80i64..=0,
            1 => -1_100i64..-80,
            1 => 80i64..1_100,
            1 => Just(i64::MIN),
        ]
    }

    #[test]
    fn an_empty_window_has_seen_no_seq() {
        assert_eq!(SeqWindow::default().highest(), None);
    }

    proptest! {
        #[test]
        fn it_agrees_with_the_full_bitmap(start in 0u64..5_000, steps in proptest::collection::vec(step(), 1..600)) {
            let mut window = SeqWindow::default();
            let mut oracle = Oracle::default();
            let mut seq = start;
            for step in steps {
                seq = if step == i64::MIN { 0 } else { seq.saturating_add_signed(step) };
                prop_assert_eq!(window.insert(seq), oracle.insert(seq), "seq {}", seq);
                prop_assert_eq!(window.bits(), oracle.seen);
                prop_assert_eq!(Some(window.top), oracle.top);
                // The device state's `max_seq` is read from here.
                prop_assert_eq!(window.highest(), oracle.top);
            }
        }

        #[test]
        fn within_the_window_it_agrees_with_a_set(seqs in proptest::collection::vec(0u64..3000, 1..400)) {
            let mut window = SeqWindow::default();
            let mut seen = HashSet::new();
            let mut top = 0;
            for seq in seqs {
                let fresh = window.insert(seq);
                let in_window = seq + SeqWindow::WIDTH > top;
                if in_window || seq > top {
                    prop_assert_eq!(fresh, !seen.contains(&seq), "seq {}", seq);
                }
                seen.insert(seq);
                top = top.max(seq);
            }
        }
    }
}
