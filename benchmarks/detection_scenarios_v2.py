"""A second, independent traffic generator for the detection benchmark (issue 12).

Written before the v2 detector was tuned and deliberately unlike ``llmtrace.analytics.synthetic``:

* seasonality: business-hours double peak (morning and afternoon, lunch dip, quiet nights)
  with a per-series timezone offset, and weekends (local days) at 35-60% of weekday business hours;
* rates from 0.2 to 50 calls per minute (log-uniform), some series young (first call 12 h to
  4 days before the end), all with slow non-stationarity: an hourly random walk of the
  latency and token levels and day-to-day error-rate wobble (beta noise);
* incidents of 5-120 minutes at uniformly random times (nights and weekends included), on one
  series, a whole service or a whole provider, sometimes overlapping another incident,
  some as slow ramps; a persistent output-token shift with a new release;
* benign changes that must not alert: a planned release (new ``Release`` value, unchanged
  behaviour), the daily peak and the weekend.

Calls are drawn inside ClickHouse from a per-minute plan table (one row per series and
minute with the rate and every multiplier), so a week of a million calls takes seconds.
The truth (:class:`Incident`) records what each incident does and to which series.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

PROVIDERS = {
    "openai": (("gpt-4o-mini", "gpt-4.1"), ("stop", "length")),
    "anthropic": (("claude-haiku-4-5", "claude-sonnet-4-6"), ("end_turn", "max_tokens")),
    "google": (("gemini-2.5-flash",), ("STOP", "MAX_TOKENS")),
}
SERVICES = ("chat-api", "search", "agent", "summarizer", "extractor", "copilot")
KINDS = (
    "latency",
    "latency_ramp",
    "errors",
    "volume_drop",
    "volume_spike",
    "ttft",
    "truncation",
    "tokens_shift",
    "cost",
)
# the per-minute plan columns each kind multiplies (factor) or sets (rate)
_FIELD = {
    "latency": "lat",
    "latency_ramp": "lat",
    "ttft": "ttft",
    "volume_drop": "rate",
    "volume_spike": "rate",
    "tokens_shift": "tok",
    "cost": "cost",
    "errors": "err",
    "truncation": "trunc",
}
MINUTE = 60


@dataclass
class SeriesV2:
    service: str
    provider: str
    model: str
    rate: float  # weekday mean calls per minute
    first_minute: int  # minute index of the first call (young series start late)
    lat_ms: float
    lat_sigma: float
    stream_share: float
    err: float
    trunc: float
    out_tokens: float
    price: float  # USD per output token (input folded in)
    tz: int  # hours added to UTC for its business day
    weekend: float


@dataclass
class Incident:
    kind: str
    series: list[int]  # indices into Scenario.series
    start: datetime
    end: datetime
    factor: float  # multiplier (latency, ttft, tokens, cost, volume) or the new rate (errors, truncation)
    scope: str  # series | service | provider


@dataclass
class ScenarioV2:
    seed: int
    end: datetime
    days: int
    series: list[SeriesV2]
    incidents: list[Incident] = field(default_factory=list)
    releases: list[tuple[int, datetime]] = field(default_factory=list)  # benign planned releases

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def minute(self, t: datetime) -> int:
        return int((t - self.start).total_seconds()) // MINUTE


def _profile(hours: np.ndarray, tz: int, weekend: np.ndarray | float = 1.0) -> np.ndarray:
    """Business-hours shape, mean ~1 on weekdays: peaks near 10:00 and 15:00 local, lunch dip,
    quiet night. ``weekend`` scales the business-hours part only (nights look alike)."""
    h = (hours + tz) % 24
    morning = np.exp(-0.5 * ((h - 10) / 1.6) ** 2)
    afternoon = 0.9 * np.exp(-0.5 * ((h - 15) / 2.0) ** 2)
    return (0.25 + 1.4 * (morning + afternoon) * weekend) / 0.95


def _series(rng: np.random.Generator, count: int, minutes: int) -> list[SeriesV2]:
    out = []
    for i in range(count):
        provider = list(PROVIDERS)[i % 3] if i < 3 else str(rng.choice(list(PROVIDERS)))
        models = PROVIDERS[provider][0]
        young = rng.random() < 0.3
        first = int(minutes - rng.uniform(12 * 60 + 180, 4 * 1440)) if young else 0
        out.append(
            SeriesV2(
                service=SERVICES[int(rng.integers(0, 4)) if i >= 4 else i],
                provider=provider,
                model=str(models[int(rng.integers(0, len(models)))]),
                rate=float(math.exp(rng.uniform(math.log(0.2), math.log(50)))),
                first_minute=max(0, first),
                lat_ms=float(rng.uniform(400, 4000)),
                lat_sigma=float(rng.uniform(0.3, 0.6)),
                stream_share=float(rng.choice([0.0, 0.4, 1.0])),
                err=float(math.exp(rng.uniform(math.log(0.002), math.log(0.03)))),
                trunc=float(math.exp(rng.uniform(math.log(0.005), math.log(0.05)))),
                out_tokens=float(rng.uniform(80, 900)),
                price=float(rng.uniform(2e-7, 2e-5)),
                tz=int(rng.integers(-8, 9)),
                weekend=float(rng.uniform(0.35, 0.6)),
            )
        )
    # (service, model) must be unique: a clash becomes the provider's other model or a new service
    seen: set[tuple[str, str]] = set()
    for s in out:
        while (s.service, s.model) in seen:
            s.service = SERVICES[(SERVICES.index(s.service) + 1) % len(SERVICES)]
        seen.add((s.service, s.model))
    return out


def _incidents(rng: np.random.Generator, sc: ScenarioV2, minutes: int, per_series_week: float) -> list[Incident]:
    out: list[Incident] = []
    judge_from = minutes - 7 * 1440
    for index, s in enumerate(sc.series):
        earliest = max(judge_from, s.first_minute + 12 * 60)
        count = int(rng.poisson(per_series_week * (minutes - earliest) / (7 * 1440)))
        for _ in range(count):
            kind = str(rng.choice(KINDS))
            if kind == "ttft" and s.stream_share == 0:
                kind = "latency"
            duration = int(rng.choice([5, 10, 15, 20, 30, 45, 60, 90, 120]))
            if kind == "latency_ramp":
                duration = max(duration, 45)
            begin = int(rng.integers(earliest, minutes - duration - 10))
            scope, members = "series", [index]
            roll = rng.random()
            if roll < 0.15 and kind not in ("tokens_shift",):
                members = [j for j, o in enumerate(sc.series) if o.service == s.service and o.first_minute <= begin]
                scope = "service"
            elif roll < 0.22 and kind not in ("tokens_shift",):
                members = [j for j, o in enumerate(sc.series) if o.provider == s.provider and o.first_minute <= begin]
                scope = "provider"
            start = sc.start + timedelta(minutes=begin)
            end = sc.end if kind == "tokens_shift" else start + timedelta(minutes=duration)
            out.append(Incident(kind, members, start, end, _factor(rng, kind, s), scope))
            if rng.random() < 0.15:  # an overlapping second incident of another kind on the same series
                other = str(rng.choice(("latency", "errors", "volume_drop")))
                shift = timedelta(minutes=int(rng.integers(0, duration // 2 + 1)))
                span = timedelta(minutes=int(rng.choice([10, 20, 40])))
                out.append(
                    Incident(other, [index], start + shift, start + shift + span, _factor(rng, other, s), "series")
                )
    return out


def _factor(rng: np.random.Generator, kind: str, s: SeriesV2) -> float:
    if kind in ("latency", "latency_ramp"):
        return float(rng.uniform(1.3, 6))
    if kind == "ttft":
        return float(rng.uniform(1.5, 10))
    if kind == "volume_drop":
        return float(rng.uniform(0.0, 0.5))
    if kind == "volume_spike":
        return float(rng.uniform(1.8, 6))
    if kind in ("tokens_shift", "cost"):
        return float(rng.uniform(1.4, 3))
    if kind == "errors":
        return float(min(0.9, s.err + rng.uniform(0.03, 0.6)))
    return float(min(0.9, s.trunc + rng.uniform(0.05, 0.5)))


def build(seed: int, end: datetime, series: int = 10, days: int = 8, per_series_week: float = 4.0) -> ScenarioV2:
    """A scenario ending at ``end`` (floored to the minute): ``days`` of traffic, the last 7 judged."""
    rng = np.random.default_rng(seed)
    end = end.replace(second=0, microsecond=0)
    minutes = days * 1440
    sc = ScenarioV2(seed, end, days, [])
    sc.series = _series(rng, series, minutes)
    sc.incidents = _incidents(rng, sc, minutes, per_series_week)
    for index, s in enumerate(sc.series):
        if rng.random() < 0.5:  # a planned, harmless release
            sc.releases.append(
                (index, sc.start + timedelta(minutes=int(rng.integers(max(s.first_minute, 1440), minutes - 60))))
            )
    return sc


def plan(sc: ScenarioV2) -> dict[str, np.ndarray]:
    """Per series and minute: rate and multipliers, with incidents and noise applied."""
    rng = np.random.default_rng(sc.seed + 7919)
    minutes = sc.days * 1440
    t = np.arange(minutes)
    stamps = np.array([sc.start + timedelta(minutes=int(m)) for m in range(0, minutes, 60)])
    # weekday in each series' own timezone (below): its weekend starts at its local midnight
    weekday_utc_hours = np.repeat([d.weekday() * 24 + d.hour for d in stamps], 60)[:minutes]
    hours = ((np.repeat([d.hour for d in stamps], 60)[:minutes]) + (t % 60) / 60.0).astype(float)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("series", "minute", "rate", "lat", "ttft", "tok", "cost", "err", "trunc", "release", "calls")
    }
    hourly = minutes // 60 + 1
    for index, s in enumerate(sc.series):
        weekday = ((weekday_utc_hours + s.tz) % (7 * 24)) // 24
        rate = s.rate * _profile(hours, s.tz, np.where(weekday >= 5, s.weekend, 1.0))
        rate = np.where(t >= s.first_minute, rate, 0.0)
        walk = np.repeat(np.cumsum(rng.normal(0, 0.03, hourly)).clip(-0.25, 0.25), 60)[:minutes]
        wobble = np.repeat(rng.normal(0, 0.06, hourly), 60)[:minutes]  # hour-to-hour load noise
        lat = np.exp(walk + wobble)
        tok = np.exp(np.repeat(np.cumsum(rng.normal(0, 0.02, hourly)).clip(-0.2, 0.2), 60)[:minutes])
        daily_err = np.repeat(rng.beta(20, 20 * (1 - s.err) / s.err, minutes // 1440 + 1), 1440)[:minutes]
        vals = {
            "rate": rate,
            "lat": lat,
            "ttft": lat.copy(),
            "tok": tok,
            "cost": np.ones(minutes),
            "err": daily_err,
            "trunc": np.full(minutes, s.trunc),
        }
        for inc in sc.incidents:
            if index not in inc.series:
                continue
            a, b = sc.minute(inc.start), min(minutes, sc.minute(inc.end))
            name = _FIELD[inc.kind]
            if inc.kind == "latency_ramp":
                vals[name][a:b] *= 1 + (inc.factor - 1) * np.linspace(0, 1, b - a)
            elif name in ("err", "trunc"):
                vals[name][a:b] = np.maximum(vals[name][a:b], inc.factor)
            else:
                vals[name][a:b] *= inc.factor
                if inc.kind == "tokens_shift":
                    vals["cost"][a:b] *= inc.factor
        release = np.zeros(minutes)
        for r_index, at in sc.releases:
            if r_index == index:
                release[sc.minute(at) :] += 1
        for inc in sc.incidents:
            if inc.kind == "tokens_shift" and index in inc.series:
                release[sc.minute(inc.start) :] += 1
        calls = rng.poisson(vals["rate"])
        for k, v in (
            ("series", np.full(minutes, index)),
            ("minute", t),
            ("release", release),
            *vals.items(),
            ("calls", calls),
        ):
            cols[k].append(v)
    return {k: np.concatenate(v) for k, v in cols.items()}


_PLAN_DDL = """CREATE TABLE IF NOT EXISTS bench_plan_v2 (series UInt16, minute UInt32, rate Float64,
    lat Float64, ttft Float64, tok Float64, cost Float64, err Float64, trunc Float64, release UInt16, calls UInt32)
    ENGINE = Memory"""

_CALLS = """
INSERT INTO llm_calls (Timestamp, TraceId, SpanId, SpanName, ServiceName, Environment, Release, Provider, Operation,
    RequestModel, ResponseModel, InputTokens, OutputTokens, TotalTokens, CostUsd, CostStatus, DurationUs, TtftUs,
    IsStream, FinishReasons, FinishReason, StatusCode, IsError, ErrorType, SessionId)
