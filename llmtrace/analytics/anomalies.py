"""Anomalies: incidents found by count statistics at several time scales, and odd calls.

:func:`detect` reads, per series and 5-minute bucket, counts from ClickHouse
(:mod:`~llmtrace.analytics.anomalies_sql`): calls, failures, truncations, empty outputs, and
calls above the series' usual p90 latency, TTFT, output tokens and cost (below its p10 of
output tokens). :mod:`~llmtrace.analytics.anomalies_scan` judges every 5-, 15-, 60-minute and
3-hour window with exact tails against trailing baselines (rates: binomial, corrected for the
series' overdispersion; volume: negative binomial against the hours before, rescaled by the
series' daily and weekly profile, :mod:`~llmtrace.analytics.anomalies_profile`, read from up to
eight days before the window, counted in clusters: calls over the series' own clustering
factor, as an agent's trace or a chat turn brings several calls at once);
:mod:`~llmtrace.analytics.anomalies_episodes` merges flagged windows into episodes with their
true edges and keeps the most specific level of the hierarchy that explains each (by default:
service x model, service, provider, app; where a service runs in more than one environment,
staging next to production, also service x model x environment and service x environment, so
a staging incident is judged on staging's calls alone and reported with its environment).

The score is -log10 of the tail probability; severity is ``critical`` when the evidence is
overwhelming (score >= 12) *and* the effect is large (a rate or volume at least 3x, or at most
a third of, its expectation), else ``warning``.

Series younger than two days are listed in :attr:`AnomalyReport.warming_up`: their volume
follows their service's (or the app's) profile until a day of their own exists, scaled by their
own recent calls and with the spread that borrowed shape showed on them; their first hours are
not judged (thresholds need 3 hours of calls, rates 20 trials of baseline), which the same list
says.

Benign changes, decided on what a user wants paged for:

* an episode that starts with a new release, prompt version or model on its series names it
  (:attr:`Anomaly.change`, :mod:`~llmtrace.analytics.anomalies_changes`): it is still reported
  (a regression shipped in a release is news) with its likely cause beside it;
* a fall in calls on a day the whole app is quiet (most other services at most 3/4 of their
  usual calls over the episode and 6 hours either side, no error episode on the series) is
  traffic, a holiday, not an outage, and is dropped
  (:func:`~llmtrace.analytics.anomalies_levels.lull`); a series that stops while the rest goes
  on, or a short app-wide gap, is still reported;
* the store's first weekend, judged on its weekdays' ratios: a fall counts only if the series came
  back within the hour (an office closed on Saturday is no outage), as on a store's first day;
* a job that runs by the clock (:mod:`~llmtrace.analytics.anomalies_schedule`): its hours between
  runs are no fall, and its falls are judged against its own last runs;
* a clock change (the day's profile an hour earlier or later in UTC): a rise is never judged
  against less than the same hours of previous days held within an hour either side, so a
  morning ramp an hour early is not a spike (falls keep the exact hours: a batch stopping at
  its usual time must not be held to a quiet hour);
* not handled: a planned load test in staging is a volume rise there like any other.

Call-level anomalies come from :mod:`~llmtrace.analytics.anomalies_calls`: slow and
expensive calls, and retry storms. Runaway users (one user id whose calls run far above its own
record and swamp its series) come from :mod:`~llmtrace.analytics.anomalies_users` as ``calls``
episodes of the series naming the user (:attr:`Anomaly.user`). :attr:`Anomaly.key` is stable
across runs.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from llmtrace.analytics import anomalies_calls as calls_sql
from llmtrace.analytics import anomalies_users, frame
from llmtrace.analytics.anomalies_changes import Change, read_changes
from llmtrace.analytics.anomalies_changes import label as change_label
from llmtrace.analytics.anomalies_levels import (
    AUTO,
    Level,
    Prepared,
    early_volume,
    levels_for,
    main_level,
    prepare,
    read_counts,
    warming_up,
)
from llmtrace.analytics.anomalies_sql import METRICS, VARIANTS, rollup_answers
from llmtrace.analytics.filters import DIMENSIONS, Filter, sql_time, utcnow
from llmtrace.analytics.groups import grouped_frame, json_safe, label
from llmtrace.store.beside import beside

__all__ = ["AUTO", "DEFAULT_BY", "METRICS", "Anomaly", "AnomalyReport", "Plan", "detect", "plan", "points"]

DEFAULT_BY = AUTO
REPORTED = [m for m in METRICS if m not in VARIANTS]
CRITICAL_SCORE = 12.0
CRITICAL_RATIO = 3.0
MAX_CALL_OUTLIERS = 20
HOUR, DAY = 3600, 86400


@dataclass
class Anomaly:
    """One anomaly: an episode of a series' metric, or a call-level finding."""

    kind: str  # episode | slow_call | expensive_call | retry_storm (a runaway user: an episode with ``user``)
    metric: str
    series: dict[str, str]
    start: datetime
    end: datetime
    observed: float | None
    expected: float | None
    score: float  # -log10 of the tail probability (episodes)
    severity: str  # warning | critical
    direction: str  # up | down
    points: int  # 5-minute buckets in the episode, or storms
    trace_ids: list[str] = field(default_factory=list)
    level: str = ""  # which grouping found it: service,model[,environment|,provider] | service | provider | all
    # (| service,model,user: a runaway user, anomalies_users)
    detected_at: datetime | None = None  # end of the first window that was flagged
    events: float | None = None  # rates: events and trials over the episode
    trials: float | None = None
    measure: str = ""  # what observed/expected are, e.g. "calls slower than twice the usual p90"
    change: str = ""  # a deployment it coincides with, e.g. "release v2.1 first seen 2026-12-01 14:05 UTC"
    user: str = ""  # calls up: the one user id whose runaway calls make it (anomalies_users)

    @property
    def key(self) -> str:
        """Stable identity: the same episode seen by a later run has the same key."""
        user = f"|user={self.user}" if self.level.endswith(",user") else ""
        return f"{self.kind}|{self.metric}|{label(self.series)}{user}|{self.start.isoformat()}"

    @property
    def summary(self) -> str:
        expected = "" if self.expected is None else f" vs expected {_fmt(self.expected)}"
        counts = "" if self.events is None else f", {self.events:.0f} of {self.trials:.0f}"
        measure = f" [{self.measure}]" if self.measure else ""
        change = f"; with {self.change}" if self.change else ""
        user = f" from user {self.user}" if self.user else ""
        return (
            f"[{self.severity}] {label(self.series)}: {self.metric} {self.direction}{user} "
            f"{_fmt(self.observed)}{expected}{counts}{measure} (score {self.score:.1f}, "
            f"{self.start:%Y-%m-%d %H:%M} → {self.end:%H:%M} UTC{change})"
        )


