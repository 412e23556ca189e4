-- otel_traces_content gets each span's SpanId, so the embedded server's read-back
-- (llmtrace.server.sink) can tell which spans of a batch a half-applied INSERT left out of it and
-- fill them in from otel_traces with the view's own SELECT, as it already does for llm_calls: a
-- span stored and counted but missing from the Traces text search is silent data loss.
-- Rows written before this file keep an empty SpanId; the read-back only looks for the spans of
-- the batch just written, so they are never looked up by it (the text search does not read SpanId).
-- The column comes first (the view still running writes '' meanwhile), then the view's query is
-- replaced in one ALTER: no span inserted meanwhile misses the table, as dropping and creating the
-- view would let happen. Its WHERE reads only the source row (t.X, not the Content alias), so the
-- sink can count the spans the view selects without computing its columns; as ORs (the same test
-- as notEmpty(Content)) it costs the sink 2/3 of the array's filter (16k spans without content:
-- 58 -> 38 ms CPU). At 100k spans of the
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
WHERE t.SpanAttributes['gen_ai.input.messages'] != '' OR t.SpanAttributes['gen_ai.output.messages'] != ''
    OR t.SpanAttributes['gen_ai.system_instructions'] != '';

-- 024 backfilled the table, then created its view: run against a live server, spans a Collector
-- inserted between the two (the backfill's duration: ~1 min at 10M spans) reached neither. Those
-- starting within an hour of 024's ledger entry are added here (found by trace id and start among
-- the content rows of that slice: rows before 026 have no SpanId), so this reads two hours of spans,
-- not the store. A span re-sent later, or starting further away, is not caught. GLOBAL: on a
-- cluster both tables are Distributed (a plain IN of one inside the other is refused).
INSERT INTO otel_traces_content (Timestamp, TraceId, SpanId, Content)
SELECT t.Timestamp, t.TraceId, t.SpanId,
    arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'], t.SpanAttributes['gen_ai.output.messages'],
                               t.SpanAttributes['gen_ai.system_instructions']]) AS content
FROM otel_traces AS t
WHERE t.Timestamp BETWEEN
        (SELECT min(applied_at) - INTERVAL 1 HOUR FROM schema_migrations WHERE name = '024_otel_traces_content.sql')
        AND (SELECT min(applied_at) + INTERVAL 1 HOUR FROM schema_migrations WHERE name = '024_otel_traces_content.sql')
    AND notEmpty(content)
    AND (t.TraceId, t.Timestamp) GLOBAL NOT IN (
        SELECT TraceId, Timestamp FROM otel_traces_content
        WHERE Timestamp BETWEEN
            (SELECT min(applied_at) - INTERVAL 1 HOUR FROM schema_migrations WHERE name = '024_otel_traces_content.sql')
            AND (SELECT min(applied_at) + INTERVAL 1 HOUR FROM schema_migrations WHERE name = '024_otel_traces_content.sql'));
