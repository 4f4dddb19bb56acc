//! Issuing and revoking API tokens, for the CLI, the first start and the API.

use chrono::{DateTime, Utc};

use crate::auth::{token, Role};
use crate::settings::Settings;
use crate::store::{self, NewToken, StoreReader, StoreWriter, Write};

/// A freshly issued token: the text (shown once) and what to store.
pub struct Issued {
    pub text: String,
    pub write: Write,
}

/// Makes a new token for `role`.
///
/// # Errors
/// The system's random source failed.
pub fn issue(name: &str, role: Role) -> anyhow::Result<Issued> {
    issue_until(name, role, None)
}

/// Makes a new token for `role` that stops working at `expires_at` (if given).
///
/// # Errors
/// The system's random source failed.
pub fn issue_until(
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<Issued> {
    let text = token::generate()?;
    let write = Write::Token(NewToken {
        name: name.to_owned(),
        role,
        hash: token::hash(&text),
        created_at: Utc::now(),
        expires_at,
    });
    Ok(Issued { text, write })
}

/// Issues a token straight into the store the settings name (the server may be running: the
/// database serialises the two writers).
///
/// # Errors
/// The store cannot be opened or written, or no randomness.
pub fn create_in(settings: &Settings, name: &str, role: Role) -> anyhow::Result<String> {
    let (mut writer, _) = open(settings)?;
    let issued = issue(name, role)?;
    writer.commit(&[issued.write])?;
    Ok(issued.text)
}

/// Issues a token for `role` named `name` straight into the store, revoking
/// in the same commit every live token of that name: a process that mints a token for its
/// own use on each start keeps at most one alive, even after a crash.
///
/// # Errors
/// The store cannot be opened, read or written, or no randomness.
pub fn replace_in(settings: &Settings, name: &str, role: Role) -> anyhow::Result<String> {
    let (mut writer, reader) = open(settings)?;
    let mut writes = revocations(reader.as_ref(), name)?;
    let issued = issue(name, role)?;
    writes.push(issued.write);
    writer.commit(&writes)?;
    Ok(issued.text)
}

/// Revokes every live token named `name` in the store; returns how many.
///
/// # Errors
/// The store cannot be opened, read or written.
pub fn revoke_named_in(settings: &Settings, name: &str) -> anyhow::Result<usize> {
    let (mut writer, reader) = open(settings)?;
    let writes = revocations(reader.as_ref(), name)?;
    if !writes.is_empty() {
        writer.commit(&writes)?;
    }
    Ok(writes.len())
}

/// With the configured dead-letter policy: any commit may prune dead letters, and it must do
/// so by the operator's retention, not the default one.
fn open(settings: &Settings) -> anyhow::Result<store::Opened> {
    store::open_from(&settings.store, settings.dead_letters.policy()).map_err(anyhow::Error::from)
}

fn revocations(reader: &dyn StoreReader, name: &str) -> anyhow::Result<Vec<Write>> {
    let now = Utc::now();
    Ok(reader
        .tokens()?
        .into_iter()
        .filter(|t| t.name == name && t.revoked_at.is_none())
        .map(|t| Write::RevokeToken { id: t.id, at: now })
        .collect())
}
