-- otel_traces_content gets each span's SpanId, so the embedded server's read-back
-- (llmtrace.server.sink) can tell which spans of a batch a half-applied INSERT left out of it and
-- fill them in from otel_traces with the view's own SELECT, as it already does for llm_calls: a
-- span stored and counted but missing from the Traces text search is silent data loss.
-- Rows written before this file keep an empty SpanId; the read-back only looks for the spans of
-- the batch just written, so they are never looked up by it (the text search does not read SpanId).
-- The column comes first (the view still running writes '' meanwhile), then the view's query is
-- replaced in one ALTER: no span inserted meanwhile misses the table, as dropping and creating the
-- view would let happen. Its WHERE asks only whether a span has a content key (024: a non-empty
-- value), which reads the map's keys alone: the sink counts the spans the view selects with it, and
-- for a batch without content (capture off) that count was the read-back's largest cost (16,384
-- spans: 56 -> 10 ms CPU, values read -> keys read). A span whose content keys are all empty now
-- gets a row with an empty Content, which no search finds (as before: no row).
-- Cost (interleaved, one store, load 1-3 on 2 cores): the view's INSERT of 100k benchmark spans with
-- content 65.8 -> 59.9 µs CPU/span (min of 6 rounds; medians 77.8 -> 69.7, rounds vary by ±15: no
-- difference measurable); SpanId +8.4 bytes a content row on disk (random 64-bit ids, 1M rows:
-- 17.4 -> 25.8 bytes with the text index).
ALTER TABLE otel_traces_content {on_cluster} ADD COLUMN IF NOT EXISTS SpanId String CODEC(ZSTD(1)) AFTER TraceId;

ALTER TABLE otel_traces_content_mv {on_cluster}
MODIFY QUERY SELECT
    t.Timestamp AS Timestamp,
    t.TraceId AS TraceId,
    t.SpanId AS SpanId,
    arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'], t.SpanAttributes['gen_ai.output.messages'],
                               t.SpanAttributes['gen_ai.system_instructions']]) AS Content
FROM otel_traces AS t
WHERE mapContains(t.SpanAttributes, 'gen_ai.input.messages') OR mapContains(t.SpanAttributes, 'gen_ai.output.messages')
    OR mapContains(t.SpanAttributes, 'gen_ai.system_instructions');

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