@dataclass
class AnomalyReport:
    """Anomalies of one window, most severe first, and the series still warming up."""

    start: datetime
    end: datetime
    step: int
    by: tuple[str, ...]
    anomalies: list[Anomaly] = field(default_factory=list)
    warming_up: list[dict[str, Any]] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)

    def episodes(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == "episode"]

    def find(self, metric: str | None = None, kind: str | None = None, **series: str) -> list[Anomaly]:
        """The anomalies of this metric / kind whose series has these values."""
        return [
            a
            for a in self.anomalies
            if (metric is None or a.metric == metric)
            and (kind is None or a.kind == kind)
            and all(a.series.get(k) == v for k, v in series.items())
        ]

    def to_frame(self) -> pd.DataFrame:
        return grouped_frame(self.anomalies, Anomaly, "series", self.by)

    def to_dict(self) -> dict[str, Any]:
        def shaped(a: Anomaly) -> dict[str, Any]:
            return {**json_safe(asdict(a)), "start": a.start.isoformat(), "end": a.end.isoformat(), "key": a.key}

        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "bucket_seconds": self.step,
            "by": list(self.by),
            "levels": list(self.levels),
            "anomalies": [shaped(a) for a in self.anomalies],
            "warming_up": json_safe(self.warming_up),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def warming_lines(self) -> list[str]:
        """One readable line per series still warming up (for tables and pages)."""
        return [
            f"warming up: {label(w['series'])} ({w['status'].replace('_', ' ')}): {w['note']}" for w in self.warming_up
        ]


@dataclass(frozen=True)
class Plan:
    """Buckets of width ``step`` judged in [judge_start, judge_end), history read from ``history.start``."""

    step: int
    judge_start: datetime
    judge_end: datetime
    history: Filter

    @property
    def buckets(self) -> int:
        return int((self.judge_end - self.history.start).total_seconds()) // self.step

    @property
    def judge_first(self) -> int:
        return int((self.judge_start - self.history.start).total_seconds()) // self.step

    def params(self, **extra: Any) -> dict[str, Any]:
        return self.history.params(
            self.step,
            hist_start=sql_time(self.history.start),
            judge_start=sql_time(self.judge_start),
            judge_end=sql_time(self.judge_end),
            **extra,
        )


