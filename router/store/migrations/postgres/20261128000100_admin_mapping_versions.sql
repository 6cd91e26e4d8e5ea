-- Versioned mappings (router/src/admin/versions.rs). Keep in step with ../sqlite/.
-- Every change to a mapping is a new row; rows are never updated or deleted.
CREATE TABLE mapping_versions (
    mapping_id   TEXT NOT NULL,
    version      BIGINT NOT NULL,             -- 1, 2, 3... per mapping; what deliveries.mapping_version records
    created_at   BIGINT NOT NULL,             -- epoch ms
    author       TEXT NOT NULL,               -- token name, or `file` for edits under mappings/
    comment      TEXT NOT NULL,
    origin       TEXT NOT NULL,               -- api | console | file | import
    content_hash TEXT NOT NULL,               -- SHA-256 hex of content (same as CompiledMapping::content_hash)
    content      TEXT NOT NULL,               -- the mapping YAML exactly as submitted
    PRIMARY KEY (mapping_id, version)
);
CREATE INDEX mapping_versions_hash ON mapping_versions (mapping_id, content_hash);

-- Exactly one active version per mapping.
CREATE TABLE mapping_active (
    mapping_id   TEXT PRIMARY KEY,
    version      BIGINT NOT NULL,
    activated_at BIGINT NOT NULL,
    activated_by TEXT NOT NULL
);

-- One row, bumped by every activation or rollback. Replicas poll it and reload when it moves;
-- writers update it first, which serialises admin changes (row lock / SQLite write lock).
CREATE TABLE mapping_generation (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO mapping_generation (id, generation, updated_at) VALUES (1, 0, 0);
