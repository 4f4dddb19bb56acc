//! The exchange's durable state in PostgreSQL: each peer's outbox, how far each peer has
//! taken it, and the last message applied from each peer. The rules (a transit's newer
//! record supersedes the waiting one, a bounded tail of positions) are those of
//! [`crate::store::exchange`]; only the SQL is here.

use postgres::GenericClient;

use crate::store::exchange::{
    ExchangeCursors, OutboxDepth, OutboxMessage, Taken, TransitExchange, POSITIONS_WAITING,
};
use crate::store::StoreError;

/// Queues a message (see [`crate::store::exchange::queue`]).
///
/// # Errors
/// Database errors.
pub(crate) fn queue(tx: &mut impl GenericClient, m: &OutboxMessage) -> Result<(), StoreError> {
    if m.kind == "transit" {
        tx.execute(
            "DELETE FROM exchange_outbox WHERE peer = $1 AND transit_id = $2 AND kind = 'transit'",
            &[&m.peer, &m.transit_id],
        )?;
    }
    tx.execute(
        "INSERT INTO exchange_outbox (peer, seq, transit_id, kind, message, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &m.peer,
            &m.seq,
            &m.transit_id,
            &m.kind,
            &m.message,
            &m.created_ms,
        ],
    )?;
    if m.kind == "positions" {
        tx.execute(
            "DELETE FROM exchange_outbox WHERE peer = $1 AND transit_id = $2
                 AND kind = 'positions' AND seq <= (
                     SELECT seq FROM exchange_outbox
                     WHERE peer = $1 AND transit_id = $2 AND kind = 'positions'
                     ORDER BY seq DESC LIMIT 1 OFFSET $3)",
            &[&m.peer, &m.transit_id, &POSITIONS_WAITING],
        )?;
    }
    Ok(())
}

/// The peer has taken every message up to `seq`, among them `taken`.
///
/// # Errors
/// Database errors.
pub(crate) fn delivered(
    tx: &mut impl GenericClient,
    peer: &str,
    seq: i64,
    taken: &[Taken],
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM exchange_outbox WHERE peer = $1 AND seq <= $2",
        &[&peer, &seq],
    )?;
    if !taken.is_empty() {
        let receipt = tx.prepare(
            "INSERT INTO exchange_receipts AS r
                 (peer, transit_id, kind, seq, queued_ms, delivered_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (transit_id, peer, kind) DO UPDATE SET seq = excluded.seq,
                 queued_ms = excluded.queued_ms, delivered_ms = excluded.delivered_ms
             WHERE excluded.seq > r.seq",
        )?;
        for t in taken {
            tx.execute(
                &receipt,
                &[&peer, &t.transit_id, &t.kind, &t.seq, &t.queued_ms, &at_ms],
            )?;
        }
    }
    tx.execute(
        "INSERT INTO exchange_delivered AS d (peer, seq, delivered_ms) VALUES ($1, $2, $3)
         ON CONFLICT (peer) DO UPDATE SET seq = greatest(d.seq, excluded.seq),
             delivered_ms = excluded.delivered_ms",
        &[&peer, &seq, &at_ms],
    )?;
    Ok(())
}

/// The message `seq` from the peer with this key was applied (or refused for good).
///
/// # Errors
/// Database errors.
pub(crate) fn applied(
    tx: &mut impl GenericClient,
    peer_key: &str,
    seq: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO exchange_applied AS a (peer_key, seq, applied_ms) VALUES ($1, $2, $3)
         ON CONFLICT (peer_key) DO UPDATE SET seq = greatest(a.seq, excluded.seq),
             applied_ms = excluded.applied_ms",
        &[&peer_key, &seq, &at_ms],
    )?;
    Ok(())
}

/// # Errors
/// Database errors.
pub(crate) fn cursors(c: &mut impl GenericClient) -> Result<ExchangeCursors, StoreError> {
    let mut out = ExchangeCursors::default();
    for row in c.query(
        "SELECT peer, max(seq) FROM (
             SELECT peer, seq FROM exchange_outbox
             UNION ALL SELECT peer, seq FROM exchange_delivered) AS queued
         GROUP BY peer",
        &[],
    )? {
        out.last_queued.insert(row.try_get(0)?, row.try_get(1)?);
    }
    for row in c.query("SELECT peer_key, seq FROM exchange_applied", &[])? {
        out.applied.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(out)
}

