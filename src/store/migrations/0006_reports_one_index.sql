-- Reports get one index instead of two, and an unindexed tail that new reports are appended
-- to (src/store/reports.rs says why). The remaining index serves both the time-range reads of
-- a device's track and duplicate detection: a message delivered twice is the same fix, with
-- the same device time and seq, and is ignored when the tail is folded in.
DROP INDEX IF EXISTS reports_device_seq;
DROP INDEX IF EXISTS reports_device_kind_time;
CREATE UNIQUE INDEX IF NOT EXISTS reports_device_time ON reports(device_id, t_ms, seq);

CREATE TABLE IF NOT EXISTS reports_recent (
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
