-- Re-pricing (llmtrace.store.prices.reprice): a price override applies to stored calls too. A run
-- rewrites the cost of the calls it re-prices, keeps what they had before in PrevCostUsd and
-- PrevCostStatus and stamps them with its PriceVersion; the rollups then get one correction row
-- per bucket holding exactly the difference, so every window agrees. 0: never re-priced.
ALTER TABLE llm_calls {on_cluster}
    ADD COLUMN IF NOT EXISTS PriceVersion UInt32 DEFAULT 0 CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS PrevCostUsd Nullable(Float64) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS PrevCostStatus LowCardinality(String) CODEC(ZSTD(1));
