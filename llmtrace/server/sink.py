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
each table a view fills row for row from the batch (:data:`_DERIVED`: ``llm_calls``, and
``otel_traces_content``, which the Traces text search reads) holds a row for every span of
the batch that its view selects (running the view's own stored SELECT over the batch's rows,
so its filter is not copied here), and fills in the missing ones from ``otel_traces`` with
that same SELECT (the rollups follow, as they are fed by ``llm_calls``). The tables a view
derives without a row per span (a trace's time range, the trace list's root rows, scores) are
checked by coverage (:mod:`.coverage`). The rollups that sum ``llm_calls`` per bucket are not
checked: a share of a sum cannot be told apart, nor re-inserted without counting it twice.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence

from llmtrace.server.chunks import SpanKeys, lines_of, span_keys
from llmtrace.server.coverage import COVERED, SAMPLE, Coverage, view_columns, view_texts
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


_Profile = tuple[list[int], list[list[str]]]
"""Per coverage check: the batch's rows its view could take, and a sample of their trace ids."""


def _array(values: list[str]) -> str:
    """An Array(String) query parameter."""
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"


class RowsMissing(RuntimeError):
    """The INSERT returned, but some spans sent are not in the table."""

    def __init__(self, missing: bytes, sent: int) -> None:
        self.missing = missing
        self.missing_spans = missing.count(b"\n")
        self.sent = sent
        super().__init__(f"{self.missing_spans} of {sent} spans are not in the table after the INSERT returned")


# How often a batch whose spans a view does not all select re-reads the views (see SpanSink._refresh).
_VIEWS_RECHECK_SECONDS = 10.0
# The tables a view fills row for row from otel_traces (one row per span it selects, keyed like the
# spans by SpanId and Timestamp): (view, target). Rollups are fed by llm_calls, so they follow it.
_DERIVED = (("llm_calls_mv", "llm_calls"), ("otel_traces_content_mv", "otel_traces_content"))


class _Derived:
    """``target`` as ``view`` derives it from ``otel_traces``; disabled (nothing to check) without
    the view, or when the view does not write the span key (otel_traces_content before 026)."""

    def __init__(self, conn: Handle, view: str, target: str, view_text: str) -> None:
        self.view, self.target, self.view_text = view, target, view_text
        # The columns the view writes (the target may have more, filled by their defaults or by
        # later mutations, e.g. re-pricing's PriceVersion): the repair writes the same ones.
        written = [name for name, _ in view_columns(conn, target, view)]
        self.enabled = bool(view_text.strip()) and {"SpanId", "Timestamp"} <= set(written)
        if not self.enabled:
            return
        names = ", ".join(f"`{name}`" for name in written)
        derived = f"(SELECT * FROM ({view_text}) WHERE {_WHERE})"
        present = f"(SELECT {_KEY} FROM {target} WHERE {_WHERE})"
        # The view's filter alone counts what it selects (its whole SELECT costs 3x more), when its
        # text is the usual ``SELECT ... FROM <source> AS t WHERE <filter reading t only>``.
        self.source, self.condition = self._filter(view_text)
        self.expected = f"SELECT uniqExact({_KEY}) FROM {derived}"
        self.present = f"SELECT uniqExact({_KEY}) FROM {target} WHERE {_WHERE}"
        self.repair = f"INSERT INTO {target} ({names}) SELECT {names} FROM {derived} WHERE {_KEY} NOT IN {present}"

    @staticmethod
    def texts(conn: Handle) -> dict[str, str]:
        """Each view's stored SELECT as the engine has it now ('' without the view)."""
        return view_texts(conn, [view for view, _ in _DERIVED])

    @classmethod
    def all(cls, conn: Handle, texts: dict[str, str] | None = None) -> list[_Derived]:
        texts = texts if texts is not None else cls.texts(conn)
        return [cls(conn, view, target, texts[view]) for view, target in _DERIVED]

    @staticmethod
    def _filter(view: str) -> tuple[str, str | None]:
        """(source, condition) of a view's text; condition None when it is not the usual shape."""
        head, sep, condition = view.rpartition(" WHERE ")
        if not sep or not head.endswith(" AS t") or any(k in condition for k in (" GROUP BY ", " SELECT ")):
            return "", None
        return head.rsplit(" FROM ", 1)[-1], condition


