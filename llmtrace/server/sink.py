"""The one INSERT path of ingested spans into the embedded engine, checked by reading back.

Payloads are ``JSONCompactEachRow`` lines made by :mod:`llmtrace.server.decode`; the lines of
many requests concatenate into one INSERT, which ClickHouse reads as one block, so the
materialized views run once per batch.

Why every INSERT is read back: chDB's streaming ``finish()`` can report success for rows it
never stored. Measured with chdb 4.4 / ClickHouse 26.9: a block over
``max_partitions_per_insert_block`` returns ``rows_written`` = the rows sent and stores none;
rows older than the table's TTL are reported written and dropped; a re-insert that
deduplication skips reports the same ``rows_written`` as a real write. ``rows_written`` also
counts the materialized views' rows, which the writer cannot predict. So after ``finish()``
the sink counts, by span id within the batch's time range, how many of the spans sent are in
the table, and raises :class:`RowsMissing` with the lines that are not.

A write can also be half-applied: on a full disk, ``otel_traces`` got its part and
``llm_calls`` (fed by ``llm_calls_mv``) did not, with no error. So the sink also checks that
``llm_calls`` holds a row for every span of the batch that the view selects (running the
view's own stored SELECT over the batch's rows, so its filter is not copied here), and
fills in the missing ones from ``otel_traces`` with that same SELECT (its rollups follow, as
they are fed by ``llm_calls``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence

from llmtrace.server.chunks import SpanKeys, lines_of, span_keys
from llmtrace.server.decode import INSERT_FORMAT
from llmtrace.server.engine import Engine, Handle

__all__ = ["RowsMissing", "SpanSink"]

logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")
# The token makes re-inserting the same logged batch after a crash a no-op in every table the
# first attempt reached (the engine gives MergeTree tables a deduplication window).
_SETTINGS = (
    "SETTINGS insert_deduplicate = 1, deduplicate_blocks_in_dependent_materialized_views = 1,"
    " insert_deduplication_token = '{token}'"
)
# The batch's span ids go into a temporary table of the sink's own handle, once per check:
# as an Array parameter they cost a set per query and chDB slows sharply past ~30k elements
# (50k ids: 20 s in one query; 50k spans verified this way: ~0.2 s).
_IDS = "llmtrace_batch_ids"
# A span is known by its id AND its start: a client re-using ids (fixed or zero ids, seeded
# generators) must not make a new span look already stored.
_KEY = "concat(SpanId, ':', toString(toUnixTimestamp64Nano(Timestamp)))"
_WHERE = (
    "Timestamp BETWEEN fromUnixTimestamp64Nano({{lo:Int64}}) AND fromUnixTimestamp64Nano({{hi:Int64}})"
    f" AND {_KEY} IN {_IDS}"
)


class RowsMissing(RuntimeError):
    """The INSERT returned, but some spans sent are not in the table."""

    def __init__(self, missing: bytes, sent: int) -> None:
        self.missing = missing
        self.missing_spans = missing.count(b"\n")
        self.sent = sent
        super().__init__(f"{self.missing_spans} of {sent} spans are not in the table after the INSERT returned")


class _Derived:
    """``llm_calls`` as ``llm_calls_mv`` derives it from ``otel_traces``; absent: nothing to check."""

    VIEW, TARGET = "llm_calls_mv", "llm_calls"

    def __init__(self, conn: Handle) -> None:
        found = self.text(conn)
        self.view_text = found
        # The columns the view writes (the target may have more, filled by their defaults or by
        # later mutations, e.g. re-pricing's PriceVersion): the repair writes the same ones.
        columns = conn.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
            " AND name IN (SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {v:String})"
            " ORDER BY position",
            "JSONCompactEachRow",
            params={"t": self.TARGET, "v": self.VIEW},
        ).bytes()
        names = ", ".join(f"`{json.loads(line)[0]}`" for line in columns.splitlines() if line)
        self.enabled = bool(found.strip()) and bool(names)
        if not self.enabled:
            return
        view = json.loads(found)[0]
        derived = f"(SELECT * FROM ({view}) WHERE {_WHERE})"
        present = f"(SELECT {_KEY} FROM {self.TARGET} WHERE {_WHERE})"
        self.expected = self._expected(view) or f"SELECT uniqExact({_KEY}) FROM {derived}"
        self.present = f"SELECT uniqExact({_KEY}) FROM {self.TARGET} WHERE {_WHERE}"
        self.repair = f"INSERT INTO {self.TARGET} ({names}) SELECT {names} FROM {derived} WHERE {_KEY} NOT IN {present}"

    @classmethod
    def text(cls, conn: Handle) -> bytes:
        """The view's stored SELECT as the engine has it now ('' without the view)."""
        return conn.query(
            "SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = {v:String}",
            "JSONCompactEachRow",
            params={"v": cls.VIEW},
        ).bytes()

    @staticmethod
    def _expected(view: str) -> str | None:
        """How many spans the view selects, from its WHERE alone (the whole SELECT costs 3x more);
        None when its text is not the expected ``SELECT ... FROM <source> AS t WHERE <filter>``."""
        head, sep, condition = view.rpartition(" WHERE ")
        if not sep or not head.endswith(" AS t") or any(k in condition for k in (" GROUP BY ", " SELECT ")):
            return None
        source = head.rsplit(" FROM ", 1)[-1]
        return f"SELECT uniqExact({_KEY}) FROM {source} WHERE {_WHERE} AND ({condition})"


