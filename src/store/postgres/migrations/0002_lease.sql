-- The lease that makes one instance of several the active one (src/store/postgres/lease.rs).
-- One row: who holds it, the epoch (raised by one at every takeover, so it fences a former
-- holder's writer), and when it expires in the database's own time. The row exists from
-- the start, expired, so acquiring is always one UPDATE.
CREATE TABLE caravan_lease (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    holder     TEXT,
    epoch      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO caravan_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, '-infinity');
