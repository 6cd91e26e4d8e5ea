-- Console sign-in sessions (router::console::sessions). The browser holds a
-- random session id; only its SHA-256 is stored, with the SHA-256 of the API
-- token that signed in (so revoking the token ends its sessions), an expiry,
-- and the time of sign-out. Rows are deleted a day after they expire.
CREATE TABLE console_sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    principal TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
