"""The filter every view shares, and which table answers it.

A :class:`Filter` is a half-open time window ``[start, end)`` plus optional dimension
filters. It renders itself as a parameterised ``WHERE`` clause (``{name:Type}`` bindings,
never formatted values) and as an aggregated *source*: a sub-query with one row per
(bucket, dimensions) carrying sums and t-digest states. Windows longer than
:data:`ROLLUP_AFTER` read whole hours from the ``llm_calls_1h`` rollup, shorter ones whole
minutes from ``llm_calls_1m``, and only the partial hour or minute at each edge (the current,
still filling minute included) from ``llm_calls``, so counts and sums equal a direct query on
``llm_calls`` over the same window (percentiles come from merged t-digests: within ~1%).
A user or session filter (not kept by the rollups) reads ``llm_calls`` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from llmtrace.analytics import frame

ROLLUP_AFTER = timedelta(days=2)
MINUTE = 60
HOUR = 3600
DAY = 24 * HOUR

# Filter field -> column in llm_calls and in the rollups.
DIMENSIONS: dict[str, str] = {
    "services": "ServiceName",
    "environments": "Environment",
    "releases": "Release",
    "providers": "Provider",
    "models": "RequestModel",
}

# Filter field -> llm_calls column, for dimensions the rollups do not keep (too many values): choosing
# one makes the filter read llm_calls only (kept ``ttl_days``), and rollup-only readers (drift, anomalies)
# do not apply it.
RAW_DIMENSIONS: dict[str, str] = {"users": "UserId", "sessions": "SessionId"}

# Grouping columns every aggregated source exposes besides Bucket (the rollup's keys).
GROUP_COLUMNS = "ServiceName, Environment, Release, Provider, Operation, RequestModel, PromptName, PromptVersion"
_LEVELS = "0.5, 0.9, 0.95, 0.99"  # must match the rollup's quantilesTDigestState levels
_RAW_AGGREGATES = f"""
    count() AS Calls,
    toUInt64(sum(c.IsError)) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.CacheReadTokens) AS CacheReadTokens,
    sum(c.ReasoningTokens) AS ReasoningTokens,
    sum(ifNull(c.CostUsd, 0)) AS CostUsd,
    toUInt64(countIf(c.CostStatus = 'unpriced')) AS UnpricedCalls,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS PricedCalls,
    quantilesTDigestState({_LEVELS})(c.DurationUs) AS DurationQ,
    quantilesTDigestState({_LEVELS})(c.TtftUs) AS TtftQ,
    sum(c.DurationUs) AS DurationSumUs"""
# Aggregates reuse source column names as aliases, so the source columns are qualified (c.X).
_ROLLUP_COLUMNS = (
    "Calls, Errors, InputTokens, OutputTokens, CacheReadTokens, ReasoningTokens, CostUsd, UnpricedCalls, "
    "PricedCalls, DurationQ, TtftQ, DurationSumUs"
)
_TIME = "DateTime64(6, 'UTC')"

# Merged percentile arrays (p50, p90, p95, p99) in milliseconds, for SELECTs over a source.
DURATION_MS = f"arrayMap(x -> x / 1000, quantilesTDigestMerge({_LEVELS})(DurationQ))"
TTFT_MS = f"arrayMap(x -> x / 1000, quantilesTDigestMerge({_LEVELS})(TtftQ))"
PERCENTILES = {"p50": 1, "p90": 2, "p95": 3, "p99": 4}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def sql_time(value: datetime) -> str:
    """A datetime as the text a ``DateTime64(6, 'UTC')`` parameter parses (timezone-proof)."""
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _floor(value: datetime, seconds: int) -> datetime:
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, timezone.utc)


def _ceil(value: datetime, seconds: int) -> datetime:
    floored = _floor(value, seconds)
    return floored if floored == value else floored + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Filter:
    """A time window plus dimension filters; empty tuples mean "all"."""

    start: datetime
    end: datetime
    services: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    releases: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        object.__setattr__(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"filter window ends ({self.end}) before it starts ({self.start}); swap them")
        for name in (*DIMENSIONS, *RAW_DIMENSIONS):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None, **dimensions: Any) -> Filter:
        """The window of length ``span`` ending at ``now`` (default: the end of the current minute)."""
        end = _utc(now) if now else _floor(utcnow(), 60) + timedelta(minutes=1)
        return cls(start=end - span, end=end, **dimensions)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def uses_rollup(self) -> bool:
        """Whether the window reads the hourly rollup (buckets are then whole hours)."""
        return self.duration > ROLLUP_AFTER and not self._raw_only

    @property
    def _raw_only(self) -> bool:
        return any(getattr(self, name) for name in RAW_DIMENSIONS)

    @property
    def _rollup(self) -> tuple[str, int]:
        """The rollup table the source reads whole buckets from, and its bucket width in seconds."""
        return ("llm_calls_1h", HOUR) if self.uses_rollup else ("llm_calls_1m", MINUTE)

    def previous(self) -> Filter:
        """The window of the same length just before this one (for "change vs previous")."""
        return dataclasses.replace(self, start=self.start - self.duration, end=self.start)

    def bucket_seconds(self, points: int = 120) -> int:
        """A readable bucket width giving at most about ``points`` buckets over the window."""
        wanted = self.duration.total_seconds() / points
        for step in (60, 300, 900, 1800, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY):
            if wanted <= step:
                return max(step, HOUR) if self.uses_rollup else step
        return DAY * (int(wanted) // DAY + 1)

    def params(self, step: int | None = None, **extra: Any) -> dict[str, Any]:
        """Bind values for :meth:`where` and :meth:`source`, plus any ``extra`` ones."""
        step = self._step(step)
        unit = self._rollup[1]
        roll_start = min(_ceil(self.start, unit), self.end)
        params: dict[str, Any] = {
            "start": sql_time(self.start),
            "end": sql_time(self.end),
            "roll_start": sql_time(roll_start),
            "roll_end": sql_time(max(roll_start, _floor(self.end, unit))),
            "step": step,
        }
        chosen = [name for name in (*DIMENSIONS, *RAW_DIMENSIONS) if getattr(self, name)]
        params.update({name: list(getattr(self, name)) for name in chosen})
        params.update(extra)
        return params

    def whole_hours(self) -> dict[str, str]:
        """``hour_start`` / ``hour_end``: the whole hours inside the window (empty when there are
        none), for readers of an hourly-only rollup; the rest of the window is its raw edges."""
        start = min(_ceil(self.start, HOUR), self.end)
        return {"hour_start": sql_time(start), "hour_end": sql_time(max(start, _floor(self.end, HOUR)))}

    def raw_edges(self, prefix: str = "hour") -> str:
        """The window's parts outside ``[{prefix}_start, {prefix}_end)``, as a condition on llm_calls."""
        return (
            f"((Timestamp >= {{start:{_TIME}}} AND Timestamp < {{{prefix}_start:{_TIME}}})"
            f" OR (Timestamp >= {{{prefix}_end:{_TIME}}} AND Timestamp < {{end:{_TIME}}}))"
        )

    def totals_source(self) -> str:
        """An aggregated sub-query like :meth:`source` for figures over the whole window (no time series):
        whole hours from ``llm_calls_1h`` at any window length, the partial hours at the edges from
        ``llm_calls``. A day then merges ~24 hourly t-digest states per group instead of 1,440 minute ones
        (at 10M calls 0.17 s server CPU against 0.23; reading the edges' whole minutes from ``llm_calls_1m``
        instead of raw calls cost more, 0.23-0.51 s); counts and sums still equal direct SQL. Bind with
        ``params(**whole_hours())``; ``Bucket`` is the rows' own hour (do not group by it)."""
        if self._raw_only:
            return self.source()
        dimensions = self.dimension_clause()
        hours = (
            f"SELECT Bucket, {GROUP_COLUMNS}, {_ROLLUP_COLUMNS} FROM llm_calls_1h"
            f" WHERE Bucket >= {{hour_start:{_TIME}}} AND Bucket < {{hour_end:{_TIME}}}{dimensions}"
        )
        raw = _raw_source(self.raw_edges() + dimensions, "toStartOfHour(Timestamp)")
        return f"({hours} UNION ALL SELECT * FROM {raw})"

    @property
    def raw_only(self) -> bool:
        """A user or session filter: only llm_calls can answer."""
        return self._raw_only

    def _step(self, step: int | None) -> int:
        step = step or self.bucket_seconds()
        if self.uses_rollup:  # rollup rows are hourly: coarser buckets must be whole hours
            step = max(HOUR, step - step % HOUR)
        return step

    def dimension_clause(self) -> str:
        """``AND`` conditions for the chosen dimensions ('' when none are chosen)."""
        return "".join(
            f" AND {col} IN {{{name}:Array(String)}}" for name, col in DIMENSIONS.items() if getattr(self, name)
        )

    def where(self, time_column: str = "Timestamp") -> str:
        """Window and dimension conditions on ``llm_calls`` (without the ``WHERE`` keyword)."""
        window = f"{time_column} >= {{start:{_TIME}}} AND {time_column} < {{end:{_TIME}}}"
        raw = "".join(
            f" AND {col} IN {{{name}:Array(String)}}" for name, col in RAW_DIMENSIONS.items() if getattr(self, name)
        )
        return window + self.dimension_clause() + raw

    def source(self) -> str:
        """An aggregated sub-query: Bucket (``{step}`` wide), GROUP_COLUMNS, sums, t-digest states.

        Whole hours (windows over :data:`ROLLUP_AFTER`) or whole minutes come from a rollup, the
        partial ones at both edges from ``llm_calls``; a user or session filter reads ``llm_calls``.
        """
        bucket = "toStartOfInterval({column}, toIntervalSecond({{step:UInt32}}))"
        if self._raw_only:
            return _raw_source(self.where(), bucket.format(column="Timestamp"))
        edges = self.raw_edges("roll")
        rollup = (
            f"SELECT {bucket.format(column='r.Bucket')} AS Bucket, {GROUP_COLUMNS}, {_ROLLUP_COLUMNS}"
            f" FROM {self._rollup[0]} AS r WHERE r.Bucket >= {{roll_start:{_TIME}}} AND r.Bucket < {{roll_end:{_TIME}}}"
            f"{self.dimension_clause()}"
        )
        raw = _raw_source(edges + self.dimension_clause(), bucket.format(column="Timestamp"))
        return f"({rollup} UNION ALL SELECT * FROM {raw})"