class SpanSink:
    """Inserts payloads into one table through a handle of its own (one writer thread)."""

    def __init__(self, engine: Engine, table: str = "otel_traces", columns: Sequence[str] | None = None) -> None:
        if columns is None:
            from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

            columns = OTEL_TRACES_COLUMNS
        names = ", ".join(f"`{name}`" for name in columns)
        self._statement = f"INSERT INTO {table} ({names}) {_SETTINGS}"
        self._count = f"SELECT uniqExact({_KEY}) FROM {table} WHERE {_WHERE}"
        self._present = f"SELECT DISTINCT {_KEY} FROM {table} WHERE {_WHERE}"
        self._conn = engine.connect()
        self._conn.query(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_IDS} (SpanId String) ENGINE = Memory", "TSV")
        self._lock = threading.Lock()
        self._derived = _Derived(self._conn)

    def __call__(self, payload: bytes, token: str, keys: SpanKeys | None = None) -> None:
        """Insert ``payload`` as one block; a repeat with the same ``token`` inserts nothing twice.

        ``keys``: the payload's span keys if known (else read from the payload). Raises the
        engine's error, or :class:`RowsMissing` if the table lacks spans afterwards.
        """
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
            keys = keys or span_keys(payload)
            if keys is None:
                return
            bounds = self._load(keys)  # once for both checks
            missing = self._missing(payload, keys, bounds)
            if missing:
                raise RowsMissing(missing, payload.count(b"\n"))
            self._complete_derived(keys, bounds)

    def absent(self, payload: bytes) -> bytes:
        """The lines of ``payload`` whose span is not in the table (to retry only those)."""
        with self._lock:
            return self._missing(payload, span_keys(payload))

    def complete_derived(self, payload: bytes) -> None:
        with self._lock:
            self._complete_derived(span_keys(payload))

    def _complete_derived(self, keys: SpanKeys | None, bounds: dict[str, str] | None = None) -> None:
        """Fill in ``llm_calls`` rows a half-applied INSERT left out; raise if that fails too.

        ``bounds``: the keys are already loaded. A row for every span (all GenAI: the usual batch)
        settles it without running the view's filter over the batch's attribute maps."""
        if keys is None:
            return
        bounds = bounds or self._load(keys)
        before = self._count_of(self._derived.present, bounds) if self._derived.enabled else -1
        if before >= len(keys.ids):
            return
        if self._refresh() and self._derived.enabled:
            before = self._count_of(self._derived.present, bounds)
        if not self._derived.enabled:
            return
        expected = self._count_of(self._derived.expected, bounds)
        if before >= expected:
            return
        self._rows(self._derived.repair, bounds)
        present = self._count_of(self._derived.present, bounds)
        if present < expected:
            raise RuntimeError(f"{_Derived.TARGET} lacks {expected - present} of {expected} rows after the INSERT")
        logger.warning("filled in %d %s row(s) a half-applied INSERT left out", present - before, _Derived.TARGET)

    def _refresh(self) -> bool:
        """Re-read ``llm_calls_mv`` if ``llmtrace migrate`` changed it while this server ran (013 did):
        the repair must run the view's current SELECT, not the one seen at start. Checked only on
        the repair path (a batch with spans lacking an llm_calls row), one system-table read.
        True when it changed."""
        if _Derived.text(self._conn) == self._derived.view_text:
            return False
        self._derived = _Derived(self._conn)
        return True

    def _missing(self, payload: bytes, keys: SpanKeys | None, bounds: dict[str, str] | None = None) -> bytes:
        """The lines whose span (id and start) is not in the table within the keys' time range."""
        if keys is None:
            return b""
        bounds = bounds or self._load(keys)
        if self._count_of(self._count, bounds) == len(keys.ids):
            return b""
        present = {row[0] for row in self._rows(self._present, bounds)}
        return lines_of(payload, set(keys.ids) - present)

    def _load(self, keys: SpanKeys) -> dict[str, str]:
        """Put the batch's span ids in the temporary table; returns the time-range parameters."""
        self._conn.query(f"TRUNCATE TABLE {_IDS}", "TSV")
        inserter = self._conn.send_insert(f"INSERT INTO {_IDS} (SpanId)", "TabSeparated")
        try:
            inserter.append("\n".join(keys.ids) + "\n")  # hex id and digits: nothing to escape
        except BaseException:
            inserter.cancel()
            raise
        inserter.finish()
        return {"lo": str(keys.lo), "hi": str(keys.hi)}

    def _count_of(self, sql: str, bounds: dict[str, str]) -> int:
        return int(self._rows(sql, bounds)[0][0])

    def _rows(self, sql: str, bounds: dict[str, str]) -> list[list[str]]:
        result = self._conn.query(sql.format(), "JSONCompactEachRow", params=bounds).bytes()
        return [json.loads(line) for line in result.splitlines() if line]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
