-- Positions become evidence. Every group commit that stores reports adds one row to
-- `report_batches`: the SHA-256 leaf of each report (sorted), the root of a Merkle tree over
-- them, and a hash chained to the batch before it and to the event log's head at that commit.
-- Each report keeps the number of its batch, so `caravan audit verify` can recompute every
-- batch's leaves from the stored reports and name a fix that was moved, added or removed.
-- Reports stored before this migration have no batch and are reported as not covered.
ALTER TABLE reports ADD COLUMN batch INTEGER;
ALTER TABLE reports_recent ADD COLUMN batch INTEGER;

CREATE TABLE report_batches (
    batch        INTEGER PRIMARY KEY,
    reports      INTEGER NOT NULL,
    root         TEXT NOT NULL,
    -- The newest event-log record at this commit (0 and the genesis hash before any).
    events_id    INTEGER NOT NULL,
    events_head  TEXT NOT NULL,
    committed_ms INTEGER NOT NULL,
    -- The reports' leaves, 32 bytes each, sorted: what the root is computed over.
    leaves       BLOB NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE TRIGGER report_batches_no_update BEFORE UPDATE ON report_batches
BEGIN SELECT RAISE(ABORT, 'report batches are append-only'); END;
CREATE TRIGGER report_batches_no_delete BEFORE DELETE ON report_batches
BEGIN SELECT RAISE(ABORT, 'report batches are append-only'); END;

-- Where each fold of the tail ended in `reports`: the rows of one fold are contiguous, so a
-- verifier reads `reports` in row order, one fold at a time, without an index on `batch`.
CREATE TABLE report_folds (
    last_row   INTEGER PRIMARY KEY,
    last_batch INTEGER NOT NULL
);

-- A report delivered again after the in-memory duplicate window had forgotten it is in two
-- batches but stored once; the second copy is kept here so both batches stay complete.
CREATE TABLE reports_redelivered (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    seq         INTEGER,
    kind        TEXT NOT NULL,
    t_ms        INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    lat         REAL,
    lon         REAL,
    body        TEXT NOT NULL,
    batch       INTEGER
);
