-- otel_traces kept the Collector's bloom-filter indexes on the keys and values of
-- ResourceAttributes and SpanAttributes (002). No query of the dashboard, drift or anomalies can
-- use them (they read llm_calls, or match attribute text with position*(), which no bloom
-- filter serves), yet they cost a fifth of an INSERT into otel_traces without its views: 6.5 of
-- 27.9 µs CPU per 30-attribute span (median of 6 interleaved 16,384-span INSERTs of
-- benchmarks/ingest.py's spans into chDB, load 15-25 on 2 cores; the views add ~16 µs).
-- SCHEMA.md leaves indexes to us; the TraceId bloom filter and the Duration minmax stay.
ALTER TABLE otel_traces {on_cluster} DROP INDEX IF EXISTS idx_res_attr_key;
ALTER TABLE otel_traces {on_cluster} DROP INDEX IF EXISTS idx_res_attr_value;
ALTER TABLE otel_traces {on_cluster} DROP INDEX IF EXISTS idx_span_attr_key;
ALTER TABLE otel_traces {on_cluster} DROP INDEX IF EXISTS idx_span_attr_value;