def plan(f: Filter, step: int | None = None, history: timedelta | None = None, now: datetime | None = None) -> Plan:
    """Bucket width (5 minutes up to 14 days, else an hour), complete buckets judged, history.

    History defaults to two days: rates need a day of baseline, and volume a previous day for
    its daily profile plus up to 15 hours of trailing windows.
    """
    step = step or (300 if f.duration <= timedelta(days=14) else HOUR)
    if step < 60 or (step < HOUR and HOUR % step) or (step >= HOUR and step % HOUR):
        raise ValueError(f"bucket of {step}s: use a divisor of an hour (60, 300, 900, ...) or whole hours")
    judge_end = _floor(min(f.end, now or utcnow()), step)
    judge_start = _floor(f.start, step)
    if judge_end <= judge_start:
        raise ValueError(f"the window {f.start} → {f.end} holds no complete {step}s bucket; widen it")
    if history is None:
        history = timedelta(days=2)
    history = timedelta(seconds=math.ceil(history.total_seconds() / step) * step)
    dims = {name: getattr(f, name) for name in DIMENSIONS}
    return Plan(step, judge_start, judge_end, Filter(start=judge_start - history, end=judge_end, **dims))


def detect(
    client: Any,
    f: Filter,
    by: str | Iterable[str] | None = DEFAULT_BY,
    *,
    metrics: Iterable[str] | None = None,
    step: int | None = None,
    history: timedelta | None = None,
    include_calls: bool = True,
    now: datetime | None = None,
) -> AnomalyReport:
    """Episodes of every series and metric in ``f``'s window, plus call-level anomalies.

    ``by="auto"`` (the default) judges service x model, service, provider and the whole app
    and reports the most specific level explaining each incident; any other grouping
    (``"service"``, ``["service", "release"]``, ...) judges that one level.
    """
    with _collector_paused():
        return _detect(client, f, by, metrics, step, history, include_calls, now)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one detection run (restored after, if it was on).

    A run makes ~100k short-lived objects (windows, episodes), which set off ~230 collections, the
    oldest generation's walking every object of the process (pandas, numpy, the client): 0.1-0.3 s
    of a 7 d run's ~1.2 s own CPU at 10M calls (session 20, load 8-11). The run's objects hold no
    cycles worth collecting meanwhile; they are freed by reference counting when it returns."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _detect(
    client: Any,
    f: Filter,
    by: str | Iterable[str] | None,
    metrics: Iterable[str] | None,
    step: int | None,
    history: timedelta | None,
    include_calls: bool,
    now: datetime | None,
) -> AnomalyReport:
    p = plan(f, step, history, now)
    levels = levels_for(by)
    main = main_level(levels)  # never a split level: the same after those without groups are left out
    wanted = _metrics(metrics)
    # the store computes the counts while this process computes the volume's expectations from the calls
    counts = beside(client, lambda side: read_counts(side, p, levels))
    early = early_volume(client, p, levels, wanted)
    counts_read = counts()
    # the queries that need no counts run on the store while this process judges them
    aside = beside(client, lambda side: _read_aside(side, main.keys, p, "calls" in wanted, include_calls))
    prep = prepare(client, p, levels, wanted, counts_read, early)
    levels = [lv for lv in levels if lv.name in prep.levels or not lv.split]  # environments that split
    found = [_episode(e, prep, p) for e in prep.episodes]
    _attach_examples(client, found, report_keys(levels), p)
    read = aside()
    for a in found:
        a.change = change_label(read.changes, a.series, a.start)
    found += _runaway_users(read.runaways, found, main.keys)
    found += read.calls
    found.sort(key=lambda a: (a.severity != "critical", -a.score, a.key))
    report_by = report_keys(levels)
    warm = warming_up(prep, p, main)
    return AnomalyReport(p.judge_start, p.judge_end, p.step, report_by, found, warm, [lv.name for lv in levels])


