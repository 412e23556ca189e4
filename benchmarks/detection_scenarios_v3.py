"""A third, held-out traffic generator for judging anomaly detection (issue #12, item 6).

Written apart from the detector and from the v2 generator: fifteen days (eight of history, then the
judged week) of GenAI calls for a dozen services x models x providers, drawn call by call with
numpy and written into ``otel_traces`` as a Collector would (so ``llm_calls`` is filled by the
project's own materialized view).

Traffic: per-minute Poisson counts around a seasonal level (business hours in New York and
Berlin with a lunch dip and quiet weekends, a Monday-morning rush; consumer apps peaking in the
evening and busier at weekends; a nightly batch job with a sharp daily peak at 02:00 UTC),
extra-Poisson spread from a gamma multiplier per 10 minutes, 0.2 to 50 calls/min per series.
Calls: lognormal input/output tokens per service, a lognormal-mixture latency (5% slow mode)
made of time to first token plus decoding at the model's speed, provider load in US daytime
and an hourly provider-wide latency wobble, TTFT on streaming calls only, provider-specific
error types and finish-reason vocabularies, error and truncation rates with hourly
overdispersion, cost from per-model prices.

Labelled incidents (5-120 minutes at random times, some service- or provider-wide, some
overlapping on one series, some on series only 12-20 hours old) and benign changes that must
not alert (a planned release with identical metrics, the nightly peak, weekends, the Monday
rush, a new series appearing) are returned with the data. Everything is reproducible from
the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from llmtrace import semconv

HISTORY_DAYS = 8  # a store holds weeks: the previous weekend is in the data
DAYS = HISTORY_DAYS + 7
MINUTES = DAYS * 1440
BLOCK_MIN = 10  # volume overdispersion: one gamma multiplier per series per 10 minutes
VOLUME_CV = 0.15
ERROR_CV = 0.3  # hourly gamma multiplier on the error rate
TRUNC_CV = 0.2
LAT_WOBBLE = 0.05  # hourly provider-wide latency multiplier, lognormal sigma
SLOW_SHARE, SLOW_FACTOR = 0.05, 3.0
KINDS = (
    "latency",
    "latency_ramp",
    "ttft",
    "errors",
    "error_ramp",
    "truncation",
    "volume_drop",
    "volume_spike",
    "tokens_shift",
    "cost",
)
PERMANENT = ("tokens_shift", "cost")


@dataclass(frozen=True)
class Model:
    provider: str
    price_in: float  # USD per 1M tokens
    price_out: float
    ttft_ms: float
    ms_per_token: float


MODELS = {
    "gpt-4o": Model("openai", 2.5, 10.0, 450, 14),
    "gpt-4o-mini": Model("openai", 0.15, 0.6, 320, 8),
    "claude-sonnet-4-5": Model("anthropic", 3.0, 15.0, 700, 18),
    "claude-haiku-4-5": Model("anthropic", 1.0, 5.0, 380, 9),
    "gemini-2.5-flash": Model("gcp.gemini", 0.3, 2.5, 340, 5),
    "mistral-large-latest": Model("mistral_ai", 2.0, 6.0, 500, 16),
    "llama-3.3-70b-versatile": Model("groq", 0.59, 0.79, 140, 3),
}
# finish reasons (stop, truncated, tool call) and error types as each provider's SDK reports them
FINISH = {
    "openai": ("stop", "length", "tool_calls"),
    "anthropic": ("end_turn", "max_tokens", "tool_use"),
    "gcp.gemini": ("STOP", "MAX_TOKENS", "STOP"),
    "mistral_ai": ("stop", "length", "tool_calls"),
    "groq": ("stop", "length", "tool_calls"),
}
ERRORS = {
    "openai": ("openai.RateLimitError", "openai.APITimeoutError", "openai.InternalServerError"),
    "anthropic": ("anthropic.RateLimitError", "anthropic.APITimeoutError", "anthropic.InternalServerError"),
    "gcp.gemini": ("google.genai.errors.ClientError", "httpx.ReadTimeout", "google.genai.errors.ServerError"),
    "mistral_ai": ("mistralai.models.SDKError", "httpx.ReadTimeout", "mistralai.models.HTTPValidationError"),
    "groq": ("groq.RateLimitError", "groq.APITimeoutError", "groq.InternalServerError"),
}
BASE_ERROR = {"openai": 0.004, "anthropic": 0.008, "gcp.gemini": 0.006, "mistral_ai": 0.01, "groq": 0.012}
OPERATION = {"gcp.gemini": "generate_content"}


@dataclass(frozen=True)
class Service:
    name: str
    profile: str  # business | consumer | batch
    tz: int  # hours east of UTC
    stream_share: float
    in_median: float
    out_median: float
    max_tokens: int
    tool_share: float
    models: tuple[str, ...]


SERVICES = (
    Service("support-chat", "consumer", -5, 0.9, 1500, 180, 1024, 0.15, ("gpt-4o-mini", "claude-haiku-4-5", "gpt-4o")),
    Service("sales-copilot", "business", -5, 0.6, 3000, 350, 1024, 0.1, ("gpt-4o", "claude-sonnet-4-5")),
    Service(
        "contract-review", "business", 1, 0.0, 12000, 700, 2048, 0.0, ("claude-sonnet-4-5", "mistral-large-latest")
    ),
    Service("ticket-triage", "business", 1, 0.0, 600, 30, 64, 0.4, ("gpt-4o-mini", "llama-3.3-70b-versatile")),
    Service("shop-assistant", "consumer", 1, 0.95, 900, 120, 512, 0.2, ("gemini-2.5-flash", "gpt-4o-mini")),
    Service("nightly-digest", "batch", 0, 0.0, 5000, 450, 1024, 0.0, ("claude-haiku-4-5", "gemini-2.5-flash")),
    Service("code-review-bot", "business", -5, 0.3, 6000, 500, 2048, 0.05, ("claude-sonnet-4-5", "gpt-4o")),
)
YOUNG_SERVICES = (
    Service("onboarding-agent", "consumer", -5, 0.8, 2200, 260, 1024, 0.3, ("gpt-4o", "claude-haiku-4-5")),
    Service("invoice-extractor", "business", 1, 0.0, 4000, 300, 1024, 0.0, ("gemini-2.5-flash", "gpt-4o-mini")),
    Service("voice-notes", "consumer", 1, 0.7, 1200, 200, 512, 0.0, ("llama-3.3-70b-versatile", "gpt-4o-mini")),
    Service("hr-helpdesk", "business", -5, 0.5, 1800, 220, 1024, 0.1, ("claude-haiku-4-5", "mistral-large-latest")),
    Service("legal-search", "business", 1, 0.2, 7000, 400, 1024, 0.0, ("claude-sonnet-4-5", "gpt-4o")),
    Service("game-npc", "consumer", -5, 1.0, 800, 90, 256, 0.0, ("llama-3.3-70b-versatile", "gemini-2.5-flash")),
)
YOUNG_INCIDENTS = 5  # the other young series is a benign new series

# hour-of-day knots (local time) of the weekday level; weekends and the Monday rush on top
_KNOTS = {
    "business": ((0, 6, 7, 8, 9, 11.5, 12, 13, 13.5, 16.5, 18, 20, 22, 24),
                 (0.06, 0.08, 0.25, 0.7, 1.0, 1.0, 0.6, 0.6, 1.0, 0.95, 0.45, 0.2, 0.1, 0.06)),
    "consumer": ((0, 2, 5, 7, 9, 12, 13, 17, 19, 21, 23, 24),
                 (0.35, 0.15, 0.1, 0.3, 0.55, 0.7, 0.75, 0.7, 0.95, 1.0, 0.6, 0.35)),
    "batch": ((0, 24), (0.25, 0.25)),
}  # fmt: skip


@dataclass
class Series:
    service: Service
    model: str
    rate: float  # calls/min at the weekday level 1.0
    p_err: float
    p_trunc: float
    first_minute: int = 0  # minutes after the scenario start when the series appears
    releases: list[tuple[int, str]] = field(default_factory=list)  # (from minute, release)

    @property
    def provider(self) -> str:
        return MODELS[self.model].provider

    @property
    def attrs(self) -> dict[str, str]:
        return {"service": self.service.name, "model": self.model, "provider": self.provider}


@dataclass(frozen=True)
class Incident:
    kind: str
    series: tuple[int, ...]
    start: int  # minute
    end: int  # minute (exclusive); the scenario end for permanent changes
    factor: float  # multiplier, or the new rate for errors/truncation
    scope: str  # series | service | provider
    young: bool = False


@dataclass(frozen=True)
class Benign:
    kind: str  # release | daily_peak | weekend | monday | new_series
    series: tuple[int, ...]
    start: int
    end: int
    metrics: tuple[str, ...] | None = None  # only alerts on these metrics count; None = any


@dataclass
class Scenario:
    seed: int
    start: datetime
    series: list[Series]
    incidents: list[Incident]
    benign: list[Benign]
    wobble: dict[str, np.ndarray]  # provider -> hourly latency multiplier

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=MINUTES)

    @property
    def judged_from(self) -> int:
        return HISTORY_DAYS * 1440

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def minute(self, when: datetime) -> float:
        return (when - self.start).total_seconds() / 60


def default_end(now: datetime | None = None) -> datetime:
    """The last Wednesday 10:00 UTC before ``now``: a fixed weekday keeps every run's week the
    same shape, and recent data stays inside the store's TTL."""
    now = now or datetime.now(timezone.utc)
    end = now.replace(hour=10, minute=0, second=0, microsecond=0)
    end -= timedelta(days=(end.weekday() - 2) % 7)
    return end if end <= now else end - timedelta(days=7)


