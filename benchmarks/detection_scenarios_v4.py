"""A fourth, held-out traffic generator for judging anomaly detection (issue 12, item 6).

Written apart from the detector (its code never read) and from the v2/v3 generators, to look
like a stranger's production rather than like anything the detector was tuned on:

* services in several time zones (UTC-8 to UTC+9), each with its own daily shape: office hours
  with a lunch dip and 4% nights, consumer evenings with busier weekends, a flat 24/7 API, and
  batch jobs that fire cron bursts at :00 and :30 (3-8 minutes at 10-50 calls/min) over a trickle;
* peak rates log-uniform from 0.3 to 50 calls/min per series (night rates far lower), traffic
  over-dispersed by a gamma factor per 10 minutes;
* calls are streamed or not per series (0-100% streams); a call's duration is time to first
  token plus output tokens at the model's speed; both come from log-normal mixtures whose
  tail weight and width belong to the model; providers' latency wobbles hour to hour and rises
  with their own busy hours;
* 429s and 5xx at a background rate that wobbles hourly; batch series run into a per-minute rate
  limit during their bursts (429s); every 429 is retried in the same trace 1-30 s later (up to
  three times), so rate-limit storms also raise the call volume;
* labelled benign changes: a holiday-like quiet local day for one region, weekends, mornings,
  cron bursts, plain releases, prompt-version releases that change output tokens on purpose,
  model migrations (traffic moves from one model to another over 30 minutes), new series (one
  12-47 h before the judged week, one during it);
* incidents of 11 kinds (``KINDS``), 5-120 minutes at uniformly random times, on one series, a
  service or a whole provider, some overlapping another, some on series 12-48 h old; output
  tokens and cost shift from a point on (``PERMANENT``).

Everything random comes from the seed; :func:`calls` is the one place calls are drawn, so the
benchmark's effect sizes (Monte Carlo over :func:`calls`) use exactly the generator's noise.
Spans go into ``otel_traces`` (the project's views derive ``llm_calls``) via :func:`insert`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

DAYS, JUDGED_DAYS = 9, 7
MINUTES = DAYS * 1440
HOURS = MINUTES // 60
BLOCK_MIN = 10  # the gamma volume factor is drawn per 10 minutes
END_ANCHOR = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc)
KINDS = (
    "latency",
    "latency_ramp",
    "ttft",
    "errors_429",
    "errors_5xx",
    "truncation",
    "empty_output",
    "volume_drop",
    "volume_spike",
    "tokens_shift",
    "cost",
)
PERMANENT = ("tokens_shift", "cost")
RATE_KINDS = ("errors_429", "errors_5xx", "truncation", "empty_output")
VOLUME_KINDS = ("volume_drop", "volume_spike")
PROVIDER_KINDS = ("latency", "latency_ramp", "ttft", "errors_429", "errors_5xx")
RETRIES, RETRY_P = 3, 0.8
OK, RATE_LIMITED, SERVER_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    ttft_ms: float  # median time to first token
    tail_w: float  # share of calls in the slow component
    tail_x: float  # slow component's median, as a multiple of ttft_ms
    speed: float  # output tokens per second
    price_in: float  # USD per input token
    price_out: float  # USD per output token


MODELS = {
    m.name: m
    for m in (
        Model("gpt-4o-mini", "openai", 380, 0.03, 4.0, 95, 0.15e-6, 0.6e-6),
        Model("gpt-4.1", "openai", 650, 0.05, 3.5, 60, 2e-6, 8e-6),
        Model("o4-mini", "openai", 2600, 0.12, 3.0, 110, 1.1e-6, 4.4e-6),
        Model("claude-haiku-4-5", "anthropic", 450, 0.04, 3.0, 120, 1e-6, 5e-6),
        Model("claude-sonnet-4-6", "anthropic", 900, 0.07, 2.5, 55, 3e-6, 15e-6),
        Model("gemini-2.5-flash", "gcp.gemini", 420, 0.06, 5.0, 150, 0.3e-6, 2.5e-6),
        Model("gemini-2.5-pro", "gcp.gemini", 1400, 0.08, 3.0, 70, 1.25e-6, 10e-6),
        Model("mistral-large-latest", "mistral_ai", 550, 0.05, 3.0, 65, 2e-6, 6e-6),
    )
}
# provider -> (normal finish, cut at max tokens, 429 error type, 5xx error type)
VOCAB = {
    "openai": ("stop", "length", "openai.RateLimitError", "openai.InternalServerError"),
    "anthropic": ("end_turn", "max_tokens", "anthropic.RateLimitError", "anthropic.InternalServerError"),
    "gcp.gemini": ("STOP", "MAX_TOKENS", "google.genai.errors.ClientError", "google.genai.errors.ServerError"),
    "mistral_ai": ("stop", "length", "mistralai.models.SDKError", "mistralai.models.SDKError"),
}
PROVIDER_BUSY_UTC = {"openai": 17.0, "anthropic": 16.0, "gcp.gemini": 3.0, "mistral_ai": 10.0}
SHAPES = ("office", "consumer", "flat", "batch")
TZS = (-8, -5, 0, 1, 5.5, 8, 9)
NAMES = {
    "office": ("crm-assist", "ticket-triage", "legal-review", "sales-email"),
    "consumer": ("chat-app", "tutor", "recipes"),
    "flat": ("search-api", "moderation", "translate"),
    "batch": ("nightly-etl", "doc-indexer", "report-gen"),
}


@dataclass(frozen=True)
class Service:
    name: str
    shape: str
    tz: float  # hours added to UTC for local time
    weekend: float  # weekend level relative to weekdays
    burst_len: int  # batch: minutes each cron burst lasts


@dataclass
class Series:
    """One (service, model) stream of calls."""

    service: Service
    model: str
    rate: float  # calls per minute at the daily peak of a weekday
    first_minute: int = 0
    last_minute: int = MINUTES  # after a migration the old model's traffic is gone
    stream_share: float = 0.5
    p429: float = 0.002
    p5xx: float = 0.002
    p_trunc: float = 0.01
    p_empty: float = 0.002
    in_tokens: float = 800.0
    out_tokens: float = 250.0
    max_tokens: int = 1024
    vol_cv: float = 0.2
    limit: float = math.inf  # calls per minute the provider accepts (batch series)
    releases: list[tuple[int, float]] = field(default_factory=list)  # (minute, output-token factor)

    @property
    def provider(self) -> str:
        return MODELS[self.model].provider

    @property
    def attrs(self) -> dict[str, str]:
        return {"service": self.service.name, "model": self.model, "provider": self.provider}


@dataclass
class Incident:
    kind: str
    start: int  # minute index
    end: int  # exclusive; permanent changes: the end of the scenario
    series: tuple[int, ...]
    factor: float  # multiplier (latency, ttft, volume, tokens, cost) or the rate during it
    scope: str  # series, service or provider


@dataclass
class Benign:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    metrics: tuple[str, ...] | None = None  # None: any metric


@dataclass
class Scenario:
    seed: int
    end: datetime
    series: list[Series] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    benign: list[Benign] = field(default_factory=list)
    judged_from: int = (DAYS - JUDGED_DAYS) * 1440

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=DAYS)

    def minute(self, t: datetime) -> float:
        return (t - self.start).total_seconds() / 60

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=float(minute))


# --------------------------------------------------------------------------- traffic shape
def local_hours(sc: Scenario, s: Series, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local hour of day, local weekday 0=Monday) at minute indices ``t``."""
    local = t / 60 + sc.start.hour + sc.start.minute / 60 + s.service.tz
    return local % 24, (sc.start.weekday() + local // 24) % 7


def profile(sc: Scenario, s: Series, t: np.ndarray) -> np.ndarray:
    """Relative traffic level (1 = weekday peak) of the series' service at minutes ``t``."""
    h, day = local_hours(sc, s, t)
    shape, weekend = s.service.shape, day >= 5
    if shape == "office":
        level = 0.04 + np.exp(-(((h - 10.5) / 2.0) ** 2)) + 0.9 * np.exp(-(((h - 15.0) / 2.0) ** 2))
        level = np.minimum(level, 1.0)
    elif shape == "consumer":
        level = 0.08 + 0.92 * np.exp(-(((h - 20.5) / 2.5) ** 2)) + 0.3 * np.exp(-(((h - 12.5) / 2.0) ** 2))
    elif shape == "flat":
        level = 0.75 + 0.25 * np.cos(2 * np.pi * (h - 14) / 24)
    else:  # cron bursts at :00 and :30, a trickle between
        level = np.where((np.floor(t) % 30) < s.service.burst_len, 1.0, 0.03)
        return level * np.where(weekend, s.service.weekend, 1.0)
    level = level * np.where(weekend, s.service.weekend, 1.0)
    for b in sc.benign:
        if b.kind == "holiday" and s.service.tz == sc.series[b.series[0]].service.tz:
            level = np.where((t >= b.start) & (t < b.end), level * 0.25, level)
    return level


def alive(s: Series, t: np.ndarray) -> np.ndarray:
    """0-1 share of the service's traffic on this series (model migrations move it over 30 min)."""
    ramp_in = np.clip((t - s.first_minute) / 30, 0, 1) if s.first_minute > 0 else (t >= 0) * 1.0
    ramp_out = np.clip((s.last_minute - t) / 30, 0, 1) if s.last_minute < MINUTES else 1.0
    return ramp_in * ramp_out


def expected_per_minute(sc: Scenario, i: int, incidents: list[Incident] | None = None) -> np.ndarray:
    """Expected calls per minute (before retries), with the given incidents' volume factors."""
    t = np.arange(MINUTES) + 0.5
    s = sc.series[i]
    lam = s.rate * profile(sc, s, t) * alive(s, t)
    for inc in incidents or ():
        if inc.kind in VOLUME_KINDS and i in inc.series:
            lam[inc.start : inc.end] *= inc.factor
    return lam


# --------------------------------------------------------------------------- noise
@dataclass
class Noise:
    """Non-stationarity that is normal: latency per provider-hour, rates and volume per series."""

    lat: dict[str, np.ndarray]  # provider -> per-hour multiplier
    rates: np.ndarray  # (series, 4 rates, hours) multipliers of p429, p5xx, p_trunc, p_empty
    volume: np.ndarray  # (series, 10-minute blocks) gamma factors with mean 1

    @classmethod
    def draw(cls, sc: Scenario, rng: np.random.Generator) -> Noise:
        lat = {p: np.exp(rng.normal(0, 0.08, HOURS)) for p in VOCAB}
        rates = np.exp(rng.normal(-0.045, 0.3, (len(sc.series), 4, HOURS)))
        cv = np.array([[s.vol_cv] for s in sc.series])
        volume = rng.gamma(1 / cv**2, cv**2, (len(sc.series), MINUTES // BLOCK_MIN))
        return cls(lat, rates, volume)


@dataclass
class Mods:
    """Per-call multipliers and rates at each call's time."""

    lat: np.ndarray
    ttft: np.ndarray
    p429: np.ndarray
    p5xx: np.ndarray
    p_trunc: np.ndarray
    p_empty: np.ndarray
    tok: np.ndarray
    price: np.ndarray


def base_mods(sc: Scenario, i: int, t: np.ndarray, noise: Noise, lam: np.ndarray) -> Mods:
    """The series' normal state at minutes ``t`` (no incidents): wobbles, releases, rate limit."""
    s = sc.series[i]
    hour = np.minimum((t // 60).astype(int), HOURS - 1)
    busy = PROVIDER_BUSY_UTC[s.provider]
    utc_h = (t / 60 + sc.start.hour) % 24
    load = 1 + 0.15 * np.exp(-((((utc_h - busy + 12) % 24 - 12) / 3.0) ** 2))
    r = noise.rates[i][:, hour]
    demand = (
        lam[np.minimum(t.astype(int), MINUTES - 1)]
        * noise.volume[i][np.minimum(t.astype(int), MINUTES - 1) // BLOCK_MIN]
    )
    over = np.clip(1 - s.limit / np.maximum(demand, 1e-9), 0, 1)
    tok = np.ones(len(t))
    for minute, factor in s.releases:
        tok = np.where(t >= minute, tok * factor, tok)
    return Mods(
        lat=noise.lat[s.provider][hour] * load,
        ttft=np.ones(len(t)),
        p429=np.minimum(1, s.p429 * r[0] + over),
        p5xx=s.p5xx * r[1],
        p_trunc=np.minimum(1, s.p_trunc * r[2]),
        p_empty=np.minimum(1, s.p_empty * r[3]),
        tok=tok,
        price=np.ones(len(t)),
    )


def apply(inc: Incident, t: np.ndarray, m: Mods) -> None:
    """Apply one incident to the modifiers of calls at minutes ``t`` (volume is applied to rates)."""
    on = (t >= inc.start) & (t < inc.end)
    if not on.any():
        return
    f = inc.factor
    if inc.kind == "latency_ramp":
        m.lat[on] *= 1 + (f - 1) * (t[on] - inc.start) / max(inc.end - inc.start, 1)
    elif inc.kind == "latency":
        m.lat[on] *= f
    elif inc.kind == "ttft":
        m.ttft[on] *= f
    elif inc.kind == "tokens_shift":
        m.tok[on] *= f
    elif inc.kind == "cost":
        m.price[on] *= f
    elif inc.kind in RATE_KINDS:
        name = {"errors_429": "p429", "errors_5xx": "p5xx", "truncation": "p_trunc", "empty_output": "p_empty"}
        arr = getattr(m, name[inc.kind])
        arr[on] = np.maximum(arr[on], f)


# --------------------------------------------------------------------------- calls
def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(rng.normal(0, sigma, n))


def draw(s: Series, m: Mods, stream: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One attempt per element: status, tokens, TTFT, duration and cost from the model's mixtures."""
    n, model = len(stream), MODELS[s.model]
    u = rng.random(n)
    status = np.where(u < m.p429, RATE_LIMITED, np.where(u < m.p429 + m.p5xx, SERVER_ERROR, OK))
    in_tok = np.maximum(1, _lognormal(rng, s.in_tokens, 0.6, n)).astype(np.int64)
    long = rng.random(n) < 0.15
    out = _lognormal(rng, s.out_tokens * np.where(long, 2.5, 1.0) * m.tok, 0.45, n)
    cut = (rng.random(n) < m.p_trunc) | (out >= s.max_tokens)
    out = np.where(cut, s.max_tokens, np.maximum(1, out)).astype(np.int64)
    empty = ~cut & (rng.random(n) < m.p_empty)
    out = np.where(empty, 0, out)
    slow = rng.random(n) < model.tail_w
    ttft = model.ttft_ms * np.where(slow, model.tail_x, 1.0) * np.exp(rng.normal(0, np.where(slow, 0.5, 0.35)))
    ttft = ttft * (1 + in_tok / 30000) * m.lat * m.ttft
    gen_ms = out / model.speed * 1000 * np.exp(rng.normal(0, 0.15, n)) * m.lat
    dur = ttft + gen_ms
    failed = status != OK
    dur = np.where(status == RATE_LIMITED, _lognormal(rng, 180.0, 0.5, n), dur)
    timeout = rng.random(n) < 0.2
    dur = np.where(status == SERVER_ERROR, np.where(timeout, 60000.0, dur * rng.uniform(0.2, 1.0, n)), dur)
    cost = (in_tok * model.price_in + out * model.price_out) * m.price
    return {
        "status": status,
        "in_tok": np.where(failed, 0, in_tok),
        "out_tok": np.where(failed, 0, out),
        "cut": ~failed & cut,
        "ttft_ms": np.where(stream & ~failed, ttft, np.nan),
        "dur_ms": dur,
        "cost": np.where(failed, np.nan, cost),
    }


def _mods_at(sc: Scenario, i: int, t: np.ndarray, noise: Noise, lam: np.ndarray, incidents: list[Incident]) -> Mods:
    m = base_mods(sc, i, t, noise, lam)
    for inc in incidents:
        if i in inc.series:
            apply(inc, t, m)
    return m


def calls(
    sc: Scenario, i: int, lo: int, hi: int, noise: Noise, incidents: list[Incident], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every attempt of series ``i`` whose first try falls in minutes [lo, hi), retries included.

    ``attempt`` counts retries of one request (0 = first try), ``request`` numbers requests."""
    s = sc.series[i]
    lam = expected_per_minute(sc, i, incidents)
    blocks = noise.volume[i][np.arange(lo, hi) // BLOCK_MIN]
    counts = rng.poisson(lam[lo:hi] * blocks)
    t = np.repeat(np.arange(lo, hi), counts) + rng.random(int(counts.sum()))
    stream = rng.random(len(t)) < s.stream_share
    request = np.arange(len(t))
    parts: list[dict[str, np.ndarray]] = []
    for attempt in range(RETRIES + 1):
        got = draw(s, _mods_at(sc, i, t, noise, lam, incidents), stream, rng)
        got.update(t=t, stream=stream, request=request, attempt=np.full(len(t), attempt))
        parts.append(got)
        again = (got["status"] == RATE_LIMITED) & (rng.random(len(t)) < RETRY_P)
        backoff = (2**attempt) * rng.uniform(1, 7.5, int(again.sum())) / 60
        t, stream, request = t[again] + backoff, stream[again], request[again]
        t, stream, request = t[t < MINUTES], stream[t < MINUTES], request[t < MINUTES]
        if not len(t):
            break
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def generate(sc: Scenario) -> dict[str, np.ndarray]:
    """All calls of the scenario, as columns (``series`` added), in the order drawn."""
    rng = np.random.default_rng([sc.seed, 4])
    noise = Noise.draw(sc, rng)
    parts = []
    for i in range(len(sc.series)):
        got = calls(sc, i, 0, MINUTES, noise, sc.incidents, rng)
        got["series"] = np.full(len(got["t"]), i)
        got["release"] = releases_before(sc.series[i], got["t"])
        got["prompt"] = releases_before(sc.series[i], got["t"], prompts_only=True)
        parts.append(got)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def releases_before(s: Series, t: np.ndarray, prompts_only: bool = False) -> np.ndarray:
    """How many of the series' releases (or only prompt-version releases) came before each call."""
    marks = sorted(m for m, f in s.releases if f != 1.0 or not prompts_only)
    return np.searchsorted(np.array(marks, dtype=float), t, side="right")


# --------------------------------------------------------------------------- the plan
def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _services(rng: np.random.Generator) -> list[Service]:
    shapes = [*SHAPES, *rng.choice(SHAPES, int(rng.integers(1, 4)))]
    names = {k: list(rng.permutation(v)) for k, v in NAMES.items()}
    out = []
    for shape in shapes:
        if not names[shape]:
            continue
        weekend = {"office": rng.uniform(0.2, 0.45), "consumer": rng.uniform(1.0, 1.3)}.get(shape, 0.9)
        out.append(
            Service(str(names[shape].pop()), str(shape), float(rng.choice(TZS)), weekend, int(rng.integers(3, 9)))
        )
    return out


def _series(rng: np.random.Generator, svc: Service, model: str, first: int = 0) -> Series:
    out_tokens = _logu(rng, 60, 900)
    batch = svc.shape == "batch"
    rate = _logu(rng, 10, 50) if batch else _logu(rng, 0.3, 50)
    return Series(
        service=svc,
        model=model,
        rate=rate,
        first_minute=first,
        stream_share=float(rng.choice([0.0, rng.uniform(0.2, 0.8), 1.0], p=[0.25, 0.45, 0.3])) if not batch else 0.0,
        p429=_logu(rng, 0.0005, 0.01),
        p5xx=_logu(rng, 0.0005, 0.005),
        p_trunc=_logu(rng, 0.003, 0.04),
        p_empty=_logu(rng, 0.0005, 0.005),
        in_tokens=_logu(rng, 200, 6000),
        out_tokens=out_tokens,
        max_tokens=next((m for m in (512, 1024, 2048, 4096) if m >= 4 * out_tokens), 8192),
        vol_cv=float(rng.uniform(0.08, 0.3)),
        limit=rate * rng.uniform(0.8, 1.2) if batch else math.inf,
    )


def _local_midnights(sc: Scenario, s: Series) -> list[int]:
    """Minute indices of the series' local midnights in the scenario."""
    h, _ = local_hours(sc, s, np.arange(MINUTES, dtype=float))
    return [int(m) for m in np.flatnonzero(np.diff(h) < 0) + 1]


def _plan_series(rng: np.random.Generator, sc: Scenario) -> list[int]:
    """Services, their series, young series and one model migration; returns the young series."""
    for svc in _services(rng):
        for model in rng.choice(list(MODELS), int(rng.integers(1, 3 if svc.shape == "batch" else 4)), replace=False):
            sc.series.append(_series(rng, svc, str(model)))
    young = []
    # a model added to a service: one 12-47 h before the judged week, one during it
    for lo, hi in ((sc.judged_from - 47 * 60, sc.judged_from - 12 * 60), (sc.judged_from, MINUTES - 60 * 60)):
        svc = sc.series[int(rng.integers(len(sc.series)))].service
        used = {s.model for s in sc.series if s.service == svc}
        model = str(rng.choice([m for m in MODELS if m not in used]))
        first = int(rng.integers(lo, hi))
        sc.series.append(_series(rng, svc, model, first))
        young.append(len(sc.series) - 1)
    old_i = int(rng.choice([i for i, s in enumerate(sc.series) if s.service.shape != "batch" and s.first_minute == 0]))
    old = sc.series[old_i]
    at = int(rng.integers(sc.judged_from + 1440, MINUTES - 2880))
    model = str(rng.choice([m for m in MODELS if m not in {s.model for s in sc.series if s.service == old.service}]))
    new = _series(rng, old.service, model, at)
    new.rate, new.stream_share, new.in_tokens = old.rate, old.stream_share, old.in_tokens
    old.last_minute = at + 30
    sc.series.append(new)
    young.append(len(sc.series) - 1)
    sc.benign.append(Benign("migration", at, at + 1440, (old_i, len(sc.series) - 1)))
    return young


def _plan_benign(rng: np.random.Generator, sc: Scenario, young: list[int]) -> None:
    """Releases, prompt releases, a holiday and the windows of normal patterns (all labelled)."""
    for i, s in enumerate(sc.series):
        lo = max(sc.judged_from, s.first_minute + 1440)
        hi = min(MINUTES, s.last_minute) - 360
        if hi <= lo:
            continue
        if rng.random() < 0.4:
            at = int(rng.integers(lo, hi))
            s.releases.append((at, 1.0))
            sc.benign.append(Benign("release", at, at + 1440, (i,)))
        if rng.random() < 0.35:
            at = int(rng.integers(lo, hi))
            s.releases.append((at, _logu(rng, 1.3, 1.8) if rng.random() < 0.5 else _logu(rng, 0.55, 0.77)))
            sc.benign.append(Benign("prompt_release", at, at + 1440, (i,)))
    day = [i for i, s in enumerate(sc.series) if s.service.shape != "batch"]
    tz = sc.series[int(rng.choice(day))].service.tz
    members = tuple(i for i in day if sc.series[i].service.tz == tz)
    weekdays = [m for m in _local_midnights(sc, sc.series[members[0]]) if m >= sc.judged_from and m + 1440 <= MINUTES]
    weekdays = [m for m in weekdays if local_hours(sc, sc.series[members[0]], np.array([m + 1.0]))[1][0] < 5]
    at = int(rng.choice(weekdays))
    sc.benign.append(Benign("holiday", at, at + 1440, members))
    for i, s in enumerate(sc.series):
        _pattern_windows(sc, i, s)
    for i in young:
        sc.benign.append(Benign("new_series", sc.series[i].first_minute, sc.series[i].first_minute + 1440, (i,)))


def _pattern_windows(sc: Scenario, i: int, s: Series) -> None:
    """Windows of normal but striking patterns: weekends, morning rises, evening peaks, cron."""
    if s.service.shape == "batch":
        sc.benign.append(Benign("cron", sc.judged_from, MINUTES, (i,), ("calls", "error_rate")))
        return
    for m in _local_midnights(sc, s):
        if m < sc.judged_from - 1440:
            continue
        weekday = int(local_hours(sc, s, np.array([m + 1.0]))[1][0])
        if weekday == 5:
            sc.benign.append(Benign("weekend", m, m + 2880, (i,)))
        if s.service.shape == "office" and weekday < 5:
            sc.benign.append(Benign("morning_rise", m + 6 * 60, m + 11 * 60, (i,), ("calls",)))
        if s.service.shape == "consumer":
            sc.benign.append(Benign("evening_peak", m + 17 * 60, m + 24 * 60, (i,), ("calls",)))


_FACTORS = {
    "latency": (True, 1.3, 5.0),
    "latency_ramp": (True, 1.5, 6.0),
    "ttft": (True, 1.5, 10.0),
    "errors_429": (False, 0.03, 0.6),
    "errors_5xx": (False, 0.02, 0.5),
    "truncation": (False, 0.05, 0.5),
    "empty_output": (False, 0.02, 0.4),
    "volume_drop": (False, 0.0, 0.6),
    "volume_spike": (True, 1.5, 6.0),
    "tokens_shift": (True, 1.25, 3.0),
    "cost": (True, 1.2, 3.0),
}


def _factor(rng: np.random.Generator, kind: str) -> float:
    log, lo, hi = _FACTORS[kind]
    return _logu(rng, lo, hi) if log else float(rng.uniform(lo, hi))


def _candidates(sc: Scenario, kind: str, start: int, end: int) -> list[int]:
    """Series alive over the whole window (and streaming, for TTFT)."""
    t = np.array([start, min(end, start + 360) - 1], dtype=float)
    return [i for i, s in enumerate(sc.series) if alive(s, t).min() >= 1 and (kind != "ttft" or s.stream_share >= 0.2)]


def _incident(
    rng: np.random.Generator, sc: Scenario, kind: str, start: int, minutes: int, only: int | None = None
) -> Incident | None:
    end = MINUTES if kind in PERMANENT else min(MINUTES, start + minutes)
    pool = _candidates(sc, kind, start, end)
    if only is not None:
        pool = [i for i in pool if i == only]
    if not pool:
        return None
    first = sc.series[int(rng.choice(pool))]
    scope, u = "series", rng.random()
    if only is None and kind in PROVIDER_KINDS and u < 0.2:
        scope = "provider"
        members = tuple(i for i in pool if sc.series[i].provider == first.provider)
    elif only is None and u < 0.4:
        scope = "service"
        members = tuple(i for i in pool if sc.series[i].service == first.service)
    else:
        members = (sc.series.index(first),)
    if len(members) == 1:
        scope = "series"
    return Incident(kind, start, end, members, _factor(rng, kind), scope)


def _plan_incidents(rng: np.random.Generator, sc: Scenario, young: list[int], count: int) -> None:
    def minutes() -> int:
        return round(_logu(rng, 5, 120))

    for _ in range(count):
        kind = str(rng.choice(KINDS))
        span = minutes()
        latest = MINUTES - (360 if kind in PERMANENT else span + 35)
        inc = _incident(rng, sc, kind, int(rng.integers(sc.judged_from, latest)), span)
        if inc is None or (
            kind in PERMANENT and any(o.kind == kind and set(o.series) & set(inc.series) for o in sc.incidents)
        ):
            continue  # one permanent shift of a kind per series
        sc.incidents.append(inc)
        if rng.random() < 0.3:  # another incident on the same series, overlapping this one
            other = str(rng.choice([k for k in KINDS if k != kind and k not in PERMANENT]))
            at = inc.start + int((inc.end - inc.start if kind not in PERMANENT else 60) * rng.uniform(-0.3, 0.7))
            extra = _incident(rng, sc, other, max(sc.judged_from, at), minutes(), only=inc.series[0])
            if extra is not None and extra.end <= MINUTES - 35:
                sc.incidents.append(extra)
    for i in young:
        for _ in range(int(rng.integers(1, 3))):
            kind = str(rng.choice(KINDS))
            at = sc.series[i].first_minute + int(rng.integers(12 * 60, 48 * 60))
            span = minutes()
            if at >= sc.judged_from and at + (360 if kind in PERMANENT else span + 35) <= MINUTES:
                inc = _incident(rng, sc, kind, at, span, only=i)
                if inc is not None:
                    sc.incidents.append(inc)


def build(seed: int, incidents: int = 30) -> Scenario:
    """The scenario of one seed: series, labelled benign changes and incidents (no calls yet)."""
    rng = np.random.default_rng([seed, 1])
    sc = Scenario(seed, END_ANCHOR + timedelta(hours=int(rng.integers(0, 7 * 24))))
    young = _plan_series(rng, sc)
    _plan_benign(rng, sc, young)
    _plan_incidents(rng, sc, young, incidents)
    sc.incidents.sort(key=lambda inc: inc.start)
    return sc


# --------------------------------------------------------------------------- the store
_STAGE = """CREATE TABLE IF NOT EXISTS bench_calls_v4 (ts_ns Int64, series UInt16, request UInt32, attempt UInt8,
    dur_us UInt64, ttft_us Int64, in_tok UInt32, out_tok UInt32, cost Float64, status UInt8, cut UInt8,
    stream UInt8, release UInt16, prompt UInt16) ENGINE = Memory"""
_STAGE_COLUMNS = ("ts_ns", "series", "request", "attempt", "dur_us", "ttft_us", "in_tok", "out_tok", "cost",
                  "status", "cut", "stream", "release", "prompt")  # fmt: skip

_SPANS = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT fromUnixTimestamp64Nano(ts_ns, 'UTC'),
    lower(concat(hex(cityHash64({seed:UInt64}, series, request, 1)),
        hex(cityHash64({seed:UInt64}, series, request, 2)))),
    lower(hex(cityHash64({seed:UInt64}, series, request, attempt, 3))), '', '',
    concat('chat ', model), 'Client', service,
    map('service.name', service, 'service.version', concat('2026.', toString(10 + release)),
        'deployment.environment.name', 'production'),
    'llmtrace', '0.1',
    mapFilter((k, v) -> v != '', map(
        'gen_ai.operation.name', 'chat',
        'gen_ai.provider.name', provider,
        'gen_ai.request.model', model,
        'gen_ai.response.model', if(status = 0, model, ''),
        'gen_ai.request.stream', if(stream = 1, 'true', ''),
        'gen_ai.usage.input_tokens', if(status = 0, toString(in_tok), ''),
        'gen_ai.usage.output_tokens', if(status = 0, toString(out_tok), ''),
        'gen_ai.response.finish_reasons', if(status = 0, concat('["', if(cut = 1, fin_cut, fin_ok), '"]'), ''),
        'gen_ai.response.time_to_first_chunk', if(ttft_us >= 0, toString(ttft_us / 1e6), ''),
        'llmtrace.cost.usd', if(status = 0, toString(cost), ''),
        'error.type', multiIf(status = 1, err_429, status = 2, err_5xx, ''),
        'http.response.status_code', multiIf(status = 1, '429', status = 2, '500', ''),
        'gen_ai.prompt.name', concat(service, '-main'),
        'gen_ai.prompt.version', toString(1 + prompt))),
    dur_us * 1000, if(status = 0, 'Unset', 'Error'),
    multiIf(status = 1, 'Error code: 429 - rate limit exceeded', status = 2, 'Error code: 500 - internal error', '')
FROM (
    SELECT *, {services:Array(String)}[series + 1] AS service, {models:Array(String)}[series + 1] AS model,
        {providers:Array(String)}[series + 1] AS provider, {fin_ok:Array(String)}[series + 1] AS fin_ok,
        {fin_cut:Array(String)}[series + 1] AS fin_cut, {err_429:Array(String)}[series + 1] AS err_429,
        {err_5xx:Array(String)}[series + 1] AS err_5xx
    FROM bench_calls_v4
)
"""


def stage_rows(sc: Scenario, cols: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """The staging table's rows: integer nanoseconds and microseconds, -1 for no TTFT."""
    start_ns = int(sc.start.timestamp()) * 1_000_000_000
    values = (
        (start_ns + cols["t"] * 60e9).astype(np.int64),
        cols["series"],
        cols["request"],
        cols["attempt"],
        np.round(cols["dur_ms"] * 1000).astype(np.int64),
        np.where(np.isnan(cols["ttft_ms"]), -1, np.round(np.nan_to_num(cols["ttft_ms"]) * 1000)).astype(np.int64),
        cols["in_tok"],
        cols["out_tok"],
        np.nan_to_num(cols["cost"]),
        cols["status"],
        cols["cut"].astype(np.int64),
        cols["stream"].astype(np.int64),
        cols["release"],
        cols["prompt"],
    )
    as_lists = [v.tolist() for v in values]
    return list(zip(*as_lists, strict=True))


def insert(client: Any, sc: Scenario, cols: dict[str, np.ndarray] | None = None) -> int:
    """Write the scenario's calls as spans into ``otel_traces``; return the ``llm_calls`` count."""
    cols = generate(sc) if cols is None else cols
    client.command(_STAGE)
    client.command("TRUNCATE TABLE bench_calls_v4")
    rows = stage_rows(sc, cols)
    for lo in range(0, len(rows), 200_000):
        client.insert("bench_calls_v4", rows[lo : lo + 200_000], column_names=_STAGE_COLUMNS)
    vocab = [VOCAB[s.provider] for s in sc.series]
    params = {
        "seed": sc.seed,
        "services": [s.service.name for s in sc.series],
        "models": [s.model for s in sc.series],
        "providers": [s.provider for s in sc.series],
        "fin_ok": [v[0] for v in vocab],
        "fin_cut": [v[1] for v in vocab],
        "err_429": [v[2] for v in vocab],
        "err_5xx": [v[3] for v in vocab],
    }
    client.command(_SPANS, parameters=params)
    client.command("DROP TABLE bench_calls_v4")
    return int(client.command("SELECT count() FROM llm_calls") or 0)
