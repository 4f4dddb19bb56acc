//! Device data: the wire contract v1 (what devices send) and the domain types the rest of
//! Caravan works with. Pure: no I/O, no clock reads; `now` comes in as an argument.
//!
//! The only way from bytes to a [`Report`] is [`decode`], which validates everything once, so
//! code past the ingest never re-checks a latitude or a device id.

mod decode;
mod device_id;
mod reject;
mod report;
pub mod rfc3339;
mod topic;
pub mod wire;

pub use decode::{decode, Decoded, Limits};
pub use device_id::{DeviceId, InvalidDeviceId};
pub use reject::{Reject, RejectReason};
pub use report::{ConnState, Fix, GeoPoint, Report, ReportBody, SealEvent, SealEventKind, Status};
pub use topic::{MessageKind, Topic};
