//! The `mqtt_accounts` table: who may connect to the embedded MQTT endpoint.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{NewAccount, StoreError};
use crate::auth::account::{Account, AccountKind};

/// Creates the account, or gives an existing one a new secret (and brings it back from
/// revocation): rotation keeps the username and its history.
pub(super) fn upsert(tx: &Transaction<'_>, a: &NewAccount) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO mqtt_accounts (username, kind, hash, gateway, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(username) DO UPDATE SET
            hash = excluded.hash, gateway = excluded.gateway,
            created_at = excluded.created_at, revoked_at = NULL",
    )?
    .execute(params![
        a.username,
        a.kind.as_str(),
        a.hash,
        a.gateway,
        a.created_at.to_rfc3339()
    ])?;
    Ok(())
}

pub(super) fn revoke(
    tx: &Transaction<'_>,
    username: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE mqtt_accounts SET hash = NULL, revoked_at = ?2
         WHERE username = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![username, at.to_rfc3339()])?;
    Ok(())
}

pub(crate) const COLUMNS: &str = "username, kind, hash, gateway, created_at, revoked_at";

pub(super) fn one(conn: &Connection, username: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM mqtt_accounts WHERE username = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([username], raw)
        .optional()?;
    row.map(account).transpose()
}

pub(super) fn all(conn: &Connection) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM mqtt_accounts ORDER BY username");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], raw)?;
    rows.map(|r| account(r?)).collect()
}

/// username, kind, hash, gateway, created_at, revoked_at as stored (shared with PostgreSQL).
pub(crate) type Raw = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(crate) fn account(
    (username, kind, hash, gateway, created_at, revoked_at): Raw,
) -> Result<Account, StoreError> {
    let corrupt = |what: &str| StoreError::Invalid(format!("mqtt account {username}: {what}"));
    let kind = AccountKind::parse(&kind).ok_or_else(|| corrupt("unknown kind"))?;
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| corrupt("bad time"))
    };
    Ok(Account {
        kind,
        hash,
        gateway,
        created_at: time(&created_at)?,
        revoked_at: revoked_at.as_deref().map(time).transpose()?,
        username,
    })
}
