//! Issuing and revoking API tokens, for the CLI, the first start and the API.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::auth::{token, Role};
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

/// Issues a token straight into the store in `data_dir` (the server may be running: SQLite
/// serialises the two writers).
///
/// # Errors
/// The store cannot be opened or written, or no randomness.
pub fn create_in(data_dir: &Path, name: &str, role: Role) -> anyhow::Result<String> {
    let (mut writer, _) = store::open(data_dir)?;
    let issued = issue(name, role)?;
    writer.commit(&[issued.write])?;
    Ok(issued.text)
}

/// Issues a token for `role` named `name` straight into the store in `data_dir`, revoking
/// in the same commit every live token of that name: a process that mints a token for its
/// own use on each start keeps at most one alive, even after a crash.
///
/// # Errors
/// The store cannot be opened, read or written, or no randomness.
pub fn replace_in(data_dir: &Path, name: &str, role: Role) -> anyhow::Result<String> {
    let (mut writer, reader) = store::open(data_dir)?;
    let mut writes = revocations(&reader, name)?;
    let issued = issue(name, role)?;
    writes.push(issued.write);
    writer.commit(&writes)?;
    Ok(issued.text)
}

/// Revokes every live token named `name` in the store in `data_dir`; returns how many.
///
/// # Errors
/// The store cannot be opened, read or written.
pub fn revoke_named_in(data_dir: &Path, name: &str) -> anyhow::Result<usize> {
    let (mut writer, reader) = store::open(data_dir)?;
    let writes = revocations(&reader, name)?;
    if !writes.is_empty() {
        writer.commit(&writes)?;
    }
    Ok(writes.len())
}

fn revocations(reader: &impl StoreReader, name: &str) -> anyhow::Result<Vec<Write>> {
    let now = Utc::now();
    Ok(reader
        .tokens()?
        .into_iter()
        .filter(|t| t.name == name && t.revoked_at.is_none())
        .map(|t| Write::RevokeToken { id: t.id, at: now })
        .collect())
}
