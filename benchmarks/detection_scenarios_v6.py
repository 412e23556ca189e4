"""Held-out generator v6: a week of an agent-heavy production app, written blind as the new judge.

Written from issue #12 and production experience, without reading the detector or the v2-v5
generators. What it has that a simple per-series generator lacks (each is something that fooled
or would fool a detector in production):

* **Agent workflows.** ``support-agent`` and ``agent-v2`` run traces of several calls: a planner
  call, then a tool loop of K calls (geometric, mean 2.5-4) a few seconds apart, under one
  ``invoke_agent`` root span (not an LLM call). Tool-loop volume is clustered: counts per
  minute are overdispersed by K.
* **Retries with backoff.** Failed calls are retried by the app (1-3 times, 2^attempt s x jitter)
  as new spans in the same trace, so an error incident multiplies call volume: ``calls`` up on
  its series is a labelled consequence, not a false alarm.
* **Model fallbacks.** The support planner falls back from Anthropic to ``gpt-4.1`` (OpenAI) when
  its call fails in a provider outage: the volume jump on the fallback series is a labelled
  consequence (``Incident.spill``).
* **Prompt caching.** Series read 50-85% of their input tokens from the provider's cache (billed at
  a tenth); a ``cache_collapse`` (a deploy reorders the prompt prefix) raises cost per call 2-4x
  with the same token counts.
* **Baseline error rates from 0.1% to 5%** (staging and batch jobs are flaky), 429 and 5xx.
* **Staging and production** of the same service and model (``deployment.environment.name``);
  a planned load test in staging (x8-20 volume for 1-2 h) is a labelled benign change.
* **Time zones and a DST-like shift**: services peak at their local hours (UTC-8 .. UTC+9); the
  US services (UTC-5, UTC-8) move their clock an hour on a Sunday of the judged week.
* **Day/night ratios from 2x to 50x** (a voice app sleeps at night), weekends from 0.1 to 1.
* **Model-wide incidents**: one model failing for every service that uses it (``model_outage``,
  scope ``model``), next to provider outages and single-series error bursts.
* **Slowdowns of 6-12 h** (x1.3-2) next to **5-minute latency bursts** and 1-6 h ramps.
* **Sizes near the eligibility edge** (a target of 3-6 sd or 10-30 extra events) for half the
  incidents, large ones (8-30 sd, 40-400 events) for the other half.
* **Young series** (``agent-v2`` launched mid-week, a ``gpt-5-mini`` canary taking 20% of search
  traffic; incidents 12-48 h after their first call) and **sparse series** (0.05-0.5 call/min).
* **Labelled benign changes**: a release raising output tokens x1.3 (with a new
  ``llmtrace.release``), the staging load test, a US holiday (x0.35 for a local day), growth
  (+4%/day on ``translate``), the DST shift, the canary migration, a new series' first 12 h.

Time: ``DAYS`` = 10 days from ``START`` (a Monday); the judged week is the last 7, the first 3 are
history. Minutes are floats from ``START``. :func:`calls` draws one series' calls in a time range
given a :class:`Noise` (hourly provider latency wobble, 10-minute volume factors, hourly error
overdispersion) and the incidents in force: the store is filled with it, and the benchmark's
paired Monte Carlo (``detection_v6``) draws incident windows with it, so effect sizes come from
the same process as the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 10
MINUTES = DAYS * 1440
HISTORY = 3 * 1440
WEEK = 7 * 1440
OK, RATE_LIMITED, SERVER_ERROR = 0, 1, 2
KINDS = (
    "latency", "slowdown", "latency_ramp", "ttft", "errors", "rate_limit", "model_outage", "provider_outage",
    "truncation", "empty_output", "volume_drop", "volume_spike", "tokens_shift", "cache_collapse",
)  # fmt: skip
PERMANENT = ("tokens_shift",)
ERROR_KINDS = ("errors", "rate_limit", "model_outage", "provider_outage")
RATE_KINDS = (*ERROR_KINDS, "truncation", "empty_output")
VOLUME_KINDS = ("volume_drop", "volume_spike")
LATENCY_KINDS = ("latency", "slowdown", "latency_ramp")
VOLUME_CV, ERROR_SD, LATENCY_SD = 0.12, 0.3, 0.08
CACHE_PRICE = 0.1  # cached input tokens cost a tenth
PROVIDERS = ("anthropic", "openai", "gcp.gemini", "mistral_ai")


@dataclass(frozen=True)
class Series:
    """One service calling one model in one environment."""

    service: str
    model: str
    provider: str
    environment: str
    rate: float  # mean primary calls per minute over a week (before growth)
    tz: float  # UTC offset, hours
    ratio: float  # day/night ratio of the daily profile
    peak: float  # local hour of the daily peak
    weekend: float  # weekend volume factor
    mode: str  # stream | batch | mixed
    p_err: float  # baseline failure rate (a fifth of it 429s)
    p_cut: float  # baseline truncation (finish reason "length")
    p_empty: float  # baseline empty answers
    ttft_ms: float  # median time to first token
    ms_per_tok: float
    in_tok: float  # median input tokens
    out_tok: float  # median output tokens
    cache: float  # share of input tokens read from the prompt cache
    price_in: float  # USD per input token
    price_out: float
    retries: int = 0
    steps: float = 1.0  # mean calls per trace (agent tool loops)
    first_minute: int = 0
    last_minute: int = MINUTES
    growth: float = 0.0  # volume growth per day
    dst: bool = False  # the local clock moves an hour at Scenario.dst_minute
    share: tuple[int, float, int] | None = None  # (series, fraction, from minute): traffic moved from a series
    release_minute: int | None = None  # a release raising output tokens x1.3

    @property
    def attrs(self) -> dict[str, str]:
        return {"service": self.service, "model": self.model, "provider": self.provider,
                "environment": self.environment}  # fmt: skip


@dataclass(frozen=True)
class Incident:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    scope: str  # series | service | model | provider
    factor: float  # latency/volume/token multiplier, failure or cut rate, or the collapsed cache share
    group: str = ""
    spill: tuple[int, ...] = ()  # series whose consequences (fallback traffic) are labelled too


@dataclass(frozen=True)
class Benign:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    metrics: frozenset[str] | None


@dataclass
class Scenario:
    seed: int
    series: list[Series]
    incidents: list[Incident] = field(default_factory=list)
    benign: list[Benign] = field(default_factory=list)
    dst_minute: int = 0
    holiday: tuple[int, int] = (0, 0)  # UTC minutes of the US holiday
    load_test: tuple[int, int, float] = (0, 0, 1.0)  # staging: start, end, factor
    judged_from: int = HISTORY
    fallback: dict[int, int] = field(default_factory=dict)  # primary series -> its fallback series

    @property
    def end(self) -> datetime:
        return START + timedelta(minutes=MINUTES)

    def minute(self, t: datetime) -> float:
        return (t - START).total_seconds() / 60

    def at(self, minute: float) -> datetime:
        return START + timedelta(minutes=minute)


@dataclass(frozen=True)
class Noise:
    """Normal variation: provider latency per hour, volume per 10 minutes, error rate per hour."""

    latency: np.ndarray  # (hours, providers)
    volume: np.ndarray  # (blocks of 10 min, series)
    errors: np.ndarray  # (hours, series)


def wobble(sc: Scenario, rng: np.random.Generator) -> Noise:
    hours, blocks, n = MINUTES // 60 + 1, MINUTES // 10 + 1, len(sc.series)
    k = 1 / VOLUME_CV**2
    return Noise(
        latency=np.exp(rng.normal(0, LATENCY_SD, (hours, len(PROVIDERS)))),
        volume=rng.gamma(k, 1 / k, (blocks, n)),
        errors=np.exp(rng.normal(-(ERROR_SD**2) / 2, ERROR_SD, (hours, n))),
    )


# --------------------------------------------------------------------------- the catalogue
def _catalogue(rng: np.random.Generator) -> list[Series]:
    u = rng.uniform
    planner = u(1, 3)
    search = u(5, 12)
    v2_first = int(HISTORY + u(1.5, 4.5) * 1440)
    canary_first = int(HISTORY + u(1, 5) * 1440)
    common = {"p_cut": 0.01, "p_empty": 0.003}
    return [
        Series("support-agent", "claude-sonnet-4-5", "anthropic", "production", planner, -5, u(3, 8), 14, 0.5,
               "mixed", 0.005, ttft_ms=700, ms_per_tok=14, in_tok=3000, out_tok=250, cache=0.7, price_in=3e-6,
               price_out=15e-6, retries=2, dst=True, **common),
        Series("support-agent", "gpt-4.1-mini", "openai", "production", planner * u(2.5, 4), -5, u(3, 8), 14, 0.5,
               "batch", 0.003, ttft_ms=400, ms_per_tok=6, in_tok=4500, out_tok=80, cache=0.5, price_in=0.4e-6,
               price_out=1.6e-6, retries=2, steps=u(2.5, 4), dst=True, **common),
        Series("support-agent", "gpt-4.1", "openai", "production", 0.05, -5, 4, 14, 0.5, "mixed", 0.003,
               ttft_ms=600, ms_per_tok=10, in_tok=3000, out_tok=250, cache=0.3, price_in=2e-6, price_out=8e-6,
               dst=True, **common),
        Series("search-answers", "gpt-4.1-mini", "openai", "production", search, 1, u(2, 5), 11, 0.8, "stream",
               0.001, ttft_ms=350, ms_per_tok=5, in_tok=6000, out_tok=180, cache=0.85, price_in=0.4e-6,
               price_out=1.6e-6, retries=1, **common),
        Series("search-answers", "gpt-4.1-mini", "openai", "staging", u(0.15, 0.4), 1, 3, 11, 0.3, "stream", 0.05,
               ttft_ms=350, ms_per_tok=5, in_tok=6000, out_tok=180, cache=0.6, price_in=0.4e-6, price_out=1.6e-6,
               **common),
        Series("voice-concierge", "gemini-2.5-flash", "gcp.gemini", "production", u(1, 4), 9, u(20, 50), 20, 0.9,
               "stream", 0.01, ttft_ms=250, ms_per_tok=4, in_tok=1200, out_tok=90, cache=0.0, price_in=0.3e-6,
               price_out=2.5e-6, retries=1, **common),
        Series("code-review", "claude-sonnet-4-5", "anthropic", "production", u(0.5, 2), -8, u(10, 20), 15, 0.15,
               "batch", 0.02, ttft_ms=900, ms_per_tok=15, in_tok=9000, out_tok=600, cache=0.6, price_in=3e-6,
               price_out=15e-6, retries=3, dst=True, **common),
        Series("code-review", "claude-sonnet-4-5", "anthropic", "staging", u(0.1, 0.3), -8, 6, 15, 0.1, "batch",
               0.05, ttft_ms=900, ms_per_tok=15, in_tok=9000, out_tok=600, cache=0.6, price_in=3e-6,
               price_out=15e-6, dst=True, **common),
        Series("doc-extract", "gemini-2.5-pro", "gcp.gemini", "production", u(0.1, 0.5), 0, 2, 3, 0.7, "batch",
               0.03, ttft_ms=1500, ms_per_tok=12, in_tok=20000, out_tok=900, cache=0.0, price_in=1.25e-6,
               price_out=10e-6, retries=2, **common),
        Series("finance-reports", "gpt-4.1-mini", "openai", "production", u(0.05, 0.2), 1, 8, 9, 0.1, "batch", 0.05,
               ttft_ms=400, ms_per_tok=6, in_tok=8000, out_tok=700, cache=0.2, price_in=0.4e-6, price_out=1.6e-6,
               retries=1, **common),
        Series("translate", "mistral-large-latest", "mistral_ai", "production", u(2, 5), 1, u(2, 3), 13, 0.6,
               "mixed", 0.001, ttft_ms=300, ms_per_tok=8, in_tok=800, out_tok=700, cache=0.0, price_in=2e-6,
               price_out=6e-6, growth=0.04, release_minute=int(HISTORY + u(1, 6) * 1440), **common),
        Series("agent-v2", "claude-haiku-4-5", "anthropic", "production", u(0.5, 2), -5, u(3, 8), 14, 0.5, "mixed",
               0.01, ttft_ms=300, ms_per_tok=5, in_tok=3500, out_tok=150, cache=0.7, price_in=1e-6, price_out=5e-6,
               retries=2, steps=u(2.5, 4), first_minute=v2_first, dst=True, **common),
        Series("search-answers", "gpt-5-mini", "openai", "production", 0.2 * search, 1, u(2, 5), 11, 0.8, "stream",
               0.002, ttft_ms=500, ms_per_tok=5, in_tok=6000, out_tok=220, cache=0.85, price_in=0.25e-6, price_out=2e-6,
               retries=1, first_minute=canary_first, share=(3, 0.2, canary_first), **common),
    ]  # fmt: skip


FALLBACK = {0: 2}  # the support planner (Anthropic) falls back to gpt-4.1 (OpenAI)


# --------------------------------------------------------------------------- intensities
def _local_hours(sc: Scenario, s: Series, t: np.ndarray) -> np.ndarray:
    shift = np.where(s.dst & (t >= sc.dst_minute), 1.0, 0.0)
    return t / 60 + s.tz + shift


def profile(sc: Scenario, s: Series, t: np.ndarray) -> np.ndarray:
    """Expected volume factor (mean 1 over a weekday) at minutes ``t`` before noise and incidents."""
    local = _local_hours(sc, s, t)
    a = math.log(s.ratio) / 2
    day = np.exp(a * np.cos(2 * np.pi * (local % 24 - s.peak) / 24)) / np.i0(a)
    weekday = (local // 24).astype(int) % 7  # START is a Monday
    out = day * np.where(weekday >= 5, s.weekend, 1.0) * np.exp(s.growth * t / 1440)
    if s.tz < 0:  # the US holiday: a local day at a third of the traffic
        lo, hi = sc.holiday
        out = out * np.where((t >= lo) & (t < hi), 0.35, 1.0)
    if s.environment == "staging":
        lo, hi, f = sc.load_test
        out = out * np.where((t >= lo) & (t < hi), f, 1.0)
    return out


def _share(sc: Scenario, i: int, t: np.ndarray) -> np.ndarray:
    """The fraction of series ``i``'s traffic it keeps (a canary takes some from a date)."""
    keep = np.ones_like(t)
    for s in sc.series:
        if s.share and s.share[0] == i:
            keep = keep * np.where(t >= s.share[2], 1 - s.share[1], 1.0)
    return keep