# --------------------------------------------------------------------------- seasonality
def season(sc: Scenario, s: Series, minutes: np.ndarray) -> np.ndarray:
    """The seasonal level (1.0 = a weekday's busy hour) of series ``s`` at ``minutes``."""
    epoch_min = sc.start.timestamp() / 60 + minutes + s.service.tz * 60
    hour = (epoch_min % 1440) / 60
    weekday = ((epoch_min // 1440) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    hours, levels = _KNOTS[s.service.profile]
    level = np.interp(hour, hours, levels)
    weekend = weekday >= 5
    if s.service.profile == "business":
        level = np.where(weekend, 0.04 + 0.12 * level, level)
        level = level * np.where((weekday == 0) & (hour >= 8) & (hour < 11), 1.6, 1.0)
    elif s.service.profile == "consumer":
        level = level * np.where(weekend, 1.15, 1.0)
    else:
        level = level + np.where((hour >= 2) & (hour < 3.2), 2.75, 0.0)  # the nightly job
    return level


def load(minutes: np.ndarray, start: datetime) -> np.ndarray:
    """Provider load factor on latency: US daytime (14-23 UTC) is 20% slower."""
    hour = ((start.timestamp() / 60 + minutes) % 1440) / 60
    return 1.0 + 0.2 * np.clip(np.minimum(hour - 13, 23 - hour), 0, 1)


def expected_per_minute(sc: Scenario, i: int, with_incidents: bool = False, skip: Incident | None = None) -> np.ndarray:
    """Expected calls per minute of series ``i`` (no noise), optionally with volume incidents
    (except ``skip``)."""
    s = sc.series[i]
    m = np.arange(MINUTES, dtype=float)
    lam = s.rate * season(sc, s, m)
    lam[: s.first_minute] = 0.0
    if with_incidents:
        for inc in sc.incidents:
            if i in inc.series and inc.kind in ("volume_drop", "volume_spike") and inc is not skip:
                lam[inc.start : inc.end] *= inc.factor
    return lam


# --------------------------------------------------------------------------- scenario
def build(seed: int, end: datetime | None = None, scale: float = 1.0) -> Scenario:
    """Series, incidents and benign changes for ``seed`` (``scale`` multiplies every rate)."""
    end = end or default_end()
    if end.tzinfo is None:
        raise ValueError(f"end={end} has no time zone: pass an aware datetime, e.g. end.replace(tzinfo=timezone.utc)")
    if scale <= 0:
        raise ValueError(f"scale={scale} must be > 0 (it multiplies every series' calls per minute)")
    rng = np.random.default_rng([seed, 3])
    start = end - timedelta(minutes=MINUTES)
    series = _series(rng, scale)
    sc = Scenario(seed, start, series, [], [], {})
    sc.wobble = {p: np.exp(rng.normal(0, LAT_WOBBLE, DAYS * 24)) for p in sorted(BASE_ERROR)}
    _young_series(sc, rng, scale)
    _incidents(sc, rng)
    _benign(sc, rng)
    return sc


def _series(rng: np.random.Generator, scale: float) -> list[Series]:
    pairs = [(svc, m) for svc in SERVICES for m in svc.models[: 1 + int(rng.integers(1, len(svc.models)))]]
    rates = np.exp(np.linspace(math.log(0.2), math.log(50), len(pairs)) + rng.normal(0, 0.15, len(pairs)))
    rates = np.clip(rates, 0.2, 50)
    rng.shuffle(rates)
    out = []
    for (svc, model), rate in zip(pairs, rates, strict=True):
        if svc.profile == "batch":
            rate = min(rate, 8.0)
        p_err = BASE_ERROR[MODELS[model].provider] * math.exp(rng.normal(0, 0.3))
        p_trunc = float(rng.uniform(0.003, 0.03))
        out.append(
            Series(
                svc,
                model,
                float(rate) * scale,
                p_err,
                p_trunc,
                0,
                [(0, f"v{rng.integers(1, 4)}.{rng.integers(0, 9)}.0")],
            )
        )
    return out


def _young_series(sc: Scenario, rng: np.random.Generator, scale: float) -> None:
    """Young series (each gets an incident 12-20 h after it appears) and one new series."""
    order = rng.permutation(len(YOUNG_SERVICES))
    for n, k in enumerate(order):
        svc = YOUNG_SERVICES[k]
        model = svc.models[int(rng.integers(0, len(svc.models)))]
        first = int(rng.integers(sc.judged_from, MINUTES - 30 * 60))
        rate = float(np.exp(rng.uniform(math.log(0.5), math.log(30)))) * scale
        p_err = BASE_ERROR[MODELS[model].provider] * math.exp(rng.normal(0, 0.3))
        s = Series(svc, model, rate, p_err, float(rng.uniform(0.003, 0.03)), first, [(0, "v0.1.0")])
        sc.series.append(s)
        if n == YOUNG_INCIDENTS:
            sc.benign.append(Benign("new_series", (len(sc.series) - 1,), first, first + 360))


def _incidents(sc: Scenario, rng: np.random.Generator) -> None:
    old = [i for i, s in enumerate(sc.series) if s.first_minute == 0]
    young = [i for i, s in enumerate(sc.series) if s.first_minute > 0][:YOUNG_INCIDENTS]
    for i in young:
        at = sc.series[i].first_minute + int(rng.integers(12 * 60, 20 * 60))
        _add_incident(sc, rng, (i,), "series", at, young=True)
    deck = [str(k) for _ in range(3) for k in rng.permutation(KINDS)]  # every kind about equally often
    for n in range(22):
        scope = str(rng.choice(["series", "service", "provider"], p=[0.75, 0.15, 0.1]))
        i = int(rng.choice(old))
        if scope == "service":
            members = tuple(j for j in old if sc.series[j].service == sc.series[i].service)
        elif scope == "provider":
            members = tuple(j for j in old if sc.series[j].provider == sc.series[i].provider)
        else:
            members = (i,)
        at = int(rng.integers(sc.judged_from + 60, MINUTES - 150))
        inc = _add_incident(sc, rng, members, scope if len(members) > 1 else "series", at, prefer=deck[n])
        if inc.kind not in PERMANENT and rng.random() < 0.2:  # an overlapping second incident
            inside = int(rng.integers(inc.start, max(inc.start + 1, inc.end - 2)))
            _add_incident(sc, rng, members, inc.scope, inside, exclude=inc.kind)


def _add_incident(
    sc: Scenario, rng: np.random.Generator, members: tuple[int, ...], scope: str, at: int,
    young: bool = False, exclude: str = "", prefer: str = "",
) -> Incident:  # fmt: skip
    kinds = [k for k in KINDS if k != exclude and not (k == "ttft" and not _streams(sc, members))]
    taken = {k for inc in sc.incidents if set(inc.series) & set(members) for k in [inc.kind] if k in PERMANENT}
    kinds = [k for k in kinds if k not in taken]
    kind = prefer if prefer in kinds else str(rng.choice(kinds))
    minutes = round(math.exp(rng.uniform(math.log(5), math.log(120))))
    end = MINUTES if kind in PERMANENT else min(at + minutes, MINUTES)
    base = max(sc.series[j].p_err if kind.startswith("error") else sc.series[j].p_trunc for j in members)
    factor = {
        "latency": lambda: math.exp(rng.uniform(math.log(1.3), math.log(8))),
        "latency_ramp": lambda: math.exp(rng.uniform(math.log(1.5), math.log(6))),
        "ttft": lambda: math.exp(rng.uniform(math.log(1.5), math.log(10))),
        "errors": lambda: base + rng.uniform(0.02, 0.6),
        "error_ramp": lambda: base + rng.uniform(0.05, 0.6),
        "truncation": lambda: base + rng.uniform(0.03, 0.5),
        "volume_drop": lambda: rng.uniform(0.0, 0.6),
        "volume_spike": lambda: math.exp(rng.uniform(math.log(1.5), math.log(8))),
        "tokens_shift": lambda: math.exp(rng.uniform(math.log(1.3), math.log(3))),
        "cost": lambda: math.exp(rng.uniform(math.log(1.3), math.log(4))),
    }[kind]()
    inc = Incident(kind, members, at, end, float(factor), scope, young)
    sc.incidents.append(inc)
    if kind == "tokens_shift":  # a new release ships the longer answers
        for j in members:
            sc.series[j].releases.append((at, f"v{len(sc.series[j].releases) + 4}.0.0"))
    return inc


def _streams(sc: Scenario, members: tuple[int, ...]) -> bool:
    return any(sc.series[j].service.stream_share > 0.2 for j in members)


def _benign(sc: Scenario, rng: np.random.Generator) -> None:
    """Planned releases with identical metrics, the nightly peak, weekends and Monday rushes."""
    old = [i for i, s in enumerate(sc.series) if s.first_minute == 0]
    for i in rng.choice(old, size=2, replace=False):
        at = int(rng.integers(sc.judged_from + 60, MINUTES - 240))
        sc.series[int(i)].releases.append((at, "v9.0.0"))
        sc.series[int(i)].releases.sort()
        sc.benign.append(Benign("release", (int(i),), at, at + 180))
    batch = tuple(i for i in old if sc.series[i].service.profile == "batch")
    business = tuple(i for i in old if sc.series[i].service.profile == "business")
    for day in range(HISTORY_DAYS, DAYS):
        peak = day * 1440 + (2 * 60 - _utc_minute_of_day(sc)) % 1440  # 02:00 UTC
        if batch and sc.judged_from <= peak < MINUTES:
            sc.benign.append(Benign("daily_peak", batch, peak - 10, peak + 120))  # mix shifts count too
    for i in business:
        s = sc.series[i]
        m = np.arange(sc.judged_from, MINUTES)
        epoch_min = sc.start.timestamp() / 60 + m + s.service.tz * 60
        weekday = ((epoch_min // 1440) + 3) % 7
        hour = (epoch_min % 1440) / 60
        _windows(sc, "weekend", (i,), m[(weekday >= 5) | ((weekday == 4) & (hour >= 16))])
        _windows(sc, "monday", (i,), m[(weekday == 0) & (hour >= 6) & (hour < 13)])


def _utc_minute_of_day(sc: Scenario) -> int:
    return int(sc.start.timestamp() // 60 % 1440)


def _windows(sc: Scenario, kind: str, members: tuple[int, ...], minutes: np.ndarray) -> None:
    if not len(minutes):
        return
    breaks = np.flatnonzero(np.diff(minutes) > 1)
    for lo, hi in zip(np.r_[0, breaks + 1], np.r_[breaks, len(minutes) - 1], strict=True):
        sc.benign.append(Benign(kind, members, int(minutes[lo]), int(minutes[hi]) + 1, ("calls",)))


# --------------------------------------------------------------------------- calls
@dataclass
class Mods:
    """Per-call effects of incidents (multipliers, or the failure/truncation probability)."""

    decode: np.ndarray
    ttft: np.ndarray
    tokens: np.ndarray
    cost: np.ndarray
    p_err: np.ndarray
    p_trunc: np.ndarray

    @classmethod
    def neutral(cls, n: int, p_err: np.ndarray | float, p_trunc: np.ndarray | float) -> Mods:
        ones = np.ones(n)
        return cls(ones.copy(), ones.copy(), ones.copy(), ones.copy(), ones * p_err, ones * p_trunc)


def apply(inc: Incident, t: np.ndarray, mods: Mods) -> None:
    """Add incident ``inc``'s effect on calls at minutes ``t`` (volume incidents act per minute)."""
    inside = (t >= inc.start) & (t < inc.end)
    ramp = np.clip((t - inc.start) / max(inc.end - inc.start, 1), 0.0, 1.0) * inside
    f = inc.factor
    if inc.kind == "latency":
        mods.decode[inside] *= f
    elif inc.kind == "latency_ramp":
        mods.decode *= 1 + (f - 1) * ramp
    elif inc.kind == "ttft":
        mods.ttft[inside] *= f
    elif inc.kind == "tokens_shift":
        mods.tokens[inside] *= f
    elif inc.kind == "cost":
        mods.cost[inside] *= f
    elif inc.kind == "errors":
        mods.p_err[inside] = np.maximum(mods.p_err[inside], f)
    elif inc.kind == "error_ramp":
        mods.p_err = np.where(inside, np.maximum(mods.p_err, mods.p_err + (f - mods.p_err) * ramp), mods.p_err)
    elif inc.kind == "truncation":
        mods.p_trunc[inside] = np.maximum(mods.p_trunc[inside], f)


def draw(s: Series, t: np.ndarray, mods: Mods, speed: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per call at minutes ``t``; ``speed`` is the latency load multiplier per call.

    Failed calls carry no tokens, cost or finish reason; ``ttft_ms`` is NaN except on
    successful streams; ``finish`` is 0 stop, 1 truncated, 2 tool call, -1 failed.
    """
    n, model, svc = len(t), MODELS[s.model], s.service
    failed = rng.random(n) < mods.p_err
    err = np.where(failed, rng.choice(3, size=n, p=(0.5, 0.2, 0.3)), -1)
    trunc = ~failed & (rng.random(n) < mods.p_trunc)
    tool = ~failed & ~trunc & (rng.random(n) < svc.tool_share)
    stream = rng.random(n) < svc.stream_share
    in_tok = np.maximum(5, np.round(svc.in_median * np.exp(rng.normal(0, 0.6, n))))
    out = svc.out_median * np.exp(rng.normal(0, 0.55, n)) * mods.tokens * np.where(tool, 0.3, 1.0)
    out = np.where(trunc, svc.max_tokens, np.clip(np.round(out), 1, svc.max_tokens - 1))
    slow = np.where(rng.random(n) < SLOW_SHARE, SLOW_FACTOR * np.exp(rng.normal(0, 0.4, n)), 1.0)
    first = model.ttft_ms * np.exp(rng.normal(0, 0.3, n)) * speed * slow * mods.ttft
    decode = out * model.ms_per_token * np.exp(rng.normal(0, 0.2, n)) * speed * slow * mods.decode
    failed_ms = np.choose(
        np.maximum(err, 0), (rng.uniform(50, 300, n), rng.uniform(30e3, 60e3, n), rng.uniform(200, 2e3, n))
    )
    cost = (in_tok * model.price_in + out * model.price_out) / 1e6 * mods.cost
    return {
        "t": t,
        "failed": failed,
        "err": err,
        "stream": stream,
        "ttft_ms": np.where(stream & ~failed, first, np.nan),
        "dur_ms": np.where(failed, failed_ms, first + decode),
        "in_tok": np.where(failed, 0, in_tok),
        "out_tok": np.where(failed, 0, out),
        "cost": np.where(failed, np.nan, cost),
        "finish": np.where(failed, -1, np.where(trunc, 1, np.where(tool, 2, 0))),
    }


def speed(sc: Scenario, s: Series, t: np.ndarray) -> np.ndarray:
    hour = np.clip((t // 60).astype(int), 0, DAYS * 24 - 1)
    return load(t, sc.start) * sc.wobble[s.provider][hour]


def series_calls(sc: Scenario, i: int) -> dict[str, np.ndarray]:
    """Every call of series ``i``, in time order (reproducible from the seed and ``i``)."""
    s, rng = sc.series[i], np.random.default_rng([sc.seed, 7, i])
    lam = expected_per_minute(sc, i, with_incidents=True)
    k = 1 / VOLUME_CV**2
    blocks = np.repeat(rng.gamma(k, 1 / k, MINUTES // BLOCK_MIN), BLOCK_MIN)
    counts = rng.poisson(lam * blocks)
    t = np.repeat(np.arange(MINUTES, dtype=float), counts) + rng.random(int(counts.sum()))
    hour = (t // 60).astype(int)
    p_err = s.p_err * rng.gamma(1 / ERROR_CV**2, ERROR_CV**2, DAYS * 24)[hour]
    p_trunc = s.p_trunc * rng.gamma(1 / TRUNC_CV**2, TRUNC_CV**2, DAYS * 24)[hour]
    mods = Mods.neutral(len(t), p_err, p_trunc)
    for inc in sc.incidents:
        if i in inc.series:
            apply(inc, t, mods)
    cols = draw(s, t, mods, speed(sc, s, t), rng)
    starts = [m for m, _ in s.releases]
    cols["release"] = np.searchsorted(starts, t, side="right") - 1
    return cols


# --------------------------------------------------------------------------- storage
_STAGE = (
    ("ns", "Int64"), ("si", "UInt16"), ("dur_us", "UInt64"), ("ttft_us", "Int64"), ("itok", "UInt32"),
    ("otok", "UInt32"), ("cost", "Float64"), ("failed", "UInt8"), ("stream", "UInt8"), ("rel", "UInt16"),
    ("fin", "UInt16"), ("err", "UInt16"),
)  # fmt: skip
_KEYS = [
    semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.REQUEST_MODEL, semconv.RESPONSE_MODEL,
    semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS, semconv.COST_USD, semconv.REQUEST_STREAM,
    semconv.RESPONSE_TIME_TO_FIRST_CHUNK, semconv.RESPONSE_FINISH_REASONS, semconv.RELEASE, semconv.SESSION_ID,
    semconv.ERROR_TYPE,
]  # fmt: skip
_TRANSFORM = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage)
WITH
    {service:Array(String)}[si + 1] AS service,
    {model:Array(String)}[si + 1] AS model,
    {provider:Array(String)}[si + 1] AS provider,
    {operation:Array(String)}[si + 1] AS op,
    {names:Array(String)}[rel + 1] AS release,
    {names:Array(String)}[err + 1] AS error_type,
    (k) -> leftPad(lower(hex(cityHash64({seed:UInt64}, ns, si, k))), 16, '0') AS id
SELECT
    fromUnixTimestamp64Nano(ns), concat(id('t1'), id('t2')), id('s'), '', concat(op, ' ', model), 'Client',
    service,
    map({r_service:String}, service, {r_env:String}, 'production', {r_version:String}, release),
    'llmtrace.benchmarks.v3',
    mapFilter((k, v) -> v != '', mapFromArrays({keys:Array(String)}, [
        op, provider, model, if(failed, '', model),
        if(failed, '', toString(itok)), if(failed, '', toString(otok)), if(isNaN(cost), '', toString(cost)),
        if(stream, 'true', ''), if(ttft_us >= 0, toString(ttft_us / 1e6), ''),
        if(failed, '', concat('["', {names:Array(String)}[fin + 1], '"]')), release,
        concat('sess-', toString(cityHash64({seed:UInt64}, ns) % 20000)), error_type])),
    dur_us * 1000, if(failed, 'Error', 'Unset'), if(failed, error_type, '')
FROM v3_stage
"""


def insert(client: Any, sc: Scenario) -> int:
    """Write every call of ``sc`` into ``otel_traces``; return the number of calls.

    Calls go through a staging table (numbers only) and one INSERT ... SELECT that builds the
    span rows, so the project's materialized views fill ``llm_calls`` as for any Collector.
    """
    names = [""]
    index: dict[str, int] = {"": 0}

    def code(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    client.command(f"CREATE TABLE v3_stage ({', '.join(f'{n} {t}' for n, t in _STAGE)}) ENGINE = Memory")
    total = 0
    try:
        for i, s in enumerate(sc.series):
            cols = series_calls(sc, i)
            total += len(cols["t"])
            client.insert("v3_stage", _stage_rows(sc, i, s, cols, code), column_names=[n for n, _ in _STAGE])
        client.command(_TRANSFORM, parameters=_transform_params(sc, names))
    finally:
        client.command("DROP TABLE IF EXISTS v3_stage")
    return total


def _stage_rows(sc: Scenario, i: int, s: Series, cols: dict[str, np.ndarray], code: Any) -> list[tuple[Any, ...]]:
    start_ns = int(sc.start.timestamp()) * 1_000_000_000
    rel = np.array([code(r) for _, r in s.releases])[cols["release"]]
    fin = np.array([code(f) for f in FINISH[s.provider]] + [0])[cols["finish"]]
    err = np.array([code(e) for e in ERRORS[s.provider]] + [0])[cols["err"]]
    ttft = np.where(np.isnan(cols["ttft_ms"]), -1, np.round(np.nan_to_num(cols["ttft_ms"]) * 1000))
    columns = (
        start_ns + np.round(cols["t"] * 60e9).astype(np.int64), np.full(len(cols["t"]), i),
        np.round(cols["dur_ms"] * 1000).astype(np.int64), ttft.astype(np.int64), cols["in_tok"].astype(np.int64),
        cols["out_tok"].astype(np.int64), cols["cost"], cols["failed"].astype(int), cols["stream"].astype(int),
        rel, fin, err,
    )  # fmt: skip
    return list(zip(*(c.tolist() for c in columns), strict=True))


def _transform_params(sc: Scenario, names: list[str]) -> dict[str, Any]:
    return {
        "service": [s.service.name for s in sc.series],
        "model": [s.model for s in sc.series],
        "provider": [s.provider for s in sc.series],
        "operation": [OPERATION.get(s.provider, semconv.OP_CHAT) for s in sc.series],
        "names": names,
        "seed": sc.seed,
        "keys": _KEYS,
        "r_service": semconv.SERVICE_NAME,
        "r_env": semconv.DEPLOYMENT_ENVIRONMENT_NAME,
        "r_version": semconv.SERVICE_VERSION,
    }
