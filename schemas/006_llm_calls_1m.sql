-- Per-minute rollup of llm_calls for fast dashboards over long windows. Read with
-- sum(...) for SimpleAggregateFunction columns and quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(DurationQ).
-- Aggregate aliases must not reuse a source column name inside the MV, hence c.X everywhere.
CREATE TABLE IF NOT EXISTS llm_calls_1m {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    Operation LowCardinality(String),
    RequestModel LowCardinality(String),
    PromptName LowCardinality(String),
    PromptVersion LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    CostUsd SimpleAggregateFunction(sum, Float64),
    UnpricedCalls SimpleAggregateFunction(sum, UInt64),
    PricedCalls SimpleAggregateFunction(sum, UInt64),
    DurationSumUs SimpleAggregateFunction(sum, UInt64),
    DurationQ AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt64),
    TtftQ AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt64))
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (ServiceName, Environment, Provider, RequestModel, Operation, Release, PromptName, PromptVersion, Bucket)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_calls_1m_mv {on_cluster}
TO llm_calls_1m
AS SELECT
    toStartOfMinute(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.Operation AS Operation,
    c.RequestModel AS RequestModel,
    c.PromptName AS PromptName,
    c.PromptVersion AS PromptVersion,
    toUInt64(count()) AS Calls,
    toUInt64(sum(c.IsError)) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.CacheReadTokens) AS CacheReadTokens,
    sum(c.CacheWriteTokens) AS CacheWriteTokens,
    sum(c.ReasoningTokens) AS ReasoningTokens,
    sum(ifNull(c.CostUsd, 0)) AS CostUsd,
    toUInt64(countIf(c.CostStatus = 'unpriced')) AS UnpricedCalls,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS PricedCalls,
    sum(c.DurationUs) AS DurationSumUs,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(c.DurationUs) AS DurationQ,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(c.TtftUs) AS TtftQ
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, Operation, RequestModel, PromptName, PromptVersion;
