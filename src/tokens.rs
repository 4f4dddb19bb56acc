//! Issuing and revoking API tokens, for the CLI, the first start and the API.

use std::path::Path;

use chrono::Utc;

use crate::auth::{token, Role};
use crate::store::{self, NewToken, StoreWriter, Write};

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
    let text = token::generate()?;
    let write = Write::Token(NewToken {
        name: name.to_owned(),
        role,
        hash: token::hash(&text),
        created_at: Utc::now(),
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
