"""Held-out v9 traffic for judging ``llmtrace anomalies`` (issue #12), written blind.

Its author read neither the detector nor the v2-v8 generators: only the shared harness
(``detection_harness``), the v8 runner's wiring and the ``otel_traces`` row layout. This design was
fixed before any judged run.

Traffic (9 days, Fri 2026-09-11 06:00 UTC -> Sun 2026-09-20 06:00 UTC; the last 7 days judged)
    14 series (service x model, 6 providers), 0.1-36 calls/min at peak. The rate of a series is
    ``peak x mix(tenants) x week x trend x day level x burst``:
    * tenant mix in two regions, EU (UTC+2) and US (60 % east UTC-4, 40 % west UTC-7), each with
      its own local-time curve: B2B (ramp 7-9 h, plateau to 17 h, a lunch dip 12:00-13:30 to
      0.6, evening tail) or consumer (floor 0.15, a noon bump and an evening peak 19-22 h) or
      flat (moderation: follows everyone, floor 0.35);
    * a weekly cycle: B2B weekends at 0.15-0.3, Friday afternoons 0.8; consumer weekends 1.1-1.25;
    * a slow growth trend of 0-3 % a day; day-to-day level changes (log-normal, sd 0.08 shared by
      a service plus 0.05 per series, interpolated across the day);
    * burst noise: a gamma multiplier per 5 minutes (cv 0.15-0.3), and agent services
      (``code-agent``, ``analytics-bot``) arrive as traces of 1-40 calls (heavy tail, mean ~4),
      one call after the other with tool time between, so their calls come in clumps.
    Calls: 20-100 % streamed (TTFT log-normal per model); duration = TTFT + output tokens x
    per-token time, with 2 % slow calls x2-6; output tokens log-normal per service, capped at
    the service's max_tokens (finish ``length``, 0.5-3 %), ``content_filter`` (empty output,
    0.05-0.4 %), agents' non-final calls finish ``tool_calls``; 0.3-1.5 % failed calls with the
    provider's own error types (rate limits fast, 5xx in seconds, timeouts 30-60 s); cost from
    list prices, Anthropic calls with cache reads.

Incidents (labelled, random times in the judged week weighted by sqrt(expected rate), so many
fall in busy hours and some at night; about 1 in 4 drawn near the edge, below the issue's range)
    latency_spike   p95 x3-8 (edge x1.8-2.8) for 15-60 min: successful calls' durations x factor
                    (a slow backend: their TTFT x sqrt(factor), as in latency_ramp and provider_outage)
    error_burst     25-60 % failed (edge 10-20 %) for 10-40 min, one error type (5xx or 429)
    volume_drop     calls x0.15 (-85 %; edge x0.3-0.45) for 30-90 min
    ttft_spike      TTFT x4-10 (edge x2.2-3.5) for 15-45 min on a streaming series (the call
                    lasts longer by as much)
    output_shift    output tokens x1.8-3 (edge x1.4-1.7) from a release on (permanent)
    provider_outage (own) 30-70 % ``overloaded``/503 on EVERY series of one provider (but the
                    young one) for 15-45 min, successful calls x1.5 slower
    latency_ramp    (own) durations creep up linearly over 70 % of 2-4 h to x3-5 (edge x2-2.5),
                    hold, then drop back (a leak fixed by a restart)
    truncation_up   (own) max_tokens lowered by a bad config for 30-120 min: ``length``
                    finishes rise to 15-40 % (edge 8-12 %)
    A young series (``voice-agent/gpt-4o-mini``, openai) starts 12-24 h before the first of its 2
    incidents; one incident per seed is placed to overlap another on the same series.

Benign (labelled; an alert on them is false)
    release    3 planned releases (a new version, nothing else changes) on random services
    batch      a one-off planned batch at night: ``doc-extract/gemini-2.5-flash`` +85 calls/min (5x its
               weekday peak, ~60x its night) for 60-120 min between 00:00 and 04:00 UTC on a weekday night
    migration  ``sales-email`` moves gradually from ``gpt-4o`` to ``claude-sonnet-4-5`` over 36 h
               (gpt-4o's share 0.7 -> 0.15, and stays)
    rush       the daily peak: ``support-bot`` x1.8 at 08:30-09:15 EU time on weekdays
    lunch      the lunch dip, 12:00-13:30 EU time on weekdays, every series
    weekend    Saturday and Sunday, every series
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from detection_harness import client_span_row, insert_rows  # a span's row; rows into otel_traces

from llmtrace import semconv

T0 = datetime(2026, 9, 11, 6, 0, tzinfo=timezone.utc)  # a Friday
DAYS = 9
MINUTES = DAYS * 1440
JUDGED_FROM = 2 * 1440
BUCKETS = MINUTES // 5
OK, FAILED = 0, 1

KINDS = ("latency_spike", "error_burst", "volume_drop", "ttft_spike", "output_shift",
         "provider_outage", "latency_ramp", "truncation_up")  # fmt: skip
PERMANENT = ("output_shift",)
ERROR_KINDS = ("error_burst", "provider_outage")
RATE_KINDS = (*ERROR_KINDS, "truncation_up")
VOLUME_KINDS = ("volume_drop",)
BENIGN_KINDS = ("release", "batch", "migration", "rush", "lunch", "weekend")
PER_SEED = {"latency_spike": 4, "error_burst": 4, "volume_drop": 3, "ttft_spike": 3, "output_shift": 2,
            "provider_outage": 1, "latency_ramp": 2, "truncation_up": 2}  # fmt: skip

# USD per 1M tokens (input, output)
PRICES = {
    "gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0), "gpt-4.1": (2.0, 8.0), "gpt-4.1-mini": (0.4, 1.6),
    "claude-sonnet-4-5": (3.0, 15.0), "claude-haiku-4-5": (1.0, 5.0), "gemini-2.5-flash": (0.3, 2.5),
    "gemini-2.5-pro": (1.25, 10.0), "command-r-plus": (2.5, 10.0), "mistral-small-latest": (0.1, 0.3),
    "meta.llama3-3-70b-instruct-v1:0": (0.72, 0.72),
}  # fmt: skip
# model: (TTFT median ms, ms per output token)
SPEED = {
    "gpt-4o-mini": (380, 9), "gpt-4o": (520, 14), "gpt-4.1": (600, 15), "gpt-4.1-mini": (420, 10),
    "claude-sonnet-4-5": (900, 18), "claude-haiku-4-5": (450, 9), "gemini-2.5-flash": (350, 6),
    "gemini-2.5-pro": (1400, 16), "command-r-plus": (700, 20), "mistral-small-latest": (300, 8),
    "meta.llama3-3-70b-instruct-v1:0": (650, 22),
}  # fmt: skip
# provider: [(error type, weight, kind)]; kind: fast (429), slow (5xx), timeout
ERRORS = {
    "openai": [("RateLimitError", 5, "fast"), ("InternalServerError", 3, "slow"), ("APITimeoutError", 1, "timeout"),
               ("APIConnectionError", 1, "slow")],
    "anthropic": [("RateLimitError", 4, "fast"), ("OverloadedError", 3, "slow"), ("APITimeoutError", 1, "timeout"),
                  ("InternalServerError", 2, "slow")],
    "gcp.gemini": [("ResourceExhausted", 5, "fast"), ("ServiceUnavailable", 3, "slow"),
                   ("DeadlineExceeded", 2, "timeout")],
    "cohere": [("TooManyRequestsError", 5, "fast"), ("ServiceUnavailableError", 3, "slow"),
               ("GatewayTimeoutError", 2, "timeout")],
    "mistral_ai": [("SDKError_429", 6, "fast"), ("SDKError_503", 3, "slow"), ("ReadTimeout", 1, "timeout")],
    "aws.bedrock": [("ThrottlingException", 6, "fast"), ("ServiceUnavailableException", 2, "slow"),
                    ("ModelTimeoutException", 2, "timeout")],
}  # fmt: skip
OUTAGE_TYPE = {"openai": "InternalServerError", "anthropic": "OverloadedError", "gcp.gemini": "ServiceUnavailable"}


@dataclass
class Series:
    service: str
    model: str
    provider: str
    peak: float  # calls/min at the tenant mix's busiest weekday minute (before trend, noise)
    shape: str  # b2b | consumer | flat
    eu: float  # share of EU tenants (the rest US)
    stream: float  # share of streamed calls
    out_median: float  # output tokens
    out_sd: float  # log sd of output tokens
    max_tokens: int
    in_median: float
    err: float  # baseline failed share
    agent: float = 0.0  # mean calls per trace (0: one call per trace)
    cburst: float = 0.2  # cv of the 5-minute burst multiplier
    filt: float = 0.001  # content_filter share
    growth: float = 0.01  # per day
    first_minute: int = 0
    last_minute: int = MINUTES
    rate: float = 0.0  # mean expected calls/min over the judged week (filled by build)

    @property
    def group(self) -> str:
        return self.service

    @property
    def attrs(self) -> dict[str, str]:
        return {"service": self.service, "model": self.model, "provider": self.provider}


@dataclass
class Incident:
    kind: str
    series: tuple[int, ...]
    start: int
    end: int
    factor: float
    scope: str = "series"
    edge: bool = False
    err: str = ""
    spill: tuple[int, ...] = ()


@dataclass
class Benign:
    kind: str
    series: tuple[int, ...]
    start: int
    end: int
    metrics: tuple[str, ...] | None = None


@dataclass
class Scenario:
    seed: int
    series: list[Series]
    incidents: list[Incident]
    benign: list[Benign]
    releases: list[list[tuple[int, str]]]  # per series: (from minute, version)
    batch: tuple[int, int]  # the planned batch's minutes
    migration: tuple[int, int] = (0, 0)  # sales-email's move from gpt-4o to claude-sonnet-4-5
    noise: dict[str, np.ndarray] = field(default_factory=dict)
    end: datetime = T0 + timedelta(minutes=MINUTES)
    judged_from: int = JUDGED_FROM

    def minute(self, t: datetime) -> float:
        return (t - T0).total_seconds() / 60

    def at(self, minute: float) -> datetime:
        return T0 + timedelta(minutes=float(minute))


def _series() -> list[Series]:
    S = Series
    return [
        S("support-bot", "gpt-4o-mini", "openai", 24, "consumer", 0.55, 0.95, 260, 0.6, 1024, 1800, 0.006,
          cburst=0.15, filt=0.004, growth=0.015),
        S("support-bot", "claude-haiku-4-5", "anthropic", 8, "consumer", 0.55, 0.95, 300, 0.6, 1024, 2200, 0.008,
          filt=0.003),
        S("code-agent", "claude-sonnet-4-5", "anthropic", 14, "b2b", 0.4, 0.3, 420, 0.8, 4096, 9000, 0.01,
          agent=4.5, cburst=0.25, growth=0.025),
        S("code-agent", "gpt-4.1", "openai", 4, "b2b", 0.4, 0.3, 380, 0.8, 4096, 8000, 0.008, agent=3.5),
        S("doc-extract", "gemini-2.5-flash", "gcp.gemini", 18, "b2b", 0.7, 0.0, 700, 0.5, 2048, 6000, 0.012,
          cburst=0.3, filt=0.0005),
        S("doc-extract", "gpt-4o-mini", "openai", 5, "b2b", 0.7, 0.0, 650, 0.5, 2048, 6000, 0.005, filt=0.0005),
        S("sales-email", "gpt-4o", "openai", 4.3, "b2b", 0.2, 1.0, 350, 0.45, 800, 1500, 0.005),
        S("sales-email", "claude-sonnet-4-5", "anthropic", 4.3, "b2b", 0.2, 1.0, 380, 0.45, 800, 1500, 0.008),
        S("search-rag", "gpt-4.1-mini", "openai", 36, "consumer", 0.35, 0.9, 220, 0.55, 700, 3500, 0.004,
          cburst=0.15, filt=0.002, growth=0.02),
        S("search-rag", "command-r-plus", "cohere", 0.7, "consumer", 0.35, 0.9, 240, 0.55, 700, 3500, 0.01),
        S("moderation", "mistral-small-latest", "mistral_ai", 9, "flat", 0.5, 0.0, 12, 0.4, 64, 900, 0.003,
          cburst=0.15, filt=0.0, growth=0.015),
        S("translate", "gemini-2.5-pro", "gcp.gemini", 0.35, "b2b", 0.8, 0.2, 900, 0.6, 4096, 2500, 0.01),
        S("analytics-bot", "meta.llama3-3-70b-instruct-v1:0", "aws.bedrock", 2.5, "b2b", 0.5, 0.0, 300, 0.7, 1500,
          4000, 0.012, agent=3.0, cburst=0.3),
        S("voice-agent", "gpt-4o-mini", "openai", 6, "consumer", 0.5, 1.0, 120, 0.5, 400, 1200, 0.007,
          cburst=0.2, filt=0.002, growth=0.03),
    ]  # fmt: skip


YOUNG = 13
MIGRATE = (6, 7)  # sales-email: gpt-4o -> claude-sonnet-4-5
BATCH = 4
RUSH = 0
STREAMING = [i for i, s in enumerate(_series()) if s.stream >= 0.9]


# --------------------------------------------------------------------------- seasonality
def _local_curve(shape: str, hours: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Activity at a local hour (0-24, float) and weekday (0 = Monday), 1 = a weekday's busiest."""
    h = hours
    if shape == "b2b":
        day = 0.07 + 0.93 * np.interp(h, [7, 9], [0, 1]) * np.interp(h, [17, 18.5, 21], [1, 0.3, 0])
        week = np.select([weekday == 4, weekday == 5, weekday == 6], [np.where(h > 13, 0.8, 1.0), 0.25, 0.18], 1.0)
    elif shape == "consumer":
        day = 0.15 + 0.45 * np.exp(-((h - 12.5) ** 2) / 6) + 0.85 * np.exp(-((h - 20.5) ** 2) / 5)
        day = day + 0.35 * np.clip((h - 8) / 3, 0, 1) * np.clip((23 - h) / 3, 0, 1)
        day = day / 1.25
        week = np.select([weekday == 5, weekday == 6], [1.1, 1.25], 1.0)
    else:
        day = 0.35 + 0.65 * np.exp(-((h - 14) ** 2) / 30)
        week = np.select([weekday == 5, weekday == 6], [0.8, 0.75], 1.0)
    lunch = np.where((h >= 12) & (h < 13.5) & (weekday < 5), 0.6 if shape == "b2b" else 0.85, 1.0)
    return day * week * lunch