def _raw_source(where: str, bucket: str) -> str:
    return (
        f"(SELECT toDateTime({bucket}) AS Bucket, {GROUP_COLUMNS}, {_RAW_AGGREGATES}"
        f" FROM llm_calls AS c WHERE {where} GROUP BY Bucket, {GROUP_COLUMNS})"
    )


def options(client: Any, f: Filter) -> dict[str, list[str]]:
    """The values each dimension takes in the window's hours (for the filter pickers).

    Reads the hourly rollup over whole hours around the window, ignoring dimension choices.
    """
    arrays = ", ".join(f"arraySort(groupUniqArray({col})) AS {name}" for name, col in DIMENSIONS.items())
    sql = (
        f"SELECT {arrays} FROM llm_calls_1h"
        f" WHERE Bucket >= toStartOfHour({{start:{_TIME}}}) AND Bucket < {{end:{_TIME}}}"
    )
    row = frame(client, sql, {"start": sql_time(f.start), "end": sql_time(f.end)})
    if row.empty:
        return {name: [] for name in DIMENSIONS}
    return {name: [str(v) for v in row[name].iloc[0] if v != ""] for name in DIMENSIONS}


# ------------------------------------------------------------------ checking a selection
# Filter field -> the CLI flag that sets it and the word for one value.
FLAGS: dict[str, tuple[str, str]] = {
    "services": ("--service", "service"),
    "environments": ("--environment", "environment"),
    "releases": ("--release", "release"),
    "providers": ("--provider", "provider"),
    "models": ("--model", "model"),
}


