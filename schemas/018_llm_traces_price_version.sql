-- Re-pricing corrects the trace list too (llmtrace.store.prices): each run adds one row per re-priced
-- trace to llm_traces with the cost and unpriced-count differences (016's rows keep the cost at
-- insert), carrying the run's PriceVersion like the rollups' correction rows (017), so a run killed
-- part-way is finished once and only once.
ALTER TABLE llm_traces {on_cluster}
    ADD COLUMN IF NOT EXISTS PriceVersion SimpleAggregateFunction(max, UInt32) DEFAULT 0 CODEC(ZSTD(1));
