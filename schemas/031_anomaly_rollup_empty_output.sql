-- An embedding (or a rerank) answers with vectors or scores, never output tokens: it is not an
-- "empty output". llm_anomaly_5m counted every successful call without output tokens, so a
-- provider serving chat and embeddings saw its empty-output share follow the mix (a blind judge,
-- v12: 0.35 by day, 0.77 at night when chat went quiet, 22 false episodes in 20 weeks). The view's
-- query is replaced in one ALTER (as 030 does for llm_calls_mv); rows already rolled up keep their
-- counts.
ALTER TABLE llm_anomaly_5m_mv {on_cluster}
MODIFY QUERY SELECT
    toStartOfFiveMinutes(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    toUInt64(count()) AS Calls,
    toUInt64(sum(c.IsError)) AS Errors,
    toUInt64(countIf(c.IsError = 0 AND lower(c.FinishReason) IN ('length', 'max_tokens'))) AS Truncated,
    toUInt64(countIf(c.IsError = 0 AND c.OutputTokens = 0
                     AND c.Operation NOT IN ('embeddings', 'embedding', 'rerank'))) AS Empty,
    sumMapIf([if(c.DurationUs > 0, toInt16(floor(32 * log2(c.DurationUs))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0) AS Latency,
    sumMapIf([if(c.TtftUs > 0, toInt16(floor(32 * log2(assumeNotNull(c.TtftUs)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.TtftUs IS NOT NULL) AS Ttft,
    sumMapIf([if(c.OutputTokens > 0, toInt16(floor(32 * log2(c.OutputTokens))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0) AS Tokens,
    sumMapIf([if(c.CostUsd > 0, toInt16(floor(32 * log2(assumeNotNull(c.CostUsd)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.CostUsd IS NOT NULL) AS Cost
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel;
