-- The `version:` a mapping file declares, kept next to the store's version number
-- (router/src/admin/versions.rs). Deliveries record the store's version
-- (`deliveries.mapping_version` = `mapping_versions.version`): it is unique per change
-- and never reused. The file's own number is a label its author maintains; a fresh
-- store imports every file as version 1 whatever it declares, so the console shows
-- both. NULL for versions stored before this column existed. Keep in step with the
-- other backend's migration.
ALTER TABLE mapping_versions ADD COLUMN file_version BIGINT;
