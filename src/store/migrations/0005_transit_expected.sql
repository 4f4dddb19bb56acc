-- Where each open transit is expected next: one row per post of its next checkpoint, with
-- how long after any moment it is expected there (its ETA less now), rewritten with the
-- transit in the same commit. A post's expected arrivals read the first rows of its range in
-- ETA order instead of every transit. Filled for the stored transits when the store opens.
CREATE TABLE transit_expected (
    post_id     TEXT NOT NULL,
    eta_after_s INTEGER NOT NULL,
    declared_ms INTEGER NOT NULL,
    transit_id  TEXT NOT NULL,
    PRIMARY KEY (post_id, eta_after_s, declared_ms DESC, transit_id)
) WITHOUT ROWID;
CREATE INDEX transit_expected_transit ON transit_expected(transit_id);