/// The peer's waiting messages after `after`, oldest first, at most `limit`.
///
/// # Errors
/// Database errors.
pub(crate) fn waiting(
    c: &mut impl GenericClient,
    peer: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT seq, transit_id, kind, message, created_ms FROM exchange_outbox
         WHERE peer = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&peer, &after, &limit],
    )?;
    rows.iter()
        .map(|r| {
            Ok(OutboxMessage {
                peer: peer.to_owned(),
                seq: r.try_get(0)?,
                transit_id: r.try_get(1)?,
                kind: r.try_get(2)?,
                message: r.try_get(3)?,
                created_ms: r.try_get(4)?,
            })
        })
        .collect()
}

/// # Errors
/// Database errors.
pub(crate) fn depth(c: &mut impl GenericClient, peer: &str) -> Result<OutboxDepth, StoreError> {
    let row = c.query_one(
        "SELECT count(*), min(created_ms),
                (SELECT delivered_ms FROM exchange_delivered WHERE peer = $1)
         FROM exchange_outbox WHERE peer = $1",
        &[&peer],
    )?;
    Ok(OutboxDepth {
        peer: peer.to_owned(),
        waiting: row.try_get(0)?,
        oldest_ms: row.try_get(1)?,
        delivered_ms: row.try_get(2)?,
    })
}