class SelectionError(ValueError):
    """A filter names a value the store has never seen, or selects no calls at all.

    A release gate must not pass on a typo (``--service supportbot`` would otherwise find
    "no drift in 0 metrics"), so commands exit 2 on it and the message lists the known values.
    """


def known_values(client: Any) -> dict[str, list[str]]:
    """Every value each dimension takes anywhere in the store (from the hourly rollup)."""
    arrays = ", ".join(f"arraySort(groupUniqArray({col})) AS {name}" for name, col in DIMENSIONS.items())
    row = frame(client, f"SELECT {arrays} FROM llm_calls_1h", {})
    if row.empty:
        return {name: [] for name in DIMENSIONS}
    return {name: [str(v) for v in row[name].iloc[0] if v != ""] for name in DIMENSIONS}


def check_selection(client: Any, f: Filter, windows: list[tuple[datetime, datetime]] | None = None) -> None:
    """Raise :class:`SelectionError` if a chosen value is unknown, or if ``f``'s dimensions select no
    call in one of ``windows`` (default: ``f``'s own window)."""
    known = known_values(client)
    for name, (flag, word) in FLAGS.items():
        unknown = [v for v in getattr(f, name) if v not in known[name]]
        if unknown:
            have = ", ".join(known[name]) or "none yet"
            raise SelectionError(f"unknown {word} {', '.join(map(repr, unknown))} ({flag}); known {word}s: {have}")
    for start, end in windows or [(f.start, f.end)]:
        window = dataclasses.replace(f, start=start, end=end)
        sql = f"SELECT count() AS n FROM llm_calls WHERE {window.where()}"
        if int(frame(client, sql, window.params())["n"][0]) == 0:
            raise SelectionError(f"no calls{describe(f)} between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC")


def describe(f: Filter) -> str:
    """The dimension choices as " with service=a,b and model=c" ('' when there are none)."""
    parts = [f"{FLAGS[name][1]}={','.join(getattr(f, name))}" for name in DIMENSIONS if getattr(f, name)]
    return f" with {' and '.join(parts)}" if parts else ""
