-- The domain event log: append-only and hash-chained, so alerts and seal events can serve as
-- evidence. Each row's hash covers the previous row's hash and this row's stored text; a
-- changed or removed row breaks the chain from that row on (`caravan audit verify`).
CREATE TABLE event_log (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    device_id   TEXT,
    transit_id  TEXT,
    occurred_ms INTEGER NOT NULL,
    detected_ms INTEGER NOT NULL,
    late        INTEGER NOT NULL,
    actor       TEXT,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX event_log_device ON event_log(device_id, id);
CREATE INDEX event_log_transit ON event_log(transit_id, id);

-- Append-only: the database itself refuses edits and deletions through SQL. (Someone with
-- the file can still change it; the hash chain is what detects that.)
CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER event_log_no_delete BEFORE DELETE ON event_log
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
