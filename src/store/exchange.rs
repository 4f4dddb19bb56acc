//! The exchange's durable state in SQLite: each peer's outbox, how far each peer has taken
//! it, and the last message applied from each peer (migration 0012).

use std::collections::HashMap;

use rusqlite::{params, Connection, Transaction};

use super::StoreError;

/// A message this instance owes a peer, as written with the change it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    pub peer: String,
    pub seq: i64,
    pub transit_id: String,
    /// `transit` (the holder's record) or `action` (an officer's action for the holder).
    pub kind: String,
    /// The message as JSON, signed when it is sent.
    pub message: String,
    pub created_ms: i64,
}

impl OutboxMessage {
    /// The message as a receipt records it once the peer has taken it.
    pub fn taken(&self) -> Taken {
        Taken {
            transit_id: self.transit_id.clone(),
            kind: self.kind.clone(),
            seq: self.seq,
            queued_ms: self.created_ms,
        }
    }
}

/// Where the exchange stands, read at start: the next sequence number to give each peer's
/// messages, and the last applied from each peer (by key fingerprint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangeCursors {
    pub last_queued: HashMap<String, i64>,
    pub applied: HashMap<String, i64>,
}

/// One peer's outbox at a glance, for `/metrics` and `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxDepth {
    pub peer: String,
    pub waiting: i64,
    /// When the oldest waiting message was queued.
    pub oldest_ms: Option<i64>,
    /// When the peer last took a message.
    pub delivered_ms: Option<i64>,
}

/// Queues a message. A transit's record supersedes the same transit's record still waiting
/// for this peer: the peer needs the latest only, and the outbox stays bounded by the
/// transits rather than growing with every change while a peer is down.
///
/// # Errors
/// Database errors.
pub fn queue(tx: &Transaction<'_>, m: &OutboxMessage) -> Result<(), StoreError> {
    if m.kind == "transit" {
        tx.prepare_cached(
            "DELETE FROM exchange_outbox WHERE peer = ?1 AND transit_id = ?2 AND kind = 'transit'",
        )?
        .execute(params![m.peer, m.transit_id])?;
    }
    tx.prepare_cached(
        "INSERT INTO exchange_outbox (peer, seq, transit_id, kind, message, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        m.peer,
        m.seq,
        m.transit_id,
        m.kind,
        m.message,
        m.created_ms
    ])?;
    if m.kind == "positions" {
        // While a peer is down, the newest positions of each transit wait for it, not all:
        // the holder keeps every one in its own store.
        tx.prepare_cached(
            "DELETE FROM exchange_outbox WHERE peer = ?1 AND transit_id = ?2
                 AND kind = 'positions' AND seq <= (
                     SELECT seq FROM exchange_outbox
                     WHERE peer = ?1 AND transit_id = ?2 AND kind = 'positions'
                     ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
        )?
        .execute(params![m.peer, m.transit_id, POSITIONS_WAITING])?;
    }
    Ok(())
}

/// Position messages of one transit kept waiting for a peer that is down: at one fix a
/// minute in one batch each, a day's worth.
pub const POSITIONS_WAITING: i64 = 1440;

/// A message a peer took, as the dashboard shows it per transit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub transit_id: String,
    pub kind: String,
    pub seq: i64,
    pub queued_ms: i64,
}

/// One peer's messages about one transit: the last it took of each kind, and those waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitExchange {
    pub peer: String,
    pub kind: String,
    pub seq: i64,
    pub queued_ms: i64,
    /// `None` while it waits.
    pub delivered_ms: Option<i64>,
}

/// The peer has taken every message up to `seq`, among them `taken`.
///
/// # Errors
/// Database errors.
pub fn delivered(
    tx: &Transaction<'_>,
    peer: &str,
    seq: i64,
    taken: &[Taken],
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM exchange_outbox WHERE peer = ?1 AND seq <= ?2")?
        .execute(params![peer, seq])?;
    let mut receipt = tx.prepare_cached(
        "INSERT INTO exchange_receipts (peer, transit_id, kind, seq, queued_ms, delivered_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(transit_id, peer, kind) DO UPDATE SET seq = excluded.seq,
             queued_ms = excluded.queued_ms, delivered_ms = excluded.delivered_ms
         WHERE excluded.seq > exchange_receipts.seq",
    )?;
    for t in taken {
        receipt.execute(params![
            peer,
            t.transit_id,
            t.kind,
            t.seq,
            t.queued_ms,
            at_ms
        ])?;
    }
    tx.prepare_cached(
        "INSERT INTO exchange_delivered (peer, seq, delivered_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(peer) DO UPDATE SET seq = max(seq, excluded.seq),
             delivered_ms = excluded.delivered_ms",
    )?
    .execute(params![peer, seq, at_ms])?;
    Ok(())
}

/// The message `seq` from the peer with this key was applied (or refused for good).
///
/// # Errors
/// Database errors.
pub fn applied(
    tx: &Transaction<'_>,
    peer_key: &str,
    seq: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO exchange_applied (peer_key, seq, applied_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(peer_key) DO UPDATE SET seq = max(seq, excluded.seq),
             applied_ms = excluded.applied_ms",
    )?
    .execute(params![peer_key, seq, at_ms])?;
    Ok(())
}

