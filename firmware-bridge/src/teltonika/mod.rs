//! Teltonika Codec 8 and Codec 8 Extended over TCP (FMB/FMC/FMM trackers).
//!
//! A session is: the device sends its IMEI (2-byte length + ASCII), the server answers 0x01
//! (accepted) or 0x00; then the device sends AVL data packets, each acknowledged with the
//! 4-byte count of records the server accepted. A packet that is not acknowledged is sent
//! again, which is how the bridge refuses data it could not store.
//!
//! [`framing`] finds message boundaries, [`avl`] decodes and encodes packets, [`mapping`]
//! turns records into wire reports.

pub mod avl;
pub mod framing;
pub mod mapping;

pub use avl::{AvlPacket, AvlRecord, Codec, Gps, IoElement, IoValue};

/// Why a Teltonika message was refused. The names double as metric reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeltonikaError {
    #[error("the packet ends inside a field")]
    Truncated,
    #[error("CRC mismatch: the packet says {stated:#06x}, the data gives {computed:#06x}")]
    BadCrc { stated: u32, computed: u32 },
    #[error("codec {0:#04x} is not supported (only 0x08 and 0x8E)")]
    UnsupportedCodec(u8),
    #[error("the record counts disagree ({first} at the start, {last} at the end)")]
    CountMismatch { first: u8, last: u8 },
    #[error("{0} bytes follow the last record")]
    TrailingBytes(usize),
    #[error("the IMEI is not 15 ASCII digits")]
    BadImei,
}

impl TeltonikaError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadCrc { .. } => "bad_crc",
            Self::UnsupportedCodec(_) => "unsupported_codec",
            Self::CountMismatch { .. } => "count_mismatch",
            Self::TrailingBytes(_) => "trailing_bytes",
            Self::BadImei => "bad_imei",
        }
    }
}

impl From<crate::cursor::Truncated> for TeltonikaError {
    fn from(_: crate::cursor::Truncated) -> Self {
        Self::Truncated
    }
}
