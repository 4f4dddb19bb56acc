use std::fmt;

/// Why a message (or one fix of a batch) was refused at the edge. Each reason is a metric
/// label and the last level of the dead-letter topic `caravan/v1/rejected/{reason}`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The payload is larger than the configured limit.
    Oversize,
    /// The topic is not `caravan/v1/dev/{device_id}/{kind}` with a valid device id.
    BadTopic,
    /// Not UTF-8 JSON of the message kind's shape (missing field, wrong type, unknown enum).
    Malformed,
    /// A value outside its physical range: latitude, longitude, speed, heading, battery...
    OutOfRange,
    /// Device time more than the allowed skew ahead of the server's clock.
    FutureTime,
    /// Device time older than the retention window.
    TooOld,
    /// The device is not registered.
    UnknownDevice,
    /// The publisher is authenticated as another device (or a gateway the device is not
    /// bound to): a forged message, never applied.
    ForeignDevice,
}

impl RejectReason {
    pub const ALL: [RejectReason; 8] = [
        Self::Oversize,
        Self::BadTopic,
        Self::Malformed,
        Self::OutOfRange,
        Self::FutureTime,
        Self::TooOld,
        Self::UnknownDevice,
        Self::ForeignDevice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oversize => "oversize",
            Self::BadTopic => "bad_topic",
            Self::Malformed => "malformed",
            Self::OutOfRange => "out_of_range",
            Self::FutureTime => "future_time",
            Self::TooOld => "too_old",
            Self::UnknownDevice => "unknown_device",
            Self::ForeignDevice => "foreign_device",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message or fix, with a sentence a device integrator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}
