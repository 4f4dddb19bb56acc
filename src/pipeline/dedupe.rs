//! Duplicate detection by `(device, seq)` over a sliding window, in 128 bytes per device.
//!
//! A seq below the window cannot be judged here; the store's unique index catches those, and
//! since device state only moves forward in device time, re-applying an old report is harmless.

/// Remembers which of the last [`SeqWindow::WIDTH`] seqs below the highest one were seen.
#[derive(Clone, Debug, Default)]
pub struct SeqWindow {
    top: Option<u64>,
    /// Bit `i` set: seq `top - i` was seen.
    seen: [u64; 16],
}

impl SeqWindow {
    pub const WIDTH: u64 = 1024;

    /// Records `seq`; returns false when it was already seen (a duplicate).
    pub fn insert(&mut self, seq: u64) -> bool {
        let Some(top) = self.top else {
            self.top = Some(seq);
            self.set(0);
            return true;
        };
        if seq > top {
            self.shift(seq - top);
            self.top = Some(seq);
            self.set(0);
            return true;
        }
        let offset = top - seq;
        if offset >= Self::WIDTH {
            return true;
        }
        if self.get(offset) {
            return false;
        }
        self.set(offset);
        true
    }

    fn get(&self, offset: u64) -> bool {
        self.seen[(offset / 64) as usize] & (1 << (offset % 64)) != 0
    }

    fn set(&mut self, offset: u64) {
        self.seen[(offset / 64) as usize] |= 1 << (offset % 64);
    }

    /// Moves every remembered seq `by` places further from the top.
    fn shift(&mut self, by: u64) {
        if by >= Self::WIDTH {
            self.seen = [0; 16];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        let old = self.seen;
        for (i, word) in self.seen.iter_mut().enumerate() {
            let lo = i.checked_sub(words).map_or(0, |j| old[j]);
            let carry = i
                .checked_sub(words + 1)
                .filter(|_| bits > 0)
                .map_or(0, |j| old[j] >> (64 - bits));
            *word = (lo << bits) | carry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn a_repeated_seq_is_a_duplicate() {
        let mut w = SeqWindow::default();
        assert!(w.insert(10));
        assert!(w.insert(12));
        assert!(!w.insert(10));
        assert!(w.insert(11));
        assert!(!w.insert(12));
    }

    proptest! {
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
