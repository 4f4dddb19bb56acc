-- Where each open transit is expected next: one row per post of its next checkpoint,
-- rewritten with the transit in the same commit. A post's expected arrivals read its rows
-- in ETA order (the drive over remaining_m at recent_kmh, or the rules' default speed)
-- instead of every transit. Filled for the transits already stored when the store opens.
CREATE TABLE transit_expected (
    post_id     TEXT NOT NULL,
    transit_id  TEXT NOT NULL,
    remaining_m REAL NOT NULL,
    recent_kmh  REAL,
    declared_ms INTEGER NOT NULL,
    PRIMARY KEY (post_id, transit_id)
) WITHOUT ROWID;
CREATE INDEX transit_expected_transit ON transit_expected(transit_id);
