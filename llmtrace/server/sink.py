"""The one INSERT path of ingested spans into the embedded engine.

Payloads are ``JSONCompactEachRow`` lines made by :mod:`llmtrace.server.decode`; the lines of
many requests concatenate into one INSERT, which ClickHouse reads as one block, so the
materialized views run once per batch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from llmtrace.server.decode import INSERT_FORMAT
from llmtrace.server.engine import Engine

__all__ = ["SpanSink"]

_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")
# The token makes re-inserting the same logged batch after a crash a no-op in every table the
# first attempt reached (the engine gives MergeTree tables a deduplication window).
_SETTINGS = (
    "SETTINGS insert_deduplicate = 1, deduplicate_blocks_in_dependent_materialized_views = 1,"
    " insert_deduplication_token = '{token}'"
)


class SpanSink:
    """Inserts payloads into one table through a handle of its own (one writer thread)."""

    def __init__(self, engine: Engine, table: str = "otel_traces", columns: Sequence[str] | None = None) -> None:
        if columns is None:
            from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

            columns = OTEL_TRACES_COLUMNS
        names = ", ".join(f"`{name}`" for name in columns)
        self._statement = f"INSERT INTO {table} ({names}) {_SETTINGS}"
        self._conn = engine.connect()
        self._lock = threading.Lock()

    def __call__(self, payload: bytes, token: str) -> None:
        """Insert ``payload`` as one block; a repeat with the same ``token`` inserts nothing twice."""
        if not _TOKEN.match(token):
            raise ValueError(f"invalid deduplication token {token!r}")
        with self._lock:
            inserter = self._conn.send_insert(self._statement.format(token=token), INSERT_FORMAT)
            try:
                inserter.append(payload)
            except BaseException:
                inserter.cancel()
                raise
            inserter.finish()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
