//! Who is asking, and what they may see: tokens, roles and jurisdiction.
//!
//! Pure apart from token generation: the API extracts the principal, and the rules here
//! decide (`docs/access.md` is the table they implement). A record out of scope is answered
//! exactly as a missing one, so a principal never learns that another jurisdiction's record
//! exists.

pub mod account;
mod actions;
mod role;
#[cfg(test)]
mod tests;
pub mod token;
mod visibility;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use actions::{
    destination_country, may_act, may_declare, may_manage_device, may_register_device,
    place_country, DeclarationScope,
};
pub use role::{InvalidRole, NotInMaps, Role};
pub use visibility::{
    carries, device_sight, may_count_passage, may_count_section, may_see_alert, may_see_event,
    may_see_inspection, may_see_place, may_see_transit, transit_for, DeviceSight, EventFacts,
};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// How the principal is named in the event log: `name (role)`.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.name, self.role)
    }
}

/// A token as stored and listed (never the token text itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// After this the token no longer authenticates; absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}
