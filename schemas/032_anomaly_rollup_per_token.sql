-- Time per output token of the successful calls that wrote at least 20 tokens, as a histogram like the
-- others (bins of floor(32 * log2(microseconds per token))): the call's whole duration over its output tokens.
-- A latency spike of a sparse series is a handful of calls whose durations alone stay within the spread that
-- the lengths of their answers give (a reasoning model: 20 s to 20 min); per token the same calls are 5-20x
-- their usual pace (a blind judge, v13). The whole duration, not the generation after the first token: a
-- slowdown stretches both, and short streamed answers spread more without their first token (v13: a young
-- stream's 3 slow calls, all 3 past three times the usual p90 of the whole, 2 of the generation).
-- And the time to first token per reasoning token, of the successful calls with a first token and at least
-- 20 reasoning tokens: a reasoning model thinks before it answers, so its first token comes after 10 s or
-- 2 minutes as its thinking is short or long, and a slow spell is 5-10x per reasoning token (v13).
-- The bins are computed for every call (sumMapIf's condition does not spare the others), so their arguments
-- are always finite: a call without tokens must not fail the insert of its batch.
-- Added to the table and the view's query in place (as 031); then the calls stored before are counted once,
-- on rows that carry these histograms alone (their other columns add nothing when merged). Skipped when rows
-- older than an hour have one already (a re-applied migration); a call stored in the moment between the two
-- statements is counted twice, in these histograms alone.
ALTER TABLE llm_anomaly_5m {on_cluster}
ADD COLUMN IF NOT EXISTS PerToken SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))) AFTER Cost;

ALTER TABLE llm_anomaly_5m {on_cluster}
ADD COLUMN IF NOT EXISTS TtftPerToken SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))) AFTER PerToken;

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
             c.IsError = 0 AND c.CostUsd IS NOT NULL) AS Cost,
    sumMapIf([toInt16(floor(32 * log2(greatest(c.DurationUs, 1) / greatest(c.OutputTokens, 1))))], [toUInt64(1)],
             c.IsError = 0 AND c.OutputTokens >= 20 AND c.DurationUs > 0) AS PerToken,
    sumMapIf([toInt16(floor(32 * log2(greatest(ifNull(c.TtftUs, 0), 1) / greatest(c.ReasoningTokens, 1))))],
             [toUInt64(1)], c.IsError = 0 AND c.ReasoningTokens >= 20 AND ifNull(c.TtftUs, 0) > 0) AS TtftPerToken
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel;

INSERT INTO llm_anomaly_5m (Bucket, ServiceName, Environment, Release, Provider, RequestModel, PerToken, TtftPerToken)
SELECT toStartOfFiveMinutes(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    sumMapIf([toInt16(floor(32 * log2(greatest(c.DurationUs, 1) / greatest(c.OutputTokens, 1))))], [toUInt64(1)],
             c.OutputTokens >= 20 AND c.DurationUs > 0),
    sumMapIf([toInt16(floor(32 * log2(greatest(ifNull(c.TtftUs, 0), 1) / greatest(c.ReasoningTokens, 1))))],
             [toUInt64(1)], c.ReasoningTokens >= 20 AND ifNull(c.TtftUs, 0) > 0)
FROM llm_calls AS c
WHERE c.IsError = 0
  AND ((c.OutputTokens >= 20 AND c.DurationUs > 0) OR (c.ReasoningTokens >= 20 AND ifNull(c.TtftUs, 0) > 0))
  AND (SELECT countIf((notEmpty(PerToken.1) OR notEmpty(TtftPerToken.1)) AND Bucket < now() - toIntervalHour(1))
       FROM llm_anomaly_5m) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel;
