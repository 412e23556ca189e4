"""The ClickHouse store: connection settings and client factory (``client``), the schema
runner (``migrations``), OTLP -> ``otel_traces`` rows (``otlp_rows``), model prices, and the
``llmtrace migrate`` / ``llmtrace sql`` commands. Nothing here is imported by the
instrumentation path; chDB and clickhouse-connect are imported lazily."""
