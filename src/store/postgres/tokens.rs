//! API tokens in PostgreSQL (by the hash of their text, as in SQLite).

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::auth::{Principal, TokenRecord};
use crate::store::sqlite::{principal_of, token_record};
use crate::store::{NewToken, StoreError};

pub(super) fn insert(tx: &mut impl GenericClient, t: &NewToken) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO access_tokens (name, role, hash, created_at, expires_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &t.name,
            &t.role.to_string(),
            &t.hash,
            &t.created_at.to_rfc3339(),
            &t.expires_at.map(|at| at.timestamp_millis()),
        ],
    )?;
    Ok(())
}

pub(super) fn revoke(
    tx: &mut impl GenericClient,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &at.to_rfc3339()],
    )?;
    Ok(())
}

pub(super) fn principal(
    c: &mut impl GenericClient,
    token_hash: &str,
) -> Result<Option<Principal>, StoreError> {
    let row = c.query_opt(
        "SELECT id, name, role FROM access_tokens
         WHERE hash = $1 AND revoked_at IS NULL AND (expires_ms IS NULL OR expires_ms > $2)",
        &[&token_hash, &Utc::now().timestamp_millis()],
    )?;
    row.map(|r| principal_of(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
        .transpose()
}

pub(super) fn all(c: &mut impl GenericClient) -> Result<Vec<TokenRecord>, StoreError> {
    c.query(
        "SELECT id, name, role, created_at, revoked_at, expires_ms FROM access_tokens ORDER BY id",
        &[],
    )?
    .iter()
    .map(|r| {
        token_record(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        )
    })
    .collect()
}
