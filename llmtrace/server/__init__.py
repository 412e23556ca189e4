"""``llmtrace server``: embedded ClickHouse (chDB) behind an OTLP/HTTP receiver and
ClickHouse's own HTTP interface, in one process.

Modules, in the order a span travels: ``otlp`` (the OTLP port) hands bodies to ``workers``
(processes running ``decode``), whose payloads ``batcher`` logs in the ``wal`` and inserts
through ``sink`` into the ``engine``. Queries arrive at ``clickhouse_http`` (with ``sqltext``,
``chcompat`` and ``executor``). ``app`` wires it together; ``command`` is the CLI.
"""
