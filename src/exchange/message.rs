//! What travels between instances. A message is JSON text signed as it stands with the
//! sender's instance key: the receiver verifies the exact bytes and keeps them with the
//! signature as evidence, so nothing depends on how either side would re-encode it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::telemetry::DeviceId;
use crate::transit::{Action, Actor, Transit, TransitId};

/// Protocol versions this build speaks, oldest first. A sender uses the newest that both
/// sides list in `GET /api/v1/exchange/hello`; fields a version does not know are ignored,
/// so a release that adds one still talks to the release before.
pub const PROTOCOLS: &[u32] = &[1];

/// The most messages in one request.
pub const MAX_BATCH: usize = 64;

/// One message from one instance to one other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub protocol: u32,
    /// The sender's key fingerprint.
    pub from: String,
    /// The receiver's key fingerprint: a message is good for the instance it was sent to
    /// only, so a peer cannot pass it on as if it were addressed to a third.
    pub to: String,
    /// Per sender and receiver, only growing: the receiver applies each once, in order.
    pub seq: i64,
    /// When the change it reports was committed at the sender.
    pub queued_at: DateTime<Utc>,
    pub transit_id: TransitId,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Body {
    /// The transit as the instance holding its declaration records it, cut to what the
    /// receiver's countries may see: the advance data at declaration, then each change.
    Transit(Box<Transit>),
    /// An action taken by the receiver-held transit's officer at the sender: an exit or
    /// arrival confirmed, an inspection, an alert acknowledged, resolved or escalated.
    Action {
        action: Action,
        /// The officer, as the sender authenticated them.
        by: Actor,
        at: DateTime<Utc>,
    },
    /// Positions of a device of a transit the sender holds, as they arrive, while they lie
    /// in one of the receiver's countries.
    Positions {
        device_id: DeviceId,
        fixes: Vec<Position>,
    },
}

/// One position as the device reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The device's own sequence number.
    pub seq: u64,
    /// Device time.
    pub t: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transit(_) => "transit",
            Self::Action { .. } => "action",
            Self::Positions { .. } => "positions",
        }
    }
}

/// A message as it travels: its JSON text and the sender's signature of that text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub message: String,
    /// Ed25519, 128 hex digits.
    pub signature: String,
}

/// `POST /api/v1/exchange/messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub messages: Vec<Signed>,
}

/// What became of one message at the receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied {
        seq: i64,
    },
    /// Applied before: a redelivery after a lost answer.
    Duplicate {
        seq: i64,
    },
    /// Refused for good (it would be refused again), with the reason.
    Refused {
        seq: i64,
        reason: String,
    },
}

impl Outcome {
    pub fn seq(&self) -> i64 {
        match self {
            Self::Applied { seq } | Self::Duplicate { seq } | Self::Refused { seq, .. } => *seq,
        }
    }
}

/// The answer to a delivery: one outcome per message, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub results: Vec<Outcome>,
}

/// `GET /api/v1/exchange/hello`: who answers, and which versions it speaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocols: Vec<u32>,
    /// The instance's public key, 64 hex digits.
    pub key: String,
    pub countries: Vec<crate::maps::CountryCode>,
}

/// The newest version both sides speak.
pub fn common_protocol(theirs: &[u32]) -> Option<u32> {
    PROTOCOLS.iter().rev().find(|v| theirs.contains(v)).copied()
}
