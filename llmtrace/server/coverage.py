"""Tables a view derives from a batch without a row per span, checked by what readers see of them.

``otel_traces_trace_id_ts`` (a trace's time range: min/max per trace and insert block), the root
rows of ``llm_traces`` (``llm_traces_roots_mv``: a trace's name and time range, min/max per hour
and trace) and ``llm_scores`` (a row per score span, keyed by the scored span, not the score
span) are not keyed by the batch's span ids, so :mod:`.sink`'s row count per span cannot check
them. What a reader gets from them is a min/max per key (or the row itself), so a batch is
*covered* when every row its view would write changes nothing there: the target's rows of the
same key already reach as low and as high. Coverage is checked by running the view's own stored
SELECT over the batch's rows (its source restricted to the batch), and the rows not covered are
inserted: a repair that finds its row already there (a repeated check) changes no min or max, so
none of this can double a figure. ``llm_scores`` keys a row by all it says of the score (time,
trace, span, name): only rows with no such row are inserted.

The whole-batch check reads the batch a few times (~100 ms of CPU for 16,384 spans each its own
trace), so after an INSERT that returned only a sample of the batch's trace ids is looked up
(:data:`SAMPLE`); the whole batch is checked when the sample is short, and on retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmtrace.server.engine import Handle

__all__ = ["COVERED", "Coverage", "Covered", "view_columns", "view_texts"]

_SOURCE = re.compile(r" FROM (\S+)")
_SIMPLE = re.compile(r"^SimpleAggregateFunction\(\w+, (.*)\)$")
# Trace ids of the batch a day (the targets' partitions are days or months) looked up after an INSERT
# that reported success: a view's write is lost a part at a time, never a row, so a lost part shows
# in any sample of its rows. The whole batch is checked when a sampled trace has no row, and on every
# retry of the batch (after an INSERT that raised).
SAMPLE = 16
# The batch's time range, as the sink's queries bind it.
_LO, _HI = "fromUnixTimestamp64Nano({{lo:Int64}})", "fromUnixTimestamp64Nano({{hi:Int64}})"


@dataclass(frozen=True)
class Covered:
    """``target`` as ``view`` writes it: one row per ``keys``, folded by ``mins`` and ``maxs``.

    ``candidates``: a cheap condition on the source's rows that the view's filter implies (no
    attribute value read), so a batch without any (no score span: the usual one) costs one count.
    ``by_trace``: the target's rows of a key are found by the source's TraceId (one set of the
    batch's trace ids, shared by the tables that have it), else by the view's keys; and a sample
    of the batch's trace ids is probed for a row (``probed``: the condition such a row meets).
    ``within``: a condition every target row of the batch's keys meets (its time range), to skip
    partitions."""

    view: str
    target: str
    keys: tuple[str, ...]
    mins: tuple[str, ...] = ()
    maxs: tuple[str, ...] = ()
    candidates: str = ""
    by_trace: bool = True
    within: str = ""
    probed: str = "1"


COVERED = (
    Covered(
        "otel_traces_trace_id_ts_mv", "otel_traces_trace_id_ts", ("TraceId",), ("Start",), ("End",), "TraceId != ''"
    ),
    Covered(
        "llm_traces_roots_mv",
        "llm_traces",
        ("Hour", "TraceId"),
        ("Start",),
        ("End", "RootName"),
        "ParentSpanId = '' AND TraceId != ''",
        within=f"Hour BETWEEN toStartOfHour({_LO}) AND toStartOfHour({_HI})",
        probed="RootName != ''",
    ),
    Covered(
        "llm_scores_mv",
        "llm_scores",
        ("Timestamp", "TraceId", "SpanId", "Name"),
        candidates="mapContains(SpanAttributes, 'llmtrace.score.name')",
        by_trace=False,
        within=f"Timestamp BETWEEN {_LO} AND {_HI}",
    ),
)


class Coverage:
    """One :class:`Covered` table's check and repair SQL for the batch (``where``: the batch's rows
    of the source, with ``{{lo}}``/``{{hi}}`` parameters). Disabled without the view, or when its
    source is not ``source``."""

    def __init__(self, conn: Handle, spec: Covered, view_text: str, source: str, where: str) -> None:
        self.spec, self.view_text = spec, view_text
        found = _SOURCE.search(view_text)
        self.enabled = found is not None and found.group(1).rsplit(".", 1)[-1] == source
        if found is None or not self.enabled:
            return
        types = dict(view_columns(conn, spec.target, spec.view))
        self.enabled = set(spec.keys + spec.mins + spec.maxs) <= set(types)
        if not self.enabled:
            return
        self._spec, self._types, self._source, self._where = spec, types, found.group(1), where
        self._text = view_text.replace("{", "{{").replace("}", "}}")  # the sink formats its SQL (parameters)
        names = ", ".join(f"`{n}`" for n in types)
        keys = ", ".join(f"`{k}`" for k in spec.keys)
        self.uncovered = f"SELECT count() FROM ({self._uncovered()})"
        # How many of the sampled trace ids (parameter ``probe``) have a row: after an INSERT that
        # returned, a few lookups by TraceId instead of the check over the whole batch.
        within = f" AND {spec.within}" if spec.within else ""
        probe = f"SELECT uniqExactIf(TraceId, {spec.probed}) FROM {spec.target}"
        probe += " WHERE TraceId IN {{probe:Array(String)}}"
        self.probe = probe + within if spec.by_trace else ""
        repair = f"INSERT INTO {spec.target} ({names}) SELECT {names} FROM {self._batch()}"
        self.repair = f"{repair} WHERE ({keys}) IN ({self._uncovered()})"
        # How many of the batch's rows could be the view's: 0 settles the check without reading further.
        self.candidates = f"countIf({spec.candidates or 1})"

    def _batch(self) -> str:
        """The view's rows for the batch, as the target stores them (a DateTime64 written to a
        DateTime column is truncated: compared uncast, a row would never look covered)."""
        restricted = f" FROM (SELECT * FROM {self._source} WHERE {self._where} AND ({self._spec.candidates or 1}))"
        at = _SOURCE.search(self._text)
        assert at is not None
        text = self._text[: at.start()] + restricted + self._text[at.end() :]
        rows = ", ".join(f"CAST(`{n}`, '{_stored(t)}') AS `{n}`" for n, t in self._types.items())
        return f"(SELECT {rows} FROM ({text}))"

    def _uncovered(self) -> str:
        """The keys of the batch's rows the target does not cover. One aggregation over the batch's
        rows (_b = 1) and the target's rows of the same keys (a join of the two cost more): a key is
        short when the target has no row of it, or its rows do not reach the batch's min or max."""
        spec, batch = self._spec, self._batch()
        keys = ", ".join(f"`{k}`" for k in spec.keys)
        lookup = (
            f"TraceId IN (SELECT TraceId FROM {self._source} WHERE {self._where})"
            if spec.by_trace
            else f"({keys}) IN (SELECT {keys} FROM {batch})"
        )
        lookup += f" AND {spec.within}" if spec.within else ""
        stored = ", ".join(f"CAST(`{n}`, '{_stored(t)}') AS `{n}`" for n, t in self._types.items())
        both = (
            f"SELECT *, 1 AS `_b` FROM {batch} UNION ALL SELECT {stored}, 0 AS `_b` FROM {spec.target} WHERE {lookup}"
        )
        short = ["min(`_b`) = 1"] + [f"minIf(`{c}`, `_b` = 0) > minIf(`{c}`, `_b` = 1)" for c in spec.mins]
        short += [f"maxIf(`{c}`, `_b` = 0) < maxIf(`{c}`, `_b` = 1)" for c in spec.maxs]
        return f"SELECT {keys} FROM ({both}) GROUP BY {keys} HAVING max(`_b`) = 1 AND ({' OR '.join(short)})"

    @staticmethod
    def texts(conn: Handle) -> dict[str, str]:
        """Each covered view's stored SELECT as the engine has it now ('' without the view)."""
        return view_texts(conn, [c.view for c in COVERED])


