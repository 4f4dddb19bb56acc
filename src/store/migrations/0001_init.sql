-- Devices registered by carriers.
CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY,
    carrier       TEXT NOT NULL,
    plate         TEXT,
    registered_at TEXT NOT NULL
);

-- Every accepted report, as received. (device_id, seq) is unique: a redelivered message is
-- ignored here, which is what makes at-least-once delivery safe. `conn` reports have no seq.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(device_id),
    seq         INTEGER,
    kind        TEXT NOT NULL,
    t_ms        INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    lat         REAL,
    lon         REAL,
    body        TEXT NOT NULL
);
CREATE UNIQUE INDEX reports_device_seq ON reports(device_id, seq);
CREATE INDEX reports_device_kind_time ON reports(device_id, kind, t_ms);

-- The pipeline's latest view of each device, written in the same transaction as the reports
-- that produced it, so a restart resumes exactly where the last commit left off.
CREATE TABLE device_state (
    device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
    state     TEXT NOT NULL
);

-- Dead letters: refused messages kept with their reason, so nothing silently disappears.
CREATE TABLE rejects (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    topic       TEXT NOT NULL,
    device_id   TEXT,
    payload     BLOB NOT NULL
);
CREATE INDEX rejects_time ON rejects(received_ms);