class SpanSink:
    """Inserts payloads into one table through a handle of its own (one writer thread)."""

    def __init__(self, engine: Engine, table: str = "otel_traces", columns: Sequence[str] | None = None) -> None:
        if columns is None:
            from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

            columns = OTEL_TRACES_COLUMNS
        names = ", ".join(f"`{name}`" for name in columns)
        self._statement = f"INSERT INTO {table} ({names}) {_SETTINGS}"
        self._present = f"SELECT DISTINCT {_KEY} FROM {table} WHERE {_WHERE}"
        self._conn = engine.connect()
        self._conn.query(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_IDS} (SpanId String) ENGINE = Memory", "TSV")
        self._lock = threading.Lock()
        self._derived = _Derived.all(self._conn)
        self._source = table
        self._batch_profile: _Profile | None = None  # as the last read-back found the batch
        self._covered = self._coverages(Coverage.texts(self._conn))
        self._views_read_at = time.monotonic()

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
            self._complete_derived(keys, bounds, self._batch_profile)

    def absent(self, payload: bytes) -> bytes:
        """The lines of ``payload`` whose span is not in the table (to retry only those)."""
        with self._lock:
            return self._missing(payload, span_keys(payload))

    def complete_derived(self, payload: bytes) -> None:
        with self._lock:
            self._complete_derived(span_keys(payload))

    def _complete_derived(
        self, keys: SpanKeys | None, bounds: dict[str, str] | None = None, profile: _Profile | None = None
    ) -> None:
        """Fill in the derived rows (:data:`_DERIVED`) a half-applied INSERT left out; raise if that fails too.

        ``bounds``: the keys are already loaded. One query counts the batch's rows in every derived
        table; a row for every span in each (all GenAI with content: the usual batch) settles it
        without running a view's filter over the batch's attribute maps. Otherwise one query runs
        the filters (the maps are read once for both views), and only a shortfall repairs."""
        if keys is None:
            return
        bounds = bounds or self._load(keys)
        self._complete_rows(keys, bounds)
        self._complete_covered(bounds, profile)

    def _complete_rows(self, keys: SpanKeys, bounds: dict[str, str]) -> None:
        """The row-per-span tables (:data:`_DERIVED`)."""
        counts = self._derived_counts(bounds)
        if all(n >= len(keys.ids) for n in counts):
            return
        rechecked = time.monotonic() - self._views_read_at > _VIEWS_RECHECK_SECONDS
        if rechecked and self._refresh():
            counts = self._derived_counts(bounds)
        short = [(d, n) for d, n in zip(self._derived, counts, strict=True) if d.enabled and n < len(keys.ids)]
        expected = self._expected_counts([d for d, _ in short], bounds)
        lacking = [(d, n, e) for (d, n), e in zip(short, expected, strict=True) if n < e]
        if not lacking:
            return
        if not rechecked and self._refresh():  # a repair runs each view's current SELECT
            self._complete_rows(keys, bounds)
            return
        for derived, before, wanted in lacking:
            self._repair(derived, before, wanted, bounds)

    def _complete_covered(
        self, bounds: dict[str, str], profile: _Profile | None = None, refreshed: bool = False
    ) -> None:
        """The tables checked by coverage (:mod:`.coverage`): fill in the rows of the batch a target
        lacks from its view's current SELECT. ``profile``: the batch as :meth:`_missing` read it
        right after the INSERT returned: a table without candidates (no score span: the usual
        batch) is not read, and one whose sampled trace ids all have a row is settled by that (a
        lost part shows in any of its rows). Without it (a retry, after an INSERT that raised) the
        whole batch is checked."""
        sampled = profile is not None
        counts, samples = profile or self._profile_of(bounds)
        enabled = [(c, s) for c, n, s in zip(self._covered, counts, samples, strict=True) if c.enabled and n]
        probed = [(c, s) for c, s in enabled if sampled and c.probe]
        if probed:
            params = {**bounds, **{f"p{i}": _array(s) for i, (_, s) in enumerate(probed)}}
            sql = ", ".join(f"({c.probe.replace('{{probe:', f'{{{{p{i}:')})" for i, (c, _) in enumerate(probed))
            found = self._rows(f"SELECT {sql}", params)[0]
            settled = {c.spec.view for (c, s), n in zip(probed, found, strict=True) if int(n) >= len(s)}
            enabled = [(c, s) for c, s in enabled if c.spec.view not in settled]
        if not enabled:
            return
        row = self._rows("SELECT " + ", ".join(f"({c.uncovered})" for c, _ in enabled), bounds)[0]
        short = [(c, int(n)) for (c, _), n in zip(enabled, row, strict=True) if int(n)]
        if not short:
            return
        if not refreshed and self._refresh():  # a repair runs each view's current SELECT
            self._complete_covered(bounds, refreshed=True)
            return
        for coverage, missing in short:
            self._rows(coverage.repair, bounds)
            left = self._count_of(coverage.uncovered, bounds)
            if left:
                raise RuntimeError(f"{coverage.spec.target} lacks {left} of the batch's rows after the INSERT")
            logger.warning(
                "filled in %d %s row(s) a half-applied INSERT left out (%s)", missing, coverage.spec.target,
                coverage.spec.view,
            )  # fmt: skip

    def _coverages(self, texts: dict[str, str]) -> list[Coverage]:
        """The coverage checks; and the batch's count query, which also counts each one's candidates
        and samples their trace ids per day (one read of the batch's rows for all of it)."""
        covered = [Coverage(self._conn, spec, texts[spec.view], self._source, _WHERE) for spec in COVERED]
        counts = [c.candidates if c.enabled else "0" for c in covered]
        samples = [f"groupUniqArrayIf({SAMPLE})(TraceId, {c.spec.candidates or 1})" for c in covered]
        columns = ", ".join([f"uniqExact({_KEY})", *counts, *samples])
        self._profile = f"SELECT {columns} FROM {self._source} WHERE {_WHERE} GROUP BY toDate(Timestamp)"
        return covered

    def _profile_of(self, bounds: dict[str, str]) -> _Profile:
        """Each coverage check's candidates in the batch, and its sample of their trace ids."""
        return self._read_profile(bounds)[1]

    def _read_profile(self, bounds: dict[str, str]) -> tuple[int, _Profile]:
        """(the batch's spans in the table, :meth:`_profile_of`), from one read of the batch's rows."""
        n = len(self._covered)
        days = self._rows(self._profile, bounds)
        counts = [sum(int(day[1 + i]) for day in days) for i in range(n)]
        samples = [sorted({t for day in days for t in day[1 + n + i]}) for i in range(n)]
        return sum(int(day[0]) for day in days), (counts, samples)

    def _expected_counts(self, derived: list[_Derived], bounds: dict[str, str]) -> list[int]:
        """How many of the batch's spans each view selects. The views whose filter reads the same
        source are counted in one query: the batch's attribute maps, most of the cost, read once."""
        shared = [d for d in derived if d.condition is not None and d.source == derived[0].source]
        found: dict[str, int] = {}
        if shared:
            columns = ", ".join(f"uniqExactIf({_KEY}, ({d.condition}))" for d in shared)
            row = self._rows(f"SELECT {columns} FROM {shared[0].source} WHERE {_WHERE}", bounds)[0]
            found = {d.view: int(n) for d, n in zip(shared, row, strict=True)}
        return [found[d.view] if d.view in found else self._count_of(d.expected, bounds) for d in derived]

    def _derived_counts(self, bounds: dict[str, str]) -> list[int]:
        """How many of the batch's spans each derived table holds; -1 for one not checked (its view
        not seen yet: the views are then re-read every ``_VIEWS_RECHECK_SECONDS``)."""
        enabled = [d for d in self._derived if d.enabled]
        row = self._rows("SELECT " + ", ".join(f"({d.present})" for d in enabled), bounds)[0] if enabled else []
        counts = iter(row)
        return [int(next(counts)) if d.enabled else -1 for d in self._derived]

    def _repair(self, derived: _Derived, before: int, expected: int, bounds: dict[str, str]) -> None:
        self._rows(derived.repair, bounds)
        present = self._count_of(derived.present, bounds)
        if present < expected:
            raise RuntimeError(f"{derived.target} lacks {expected - present} of {expected} rows after the INSERT")
        logger.warning("filled in %d %s row(s) a half-applied INSERT left out", present - before, derived.target)

    def _refresh(self) -> bool:
        """Re-read the views if ``llmtrace migrate`` changed one while this server ran (013, 026 did):
        a repair must run a view's current SELECT, not the one seen at start. One system-table
        read (~7 ms), so only before a repair and, for batches with spans a view does not select
        (their count is settled by the filters), at most every ``_VIEWS_RECHECK_SECONDS``.
        True when one changed."""
        read = view_texts(self._conn, [view for view, _ in _DERIVED] + [c.view for c in COVERED])
        texts = {view: read[view] for view, _ in _DERIVED}
        covered = {c.view: read[c.view] for c in COVERED}
        self._views_read_at = time.monotonic()
        if texts == {d.view: d.view_text for d in self._derived} and covered == {
            c.spec.view: c.view_text for c in self._covered
        }:
            return False
        self._derived = _Derived.all(self._conn, texts)
        self._covered = self._coverages(covered)
        return True

    def _missing(self, payload: bytes, keys: SpanKeys | None, bounds: dict[str, str] | None = None) -> bytes:
        """The lines whose span (id and start) is not in the table within the keys' time range."""
        if keys is None:
            return b""
        bounds = bounds or self._load(keys)
        stored, self._batch_profile = self._read_profile(bounds)
        if stored == len(keys.ids):
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
