-- otel_traces_content gets each span's SpanId, so the embedded server's read-back
-- (llmtrace.server.sink) can tell which spans of a batch a half-applied INSERT left out of it and
-- fill them in from otel_traces with the view's own SELECT, as it already does for llm_calls: a
-- span stored and counted but missing from the Traces text search is silent data loss.
-- Rows written before this file keep an empty SpanId; the read-back only looks for the spans of
-- the batch just written, so they are never looked up by it (the text search does not read SpanId).
-- The column comes first (the view still running writes '' meanwhile), then the view's query is
-- replaced in one ALTER: no span inserted meanwhile misses the table, as dropping and creating the
-- view would let happen. Its WHERE reads only the source row (t.X, not the Content alias), so the
-- sink can count the spans the view selects without computing its columns. At 100k spans of the
-- ingest benchmark's content, interleaved INSERTs: see the commit and the README (durability).
ALTER TABLE otel_traces_content {on_cluster} ADD COLUMN IF NOT EXISTS SpanId String CODEC(ZSTD(1)) AFTER TraceId;

ALTER TABLE otel_traces_content_mv {on_cluster}
MODIFY QUERY SELECT
    t.Timestamp AS Timestamp,
    t.TraceId AS TraceId,
    t.SpanId AS SpanId,
    arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'], t.SpanAttributes['gen_ai.output.messages'],
                               t.SpanAttributes['gen_ai.system_instructions']]) AS Content
FROM otel_traces AS t
WHERE notEmpty(arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'],
                                          t.SpanAttributes['gen_ai.output.messages'],
                                          t.SpanAttributes['gen_ai.system_instructions']]));
