"""Anomalies: episodes where a series leaves its robust baseline, and odd calls.

:func:`detect` looks at a window (a :class:`~llmtrace.analytics.filters.Filter`) split into
buckets (auto: 5 minutes up to 6 hours, hourly up to 14 days, then 6 hours) and, per
series (service x model by default, any grouping via ``by``), at call volume, error rate,
p95 latency, p95 time to first token, cost and tokens per call, and the share of outputs
cut at max_tokens. The statistics run in ClickHouse
(see :mod:`llmtrace.analytics.anomalies_sql`): the expected value of a bucket is the median
of the same time of day on previous days when there are at least two (so daily peaks are
normal), else a trailing median; the scale comes from the quartiles of past residuals. A
bucket is flagged at ``z >= z_point`` (5), or when the last two to six buckets together
reach ``z_run`` (4), and only if the change is large enough to matter; adjacent flagged buckets
merge into one episode. The bucket still in progress is not judged.

Call-level anomalies come from :mod:`llmtrace.analytics.anomalies_calls`: slow and
expensive calls, and retry storms.

Every :class:`Anomaly` has a kind, metric, series, start, end, observed and expected value,
score (a z-like number), severity (``warning``; ``critical`` from score 10) and example
trace ids; :attr:`Anomaly.key` is stable across runs (for alert de-duplication).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from llmtrace.analytics import anomalies_calls as calls_sql
from llmtrace.analytics import frame
from llmtrace.analytics.anomalies_sql import METRICS, episodes_sql, points_sql
from llmtrace.analytics.filters import DIMENSIONS, Filter, sql_time, utcnow
from llmtrace.analytics.groups import grouped_frame, json_safe, label, parse_by

__all__ = ["DEFAULT_BY", "METRICS", "Anomaly", "AnomalyReport", "Plan", "detect", "plan", "points"]

DEFAULT_BY = ("service", "model")
Z_POINT = 5.0
Z_RUN = 4.0
CRITICAL_SCORE = 10.0
MAX_CALL_OUTLIERS = 20
HOUR, DAY = 3600, 86400


@dataclass
class Anomaly:
    """One anomaly: an episode of a series' metric, or a call-level finding."""

    kind: str  # episode | slow_call | expensive_call | retry_storm
    metric: str
    series: dict[str, str]
    start: datetime
    end: datetime
    observed: float | None
    expected: float | None
    score: float
    severity: str  # warning | critical
    direction: str  # up | down
    points: int  # buckets in the episode, or storms
    trace_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Stable identity: the same episode seen by a later run has the same key."""
        return f"{self.kind}|{self.metric}|{label(self.series)}|{self.start.isoformat()}"

    @property
    def summary(self) -> str:
        expected = "" if self.expected is None else f" vs expected {_fmt(self.expected)}"
        return (
            f"[{self.severity}] {label(self.series)}: {self.metric} {self.direction} "
            f"{_fmt(self.observed)}{expected} (score {self.score:.1f}, "
            f"{self.start:%Y-%m-%d %H:%M} → {self.end:%H:%M} UTC)"
        )


@dataclass
class AnomalyReport:
    """Anomalies of one window, most severe first."""

    start: datetime
    end: datetime
    step: int
    by: tuple[str, ...]
    anomalies: list[Anomaly] = field(default_factory=list)

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
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "bucket_seconds": self.step,
            "by": list(self.by),
            "anomalies": [
                {**json_safe(asdict(a)), "start": a.start.isoformat(), "end": a.end.isoformat(), "key": a.key}
                for a in self.anomalies
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


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

    def params(self, **extra: Any) -> dict[str, Any]:
        return self.history.params(
            self.step,
            hist_start=sql_time(self.history.start),
            judge_start=sql_time(self.judge_start),
            judge_end=sql_time(self.judge_end),
            **extra,
        )


def plan(f: Filter, step: int | None = None, history: timedelta | None = None, now: datetime | None = None) -> Plan:
    """Bucket width, judged buckets (complete ones only) and history for window ``f``."""
    step = step or _auto_step(f.duration)
    if step < 60 or (step < HOUR and HOUR % step) or (step >= HOUR and step % HOUR):
        raise ValueError(f"bucket of {step}s: use a divisor of an hour (60, 300, 900, ...) or whole hours")
    judge_end = _floor(min(f.end, now or utcnow()), step)
    judge_start = _floor(f.start, step)
    if judge_end <= judge_start:
        raise ValueError(f"the window {f.start} → {f.end} holds no complete {step}s bucket; widen it")
    window = judge_end - judge_start
    if history is None:
        history = timedelta(days=7) if step >= HOUR else max(timedelta(days=2) - window, 12 * timedelta(seconds=step))
    history = timedelta(seconds=math.ceil(history.total_seconds() / step) * step)
    dims = {name: getattr(f, name) for name in DIMENSIONS}
    hist = Filter(start=judge_start - history, end=judge_end, **dims)
    if hist.uses_rollup and step % HOUR:
        raise ValueError(
            f"{step}s buckets read raw calls, so window plus history must stay within 2 days "
            f"(got {hist.duration}); use hourly buckets or a shorter history"
        )
    return Plan(step, judge_start, judge_end, hist)


def points(
    client: Any,
    f: Filter,
    by: str | Iterable[str] | None = DEFAULT_BY,
    metrics: Iterable[str] | None = None,
    *,
    step: int | None = None,
    history: timedelta | None = None,
    z_point: float = Z_POINT,
    z_run: float = Z_RUN,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every judged bucket: series columns, metric, bucket, observed, expected, z, flagged."""
    groups, wanted = parse_by(by), _metrics(metrics)
    p = plan(f, step, history, now)
    sql = f"""
        SELECT * FROM ({_points(p, groups, wanted)})
        WHERE b >= {{judge_start:DateTime64(6, 'UTC')}} ORDER BY metric, b"""
    df = frame(client, sql, p.params(z_point=z_point, z_run=z_run))
    df = df.rename(columns={"b": "bucket", **{f"g_{b}": b for b in groups}})
    return df.assign(bucket=pd.to_datetime(df["bucket"], utc=True), flagged=df["flagged"].astype(bool))


