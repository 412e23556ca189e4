-- Re-pricing's mark in the rollups (llmtrace.store.prices): each correction row carries the
-- PriceVersion of the run that wrote it (max per bucket and keys; 0: rows from the views), so a
-- run killed between the llm_calls update and its corrections is finished by the next run or
-- server start, which adds rows only where a group lacks its version's row.
ALTER TABLE llm_calls_1m {on_cluster}
    ADD COLUMN IF NOT EXISTS PriceVersion SimpleAggregateFunction(max, UInt32) DEFAULT 0 CODEC(ZSTD(1));
ALTER TABLE llm_calls_1h {on_cluster}
    ADD COLUMN IF NOT EXISTS PriceVersion SimpleAggregateFunction(max, UInt32) DEFAULT 0 CODEC(ZSTD(1));
