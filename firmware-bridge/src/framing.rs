//! The outcome of looking for one message at the start of a receive buffer.

/// What a framer found at the start of the buffer.
///
/// `Incomplete` is the normal state of a TCP stream (a message arrives in pieces) and is
/// not an error; `Invalid` means the bytes can never become a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Read more bytes and ask again; nothing is consumed.
    Incomplete,
    /// `buf[..len]` is one whole message.
    Frame { len: usize },
    /// The bytes cannot be a message. `skip` bytes (at least 1) may be dropped to resync,
    /// for protocols that can resync at all; stream protocols without a delimiter close.
    Invalid { skip: usize, reason: &'static str },
}
