-- Evaluations and feedback attached to a trace or span (numeric Value, or a label in
-- StringValue). Kept as long as the rollups: scores are small and outlive raw spans in value.
CREATE TABLE IF NOT EXISTS llm_scores {on_cluster}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Name LowCardinality(String),
    Value Float64 CODEC(ZSTD(1)),
    StringValue String CODEC(ZSTD(1)),
    Source LowCardinality(String),
    Comment String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = {replicated}MergeTree
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (Name, toStartOfHour(Timestamp), TraceId)
TTL toDateTime(Timestamp) + toIntervalDay({rollup_ttl_days});
