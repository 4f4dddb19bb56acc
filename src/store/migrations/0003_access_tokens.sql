-- API bearer tokens. Only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE access_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
