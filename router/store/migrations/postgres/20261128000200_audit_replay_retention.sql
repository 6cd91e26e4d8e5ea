-- Audit: replay links and retention marks (router/src/audit/). Keep in step with the other backend.
-- A replayed delivery is a new `deliveries` row; `replay_of` is the id of the delivery it replays
-- (the dossier's previous attempt at the same destination), NULL for ordinary deliveries.
ALTER TABLE deliveries ADD COLUMN replay_of TEXT;
CREATE INDEX deliveries_replay_of ON deliveries (replay_of);
-- Retention: when a record's payload columns were emptied by `lienthong audit prune` (epoch ms).
-- The trail keeps the payload digests, so the chain stays verifiable; verify accepts an empty
-- payload only on a record marked here AND older than a `retention.pruned` trail event's cut-off.
ALTER TABLE messages ADD COLUMN pruned_at BIGINT;
ALTER TABLE deliveries ADD COLUMN pruned_at BIGINT;
ALTER TABLE attempts ADD COLUMN pruned_at BIGINT;
CREATE INDEX trail_kind ON trail (kind);
CREATE INDEX trail_at ON trail (at);