def points(
    client: Any,
    f: Filter,
    by: str | Iterable[str] | None = DEFAULT_BY,
    metrics: Iterable[str] | None = None,
    *,
    step: int | None = None,
    history: timedelta | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every judged bucket: level, series columns, metric, bucket, observed, expected, flagged.

    For rates ``observed`` is the bucket's share of events and ``expected`` the baseline
    share; for ``calls`` the bucket's calls and the expected calls.
    """
    p = plan(f, step, history, now)
    levels = levels_for(by)
    prep = prepare(client, p, levels, _metrics(metrics))
    return prep.points(p)


# --------------------------------------------------------------------------- shaping
def _metrics(metrics: Iterable[str] | None) -> list[str]:
    wanted = list(metrics) if metrics is not None else list(REPORTED)
    unknown = [m for m in wanted if m not in REPORTED]
    if unknown:
        raise ValueError(f"unknown anomaly metric(s) {unknown}; choose from {', '.join(REPORTED)}")
    return wanted + [scanned for scanned, reported in VARIANTS.items() if reported in wanted]


def _floor(value: datetime, seconds: int) -> datetime:
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, timezone.utc)


def _at(p: Plan, bucket: int) -> datetime:
    return p.history.start + timedelta(seconds=bucket * p.step)


def _episode(e: Any, prep: Prepared, p: Plan) -> Anomaly:
    low_tokens = e.metric == "tokens_per_call_low"
    ratio = _ratio(e.observed, e.expected)
    big = ratio is not None and (ratio >= CRITICAL_RATIO or ratio <= 1 / CRITICAL_RATIO)
    return Anomaly(
        kind="episode",
        metric=VARIANTS.get(e.metric, e.metric),
        series=prep.series(e.level, e.group),
        start=_at(p, e.first),
        end=_at(p, e.last + 1),
        observed=e.observed,
        expected=e.expected,
        score=round(e.score, 2),
        severity="critical" if e.score >= CRITICAL_SCORE and big else "warning",
        direction="down" if low_tokens else e.direction,
        points=e.last - e.first + 1,
        level=e.level,
        detected_at=_at(p, e.detected + 1),
        events=e.events,
        trials=e.trials,
        measure=_measure(e.metric),
    )


def _measure(scanned: str) -> str:
    """The statistic behind an episode's numbers: the share above twice the usual p90 reads
    ~0.0001 as expected, which is right for it and wrong for "the share above the p90"."""
    metric = METRICS.get(scanned)
    if scanned == "calls" and metric:
        return metric.describes
    return f"share of {metric.describes}" if metric else ""


def _ratio(observed: float | None, expected: float | None) -> float | None:
    if observed is None or not expected:
        return None
    return observed / expected


def _dims(p: Plan) -> tuple[str, dict[str, Any]]:
    f = p.history
    return f.dimension_clause(), {n: list(getattr(f, n)) for n in DIMENSIONS if getattr(f, n)}


def report_keys(levels: list[Level]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for level in levels for k in level.keys))


def _attach_examples(client: Any, episodes: list[Anomaly], keys: tuple[str, ...], p: Plan) -> None:
    if not episodes:
        return
    dims, dim_params = _dims(p)
    matched = [(a.start, a.end, a.metric, _only(a.series, keys)) for a in episodes]
    shapes = calls_sql.example_shapes([m[3] for m in matched])
    params: dict[str, Any] = {
        **dim_params,
        "min_start": sql_time(min(a.start for a in episodes)),
        "max_end": sql_time(max(a.end for a in episodes)),
        **calls_sql.examples_params(matched, p.step, shapes),
    }
    for row in frame(client, calls_sql.examples_sql(dims, shapes, p.step), params).to_dict("records"):
        episodes[int(row["ep"]) - 1].trace_ids = [str(t) for t in row["trace_ids"]]


def _only(series: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    """An episode's series on the report's columns (those its example calls are matched on)."""
    return {b: series[b] for b in keys if b in series}


@dataclass
class _Aside:
    """What :func:`_read_aside` read: new releases, prompt versions and models; runaway users;
    call-level findings."""

    changes: list[Change]
    runaways: list[anomalies_users.Runaway]
    calls: list[Anomaly]


def _read_aside(client: Any, by: tuple[str, ...], p: Plan, users: bool, calls: bool) -> _Aside:
    """The queries whose answers do not depend on the counts (:func:`~llmtrace.store.beside.beside`)."""
    dims, dim_params = _dims(p)
    changes = read_changes(client, p.history.start, p.judge_end, dims, dim_params)
    runaways = (
        anomalies_users.find(client, by, dims, {**dim_params, **p.params()})
        if users and anomalies_users.answers(by)
        else []
    )
    return _Aside(changes, runaways, _call_anomalies(client, by, p) if calls else [])


def _call_anomalies(client: Any, by: tuple[str, ...], p: Plan) -> list[Anomaly]:
    dims, dim_params = _dims(p)
    params = {**dim_params, **p.params()}
    found: list[Anomaly] = []
    rollup = rollup_answers(by, p.step)
    bars: dict[str, Any] | None = {}
    if rollup:  # the history's bars read first and bound as parameters; without history there is nothing to judge
        row = client.query(calls_sql.outlier_bars_sql(by, dims), parameters=params).result_rows[0]
        bars = calls_sql.outlier_bars_params(by, row)
    if bars is not None:
        outliers = calls_sql.outliers_sql(by, dims, MAX_CALL_OUTLIERS, rollup=rollup, bound=rollup)
        for row in _records(client, outliers, {**params, **bars}):
            found.append(_finding(row, by, end=row["start"], points=1, trace_ids=[str(row["trace_id"])]))
    storms = (
        calls_sql.rollup_storms(client, by, dims, params)
        if rollup
        else _records(client, calls_sql.storms_sql(by, dims), params)
    )
    for row in storms:
        found.append(_finding(row, by, end=row["last"], points=int(row["storms"]), trace_ids=list(row["trace_ids"])))
    return found


def _runaway_users(runs: list[anomalies_users.Runaway], episodes: list[Anomaly], by: tuple[str, ...]) -> list[Anomaly]:
    """Runaway users (:mod:`~llmtrace.analytics.anomalies_users`): a series' calls-up episode that
    covers one names its user; the others are new calls-up episodes of the series naming theirs."""
    new: list[Anomaly] = []
    for run in runs:
        series = dict(zip(by, run.series, strict=True))
        covering = [
            a
            for a in episodes
            if a.metric == "calls" and a.direction == "up" and a.start < run.end and run.start < a.end
            and all(a.series.get(k) == v for k, v in series.items()) and not a.user
        ]  # fmt: skip
        measure = f"calls of user {run.user}: {run.calls} of the series' {run.calls + run.rest}"
        if covering:
            for a in covering:
                a.user, a.measure = run.user, f"{a.measure}; {measure}" if a.measure else measure
            continue
        ratio = run.calls / run.record if run.record else None
        big = ratio is not None and ratio >= CRITICAL_RATIO
        new.append(
            Anomaly(
                kind="episode",
                metric="calls",
                series=series,
                start=run.start,
                end=run.end,
                observed=float(run.calls),
                expected=round(run.record, 2),
                score=round(run.score, 2),
                severity="critical" if run.score >= CRITICAL_SCORE and big else "warning",
                direction="up",
                points=int((run.end - run.start).total_seconds()) // anomalies_users.STEP,
                level=",".join(by) + ",user",
                detected_at=run.detected,
                events=float(run.calls),
                trials=float(run.calls + run.rest),
                measure=f"{measure} (its usual at most {run.record:.0f})",
                user=run.user,
                trace_ids=list(run.trace_ids),
            )
        )
    return new


def _records(client: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A query's rows as dicts. Not :func:`frame`: no rows need no columns, and its DESCRIBE of an
    empty result re-analyses the query (0.09-0.13 s of server CPU for the outliers at 10M calls, 7 d)."""
    records: list[dict[str, Any]] = client.query_df(sql, parameters=params).to_dict("records")
    return records


def _dt(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    result: datetime = ts.to_pydatetime(warn=False)
    return result


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _finding(row: dict[str, Any], by: tuple[str, ...], end: Any, points: int, trace_ids: list[Any]) -> Anomaly:
    score = _num(row["score"]) or 0.0
    return Anomaly(
        kind=str(row["kind"]),
        metric=str(row["metric"]),
        series={b: str(row[f"g_{b}"]) for b in by},
        start=_dt(row["start"]),
        end=_dt(end),
        observed=_num(row["observed"]),
        expected=_num(row["expected"]),
        score=score,
        severity="critical" if score >= 10 else "warning",
        direction="up",
        points=points,
        trace_ids=[str(t) for t in trace_ids],
        level=",".join(by) or "all",
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
