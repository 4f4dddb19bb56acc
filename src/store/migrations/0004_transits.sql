-- Transits: the whole transit (declaration, itinerary, transitions, alerts, inspections, BCP
-- passages, section runs) as JSON, rewritten in the same commit as the event-log records
-- that explain each change. The columns beside it are what listings filter and sort on;
-- alerts and passages are read out of the JSON with json_each.
CREATE TABLE transits (
    id              TEXT PRIMARY KEY,
    reference       TEXT NOT NULL,
    issuing_country TEXT NOT NULL,
    carrier         TEXT NOT NULL,
    stage           TEXT NOT NULL,
    status          TEXT NOT NULL,
    open            INTEGER NOT NULL,
    next_checkpoint TEXT,
    deadline_ms     INTEGER NOT NULL,
    declared_ms     INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX transits_open ON transits(open, next_checkpoint);
CREATE INDEX transits_carrier ON transits(carrier, declared_ms);
