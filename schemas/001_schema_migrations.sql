-- Ledger of applied schema files: one row per file, with the sha256 of the file text as committed
-- (not of its rendering), so an edited file is refused instead of silently diverging.
CREATE TABLE IF NOT EXISTS schema_migrations {on_cluster}
(
    name String,
    checksum String,
    applied_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = {replicated}MergeTree
ORDER BY name;
