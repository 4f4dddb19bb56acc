//! Which store the settings name, and the one way to open it.
//!
//! `[store] url` (or `--store`, or `CARAVAN__STORE__URL`) chooses the store: a `postgres://`
//! URL selects PostgreSQL; no URL keeps the embedded SQLite file in the data directory. The
//! data directory holds the other files (instance key, checkpoints, historian spill) either
//! way.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Committed, DeadLetterPolicy, StoreError, StoreReader, StoreWriter, Write};
use crate::settings::StoreSettings;

/// A store URL as configured. It may carry a password, so `Debug` and `Display` show it
/// masked ([`masked`]); the text itself is only handed to the database driver.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", masked(&self.0))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&masked(&self.0))
    }
}

/// For `--store`: any text is taken, and judged by [`Location::of`] with the other layers.
impl std::str::FromStr for StoreUrl {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(StoreUrl(text.to_owned()))
    }
}

/// Where the store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The embedded SQLite file in this data directory (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its connection URL.
    Postgres(StoreUrl),
}

/// URL schemes PostgreSQL's own clients accept for a connection URL.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl Location {
    /// The store the settings name.
    ///
    /// # Errors
    /// A URL of a scheme other than `postgres://` (or `postgresql://`).
    pub fn of(settings: &StoreSettings) -> Result<Location, StoreError> {
        let Some(url) = &settings.url else {
            return Ok(Location::Sqlite(settings.data_dir.clone()));
        };
        let lower = url.0.trim_start().to_ascii_lowercase();
        if POSTGRES_SCHEMES.iter().any(|s| lower.starts_with(s)) {
            Ok(Location::Postgres(url.clone()))
        } else {
            Err(StoreError::UnknownScheme(url.to_string()))
        }
    }

    /// The kind of store, for `/metrics`-like labels and short log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
        }
    }
}

/// Says which store, with a URL's password masked: what the startup log shows.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "SQLite in {}", dir.display()),
            Location::Postgres(url) => write!(f, "PostgreSQL at {url}"),
        }
    }
}

/// The URL with its password (in the user part, or a `password=` parameter) replaced by
/// `***`, so it can be logged. Everything before the last `@` counts as the user part: a
/// password holding an unescaped `@` or `/` is masked whole rather than cut in two.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL at all; it may be a key=value connection string with a password in it.
        return mask_parameters(url, ' ');
    };
    let (userinfo, host_and_more) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
    }
    match host_and_more.split_once('?') {
        Some((host, query)) => {
            out.push_str(host);
            out.push('?');
            out.push_str(&mask_parameters(query, '&'));
        }
        None => out.push_str(host_and_more),
    }
    out
}

/// `password=...` among `separator`-separated parameters, masked.
fn mask_parameters(text: &str, separator: char) -> String {
    text.split(separator)
        .map(|part| match part.split_once('=') {
            Some((key, _)) if key.trim().eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

/// A store opened from the settings: the writer for the committer (or a CLI command), the
/// readers for everyone else.
pub type Opened = (Box<dyn StoreWriter>, Arc<dyn StoreReader>);

/// Opens (creating and migrating as needed) the store the settings name, with `dead_letters`
/// as the writer's dead-letter policy. Blocking: call it from `spawn_blocking` in async code.
///
/// # Errors
/// An unknown URL scheme, or whatever opening that store failed on.
pub fn open_from(
    settings: &StoreSettings,
    dead_letters: DeadLetterPolicy,
) -> Result<Opened, StoreError> {
    match Location::of(settings)? {
        Location::Sqlite(dir) => {
            let (mut writer, reader) = super::sqlite::open(&dir)?;
            writer.set_dead_letter_policy(dead_letters);
            Ok((Box::new(writer), Arc::new(reader)))
        }
        Location::Postgres(url) => {
            // The data directory still holds the instance key and the checkpoints: it is made
            // owner-only here, as the SQLite store's open makes it.
            super::private::dir(&settings.data_dir).map_err(|source| StoreError::DataDir {
                path: settings.data_dir.clone(),
                source,
            })?;
            open_postgres(&url, dead_letters)
        }
    }
}

fn open_postgres(url: &StoreUrl, dead_letters: DeadLetterPolicy) -> Result<Opened, StoreError> {
    let (mut writer, reader) = super::postgres::open(&url.0)?;
    writer.set_dead_letter_policy(dead_letters)?;
    Ok((Box::new(writer), Arc::new(reader)))
}

/// The committer and the CLI hold whichever writer the settings chose.
impl StoreWriter for Box<dyn StoreWriter> {
    fn commit(&mut self, writes: &[Write]) -> Result<Committed, StoreError> {
        (**self).commit(writes)
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        (**self).finish()
    }

    fn fence(&mut self, epoch: i64) -> Result<(), StoreError> {
        (**self).fence(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: Option<&str>) -> StoreSettings {
        StoreSettings {
            url: url.map(|u| StoreUrl(u.to_owned())),
            ..StoreSettings::default()
        }
    }

    #[test]
    fn no_url_is_the_sqlite_file_in_the_data_directory() {
        let location = Location::of(&settings(None)).unwrap();
        assert_eq!(location, Location::Sqlite(PathBuf::from("./caravan-data")));
        assert_eq!(location.to_string(), "SQLite in ./caravan-data");
    }

    #[test]
    fn a_postgres_url_selects_postgresql_and_is_shown_without_its_password() {
        for url in [
            "postgres://caravan:hunter2@db.example:5432/caravan",
            "postgresql://caravan:hunter2@db.example/caravan",
        ] {
            let location = Location::of(&settings(Some(url))).unwrap();
            assert_eq!(location.kind(), "postgres");
            let shown = location.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("caravan:***@db.example"), "{shown}");
        }
    }

    #[test]
    fn an_unknown_scheme_is_an_error_naming_the_url_masked() {
        let err = Location::of(&settings(Some("mysql://root:hunter2@db/caravan"))).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::UnknownScheme(_)), "{text}");
        assert!(text.contains("mysql://root:***@db/caravan"), "{text}");
        assert!(text.contains("postgres://"), "{text}");
    }

    #[test]
    fn passwords_are_masked_wherever_the_url_carries_them() {
        assert_eq!(
            masked("postgres://caravan@127.0.0.1:55432/caravan"),
            "postgres://caravan@127.0.0.1:55432/caravan"
        );
        assert_eq!(
            masked("postgres://u:p@ss/w@rd@db/caravan"),
            "postgres://u:***@db/caravan"
        );
        assert_eq!(
            masked("postgres://db/caravan?user=u&password=secret&sslmode=require"),
            "postgres://db/caravan?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            masked("host=db user=u password=secret"),
            "host=db user=u password=***"
        );
    }

    #[test]
    fn debug_output_of_the_settings_masks_the_password() {
        let settings = settings(Some("postgres://caravan:hunter2@db/caravan"));
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
