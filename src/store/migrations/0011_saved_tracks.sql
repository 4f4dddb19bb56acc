-- Every device's tracking state as the pipeline held it at its last clean stop, so the next
-- start reads one row per device instead of replaying reports. Derived state, not evidence:
-- it is taken up only while nothing was committed after it (`saved_tracks_at` names the last
-- event and report batch it follows) and for the same geofence index (`engine`); otherwise
-- the tracks are rebuilt from the reports as after a crash.
CREATE TABLE saved_tracks (
    device_id TEXT PRIMARY KEY,
    body      BLOB NOT NULL
);
CREATE TABLE saved_tracks_at (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    engine    TEXT NOT NULL,
    events_id INTEGER NOT NULL,
    batch     INTEGER NOT NULL,
    saved_ms  INTEGER NOT NULL
);

