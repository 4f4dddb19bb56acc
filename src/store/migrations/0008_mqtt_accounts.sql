-- Who may connect to the embedded MQTT endpoint: one account per device (username = device
-- id) and one per gateway (firmware-bridge). Only a salted SHA-512 of each secret is kept, in
-- Mosquitto's `$6$` password-file format, so the same accounts can be exported for Mosquitto.
-- A revoked account keeps its row (and loses its hash) so the event log's references stay.
CREATE TABLE mqtt_accounts (
    username   TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('device', 'gateway')),
    hash       TEXT,
    -- For a device behind a gateway: the gateway that may publish for it.
    gateway    TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
