-- Fill llm_scores from score spans (llmtrace.score(): one INTERNAL span per score, no gen_ai.*
-- attribute, so llm_calls_mv never sees it). The target ids are attributes (the score span sits
-- in the target trace too). SpanId '' scores the whole trace. Value is 1/0 for
-- booleans and 0 for labels (StringValue); llmtrace.score.data_type tells them apart in otel_traces.
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_scores_mv {on_cluster}
TO llm_scores
AS SELECT
    t.Timestamp AS Timestamp,
    coalesce(nullIf(t.SpanAttributes['llmtrace.score.trace_id'], ''), t.TraceId) AS TraceId,
    t.SpanAttributes['llmtrace.score.span_id'] AS SpanId,
    t.SpanAttributes['llmtrace.score.name'] AS Name,
    toFloat64OrZero(t.SpanAttributes['llmtrace.score.value']) AS Value,
    t.SpanAttributes['llmtrace.score.label'] AS StringValue,
    coalesce(nullIf(t.SpanAttributes['llmtrace.score.source'], ''), 'api') AS Source,
    t.SpanAttributes['llmtrace.score.comment'] AS Comment
FROM otel_traces AS t
WHERE t.SpanAttributes['llmtrace.score.name'] != '';
