-- The schema of the SQLite store after its twelve migrations (src/store/migrations/), in
-- PostgreSQL's types: BIGINT for integers and milliseconds, DOUBLE PRECISION, BYTEA, TEXT.
-- The comments there say what each table is for; only what differs is said here.
--
-- Text that is compared or sorted is COLLATE "C": SQLite compares text bytewise, and the
-- readers must list devices, transits and tokens in the same order from either store.
--
-- Reports have no unindexed tail (`reports_recent`): SQLite needed one to avoid rewriting a
-- B-tree page per report; here a commit inserts straight into `reports`, whose heap is
-- appended to in commit order, and `report_folds` gets one row per commit instead of one per
-- fold, so the verifier reads the reports of each batch as a contiguous range of ids.

CREATE TABLE devices (
    device_id     TEXT COLLATE "C" PRIMARY KEY,
    carrier       TEXT COLLATE "C" NOT NULL,
    plate         TEXT,
    registered_at TEXT NOT NULL
);

CREATE TABLE reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   TEXT COLLATE "C" NOT NULL REFERENCES devices(device_id),
    seq         BIGINT,
    kind        TEXT COLLATE "C" NOT NULL,
    t_ms        BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    body        TEXT NOT NULL,
    batch       BIGINT
);
-- Serves a device's track and catches a redelivered report (same device, time and seq).
-- NULL seqs (`conn` reports) are distinct, as in SQLite.
CREATE UNIQUE INDEX reports_device_time ON reports(device_id, t_ms, seq);

CREATE TABLE device_state (
    device_id TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(device_id),
    state     TEXT NOT NULL
);

CREATE TABLE rejects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    detail      TEXT NOT NULL,
    topic       TEXT NOT NULL,
    device_id   TEXT COLLATE "C",
    payload     BYTEA NOT NULL
);
CREATE INDEX rejects_time ON rejects(received_ms);

-- Ids that run from 1 without gaps, as SQLite's rowids do: the evidence counts event records
-- by their ids (a checkpoint's head is the last id), and a sequence would leave a gap at
-- every rolled-back commit. The one writer takes the next id under its transaction.
CREATE FUNCTION next_row_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT coalesce(max(id), 0) + 1 FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO NEW.id;
    RETURN NEW;
END;
$$;

CREATE TABLE event_log (
    id          BIGINT PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    device_id   TEXT COLLATE "C",
    transit_id  TEXT COLLATE "C",
    occurred_ms BIGINT NOT NULL,
    detected_ms BIGINT NOT NULL,
    late        BOOLEAN NOT NULL,
    actor       TEXT,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX event_log_device ON event_log(device_id, id);
CREATE INDEX event_log_transit ON event_log(transit_id, id);
CREATE TRIGGER event_log_next_id BEFORE INSERT ON event_log
    FOR EACH ROW EXECUTE FUNCTION next_row_id();

-- Append-only tables: the database refuses edits, deletions and truncation through SQL.
-- (A superuser can still disable the triggers; the hash chains are what detect that.)
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change('the event log is append-only');
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('the event log is append-only');

-- Token ids are shown to officers and named when revoking: numbered as SQLite numbers them.
CREATE TABLE access_tokens (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    expires_ms BIGINT
);
CREATE TRIGGER access_tokens_next_id BEFORE INSERT ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION next_row_id();

CREATE TABLE transits (
    id              TEXT COLLATE "C" PRIMARY KEY,
    reference       TEXT COLLATE "C" NOT NULL,
    issuing_country TEXT COLLATE "C" NOT NULL,
    carrier         TEXT COLLATE "C" NOT NULL,
    stage           TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    open            BOOLEAN NOT NULL,
    next_checkpoint TEXT COLLATE "C",
    deadline_ms     BIGINT NOT NULL,
    declared_ms     BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX transits_open ON transits(open, next_checkpoint);
CREATE INDEX transits_carrier ON transits(carrier, declared_ms);

CREATE TABLE transit_expected (
    post_id     TEXT COLLATE "C" NOT NULL,
    eta_after_s BIGINT NOT NULL,
    declared_ms BIGINT NOT NULL,
    transit_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (post_id, eta_after_s, declared_ms, transit_id)
);
-- The SQLite key orders declared_ms descending; a B-tree is read backwards as cheaply.
CREATE INDEX transit_expected_order
    ON transit_expected(post_id, eta_after_s, declared_ms DESC, transit_id);
CREATE INDEX transit_expected_transit ON transit_expected(transit_id);

CREATE TABLE mqtt_accounts (
    username   TEXT COLLATE "C" PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('device', 'gateway')),
    hash       TEXT,
    gateway    TEXT COLLATE "C",
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE report_batches (
    batch        BIGINT PRIMARY KEY,
    reports      BIGINT NOT NULL,
    root         TEXT NOT NULL,
    events_id    BIGINT NOT NULL,
    events_head  TEXT NOT NULL,
    committed_ms BIGINT NOT NULL,
    leaves       BYTEA NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE TRIGGER report_batches_no_update BEFORE UPDATE OR DELETE ON report_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_change('report batches are append-only');
CREATE TRIGGER report_batches_no_truncate BEFORE TRUNCATE ON report_batches
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('report batches are append-only');

-- One row per commit that stored reports: the last report id it gave and its batch.
CREATE TABLE report_folds (
    last_row   BIGINT PRIMARY KEY,
    last_batch BIGINT NOT NULL
);

CREATE TABLE reports_redelivered (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   TEXT COLLATE "C" NOT NULL,
    seq         BIGINT,
    kind        TEXT COLLATE "C" NOT NULL,
    t_ms        BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    body        TEXT NOT NULL,
    batch       BIGINT
);

CREATE TABLE saved_tracks (
    device_id TEXT COLLATE "C" PRIMARY KEY,
    body      BYTEA NOT NULL
);
CREATE TABLE saved_tracks_at (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    engine    TEXT NOT NULL,
    events_id BIGINT NOT NULL,
    batch     BIGINT NOT NULL,
    saved_ms  BIGINT NOT NULL
);

CREATE TABLE exchange_outbox (
    peer       TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    transit_id TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    message    TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (peer, seq)
);
CREATE INDEX exchange_outbox_transit ON exchange_outbox (peer, transit_id, kind);

CREATE TABLE exchange_delivered (
    peer         TEXT COLLATE "C" PRIMARY KEY,
    seq          BIGINT NOT NULL,
    delivered_ms BIGINT NOT NULL
);

CREATE TABLE exchange_receipts (
    peer         TEXT COLLATE "C" NOT NULL,
    transit_id   TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    queued_ms    BIGINT NOT NULL,
    delivered_ms BIGINT NOT NULL,
    PRIMARY KEY (transit_id, peer, kind)
);

CREATE TABLE exchange_applied (
    peer_key   TEXT COLLATE "C" PRIMARY KEY,
    seq        BIGINT NOT NULL,
    applied_ms BIGINT NOT NULL
);
