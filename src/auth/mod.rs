//! Who is asking, and what they may see: tokens, roles and jurisdiction.
//!
//! Pure apart from token generation: the API extracts the principal, and the scope rules here
//! decide. A record out of scope is answered exactly as a missing one, so a principal never
//! learns that another jurisdiction's record exists.

pub mod account;
mod role;
mod scope;
pub mod token;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use role::{InvalidRole, Role};
pub use scope::{may_register_device, may_see_device};

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
}
