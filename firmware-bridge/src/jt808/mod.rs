//! JT/T 808 (2013 and 2019 editions), the Chinese road-transport terminal protocol spoken
//! by many trackers and e-locks.
//!
//! Messages are delimited by 0x7E, escaped (0x7E → 7D 02, 0x7D → 7D 01) and end with an
//! XOR checksum. [`frame`] handles delimiting, escaping, the checksum and the header;
//! [`location`] the position bodies (0x0200, 0x0704); [`seal`] turns alarm and status bits
//! into seal events; [`session`] the other terminal messages and the platform's replies.

pub mod frame;
pub mod location;
pub mod reports;
pub mod seal;
pub mod session;

pub use frame::{Header, Message};
pub use location::{Batch, Location};

/// Terminal → platform message ids the bridge handles.
pub mod msg {
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const LOGOUT: u16 = 0x0003;
    pub const REGISTER: u16 = 0x0100;
    pub const AUTHENTICATE: u16 = 0x0102;
    pub const LOCATION: u16 = 0x0200;
    pub const BATCH_LOCATION: u16 = 0x0704;
    /// Platform → terminal.
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    pub const REGISTER_RESPONSE: u16 = 0x8100;
}

/// Why a JT/T 808 message was refused. The names double as metric reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Jt808Error {
    #[error("the message ends inside a field")]
    Truncated,
    #[error("0x7D is followed by {0:#04x}, not 0x01 or 0x02")]
    BadEscape(u8),
    #[error("checksum mismatch: the message says {stated:#04x}, the data gives {computed:#04x}")]
    BadChecksum { stated: u8, computed: u8 },
    #[error("the header says the body is {stated} bytes, it is {actual}")]
    BodyLength { stated: usize, actual: usize },
    #[error("a BCD field holds a nibble above 9")]
    BadBcd,
    #[error("the time field is not a valid date and time")]
    BadTime,
    #[error("the frame is not delimited by 0x7E")]
    NotDelimited,
}

impl Jt808Error {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadEscape(_) => "bad_escape",
            Self::BadChecksum { .. } => "bad_checksum",
            Self::BodyLength { .. } => "body_length",
            Self::BadBcd => "bad_bcd",
            Self::BadTime => "bad_time",
            Self::NotDelimited => "not_delimited",
        }
    }
}

impl From<crate::cursor::Truncated> for Jt808Error {
    fn from(_: crate::cursor::Truncated) -> Self {
        Self::Truncated
    }
}