/// # Errors
/// Database errors.
pub fn cursors(conn: &Connection) -> Result<ExchangeCursors, StoreError> {
    let mut out = ExchangeCursors::default();
    let mut highest = conn.prepare(
        "SELECT peer, max(seq) FROM (
             SELECT peer, seq FROM exchange_outbox
             UNION ALL SELECT peer, seq FROM exchange_delivered)
         GROUP BY peer",
    )?;
    for row in highest.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (peer, seq) = row?;
        out.last_queued.insert(peer, seq);
    }
    let mut applied = conn.prepare("SELECT peer_key, seq FROM exchange_applied")?;
    for row in applied.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (peer, seq) = row?;
        out.applied.insert(peer, seq);
    }
    Ok(out)
}

/// The peer's waiting messages after `after`, oldest first, at most `limit`.
///
/// # Errors
/// Database errors.
pub fn waiting(
    conn: &Connection,
    peer: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, transit_id, kind, message, created_ms FROM exchange_outbox
         WHERE peer = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![peer, after, limit], |r| {
        Ok(OutboxMessage {
            peer: peer.to_owned(),
            seq: r.get(0)?,
            transit_id: r.get(1)?,
            kind: r.get(2)?,
            message: r.get(3)?,
            created_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// # Errors
/// Database errors.
pub fn depth(conn: &Connection, peer: &str) -> Result<OutboxDepth, StoreError> {
    let (waiting, oldest_ms): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), min(created_ms) FROM exchange_outbox WHERE peer = ?1",
        [peer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let delivered_ms = conn
        .query_row(
            "SELECT delivered_ms FROM exchange_delivered WHERE peer = ?1",
            [peer],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    Ok(OutboxDepth {
        peer: peer.to_owned(),
        waiting,
        oldest_ms,
        delivered_ms,
    })
}

/// Every peer's messages about one transit: the last taken of each kind, then those waiting.
///
/// # Errors
/// Database errors.
pub fn of_transit(conn: &Connection, transit_id: &str) -> Result<Vec<TransitExchange>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer, kind, seq, queued_ms, delivered_ms FROM exchange_receipts
         WHERE transit_id = ?1
         UNION ALL
         SELECT peer, kind, seq, created_ms, NULL FROM exchange_outbox WHERE transit_id = ?1
         ORDER BY 1, 3",
    )?;
    let rows = stmt.query_map([transit_id], |r| {
        Ok(TransitExchange {
            peer: r.get(0)?,
            kind: r.get(1)?,
            seq: r.get(2)?,
            queued_ms: r.get(3)?,
            delivered_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::store::{open, OutboxMessage, StoreReader, StoreWriter, Taken, Write};

    fn message(peer: &str, seq: i64, transit: &str, kind: &str) -> Write {
        Write::Outbox(Box::new(OutboxMessage {
            peer: peer.into(),
            seq,
            transit_id: transit.into(),
            kind: kind.into(),
            message: format!("{{\"seq\":{seq}}}"),
            created_ms: seq,
        }))
    }

    #[test]
    fn a_peer_that_is_down_is_owed_a_bounded_outbox_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = open(dir.path()).unwrap();
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        // Records of two transits, many times over, an action, and a long drive's positions.
        let mut writes = Vec::new();
        for _ in 0..50 {
            writes.push(message("kz", next(), "CN-1", "transit"));
            writes.push(message("kz", next(), "CN-2", "transit"));
        }
        writes.push(message("kz", next(), "CN-1", "action"));
        for _ in 0..(super::POSITIONS_WAITING + 100) {
            writes.push(message("kz", next(), "CN-1", "positions"));
        }
        writes.push(message("kg", next(), "CN-1", "transit"));
        writer.commit(&writes).unwrap();

        let depth = reader.exchange_depth("kz").unwrap();
        assert_eq!(depth.waiting, 2 + 1 + super::POSITIONS_WAITING);
        let waiting = reader.exchange_waiting("kz", 0, 10).unwrap();
        let kinds: Vec<(&str, &str)> = waiting
            .iter()
            .take(3)
            .map(|m| (m.transit_id.as_str(), m.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("CN-1", "transit"), ("CN-2", "transit"), ("CN-1", "action")],
            "the latest record of each transit, in order"
        );
        assert!(waiting.windows(2).all(|w| w[0].seq < w[1].seq));

        // Delivered up to the action: those rows go, the receipts say what was taken.
        let action = waiting[2].seq;
        let taken: Vec<Taken> = waiting[..3].iter().map(OutboxMessage::taken).collect();
        writer
            .commit(&[Write::Delivered {
                peer: "kz".into(),
                seq: action,
                taken,
                at: Utc::now(),
            }])
            .unwrap();
        assert_eq!(
            reader.exchange_depth("kz").unwrap().waiting,
            super::POSITIONS_WAITING
        );
        let shared = reader.exchange_of_transit("CN-2").unwrap();
        assert_eq!(shared.len(), 1);
        assert!(shared[0].delivered_ms.is_some());
        let cursors = reader.exchange_cursors().unwrap();
        assert_eq!(cursors.last_queued.get("kz"), Some(&(seq - 1)));
        assert_eq!(cursors.last_queued.get("kg"), Some(&seq));
    }
}