SELECT ts, lower(hex(randomString(16))), lower(hex(randomString(8))), concat('chat ', model), service, 'prod',
    concat('v1.', toString(p.release)), provider, 'chat', model, model,
    toUInt64(200 + 100 * rand(1) % 400), outp, 0, if(e, NULL, outp * {price} * p.cost), if(e, 'unknown', 'priced'),
    toUInt64(dur * 1000),
    if(stream AND NOT e, toUInt64(dur * 1000 * (0.15 + 0.1 * (rand(2) / 4294967296.0)) * p.ttft / p.lat), NULL),
    stream, if(e, [], [fin]), if(e, '', fin), if(e, 'Error', 'Unset'), e, if(e, 'RateLimitError', ''), ''
FROM (
    -- random draws one level above the arrayJoin: in the same SELECT they would be drawn once per minute
    SELECT *,
        {{start:DateTime64(6, 'UTC')}} + toIntervalMillisecond(toUInt64(minute * 60000 + rand(4) % 60000)) AS ts,
        ['{services}'][series + 1] AS service, ['{providers}'][series + 1] AS provider,
        ['{models}'][series + 1] AS model,
        (rand(5) / 4294967296.0 < err) AS e,
        exp(log([{lat_ms}][series + 1]) + [{sigma}][series + 1] * _N(6, 16)) * lat AS dur,
        (rand(7) / 4294967296.0 < [{stream}][series + 1]) AS stream,
        if((rand(8) / 4294967296.0 < trunc), [{fin_len}][series + 1], [{fin_stop}][series + 1]) AS fin,
        if(e, 0, toUInt64(greatest(1, [{tokens}][series + 1] * tok * exp(0.4 * _N(9, 19))))) AS outp
    FROM (SELECT *, arrayJoin(range(calls)) AS j FROM bench_plan_v2 WHERE calls > 0)
) AS p
"""


def _normal_sql(a: int, b: int) -> str:
    """A standard normal draw from two uniform ones (Box-Muller); each rand(k) becomes a hash draw."""
    return f"(sqrt(-2 * log((rand({a}) + 1) / 4294967297.0)) * cos(2 * pi() * rand({b}) / 4294967296.0))"


def insert(client: Any, sc: ScenarioV2) -> int:
    """Write the scenario's calls into ``llm_calls`` (the rollups follow by their views)."""
    cols = plan(sc)
    client.command(_PLAN_DDL)
    client.command("TRUNCATE TABLE bench_plan_v2")
    names = list(cols)
    rows = list(zip(*(cols[n].tolist() for n in names), strict=True))
    client.insert(
        "bench_plan_v2", [(int(r[0]), int(r[1]), *r[2:9], int(r[9]), int(r[10])) for r in rows], column_names=names
    )

    def arr(values: list[Any]) -> str:
        return ", ".join(repr(float(v)) for v in values)

    def strs(values: list[str]) -> str:
        return "', '".join(values)

    with_normals = re.sub(r"_N\((\d+), (\d+)\)", lambda m: _normal_sql(int(m[1]), int(m[2])), _CALLS)
    # per-call draws from a hash of (seed, series, minute, call, stream): the same seed gives the same calls
    with_normals = re.sub(
        r"rand\((\d+)\)", lambda m: f"(cityHash64({sc.seed}, series, minute, j, {m[1]}) % 4294967296)", with_normals
    )
    sql = with_normals.format(
        price="[" + arr([s.price for s in sc.series]) + "][series + 1]",
        services=strs([s.service for s in sc.series]),
        providers=strs([s.provider for s in sc.series]),
        models=strs([s.model for s in sc.series]),
        lat_ms=arr([s.lat_ms for s in sc.series]),
        sigma=arr([s.lat_sigma for s in sc.series]),
        stream=arr([s.stream_share for s in sc.series]),
        fin_len="'" + strs([PROVIDERS[s.provider][1][1] for s in sc.series]) + "'",
        fin_stop="'" + strs([PROVIDERS[s.provider][1][0] for s in sc.series]) + "'",
        tokens=arr([s.out_tokens for s in sc.series]),
    )
    client.command(sql, parameters={"start": sc.start.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")})
    client.command("DROP TABLE bench_plan_v2")
    return int(client.command("SELECT count() FROM llm_calls") or 0)


def expected_calls(sc: ScenarioV2, index: int, start: datetime, end: datetime) -> float:
    """Calls the series would have made in [start, end) without incidents (for effect sizes)."""
    s = sc.series[index]
    minutes = np.arange(sc.minute(start), sc.minute(end))
    stamps = [sc.start + timedelta(minutes=int(m)) for m in minutes]
    hours = np.array([d.hour + d.minute / 60 for d in stamps])
    weekend = np.array([s.weekend if (d + timedelta(hours=s.tz)).weekday() >= 5 else 1.0 for d in stamps])
    alive = minutes >= s.first_minute
    return float(np.sum(s.rate * _profile(hours, s.tz, weekend) * alive))


def default_end() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0)
