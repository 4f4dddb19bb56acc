//! Where a Teltonika message ends. The stream has no delimiter, so an invalid header cannot
//! be resynchronised: the connection is closed and the device reconnects.

use crate::framing::Framing;

/// Bytes around the data field: 4 zero bytes, 4-byte length, 4-byte CRC.
pub const AVL_OVERHEAD: usize = 12;

/// The handshake: a 2-byte length then that many ASCII bytes (15 for an IMEI).
pub fn frame_imei(buf: &[u8]) -> Framing {
    let [hi, lo, ..] = *buf else {
        return Framing::Incomplete;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if !(1..=32).contains(&len) {
        return Framing::Invalid {
            skip: buf.len(),
            reason: "imei_length",
        };
    }
    if buf.len() < 2 + len {
        Framing::Incomplete
    } else {
        Framing::Frame { len: 2 + len }
    }
}

/// An AVL data packet of at most `max_frame` bytes in total.
pub fn frame_avl(buf: &[u8], max_frame: usize) -> Framing {
    let invalid = |reason| Framing::Invalid {
        skip: buf.len().max(1),
        reason,
    };
    if buf.iter().take(4).any(|&b| b != 0) {
        return invalid("preamble");
    }
    let Some(len_bytes) = buf.get(4..8) else {
        return Framing::Incomplete;
    };
    let mut len = [0u8; 4];
    len.copy_from_slice(len_bytes);
    // codec id + two record counts at least; usize conversion cannot fail on 32/64-bit.
    let data_len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if data_len < 3 {
        return invalid("data_length");
    }
    let total = data_len.saturating_add(AVL_OVERHEAD);
    if total > max_frame {
        return invalid("frame_too_large");
    }
    if buf.len() < total {
        Framing::Incomplete
    } else {
        Framing::Frame { len: total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_in_two_pieces_is_incomplete_then_whole() {
        let hs = b"\x00\x0f356307042441013";
        assert_eq!(frame_imei(&hs[..7]), Framing::Incomplete);
        assert_eq!(frame_imei(hs), Framing::Frame { len: 17 });
    }

    #[test]
    fn a_packet_without_the_zero_preamble_is_invalid() {
        assert!(matches!(
            frame_avl(&[0, 0, 1], 1024),
            Framing::Invalid { .. }
        ));
    }

    #[test]
    fn a_packet_over_the_frame_cap_is_invalid_before_it_is_read() {
        let header = [0, 0, 0, 0, 0, 1, 0, 0];
        assert!(matches!(
            frame_avl(&header, 1024),
            Framing::Invalid {
                reason: "frame_too_large",
                ..
            }
        ));
    }
}
