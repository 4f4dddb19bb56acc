-- The exchange between national instances (docs/exchange.md).
--
-- What this instance owes each peer, in the order it must arrive. Rows are written in the
-- same transaction as the change they report, so nothing committed is left unsent. A newer
-- record of a transit replaces an older one still waiting (the peer needs only the latest),
-- which bounds the table by the transits and the officers' actions, not by time; sequence
-- numbers only grow, so the peer still applies each message once and in order.
CREATE TABLE exchange_outbox (
    peer       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    transit_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (peer, seq)
);
CREATE INDEX exchange_outbox_transit ON exchange_outbox (peer, transit_id, kind);

-- How far each peer has taken this instance's messages (delivered rows are deleted).
CREATE TABLE exchange_delivered (
    peer         TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    delivered_ms INTEGER NOT NULL
);

-- What each peer last took of each transit, by kind of message: what the dashboard shows
-- per transit ("the Kazakh instance has had its record since 09:12").
CREATE TABLE exchange_receipts (
    peer         TEXT    NOT NULL,
    transit_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    queued_ms    INTEGER NOT NULL,
    delivered_ms INTEGER NOT NULL,
    PRIMARY KEY (transit_id, peer, kind)
);

-- The last message applied from each peer, by the fingerprint of its key: anything at or
-- below it is a redelivery and is applied no second time.
CREATE TABLE exchange_applied (
    peer_key   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    applied_ms INTEGER NOT NULL
);
