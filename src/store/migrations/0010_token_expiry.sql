-- Tokens may expire: the time after which a token no longer authenticates, in Unix
-- milliseconds; NULL for a token that lasts until it is revoked.
ALTER TABLE access_tokens ADD COLUMN expires_ms INTEGER;
