-- One row that `/readyz` rewrites while the store's writer has seen a write
-- fail (a full disk, a read-only file, a lost database): a probe that writes
-- nothing would pass while every real write fails. Never read by the hub.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
