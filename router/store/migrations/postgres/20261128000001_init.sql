-- lienthong store, PostgreSQL flavour. Keep in step with ../sqlite/.
-- Timestamps are epoch milliseconds (BIGINT), JSON is TEXT, bodies are BYTEA.

-- Every inbound attempt, accepted or rejected, with the exact bytes received.
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,          -- UUID v7 (time ordered)
    received_at        BIGINT NOT NULL,
    source_system      TEXT NOT NULL,
    message_type       TEXT NOT NULL,
    correlation_id     TEXT,                      -- dossier code or station code
    idempotency_key    TEXT,                      -- Idempotency-Key header, else the partner message id
    partner_message_id TEXT,
    content_type       TEXT,
    raw                BYTEA NOT NULL,
    parsed             TEXT,                      -- the decoded tree (JSON), NULL when decoding failed
    state              TEXT NOT NULL,             -- accepted | rejected
    reasons            TEXT                       -- JSON array of strings, for rejected messages
);
-- A resend with the same key gets the original id back; rejected attempts never count.
CREATE UNIQUE INDEX messages_idempotency ON messages (source_system, idempotency_key)
    WHERE state = 'accepted' AND idempotency_key IS NOT NULL;
CREATE INDEX messages_correlation ON messages (correlation_id);
CREATE INDEX messages_received ON messages (received_at);

-- The transactional outbox and, for the embedded queue, the queue itself.
-- `seq` is the acceptance order that per-(correlation_id, destination) ordering follows.
CREATE TABLE deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    destination     TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    route_id        TEXT NOT NULL,
    mapping_id      TEXT NOT NULL,
    mapping_version BIGINT NOT NULL,
    body            BYTEA NOT NULL,
    content_type    TEXT NOT NULL,
    state           TEXT NOT NULL,                -- pending | in_flight | delivered | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    error_class     TEXT,                         -- transient | permanent | exhausted
    correlation_id  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at)
    WHERE state IN ('pending', 'in_flight');
CREATE INDEX deliveries_order ON deliveries (correlation_id, destination, seq)
    WHERE state IN ('pending', 'in_flight');
CREATE INDEX deliveries_message ON deliveries (message_id);

-- One row per delivery attempt.
CREATE TABLE attempts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      TEXT NOT NULL,
    n                BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    latency_ms       BIGINT NOT NULL,
    request_excerpt  TEXT,
    status           BIGINT,
    response_excerpt TEXT,
    error            TEXT,
    outcome          TEXT NOT NULL                -- delivered | retry | dead
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, n);

-- The hash-chained trail; see router/src/audit/chain.rs for the hashing rule.
CREATE TABLE trail (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    message_id  TEXT,
    delivery_id TEXT,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX trail_message ON trail (message_id);
CREATE INDEX trail_delivery ON trail (delivery_id);

-- One row: the last appended trail seq and hash. Appends lock it first.
CREATE TABLE chain_head (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO chain_head (id, seq, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);