_UTC_OFFSETS = ((2.0, "eu", 1.0), (-4.0, "us", 0.6), (-7.0, "us", 0.4))


def _mix(s: Series, minutes: np.ndarray) -> np.ndarray:
    """The tenant mix: each region's local curve, weighted by its share of the series' tenants."""
    utc = T0 + timedelta(0)
    base_h = utc.hour + utc.minute / 60
    total = np.zeros(len(minutes))
    for offset, region, share in _UTC_OFFSETS:
        local = base_h + minutes / 60 + offset
        day = np.floor(local / 24)
        weekday = (utc.weekday() + day.astype(int)) % 7
        w = s.eu if region == "eu" else 1 - s.eu
        total += w * share * _local_curve(s.shape, local - 24 * day, weekday)
    return total


def _eu_local(minutes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    local = T0.hour + minutes / 60 + 2.0
    day = np.floor(local / 24)
    return local - 24 * day, (T0.weekday() + day.astype(int)) % 7


def _rush(minutes: np.ndarray) -> np.ndarray:
    h, wd = _eu_local(minutes)
    return (h >= 8.5) & (h < 9.25) & (wd < 5)


def noise(sc: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The series' day levels and 5-minute bursts (fresh per effect replicate)."""
    services = sorted({s.service for s in sc.series})
    shared = {v: rng.normal(0, 0.08, DAYS + 2) for v in services}
    day = np.stack([shared[s.service] + rng.normal(0, 0.05, DAYS + 2) for s in sc.series])
    burst = np.stack([rng.gamma(1 / s.cburst**2, s.cburst**2, BUCKETS) for s in sc.series])
    return {"day": day, "burst": burst}


def expected(sc: Scenario, i: int, minutes: np.ndarray, nz: dict[str, np.ndarray] | None) -> np.ndarray:
    """Expected calls/min of series ``i`` at ``minutes`` (no incidents; with ``nz``'s noise)."""
    s = sc.series[i]
    lam = s.peak * _mix(s, minutes) * np.exp(s.growth * minutes / 1440)
    if nz is not None:
        d = minutes / 1440
        lam = lam * np.exp(np.interp(d, np.arange(DAYS + 2), nz["day"][i]))
        lam = lam * nz["burst"][i][np.clip((minutes // 5).astype(int), 0, BUCKETS - 1)]
    if i == RUSH:
        lam = lam * np.where(_rush(minutes), 1.8, 1.0)
    if i == BATCH:
        lo, hi = sc.batch
        lam = lam + np.where((minutes >= lo) & (minutes < hi), 5 * s.peak * 0.95, 0.0)
    if i in MIGRATE:
        lo, hi = sc.migration
        share = 0.7 - 0.55 * np.clip((minutes - lo) / (hi - lo), 0, 1)
        lam = lam * (share if i == MIGRATE[0] else 1 - share)
    return np.where((minutes >= s.first_minute) & (minutes < s.last_minute), lam, 0.0)


# --------------------------------------------------------------------------- calls
def _active(incidents: list[Incident], i: int, kind: str) -> list[Incident]:
    return [inc for inc in incidents if inc.kind == kind and i in inc.series]


def _ramp(inc: Incident, t: np.ndarray) -> np.ndarray:
    """latency_ramp's multiplier: linear to ``factor`` over 70 % of the window, then held."""
    frac = np.clip((t - inc.start) / (0.7 * (inc.end - inc.start)), 0, 1)
    return np.where((t >= inc.start) & (t < inc.end), 1 + (inc.factor - 1) * frac, 1.0)


def calls(
    sc: Scenario,
    i: int,
    lo: float,
    hi: float,
    nz: dict[str, np.ndarray] | None = None,
    incidents: list[Incident] | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Series ``i``'s calls starting in [lo, hi) minutes, in time order (agent traces may run past ``hi``)."""
    s = sc.series[i]
    nz = sc.noise if nz is None else nz
    incidents = sc.incidents if incidents is None else incidents
    rng = np.random.default_rng([sc.seed, 5, i]) if rng is None else rng
    lo, hi = math.floor(lo), math.ceil(hi)
    grid = np.arange(lo, hi, dtype=float)
    lam = expected(sc, i, grid + 0.5, nz)
    for inc in _active(incidents, i, "volume_drop"):
        lam = np.where((grid >= inc.start) & (grid < inc.end), lam * inc.factor, lam)
    per = max(s.agent, 1.0)
    n_start = rng.poisson(lam / per)
    starts = np.repeat(grid, n_start) + rng.random(int(n_start.sum()))
    if s.agent:
        # heavy-tailed trace length: 1 + a discretised log-normal, mean about ``agent``
        length = np.minimum(1 + np.floor(rng.lognormal(math.log(s.agent - 0.5) - 0.5, 1.0, len(starts))), 40)
        length = length.astype(int)
    else:
        length = np.ones(len(starts), dtype=int)
    trace = np.repeat(np.arange(len(starts)), length)
    step = np.concatenate([np.arange(k) for k in length]) if len(length) else np.zeros(0, dtype=int)
    last = np.repeat(length, length) - 1 == step
    n = len(trace)
    out = np.exp(rng.normal(math.log(s.out_median), s.out_sd, n))
    in_tok = np.maximum(20, np.exp(rng.normal(math.log(s.in_median), 0.5, n)) * (1 + 0.35 * step)).astype(int)
    ttft_med, per_tok = SPEED[s.model]
    ttft = np.exp(rng.normal(math.log(ttft_med), 0.35, n)) * (1 + in_tok / 60000)
    gen_ms = per_tok * np.exp(rng.normal(0, 0.2, n))
    slow = np.where(rng.random(n) < 0.02, rng.uniform(2, 6, n), 1.0)
    tool = np.where(last, 0.0, np.exp(rng.normal(math.log(2500), 0.8, n)))
    stream = rng.random(n) < s.stream
    u_err, u_type, u_filt, u_dur = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
    cache = rng.random(n)
    u_hit, jitter = rng.random(n), np.exp(rng.normal(0, 0.1, n))  # drawn once: incidents never shift the draws
    # agent calls follow each other: the start of a trace's call k is the end of call k-1 plus tool time
    base_dur = (ttft + np.minimum(out, s.max_tokens) * gen_ms) * slow
    t = starts[trace].copy() if n else np.zeros(0)
    if s.agent and n:
        gap = (base_dur + tool) / 60000
        cum = np.cumsum(gap)
        first = np.searchsorted(trace, np.arange(len(starts)))
        offset = cum - gap - np.repeat(cum[first] - gap[first], length)
        t = t + offset
    # incidents by call time
    for inc in _active(incidents, i, "output_shift"):
        out = np.where(t >= inc.start, out * inc.factor, out)
    cap = np.full(n, float(s.max_tokens))
    for inc in _active(incidents, i, "truncation_up"):
        # a lowered max_tokens: the cap at which ``factor`` of outputs are cut
        z = _norm_ppf(1 - inc.factor)
        low = math.exp(math.log(s.out_median) + s.out_sd * z)
        cap = np.where((t >= inc.start) & (t < inc.end), np.minimum(cap, low), cap)
    cut = out >= cap
    filt = (u_filt < s.filt) & ~cut
    out_tok = np.where(filt, 0, np.minimum(out, cap)).astype(int)
    failed = u_err < s.err
    types = ERRORS[s.provider]
    weights = np.cumsum([w for _, w, _ in types]) / sum(w for _, w, _ in types)
    err = np.searchsorted(weights, u_type)
    for inc in [*_active(incidents, i, "error_burst"), *_active(incidents, i, "provider_outage")]:
        inside = (t >= inc.start) & (t < inc.end)
        hit = inside & (u_hit < inc.factor)
        failed = failed | hit
        code = next(k for k, (name, _, _) in enumerate(types) if name == inc.err)
        err = np.where(hit, code, err)
    ttft_f = ttft.copy()
    for inc in _active(incidents, i, "ttft_spike"):
        ttft_f = np.where((t >= inc.start) & (t < inc.end) & stream, ttft_f * inc.factor, ttft_f)
    dur = ttft_f + out_tok * gen_ms * slow + (ttft * (slow - 1))
    mult = np.ones(n)
    for inc in _active(incidents, i, "latency_spike"):
        mult = np.where((t >= inc.start) & (t < inc.end), mult * inc.factor * jitter, mult)
    for inc in _active(incidents, i, "provider_outage"):
        mult = np.where((t >= inc.start) & (t < inc.end), mult * 1.5, mult)
    for inc in _active(incidents, i, "latency_ramp"):
        mult = mult * _ramp(inc, t)
    dur = dur * mult
    ttft_f = np.where(mult > 1, ttft_f * np.sqrt(mult), ttft_f)  # a slow backend also answers later
    kinds = np.array([k for _, _, k in types])[err] if n else np.zeros(0, dtype=str)
    fail_ms = np.select(
        [kinds == "fast", kinds == "slow"],
        [60 + 240 * u_dur, 400 + 3000 * u_dur],
        30000 + 30000 * u_dur,
    )
    dur = np.where(failed, fail_ms, dur)
    price_in, price_out = PRICES[s.model]
    cached = np.where((s.provider == "anthropic") & (cache < 0.6), (in_tok * 0.7).astype(int), 0)
    cost = ((in_tok - cached) * price_in + cached * price_in * 0.1 + out_tok * price_out) / 1e6
    release = np.zeros(n, dtype=int)
    for k, (m, _) in enumerate(sc.releases[i][1:], start=1):
        release = np.where(t >= m, k, release)
    finish = np.where(cut, 1, np.where(filt, 2, np.where(last, 0, 3)))  # stop, length, content_filter, tool_calls
    keep = (t >= lo) & (t < MINUTES) if n else np.zeros(0, dtype=bool)
    order = np.argsort(t[keep], kind="stable")
    cols = {
        "t": t, "status": np.where(failed, FAILED, OK), "dur_ms": dur, "ttft_ms": np.where(stream, ttft_f, np.nan),
        "in_tok": in_tok, "out_tok": out_tok, "cost": cost, "cut": cut & ~failed, "filt": filt & ~failed,
        "stream": stream, "err": err, "release": release, "trace": trace, "step": step, "cached": cached,
        "finish": finish,
    }  # fmt: skip
    return {k: v[keep][order] for k, v in cols.items()}


def _norm_ppf(p: float) -> float:
    """The standard normal quantile."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


# --------------------------------------------------------------------------- scenario
def _pick_time(sc: Scenario, i: int, rng: np.random.Generator, length: int, lo: int = JUDGED_FROM + 60) -> int:
    grid = np.arange(lo, MINUTES - length - 30, 5, dtype=float)
    w = np.sqrt(np.maximum(expected(sc, i, grid, None), 1e-6))
    w = np.where(grid >= sc.series[i].first_minute + 60, w, 0.0)
    return int(rng.choice(grid, p=w / w.sum())) + int(rng.integers(0, 5))


def _size(kind: str, edge: bool, rng: np.random.Generator) -> tuple[float, int]:
    """(factor, minutes) drawn around the issue's ranges, or below them at the edge."""
    u = rng.uniform
    table = {
        "latency_spike": ((1.8, 2.8) if edge else (3, 8), (15, 60)),
        "error_burst": ((0.10, 0.20) if edge else (0.25, 0.60), (10, 40)),
        "volume_drop": ((0.30, 0.45) if edge else (0.12, 0.18), (30, 90)),
        "ttft_spike": ((2.2, 3.5) if edge else (4, 10), (15, 45)),
        "output_shift": ((1.4, 1.7) if edge else (1.8, 3), (0, 0)),
        "provider_outage": ((0.30, 0.70), (15, 45)),
        "latency_ramp": ((2.0, 2.5) if edge else (3, 5), (120, 240)),
        "truncation_up": ((0.08, 0.12) if edge else (0.15, 0.40), (30, 120)),
    }
    (a, b), (m0, m1) = table[kind]
    return float(u(a, b)), int(rng.integers(m0, m1 + 1))


def build(seed: int) -> Scenario:
    rng = np.random.default_rng([seed, 9])
    series = _series()
    # the young series starts 12-24 h before its first incident
    first_young = int(rng.integers(JUDGED_FROM + 1440, MINUTES - 2 * 1440))
    series[YOUNG].first_minute = first_young
    releases: list[list[tuple[int, str]]] = [[(0, "1.4.0")] for _ in series]
    sc = Scenario(seed, series, [], [], releases, (0, 0))
    # the planned batch: a weekday night 00:00-04:00 UTC in the judged week
    nights = [d for d in range(3, DAYS) if (T0 + timedelta(days=d)).weekday() < 5]
    night = int(rng.choice(nights)) * 1440 - T0.hour * 60
    b0 = night + int(rng.integers(0, 120))
    sc.batch = (b0, b0 + int(rng.integers(60, 121)))
    m0 = int(rng.integers(JUDGED_FROM, MINUTES - 3 * 1440))
    sc.migration = (m0, m0 + 36 * 60)
    sc.noise = noise(sc, np.random.default_rng([seed, 3]))
    services = sorted({s.service for s in series})

    def release(svc: str, minute: int, version: str) -> None:
        for k, s in enumerate(series):
            if s.service == svc:
                releases[k].append((minute, version))
                releases[k].sort()

    incidents: list[Incident] = []
    # the young series' incidents: the first 12-24 h after its first call, the second later
    for n_y, kind in enumerate(rng.choice(["error_burst", "latency_spike", "volume_drop"], 2, replace=False)):
        edge = bool(rng.random() < 0.25)
        factor, length = _size(str(kind), edge, rng)
        if n_y == 0:
            start = first_young + int(rng.integers(12 * 60, 24 * 60))
        else:
            start = _pick_time(sc, YOUNG, rng, length, first_young + 24 * 60)
        err = _err_type(series[YOUNG], rng) if kind in ERROR_KINDS else ""
        incidents.append(Incident(str(kind), (YOUNG,), start, start + length, factor, edge=edge, err=err))
    counts = dict(PER_SEED)
    for kind, k in counts.items():
        for _ in range(k):
            edge = bool(rng.random() < 0.25) and kind != "provider_outage"
            factor, length = _size(kind, edge, rng)
            if kind == "provider_outage":
                provider = str(rng.choice(["openai", "anthropic", "gcp.gemini"]))
                members = tuple(j for j, s in enumerate(series) if s.provider == provider and j != YOUNG)
                start = _pick_time(sc, members[0], rng, length)
                incidents.append(Incident(kind, members, start, start + length, factor, "provider",
                                          err=OUTAGE_TYPE[provider]))  # fmt: skip
                continue
            pool = STREAMING if kind == "ttft_spike" else [j for j in range(len(series)) if j != YOUNG]
            j = int(rng.choice(pool))
            start = _pick_time(sc, j, rng, length)
            if kind == "output_shift":
                incidents.append(Incident(kind, (j,), start, MINUTES, factor, edge=edge))
                release(series[j].service, start, f"1.{5 + len(incidents)}.0")
                continue
            err = _err_type(series[j], rng) if kind in ERROR_KINDS else ""
            incidents.append(Incident(kind, (j,), start, start + length, factor, edge=edge, err=err))
    # one overlap on purpose: an error burst inside the first latency spike, on its series
    spike = next(inc for inc in incidents if inc.kind == "latency_spike" and inc.series[0] != YOUNG)
    factor, length = _size("error_burst", False, rng)
    s0 = spike.start + int(rng.integers(0, max(1, spike.end - spike.start - 5)))
    incidents.append(Incident("error_burst", spike.series, s0, s0 + length, factor,
                              err=_err_type(series[spike.series[0]], rng)))  # fmt: skip
    sc.incidents = incidents
    # benign changes
    benign: list[Benign] = []
    for _ in range(3):
        svc = str(rng.choice(services))
        members = tuple(j for j, s in enumerate(series) if s.service == svc)
        m = _pick_time(sc, members[0], rng, 60)
        release(svc, m, f"2.{int(rng.integers(0, 9))}.{int(rng.integers(0, 9))}")
        benign.append(Benign("release", members, m, m + 180))
    benign.append(Benign("batch", (BATCH,), sc.batch[0], sc.batch[1] + 30))
    benign.append(Benign("migration", MIGRATE, sc.migration[0], sc.migration[1] + 720))
    every = tuple(range(len(series)))
    grid = np.arange(MINUTES, dtype=float)
    for kind, mask in (("rush", _rush(grid)), ("lunch", _lunch(grid)), ("weekend", _weekend(grid))):
        for a, b in _runs(mask):
            benign.append(Benign(kind, (RUSH,) if kind == "rush" else every, a, b))
    sc.benign = benign
    judged = np.arange(JUDGED_FROM, MINUTES, dtype=float)
    for i, s in enumerate(series):
        lam = expected(sc, i, judged, None)
        s.rate = float(lam[judged >= s.first_minute].mean())
    return sc


def _err_type(s: Series, rng: np.random.Generator) -> str:
    """A burst's error type: mostly the provider's 5xx, sometimes its rate limit."""
    types = ERRORS[s.provider]
    fast = [n for n, _, k in types if k == "fast"]
    slow = [n for n, _, k in types if k != "fast"]
    return str(rng.choice(fast)) if rng.random() < 0.3 else slow[0]


def _lunch(grid: np.ndarray) -> np.ndarray:
    h, wd = _eu_local(grid)
    return (h >= 12) & (h < 13.5) & (wd < 5)


def _weekend(grid: np.ndarray) -> np.ndarray:
    utc = T0.hour + grid / 60
    wd = (T0.weekday() + np.floor(utc / 24).astype(int)) % 7
    return wd >= 5


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


# --------------------------------------------------------------------------- rows
def _rows(sc: Scenario, i: int, c: dict[str, np.ndarray], ids: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """One ``otel_traces`` row per call (``OTEL_TRACES_COLUMNS`` order); and when each arrives (its end)."""
    s = sc.series[i]
    versions = [v for _, v in sc.releases[i]]
    types = ERRORS[s.provider]
    base_ns = int(T0.timestamp()) * 10**9
    name = f"chat {s.model}"
    finishes = ('["stop"]', '["length"]', '["content_filter"]', '["tool_calls"]')
    rows = []
    for k in range(len(c["t"])):
        failed = c["status"][k] == FAILED
        stream = bool(c["stream"][k])
        version = versions[int(c["release"][k])]
        attrs = {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: s.provider, semconv.REQUEST_MODEL: s.model,
            semconv.USAGE_INPUT_TOKENS: str(int(c["in_tok"][k])), semconv.ENVIRONMENT: "production",
            semconv.RELEASE: version, semconv.REQUEST_MAX_TOKENS: str(s.max_tokens),
        }  # fmt: skip
        if stream:
            attrs[semconv.REQUEST_STREAM] = "true"
        if failed:
            attrs[semconv.ERROR_TYPE] = types[int(c["err"][k])][0]
        else:
            attrs[semconv.RESPONSE_MODEL] = s.model
            attrs[semconv.USAGE_OUTPUT_TOKENS] = str(int(c["out_tok"][k]))
            attrs[semconv.COST_USD] = repr(round(float(c["cost"][k]), 8))
            attrs[semconv.RESPONSE_FINISH_REASONS] = finishes[int(c["finish"][k])]
            if c["cached"][k]:
                attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = str(int(c["cached"][k]))
            if stream:
                attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = repr(round(float(c["ttft_ms"][k]) / 1000, 4))
        resource = {semconv.SERVICE_NAME: s.service, semconv.SERVICE_VERSION: version,
                    semconv.DEPLOYMENT_ENVIRONMENT_NAME: "production"}  # fmt: skip
        trace_id = f"{ids[k, 0]:016x}{ids[k, 1]:016x}"
        start_ns, dur_ns = base_ns + int(c["t"][k] * 60e9), int(c["dur_ms"][k] * 1e6)
        rows.append(
            client_span_row(
                start_ns,
                trace_id,
                f"{ids[k, 2]:016x}",
                name,
                s.service,
                resource,
                "llmtrace.bench.v9",
                attrs,
                dur_ns,
                failed,
            )
        )
    return c["t"] + c["dur_ms"] / 60000, rows


def series_calls(sc: Scenario, i: int) -> dict[str, np.ndarray]:
    """Every call of series ``i`` as stored."""
    return calls(sc, i, 0, MINUTES, sc.noise, sc.incidents)


def _ids(sc: Scenario, i: int, c: dict[str, np.ndarray]) -> np.ndarray:
    """(trace hi, trace lo, span) ids: an agent trace's calls share their trace id."""
    rng = np.random.default_rng([sc.seed, 11, i])
    n_traces = int(c["trace"].max()) + 1 if len(c["trace"]) else 0
    traces = rng.integers(1, 2**63, (n_traces, 2))
    spans = rng.integers(1, 2**63, len(c["t"]))
    return np.column_stack([traces[c["trace"]], spans]) if len(spans) else np.zeros((0, 3), dtype=np.int64)


def span_rows(sc: Scenario) -> tuple[np.ndarray, list[tuple[Any, ...]], int]:
    """Every call of the scenario as rows, in order of arrival (when the span ends)."""
    arrive, rows = [], []
    for i in range(len(sc.series)):
        c = series_calls(sc, i)
        a, r = _rows(sc, i, c, _ids(sc, i, c))
        arrive.append(a)
        rows += r
    at = np.concatenate(arrive)
    order = np.argsort(at, kind="stable")
    return at[order], [rows[k] for k in order], len(rows)


def insert(client: Any, sc: Scenario) -> int:
    _, rows, n = span_rows(sc)
    insert_rows(client, rows)
    return n


def describe(sc: Scenario) -> str:
    """The scenario in a few lines: series with their mean rate, incidents, benign changes."""
    lines = [f"seed {sc.seed}: {len(sc.series)} series, {len(sc.incidents)} incidents"]
    for i, s in enumerate(sc.series):
        lines.append(f"  [{i}] {s.service}/{s.model} ({s.provider}) {s.rate:.2f}/min from minute {s.first_minute}")
    for inc in sc.incidents:
        lines.append(f"  {inc.kind} {inc.series} {sc.at(inc.start):%a %H:%M} {inc.end - inc.start} min "
                     f"x{inc.factor:.2f}{' edge' if inc.edge else ''} {inc.err}")  # fmt: skip
    for b in sc.benign:
        if b.kind not in ("lunch", "weekend", "rush"):
            lines.append(f"  benign {b.kind} {b.series} {sc.at(b.start):%a %H:%M} -> {sc.at(b.end):%a %H:%M}")
    return "\n".join(lines)