def detect(
    client: Any,
    f: Filter,
    by: str | Iterable[str] | None = DEFAULT_BY,
    *,
    metrics: Iterable[str] | None = None,
    step: int | None = None,
    history: timedelta | None = None,
    include_calls: bool = True,
    z_point: float = Z_POINT,
    z_run: float = Z_RUN,
    now: datetime | None = None,
) -> AnomalyReport:
    """Episodes of every series and metric in ``f``'s window, plus call-level anomalies."""
    groups, wanted = parse_by(by), _metrics(metrics)
    p = plan(f, step, history, now)
    sql = episodes_sql(_points(p, groups, wanted), groups, p.step)
    rows = frame(client, sql, p.params(z_point=z_point, z_run=z_run)).to_dict("records")
    found = [_episode(row, groups) for row in rows]
    _attach_examples(client, found, groups, p)
    if include_calls:
        found += _call_anomalies(client, groups, p)
    found.sort(key=lambda a: (a.severity != "critical", -a.score, a.key))
    return AnomalyReport(p.judge_start, p.judge_end, p.step, groups, found)


# --------------------------------------------------------------------------- shaping
def _points(p: Plan, by: Sequence[str], metrics: Sequence[str]) -> str:
    return points_sql(p.history.source(), by, metrics, p.step, p.buckets, p.history.dimension_clause())


def _metrics(metrics: Iterable[str] | None) -> list[str]:
    wanted = list(metrics) if metrics is not None else list(METRICS)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown anomaly metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return wanted


def _auto_step(span: timedelta) -> int:
    if span <= timedelta(hours=6):
        return 300
    return HOUR if span <= timedelta(days=14) else 6 * HOUR


def _floor(value: datetime, seconds: int) -> datetime:
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, timezone.utc)


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


def _severity(score: float) -> str:
    return "critical" if score >= CRITICAL_SCORE else "warning"


def _series(row: dict[str, Any], by: Sequence[str]) -> dict[str, str]:
    return {b: str(row[f"g_{b}"]) for b in by}


def _episode(row: dict[str, Any], by: Sequence[str]) -> Anomaly:
    score = _num(row["max_score"]) or 0.0
    return Anomaly(
        kind="episode",
        metric=str(row["metric"]),
        series=_series(row, by),
        start=_dt(row["start"]),
        end=_dt(row["end"]),
        observed=_num(row["observed"]),
        expected=_num(row["expected"]),
        score=score,
        severity=_severity(score),
        direction="up" if int(row["sign"]) > 0 else "down",
        points=int(row["points"]),
    )


def _dims(p: Plan) -> tuple[str, dict[str, Any]]:
    f = p.history
    return f.dimension_clause(), {n: list(getattr(f, n)) for n in DIMENSIONS if getattr(f, n)}


def _attach_examples(client: Any, episodes: list[Anomaly], by: Sequence[str], p: Plan) -> None:
    if not episodes:
        return
    dims, dim_params = _dims(p)
    params: dict[str, Any] = {
        **dim_params,
        "ep_start": [sql_time(a.start) for a in episodes],
        "ep_end": [sql_time(a.end) for a in episodes],
        "ep_metric": [a.metric for a in episodes],
        "min_start": sql_time(min(a.start for a in episodes)),
        "max_end": sql_time(max(a.end for a in episodes)),
        **{f"ep_g_{b}": [a.series[b] for a in episodes] for b in by},
    }
    for row in frame(client, calls_sql.examples_sql(by, dims, p.step), params).to_dict("records"):
        episodes[int(row["ep"]) - 1].trace_ids = [str(t) for t in row["trace_ids"]]


def _call_anomalies(client: Any, by: Sequence[str], p: Plan) -> list[Anomaly]:
    dims, dim_params = _dims(p)
    params = {**dim_params, **p.params()}
    found: list[Anomaly] = []
    for row in frame(client, calls_sql.outliers_sql(by, dims, MAX_CALL_OUTLIERS), params).to_dict("records"):
        found.append(_finding(row, by, end=row["start"], points=1, trace_ids=[str(row["trace_id"])]))
    for row in frame(client, calls_sql.storms_sql(by, dims), params).to_dict("records"):
        found.append(_finding(row, by, end=row["last"], points=int(row["storms"]), trace_ids=list(row["trace_ids"])))
    return found


def _finding(row: dict[str, Any], by: Sequence[str], end: Any, points: int, trace_ids: list[Any]) -> Anomaly:
    score = _num(row["score"]) or 0.0
    return Anomaly(
        kind=str(row["kind"]),
        metric=str(row["metric"]),
        series=_series(row, by),
        start=_dt(row["start"]),
        end=_dt(end),
        observed=_num(row["observed"]),
        expected=_num(row["expected"]),
        score=score,
        severity=_severity(score),
        direction="up",
        points=points,
        trace_ids=[str(t) for t in trace_ids],
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