def view_columns(conn: Handle, target: str, view: str) -> list[tuple[str, str]]:
    """(name, type) of the target's columns the view writes, in the target's order."""
    found = conn.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
        " AND name IN (SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {v:String})"
        " ORDER BY position",
        "JSONCompactEachRow",
        params={"t": target, "v": view},
    ).bytes()
    return [tuple(json.loads(line)) for line in found.splitlines() if line]  # type: ignore[misc]


def _stored(column_type: str) -> str:
    """The type a column's values are stored as (a SimpleAggregateFunction stores its argument's), quoted
    for a string literal."""
    simple = _SIMPLE.match(column_type)
    return (simple.group(1) if simple else column_type).replace("\\", "\\\\").replace("'", "\\'")


def view_texts(conn: Handle, views: Sequence[str]) -> dict[str, str]:
    """Each view's stored SELECT as the engine has it now ('' without the view), in one read."""
    found = conn.query(
        "SELECT name, as_select FROM system.tables WHERE database = currentDatabase() AND name IN {v:Array(String)}",
        "JSONCompactEachRow",
        params={"v": "[" + ", ".join(f"'{view}'" for view in views) + "]"},
    ).bytes()
    rows = dict(json.loads(line) for line in found.splitlines() if line)
    return {view: str(rows.get(view, "")) for view in views}