/// Every peer's messages about one transit: the last taken of each kind, then those waiting.
///
/// # Errors
/// Database errors.
pub(crate) fn of_transit(
    c: &mut impl GenericClient,
    transit_id: &str,
) -> Result<Vec<TransitExchange>, StoreError> {
    let rows = c.query(
        "SELECT peer, kind, seq, queued_ms, delivered_ms FROM exchange_receipts
         WHERE transit_id = $1
         UNION ALL
         SELECT peer, kind, seq, created_ms, NULL FROM exchange_outbox WHERE transit_id = $1
         ORDER BY 1, 3",
        &[&transit_id],
    )?;
    rows.iter()
        .map(|r| {
            Ok(TransitExchange {
                peer: r.try_get(0)?,
                kind: r.try_get(1)?,
                seq: r.try_get(2)?,
                queued_ms: r.try_get(3)?,
                delivered_ms: r.try_get(4)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};

    use super::*;
    use crate::store::postgres::test_db::{self, TestDb};
    use crate::store::{StoreReader, StoreWriter, Write};

    fn message(peer: &str, seq: i64, transit: &str, kind: &str) -> OutboxMessage {
        OutboxMessage {
            peer: peer.into(),
            seq,
            transit_id: transit.into(),
            kind: kind.into(),
            message: format!("{{\"seq\":{seq}}}"),
            created_ms: seq,
        }
    }

    fn database(test: &str) -> Option<(TestDb, Client)> {
        let db = test_db::fresh(test)?;
        let mut client = Client::connect(&db.url, NoTls).unwrap();
        crate::store::postgres::migrate::migrate(&mut client).unwrap();
        Some((db, client))
    }

    /// The messages of the SQLite test: records of two transits many times over, an action,
    /// a long drive's positions, and one record for a second peer.
    fn outbox() -> Vec<OutboxMessage> {
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        let mut messages = Vec::new();
        for _ in 0..50 {
            messages.push(message("kz", next(), "CN-1", "transit"));
            messages.push(message("kz", next(), "CN-2", "transit"));
        }
        messages.push(message("kz", next(), "CN-1", "action"));
        for _ in 0..(POSITIONS_WAITING + 100) {
            messages.push(message("kz", next(), "CN-1", "positions"));
        }
        messages.push(message("kg", next(), "CN-1", "transit"));
        messages
    }

    #[test]
    fn a_peer_that_is_down_is_owed_a_bounded_outbox_in_order() {
        let Some((_db, mut client)) = database("a_peer_that_is_down_is_owed") else {
            return;
        };
        let messages = outbox();
        let last = messages.last().unwrap().seq;
        let mut tx = client.transaction().unwrap();
        for m in &messages {
            queue(&mut tx, m).unwrap();
        }
        tx.commit().unwrap();

        let before = depth(&mut client, "kz").unwrap();
        assert_eq!(before.waiting, 2 + 1 + POSITIONS_WAITING);
        assert_eq!(before.delivered_ms, None);
        let first = waiting(&mut client, "kz", 0, 10).unwrap();
        let kinds: Vec<(&str, &str)> = first
            .iter()
            .take(3)
            .map(|m| (m.transit_id.as_str(), m.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("CN-1", "transit"), ("CN-2", "transit"), ("CN-1", "action")],
            "the latest record of each transit, in order"
        );
        assert!(first.windows(2).all(|w| w[0].seq < w[1].seq));

        let action = first[2].seq;
        let taken: Vec<Taken> = first[..3].iter().map(OutboxMessage::taken).collect();
        let mut tx = client.transaction().unwrap();
        delivered(&mut tx, "kz", action, &taken, 77).unwrap();
        tx.commit().unwrap();
        let after = depth(&mut client, "kz").unwrap();
        assert_eq!(after.waiting, POSITIONS_WAITING);
        assert_eq!(after.delivered_ms, Some(77));
        let shared = of_transit(&mut client, "CN-2").unwrap();
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].delivered_ms, Some(77));
        let cursors = cursors(&mut client).unwrap();
        assert_eq!(cursors.last_queued.get("kz"), Some(&(last - 1)));
        assert_eq!(cursors.last_queued.get("kg"), Some(&last));
    }

    #[test]
    fn cursors_never_go_back_and_an_older_receipt_does_not_replace_a_newer() {
        let Some((_db, mut client)) = database("cursors_never_go_back") else {
            return;
        };
        let mut tx = client.transaction().unwrap();
        queue(&mut tx, &message("kz", 5, "CN-1", "transit")).unwrap();
        let newer = message("kz", 5, "CN-1", "transit").taken();
        delivered(&mut tx, "kz", 5, &[newer], 50).unwrap();
        let older = message("kz", 3, "CN-1", "transit").taken();
        delivered(&mut tx, "kz", 3, &[older], 60).unwrap();
        applied(&mut tx, "key-kz", 9, 10).unwrap();
        applied(&mut tx, "key-kz", 4, 20).unwrap();
        tx.commit().unwrap();
        let cursors = cursors(&mut client).unwrap();
        assert_eq!(cursors.last_queued.get("kz"), Some(&5));
        assert_eq!(cursors.applied.get("key-kz"), Some(&9));
        let receipts = of_transit(&mut client, "CN-1").unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!((receipts[0].seq, receipts[0].delivered_ms), (5, Some(50)));
        assert_eq!(depth(&mut client, "kz").unwrap().delivered_ms, Some(60));
    }

    /// The same outbox and delivery through the SQLite store gives the same answers.
    #[test]
    fn sqlite_and_postgresql_answer_the_same() {
        let Some((_db, mut client)) = database("exchange_sqlite_and_postgresql") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = crate::store::open(dir.path()).unwrap();
        let mut messages = outbox();
        messages.push(message("kz", 10_000, "CN-2", "action"));
        let writes: Vec<_> = messages
            .iter()
            .map(|m| Write::Outbox(Box::new(m.clone())))
            .collect();
        let taken = vec![messages[99].taken(), messages[100].taken()];
        let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        writer.commit(&writes).unwrap();
        writer
            .commit(&[
                Write::Delivered {
                    peer: "kz".into(),
                    seq: 101,
                    taken: taken.clone(),
                    at,
                },
                Write::Applied {
                    peer_key: "key-kg".into(),
                    seq: 3,
                    at,
                },
            ])
            .unwrap();
        let mut tx = client.transaction().unwrap();
        for m in &messages {
            queue(&mut tx, m).unwrap();
        }
        tx.commit().unwrap();
        let mut tx = client.transaction().unwrap();
        delivered(&mut tx, "kz", 101, &taken, at.timestamp_millis()).unwrap();
        applied(&mut tx, "key-kg", 3, at.timestamp_millis()).unwrap();
        tx.commit().unwrap();

        assert_eq!(
            reader.exchange_cursors().unwrap(),
            cursors(&mut client).unwrap()
        );
        for peer in ["kz", "kg", "uz"] {
            assert_eq!(
                reader.exchange_depth(peer).unwrap(),
                depth(&mut client, peer).unwrap()
            );
            assert_eq!(
                reader.exchange_waiting(peer, 50, 2000).unwrap(),
                waiting(&mut client, peer, 50, 2000).unwrap()
            );
        }
        for transit in ["CN-1", "CN-2"] {
            assert_eq!(
                reader.exchange_of_transit(transit).unwrap(),
                of_transit(&mut client, transit).unwrap()
            );
        }
    }
}