def intensity(sc: Scenario, i: int, t: np.ndarray, noise: Noise | None, incidents: list[Incident]) -> np.ndarray:
    """Primary calls per minute of series ``i`` at minutes ``t`` (traces for agent loops: / steps)."""
    s = sc.series[i]
    if s.share:
        src = sc.series[s.share[0]]
        lam = src.rate * profile(sc, src, t) * s.share[1] * (t >= s.share[2])  # s.rate: the same, for labels
    else:
        lam = s.rate * profile(sc, s, t) * _share(sc, i, t)
    lam = lam * ((t >= s.first_minute) & (t < s.last_minute))
    if noise is not None:
        lam = lam * noise.volume[(t // 10).astype(int), i]
    for inc in incidents:
        if inc.kind in VOLUME_KINDS and i in inc.series:
            lam = lam * np.where((t >= inc.start) & (t < inc.end), inc.factor, 1.0)
    return lam / s.steps


def _window(inc: Incident, t: np.ndarray) -> np.ndarray:
    return (t >= inc.start) & (t < inc.end)


# --------------------------------------------------------------------------- drawing calls
def _arrivals(sc: Scenario, i: int, lo: int, hi: int, noise: Noise, incidents: list[Incident],
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Primary call times and their trace numbers (agent loops: K calls a few seconds apart)."""
    s = sc.series[i]
    minutes = np.arange(lo, hi, dtype=float)
    lam = intensity(sc, i, minutes + 0.5, noise, incidents)
    lam = lam + _fallback_intensity(sc, i, minutes + 0.5, incidents)
    n = rng.poisson(lam)
    starts = np.repeat(minutes, n) + rng.random(int(n.sum()))
    if s.steps <= 1:
        return starts, np.arange(len(starts))
    k = rng.geometric(1 / s.steps, len(starts))
    trace = np.repeat(np.arange(len(starts)), k)
    gaps = np.cumsum(rng.uniform(2, 10, len(trace)) / 60)  # model call + tool run, seconds -> minutes
    offset = gaps - np.repeat(gaps[np.cumsum(k) - k], k)  # 0 for a trace's first call
    return np.repeat(starts, k) + offset, trace


def _fallback_intensity(sc: Scenario, j: int, t: np.ndarray, incidents: list[Incident]) -> np.ndarray:
    """Calls routed to ``j`` because its primary failed in a provider outage."""
    out = np.zeros_like(t)
    for i, fb in FALLBACK.items():
        if fb != j:
            continue
        for inc in incidents:
            if inc.kind == "provider_outage" and i in inc.series:
                out = out + intensity(sc, i, t, None, []) * inc.factor * _window(inc, t)
    return out


def _modifiers(sc: Scenario, i: int, t: np.ndarray, incidents: list[Incident]) -> dict[str, np.ndarray]:
    s = sc.series[i]
    one = np.ones_like(t)
    m = {"lat": one.copy(), "ttft": one.copy(), "err": np.full_like(t, s.p_err), "r429": np.full_like(t, 0.2),
         "cut": np.full_like(t, s.p_cut), "empty": np.full_like(t, s.p_empty), "out": one.copy(),
         "cache": np.full_like(t, s.cache)}  # fmt: skip
    if s.release_minute is not None:
        m["out"] = m["out"] * np.where(t >= s.release_minute, 1.3, 1.0)
    for inc in incidents:
        if i not in inc.series:
            continue
        w = _window(inc, t)
        k = inc.kind
        if k in ("latency", "slowdown"):
            m["lat"] = np.where(w, m["lat"] * inc.factor, m["lat"])
            m["ttft"] = np.where(w, m["ttft"] * inc.factor, m["ttft"])
        elif k == "latency_ramp":
            ramp = 1 + (inc.factor - 1) * np.clip((t - inc.start) / max(inc.end - inc.start, 1), 0, 1)
            m["lat"] = np.where(w, m["lat"] * ramp, m["lat"])
            m["ttft"] = np.where(w, m["ttft"] * ramp, m["ttft"])
        elif k == "ttft":
            m["ttft"] = np.where(w, m["ttft"] * inc.factor, m["ttft"])
        elif k in ERROR_KINDS:
            m["err"] = np.where(w, np.maximum(m["err"], inc.factor), m["err"])
            m["r429"] = np.where(w, 1.0 if k == "rate_limit" else 0.0, m["r429"])
        elif k == "truncation":
            m["cut"] = np.where(w, np.maximum(m["cut"], inc.factor), m["cut"])
        elif k == "empty_output":
            m["empty"] = np.where(w, np.maximum(m["empty"], inc.factor), m["empty"])
        elif k == "tokens_shift":
            m["out"] = np.where(t >= inc.start, m["out"] * inc.factor, m["out"])
        elif k == "cache_collapse":
            m["cache"] = np.where(w, inc.factor, m["cache"])
    return m


def _status(p_err: np.ndarray, r429: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    failed = rng.random(len(p_err)) < p_err
    return np.where(failed, np.where(rng.random(len(p_err)) < r429, RATE_LIMITED, SERVER_ERROR), OK)


def calls(sc: Scenario, i: int, lo: int, hi: int, noise: Noise, incidents: list[Incident],
          rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """Every call series ``i`` makes in minutes [lo, hi), retries included (attempts may end past hi)."""
    s = sc.series[i]
    t, trace = _arrivals(sc, i, lo, hi, noise, incidents, rng)
    t_all, trace_all, attempt_all, status_all = [t], [trace], [np.zeros(len(t), int)], []
    hour_err = noise.errors[np.minimum((t // 60).astype(int), len(noise.errors) - 1), i]
    m = _modifiers(sc, i, t, incidents)
    status = _status(np.minimum(m["err"] * np.where(m["err"] > s.p_err, 1.0, hour_err), 1), m["r429"], rng)
    status_all.append(status)
    cur_t, cur_trace, cur_status = t, trace, status
    fallback_primary = i in FALLBACK
    for attempt in range(1, s.retries + 1):
        again = cur_status != OK
        if fallback_primary:  # a failed planner call in a provider outage goes to the fallback instead
            outage = np.zeros(len(cur_t), bool)
            for inc in incidents:
                if inc.kind == "provider_outage" and i in inc.series:
                    outage |= _window(inc, cur_t)
            again &= ~outage
        if not again.any():
            break
        nt = cur_t[again] + (2**attempt) * rng.uniform(0.5, 1.5, int(again.sum())) / 60
        mm = _modifiers(sc, i, nt, incidents)
        herr = noise.errors[np.minimum((nt // 60).astype(int), len(noise.errors) - 1), i]
        ns = _status(np.minimum(mm["err"] * np.where(mm["err"] > s.p_err, 1.0, herr), 1), mm["r429"], rng)
        t_all.append(nt)
        trace_all.append(cur_trace[again])
        attempt_all.append(np.full(len(nt), attempt))
        status_all.append(ns)
        cur_t, cur_trace, cur_status = nt, cur_trace[again], ns
    t = np.concatenate(t_all)
    out = {"t": t, "trace": np.concatenate(trace_all), "attempt": np.concatenate(attempt_all),
           "status": np.concatenate(status_all)}  # fmt: skip
    out.update(_draw(sc, i, t, out["status"], noise, incidents, rng))
    return out


def _draw(sc: Scenario, i: int, t: np.ndarray, status: np.ndarray, noise: Noise, incidents: list[Incident],
          rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """Tokens, cache, latency, TTFT, finish and cost of each call."""
    s = sc.series[i]
    n = len(t)
    m = _modifiers(sc, i, t, incidents)
    ok = status == OK
    in_tok = np.maximum(50, rng.lognormal(math.log(s.in_tok), 0.35, n)).astype(int)
    cached = (in_tok * np.clip(m["cache"] * rng.uniform(0.85, 1.15, n), 0, 0.98)).astype(int)
    out_tok = np.maximum(1, rng.lognormal(math.log(s.out_tok), 0.5, n) * m["out"]).astype(int)
    cut = ok & (rng.random(n) < m["cut"])
    out_tok = np.where(cut, np.maximum(out_tok, int(s.out_tok * 3)), out_tok)
    empty = ok & ~cut & (rng.random(n) < m["empty"])
    out_tok = np.where(empty | ~ok, 0, out_tok)
    wob = noise.latency[np.minimum((t // 60).astype(int), len(noise.latency) - 1), PROVIDERS.index(s.provider)]
    speed = wob * np.exp(0.1 * np.cos(2 * np.pi * (t / 60 + s.tz - 15) / 24))  # busier afternoons
    ttft = s.ttft_ms * rng.lognormal(0, 0.4, n) * speed * m["ttft"] * (1 + in_tok / 40000)
    gen_ms = out_tok * s.ms_per_tok * rng.lognormal(0, 0.25, n) * speed * m["lat"]
    dur = ttft + gen_ms
    tail = rng.random(n) < 0.002  # a rare very slow call is normal
    dur = np.where(tail, dur * rng.uniform(4, 12, n), dur)
    dur = np.where(status == RATE_LIMITED, rng.uniform(40, 250, n),
                   np.where(status == SERVER_ERROR, rng.uniform(300, 8000, n), dur))  # fmt: skip
    stream = {"stream": np.ones(n, bool), "batch": np.zeros(n, bool)}.get(s.mode, rng.random(n) < 0.5)
    cost = ((in_tok - cached) * s.price_in + cached * s.price_in * CACHE_PRICE + out_tok * s.price_out) * ok
    return {"in_tok": in_tok, "cached": cached, "out_tok": out_tok, "cut": cut, "stream": stream,
            "ttft_ms": np.where(stream & ok, np.minimum(ttft, dur), np.nan), "dur_ms": dur, "cost": cost}  # fmt: skip


# --------------------------------------------------------------------------- the scenario
def build(seed: int) -> Scenario:
    """The scenario of one seed: the catalogue's parameters, benign changes and incidents."""
    rng = np.random.default_rng([seed, 6])
    sc = Scenario(seed, _catalogue(rng), fallback=dict(FALLBACK))
    sc.dst_minute = HISTORY + 3 * 1440 + 7 * 60  # Sunday 07:00 UTC, 2 am on the US east coast
    sc.holiday = (HISTORY + 4 * 1440 + 5 * 60, HISTORY + 5 * 1440 + 5 * 60)  # Monday, local day at UTC-5
    day = int(rng.choice([1, 4, 5, 6]))  # a weekday of the judged week
    lo = HISTORY + day * 1440 + int(rng.uniform(13, 17) * 60)
    sc.load_test = (lo, lo + int(rng.uniform(60, 120)), float(rng.uniform(8, 20)))
    sc.benign = _benign(sc)
    sc.incidents = _incidents(sc, rng)
    return sc


def _metrics(*names: str) -> frozenset[str]:
    return frozenset(n for name in names for n in (name, f"{name}_2x", f"{name}_low"))


def _benign(sc: Scenario) -> list[Benign]:
    us = tuple(i for i, s in enumerate(sc.series) if s.tz < 0)
    staging = tuple(i for i, s in enumerate(sc.series) if s.environment == "staging")
    lo, hi, _ = sc.load_test
    out = [
        Benign("load_test", lo, hi + 30, staging, None),  # every metric: staging shares the service x model series
        Benign("holiday", sc.holiday[0], sc.holiday[1], us, _metrics("calls")),
        Benign("dst", sc.dst_minute, MINUTES, tuple(i for i, s in enumerate(sc.series) if s.dst),
               _metrics("calls")),  # the shifted profile lasts: a baseline of earlier days is an hour off
        Benign("growth", HISTORY, MINUTES, tuple(i for i, s in enumerate(sc.series) if s.growth), _metrics("calls")),
    ]  # fmt: skip
    for i, s in enumerate(sc.series):
        if s.release_minute is not None:
            out.append(Benign("release", s.release_minute, s.release_minute + 360, (i,),
                              _metrics("tokens_per_call", "cost_per_call_usd", "latency_p95_ms")))  # fmt: skip
        if s.first_minute > 0:
            out.append(Benign("new_series", s.first_minute, s.first_minute + 720, (i,), None))
        if s.share:
            src = s.share[0]
            out.append(Benign("migration", s.share[2], s.share[2] + 720, (src, i), _metrics("calls")))
    return out


COUNTS = {"latency": 4, "slowdown": 2, "latency_ramp": 2, "ttft": 3, "errors": 4, "rate_limit": 2, "model_outage": 2,
          "provider_outage": 1, "truncation": 3, "empty_output": 2, "volume_drop": 3, "volume_spike": 3,
          "tokens_shift": 2, "cache_collapse": 2}  # fmt: skip


def _duration(kind: str, rng: np.random.Generator) -> int:
    u = rng.uniform
    table = {
        "latency": 5 if rng.random() < 0.35 else math.exp(u(math.log(10), math.log(120))),
        "slowdown": u(360, 720), "latency_ramp": u(60, 360), "ttft": 5 if rng.random() < 0.2 else u(10, 60),
        "errors": 5 if rng.random() < 0.25 else u(10, 60), "rate_limit": u(10, 45), "model_outage": u(10, 40),
        "provider_outage": u(10, 60), "truncation": u(15, 180), "empty_output": u(10, 90), "volume_drop": u(10, 120),
        "volume_spike": u(10, 90), "tokens_shift": MINUTES, "cache_collapse": u(30, 360),
    }  # fmt: skip
    return int(table[kind])


def _candidates(sc: Scenario, kind: str) -> list[tuple[tuple[int, ...], str]]:
    """Which series (groups) an incident of ``kind`` may hit, with its scope."""
    live = [i for i, s in enumerate(sc.series) if s.rate > 0.04]
    single = [((i,), "series") for i in live if i not in FALLBACK.values()]
    if kind == "ttft":
        return [g for g in single if sc.series[g[0][0]].mode != "batch"]
    if kind == "cache_collapse":
        return [g for g in single if sc.series[g[0][0]].cache >= 0.5]
    if kind == "model_outage":
        models: dict[str, list[int]] = {}
        for i in live:
            models.setdefault(sc.series[i].model, []).append(i)
        return [(tuple(v), "model") for v in models.values() if len(v) >= 2]
    if kind == "provider_outage":
        return [(tuple(i for i in live if sc.series[i].provider == "anthropic"), "provider")]
    if kind in ("errors", "volume_drop"):
        services: dict[str, list[int]] = {}
        for i in live:
            if sc.series[i].environment == "production":
                services.setdefault(sc.series[i].service, []).append(i)
        return single + [(tuple(v), "service") for v in services.values() if len(v) >= 2]
    return single


def _incidents(sc: Scenario, rng: np.random.Generator) -> list[Incident]:
    """``COUNTS`` incidents per kind at uniform times of the judged week (nights and weekends too);
    a quarter of those that can go on a young series start 12-48 h after its first call."""
    out = []
    for kind, count in COUNTS.items():
        groups = _candidates(sc, kind)
        young = [g for g in groups if g[1] == "series" and sc.series[g[0][0]].first_minute > 0]
        for _ in range(count):
            dur = _duration(kind, rng)
            last = MINUTES - (120 if kind in PERMANENT else dur) - 30
            if young and rng.random() < 0.25:
                members, scope = young[int(rng.integers(len(young)))]
                start = int(sc.series[members[0]].first_minute + rng.uniform(12, 48) * 60)
            else:
                members, scope = groups[int(rng.integers(len(groups)))]
                first = max(sc.series[i].first_minute for i in members) if scope == "series" else 0
                start = int(rng.uniform(max(HISTORY, first), max(last, first + 1)))
            start = min(start, last)
            end = MINUTES if kind in PERMANENT else start + dur
            factor = _factor(sc, kind, members, start, end, rng)
            group = "outage" if kind in ("model_outage", "provider_outage") else ""
            spill = tuple(FALLBACK[i] for i in members if i in FALLBACK) if kind == "provider_outage" else ()
            out.append(Incident(kind, start, end, members, scope, factor, group, spill))
    return out


def _expected(sc: Scenario, members: tuple[int, ...], start: int, end: int) -> float:
    t = np.arange(start, min(end, start + 120)) + 0.5
    return float(sum(intensity(sc, i, t, None, []).sum() * sc.series[i].steps for i in members))


def _factor(sc: Scenario, kind: str, members: tuple[int, ...], start: int, end: int,
            rng: np.random.Generator) -> float:  # fmt: skip
    """Half the incidents sized near the eligibility edge, half large."""
    near = rng.random() < 0.5
    u = rng.uniform
    s = sc.series[members[0]]
    if kind in ("latency", "slowdown", "latency_ramp", "ttft", "tokens_shift"):
        if kind == "slowdown":
            return float(u(1.3, 2.0))
        if kind == "latency_ramp":
            return float(u(2, 4))
        if kind == "latency" and end - start <= 5:
            return float(u(3, 8))
        if kind == "tokens_shift":
            return float(u(1.2, 1.5) if near else u(1.8, 3))
        return float(u(1.3, 1.8) if near else u(2, 6)) if kind == "latency" else float(u(1.5, 2.5) if near else u(3, 8))
    if kind == "cache_collapse":
        return float(s.cache * u(0.4, 0.6) if near else u(0, 0.1))
    n = max(_expected(sc, members, start, end), 1e-6)
    if kind in VOLUME_KINDS:
        minutes = min(end - start, 120)
        sd = math.sqrt(n + (VOLUME_CV * n) ** 2 * 10 / max(minutes, 10))
        extra = max(u(3, 6) * sd, u(10, 30)) if near else max(u(8, 30) * sd, 40)
        return float(max(0.03, 1 - extra / n)) if kind == "volume_drop" else float(min(1 + extra / n, 10))
    base = {"truncation": s.p_cut, "empty_output": s.p_empty}.get(kind, max(sc.series[i].p_err for i in members))
    sd = math.sqrt(n * base * (1 - base) + (ERROR_SD * n * base) ** 2)
    if near:
        return float(min(0.95, base + max(u(3, 6) * sd, u(10, 30)) / n))
    return float(min(u(0.5, 0.95), base + max(u(8, 30) * sd, u(40, 400)) / n))  # small series: up to an outage


# --------------------------------------------------------------------------- spans
_ERRORS = {
    "anthropic": ("anthropic.RateLimitError", "anthropic.InternalServerError"),
    "openai": ("openai.RateLimitError", "openai.InternalServerError"),
    "gcp.gemini": ("google.genai.errors.ClientError", "google.genai.errors.ServerError"),
    "mistral_ai": ("mistralai.models.SDKError", "mistralai.models.SDKError"),
}
AGENT_SERVICES = ("support-agent", "agent-v2")


def all_calls(sc: Scenario) -> list[dict[str, np.ndarray]]:
    """Every series' calls over the whole timeline with the scenario's own noise."""
    noise = wobble(sc, np.random.default_rng([sc.seed, 1]))
    out = []
    for i in range(len(sc.series)):
        c = calls(sc, i, 0, MINUTES, noise, sc.incidents, np.random.default_rng([sc.seed, 2, i]))
        keep = c["t"] < MINUTES
        out.append({k: v[keep] for k, v in c.items()})
    return out


def span_rows(sc: Scenario) -> tuple[np.ndarray, list[tuple[Any, ...]], int]:
    """(arrival minute of each span = its end, rows in ``OTEL_TRACES_COLUMNS`` order, LLM calls),
    sorted by arrival: a span reaches the store when it ends."""
    rows: list[tuple[Any, ...]] = []
    arrive: list[float] = []
    n_calls = 0
    start_ns = int(START.timestamp() * 1e9)
    for i, c in enumerate(all_calls(sc)):
        s = sc.series[i]
        n_calls += len(c["t"])
        resource = {"service.name": s.service, "deployment.environment.name": s.environment,
                    "service.version": "2026.03.1"}  # fmt: skip
        agent = s.service in AGENT_SERVICES
        roots: dict[int, list[float]] = {}
        for j in range(len(c["t"])):
            t, dur = float(c["t"][j]), float(c["dur_ms"][j])
            trace = f"{sc.seed:06x}{i:04x}{int(c['trace'][j]):022x}"
            ok = c["status"][j] == OK
            attrs = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": s.provider,
                "gen_ai.request.model": s.model, "gen_ai.response.model": s.model,
                "gen_ai.usage.input_tokens": str(int(c["in_tok"][j])),
                "llmtrace.release": "v3.3" if s.release_minute is not None and t >= s.release_minute else "v3.2",
            }  # fmt: skip
            if ok:
                finish = "length" if c["cut"][j] else ("tool_calls" if agent and s.steps > 1 else "stop")
                attrs.update({
                    "gen_ai.usage.output_tokens": str(int(c["out_tok"][j])),
                    "gen_ai.usage.cache_read.input_tokens": str(int(c["cached"][j])),
                    "gen_ai.response.finish_reasons": f'["{finish}"]', "llmtrace.cost.usd": f"{c['cost'][j]:.8f}",
                })  # fmt: skip
            else:
                attrs["error.type"] = _ERRORS[s.provider][0 if c["status"][j] == RATE_LIMITED else 1]
            if c["stream"][j]:
                attrs["gen_ai.request.stream"] = "true"
                if ok:
                    attrs["gen_ai.response.time_to_first_chunk"] = f"{c['ttft_ms'][j] / 1000:.4f}"
            parent = ""
            if agent:
                parent = f"{i:04x}{int(c['trace'][j]):012x}"
                span = roots.setdefault(int(c["trace"][j]), [t, t])
                span[0], span[1] = min(span[0], t), max(span[1], t + dur / 60000)
            rows.append(_row(start_ns, t, dur, trace, f"{i:04x}{n_calls - len(c['t']) + j:012x}", parent,
                             f"chat {s.model}", "Client", s.service, resource, attrs, ok))  # fmt: skip
            arrive.append(t + dur / 60000)
        for tr, (lo, hi) in roots.items():
            trace = f"{sc.seed:06x}{i:04x}{tr:022x}"
            attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": s.service}
            rows.append(_row(start_ns, lo, (hi - lo) * 60000, trace, f"{i:04x}{tr:012x}", "",
                             f"invoke_agent {s.service}", "Internal", s.service, resource, attrs, True))  # fmt: skip
            arrive.append(hi)
    order = np.argsort(np.asarray(arrive), kind="stable")
    return np.asarray(arrive)[order], [rows[k] for k in order], n_calls


def _row(start_ns: int, t: float, dur_ms: float, trace: str, span: str, parent: str, name: str, kind: str,
         service: str, resource: dict[str, str], attrs: dict[str, str], ok: bool) -> tuple[Any, ...]:  # fmt: skip
    return (start_ns + int(t * 60e9), trace, span, parent, "", name, kind, service, resource, "llmtrace.bench",
            "6", attrs, int(dur_ms * 1e6), "Unset" if ok else "Error", "", [], [], [], [], [], [], [])  # fmt: skip


def insert_rows(client: Any, rows: list[tuple[Any, ...]], batch: int = 50_000) -> None:
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    for k in range(0, len(rows), batch):
        client.insert("otel_traces", rows[k : k + batch], OTEL_TRACES_COLUMNS)


def insert(client: Any, sc: Scenario) -> int:
    """All spans of the scenario into ``otel_traces``; returns the number of LLM calls."""
    _, rows, n = span_rows(sc)
    insert_rows(client, rows)
    return n
