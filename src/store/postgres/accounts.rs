//! The `mqtt_accounts` table in PostgreSQL: who may connect to the embedded MQTT endpoint.
//! Times are RFC 3339 text and rows decode through [`crate::store::accounts`], as in SQLite.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::auth::account::Account;
use crate::store::accounts::{account, Raw, COLUMNS};
use crate::store::{NewAccount, StoreError};

/// Creates the account, or gives an existing one a new secret (and brings it back from
/// revocation): rotation keeps the username and its history.
pub(crate) fn upsert(tx: &mut impl GenericClient, a: &NewAccount) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mqtt_accounts (username, kind, hash, gateway, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (username) DO UPDATE SET
            hash = excluded.hash, gateway = excluded.gateway,
            created_at = excluded.created_at, revoked_at = NULL",
        &[
            &a.username,
            &a.kind.as_str(),
            &a.hash,
            &a.gateway,
            &a.created_at.to_rfc3339(),
        ],
    )?;
    Ok(())
}

pub(crate) fn revoke(
    tx: &mut impl GenericClient,
    username: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE mqtt_accounts SET hash = NULL, revoked_at = $2
         WHERE username = $1 AND revoked_at IS NULL",
        &[&username, &at.to_rfc3339()],
    )?;
    Ok(())
}

pub(crate) fn one(
    c: &mut impl GenericClient,
    username: &str,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM mqtt_accounts WHERE username = $1");
    let row = c.query_opt(&sql, &[&username])?;
    row.map(|r| account(raw(&r)?)).transpose()
}

pub(crate) fn all(c: &mut impl GenericClient) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM mqtt_accounts ORDER BY username");
    let rows = c.query(&sql, &[])?;
    rows.iter().map(|r| account(raw(r)?)).collect()
}

fn raw(r: &postgres::Row) -> Result<Raw, postgres::Error> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
    ))
}

#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};

    use super::*;
    use crate::auth::account::AccountKind;
    use crate::store::postgres::test_db;
    use crate::store::{StoreReader, StoreWriter, Write};

    fn new(username: &str, kind: AccountKind, hash: &str, minute: i64) -> NewAccount {
        NewAccount {
            username: username.into(),
            kind,
            hash: hash.into(),
            gateway: (kind == AccountKind::Device).then(|| "gw-osh".to_owned()),
            created_at: DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap(),
        }
    }

    #[test]
    fn accounts_rotate_revoke_and_read_back_as_in_sqlite() {
        let Some(db) = test_db::fresh("accounts_rotate_revoke") else {
            return;
        };
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        crate::store::postgres::migrate::migrate(&mut client).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = crate::store::open(dir.path()).unwrap();

        let revoked_at = DateTime::from_timestamp(1_800_000_600, 0).unwrap();
        let steps = [
            vec![
                Write::Account(new("truck-9", AccountKind::Device, "$6$a", 0)),
                Write::Account(new("Gw-osh", AccountKind::Gateway, "$6$g", 0)),
                Write::Account(new("gw-bishkek", AccountKind::Gateway, "$6$b", 1)),
            ],
            // A new secret for one; another revoked, twice (the second changes nothing).
            vec![
                Write::Account(new("truck-9", AccountKind::Device, "$6$a2", 5)),
                Write::RevokeAccount {
                    username: "gw-bishkek".into(),
                    at: revoked_at,
                },
                Write::RevokeAccount {
                    username: "gw-bishkek".into(),
                    at: revoked_at + chrono::Duration::minutes(1),
                },
            ],
        ];
        for writes in &steps {
            writer.commit(writes).unwrap();
            let mut tx = client.transaction().unwrap();
            for write in writes {
                match write {
                    Write::Account(a) => upsert(&mut tx, a).unwrap(),
                    Write::RevokeAccount { username, at } => {
                        revoke(&mut tx, username, *at).unwrap();
                    }
                    _ => unreachable!(),
                }
            }
            tx.commit().unwrap();
        }

        let accounts = all(&mut client).unwrap();
        assert_eq!(accounts, reader.accounts().unwrap());
        let names: Vec<&str> = accounts.iter().map(|a| a.username.as_str()).collect();
        assert_eq!(names, ["Gw-osh", "gw-bishkek", "truck-9"], "bytewise order");
        let rotated = one(&mut client, "truck-9").unwrap().unwrap();
        assert_eq!(rotated.hash.as_deref(), Some("$6$a2"));
        let gone = one(&mut client, "gw-bishkek").unwrap().unwrap();
        assert_eq!((gone.hash, gone.revoked_at), (None, Some(revoked_at)));
        assert_eq!(one(&mut client, "truck-10").unwrap(), None);
    }

    #[test]
    fn a_corrupt_row_is_an_error_not_a_panic() {
        let Some(db) = test_db::fresh("accounts_corrupt_row") else {
            return;
        };
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        crate::store::postgres::migrate::migrate(&mut client).unwrap();
        client
            .batch_execute(
                "INSERT INTO mqtt_accounts (username, kind, hash, created_at)
                 VALUES ('truck-1', 'device', 'x', 'yesterday')",
            )
            .unwrap();
        assert!(matches!(
            one(&mut client, "truck-1"),
            Err(StoreError::Invalid(_))
        ));
    }
}
