-- One typed row per GenAI span (filled by llm_calls_mv from otel_traces). Message content is
-- not copied: it stays in otel_traces. Column names are a contract with llmtrace.analytics
-- and the dashboard.
CREATE TABLE IF NOT EXISTS llm_calls {on_cluster}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Release LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    TotalTokens UInt64 CODEC(T64, ZSTD(1)),
    CostUsd Nullable(Float64) CODEC(ZSTD(1)),
    CostStatus LowCardinality(String) CODEC(ZSTD(1)),
    DurationUs UInt64 CODEC(T64, ZSTD(1)),
    TtftUs Nullable(UInt64) CODEC(T64, ZSTD(1)),
    IsStream UInt8 CODEC(ZSTD(1)),
    FinishReasons Array(LowCardinality(String)) CODEC(ZSTD(1)),
    FinishReason LowCardinality(String) CODEC(ZSTD(1)),
    HasToolCalls UInt8 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    IsError UInt8 CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    ServerAddress LowCardinality(String) CODEC(ZSTD(1)),
    UsageEstimated UInt8 CODEC(ZSTD(1)),
    OutputTokensPerSecond Float64 CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_id UserId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_session_id SessionId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration DurationUs TYPE minmax GRANULARITY 1
)
ENGINE = {replicated}MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Provider, RequestModel, toStartOfHour(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;
