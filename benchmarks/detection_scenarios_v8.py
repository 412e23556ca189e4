"""The v8 held-out generator: a blind judge for ``llmtrace anomalies`` (issue #12).

Written without reading the detector (``llmtrace/analytics/anomalies*``) or the v2-v7 generators;
only the shared harness, the v7 runner (as a model of the plug-in API) and the demo's span shape.
9 days (Wed 2026-03-04 00:00 UTC .. Fri 2026-03-13 00:00 UTC), the last 7 judged; one OTel span
per LLM call, written into ``otel_traces`` as the Collector would (so ``llm_calls`` fills through
the real views). Per seed: 12 series in 10 services, 30 incidents, the benign changes below.

What production looks like here (and v2-v7 may not):

- **Regions and time zones**: each series' traffic is a mix of us (America/New_York), eu
  (Europe/Berlin) and apac (Asia/Tokyo) users, each with two daily peaks (about 10:30 and 15:30
  local) and a night trough at 10-15 % of the mean; the sum over regions has two or three peaks
  a day in UTC. Per-hour traffic noise (lognormal, sd 0.12) gives counts more spread than Poisson.
- **A slow weekly trend**: each series grows or shrinks linearly by -10 .. +25 % a week.
- **Daylight saving**: the US moves its clocks on Sun 2026-03-08 07:00 UTC (Europe only on
  Mar 29): from then on the us share of every series peaks an hour earlier in UTC.
- **Weekends**: the B2B series (``legal-review``, ``copilot``, ``writer``) fall to 25 % on
  their users' local Saturday and Sunday; consumer series keep 90 %.
- **Rates** from 0.1-0.5 calls/min (``legal-review``, the quiet series) to a busy
  ``search-assist/gpt-4o-mini`` at 30-36 calls/min on average, 60-80 in its peaks (100+ was
  too slow to store 10 seeds in the time this judge had).
- **A young series**: ``onboarding/gpt-4.1`` starts on day 3-5 (a launch); 3 incidents are put in
  its first 12-24 hours.
- **Streaming and caching**: stream shares of 0-95 % per series (TTFT only on streams);
  ``agent/claude-opus-4-1`` and ``support-chat/claude-sonnet-4-5`` read 60-75 % of their input
  from the prompt cache (``gen_ai.usage.cache_read.input_tokens``), paid at 10 % of the price.

Incidents (``KINDS``; a change that breaks something a user or the bill feels; found by the
family in ``detection_v8.FAMILY``):

- ``provider_overload``: every series of one provider fails at once: Anthropic 529 (overloaded)
  or OpenAI 503 on 15-60 % of calls for 10-60 min (scope ``provider``; found by ``error_rate``
  on any of its series or on the provider).
- ``stream_outage``: only streaming calls fail (a broken SSE path), 40-100 % of them, 10-90 min.
- ``error_burst``: one series' 5xx at 3-40 % for 5-60 min (two of them at the same minute as a
  labelled release of that series: the release is benign, the burst is not).
- ``quiet_outage``: the quiet series (0.1-0.5 calls/min) fails entirely for 40-240 min, in its
  users' working hours (13:00-19:00 UTC; weekends included, where it is quieter still).
- ``latency_spike``: durations x1.5-4 for 5-60 min; one per seed is the busy series at x2 for
  20 min (small in factor, huge in evidence).
- ``ttft_creep``: a streamed model's TTFT creeps up linearly to x2-4 over 2-8 hours, then recovers.
- ``volume_drop``: a client bug sends only 10-50 % of the calls for 15-120 min.
- ``cache_miss`` (permanent): a prompt-prefix change breaks caching: the cached share falls to
  0-30 % of its value from a point on, so ``cost_per_call_usd`` rises x1.5-2.5 (tokens unchanged).
- ``output_blowup``: output tokens x1.6-3 for 30-240 min (a model update gone verbose): cost
  and tokens per call up.

Benign changes (``BENIGN_KINDS``; labelled, must NOT alert; an alert on them is false):

- ``backfill``: a planned batch job at an unusual hour (01:00-04:00 UTC): ``summarize`` sends
  20-40 calls/min for 60-120 min on top of its ~1/min. Planned: the owner knows; alerting
  "calls up" on it is a false alarm (this is the judgement call: a team could want it flagged).
- ``ab_ramp``: a planned traffic shift in ``writer``: gpt-4o -> gpt-4.1 ramps from 0 to 50 %
  over 12 hours and stays (labelled for those 12 hours only); gpt-4o's calls down, gpt-4.1's up.
  Not an incident.
- ``release``: a new ``service.version`` with output tokens x1.1 (inside normal spread).
- ``dst``: the US clock change moves an hour of traffic (48 h after it, on series with us users).
- ``weekend``: the B2B series' local Saturdays and Sundays.

Sizes deliberately straddle the harness's eligibility line (>= 10 min, >= 3 sd, >= 10 extra
events): durations from 5 min, error shares from 3 %, drops to 50 %, factors from 1.5.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from detection_harness import client_span_row, insert_rows  # a span's row; rows into otel_traces

from llmtrace import semconv

DAYS = 9
MINUTES = DAYS * 1440
JUDGED_FROM = 2 * 1440
T0 = datetime(2026, 3, 4, tzinfo=timezone.utc)
DST_US = int((datetime(2026, 3, 8, 7, tzinfo=timezone.utc) - T0).total_seconds() // 60)
OK, FAILED = 0, 1
ZONES = {"us": "America/New_York", "eu": "Europe/Berlin", "apac": "Asia/Tokyo"}
ERROR_KINDS = ("provider_overload", "stream_outage", "error_burst", "quiet_outage")
LATENCY_KINDS = ("latency_spike", "ttft_creep")
VOLUME_KINDS = ("volume_drop",)
RATE_KINDS = ERROR_KINDS
PERMANENT = ("cache_miss",)
KINDS = (*ERROR_KINDS, *LATENCY_KINDS, *VOLUME_KINDS, "cache_miss", "output_blowup")
PLAN = {
    "provider_overload": 2, "stream_outage": 3, "error_burst": 6, "quiet_outage": 2, "latency_spike": 5,
    "ttft_creep": 3, "volume_drop": 4, "cache_miss": 2, "output_blowup": 3,
}  # fmt: skip
BENIGN_KINDS = ("backfill", "ab_ramp", "release", "dst", "weekend")
# error.type per provider for a 5xx, an overload, a broken stream
ERROR_TYPES = {
    "anthropic": ("anthropic.InternalServerError", "anthropic.OverloadedError", "anthropic.APIConnectionError"),
    "openai": ("openai.InternalServerError", "openai.InternalServerError", "openai.APIConnectionError"),
    "mistral_ai": ("mistralai.SDKError", "mistralai.SDKError", "httpx.RemoteProtocolError"),
    "gcp.gemini": ("google.genai.errors.ServerError", "google.genai.errors.ServerError", "httpx.ReadError"),
}
PRICES = {  # USD per 1M input, output tokens
    "claude-sonnet-4-5": (3.0, 15.0), "claude-haiku-4-5": (1.0, 5.0), "claude-opus-4-1": (15.0, 75.0),
    "gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0), "gpt-4.1": (2.0, 8.0), "gpt-4.1-nano": (0.1, 0.4),
    "mistral-large-latest": (2.0, 6.0), "gemini-2.5-flash": (0.3, 2.5),
}  # fmt: skip


@dataclass(frozen=True)
class Series:
    """One service x model: its traffic mix, timing and token habits."""

    service: str
    model: str
    provider: str
    rate: float  # mean calls/min over a weekday
    regions: tuple[tuple[str, float], ...]
    stream: float  # share of streamed calls
    b2b: bool = False
    dur_ms: float = 1500.0  # median duration of a successful call
    ttft_ms: float = 450.0
    in_tok: float = 800.0
    out_tok: float = 250.0
    cached: float = 0.0  # share of input read from the prompt cache
    trend: float = 0.0  # growth per week
    first_minute: int = 0
    last_minute: int = MINUTES
    group: str = ""

    @property
    def attrs(self) -> dict[str, str]:
        return {"service": self.service, "model": self.model, "provider": self.provider, "environment": "production"}


@dataclass(frozen=True)
class Incident:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    factor: float
    scope: str = "series"
    ramp: int = 0  # ttft_creep: minutes to reach the factor
    edge: bool = False  # drawn near the eligibility line
    spill: tuple[int, ...] = ()


@dataclass(frozen=True)
class Benign:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    metrics: tuple[str, ...] | None = None
    factor: float = 1.0


@dataclass
class Scenario:
    seed: int
    series: list[Series]
    incidents: list[Incident]
    benign: list[Benign]
    noise: np.ndarray  # per series x hour traffic multiplier
    shapes: np.ndarray  # per series x minute expected calls/min before incidents
    releases: list[list[tuple[int, str]]] = field(default_factory=list)  # per series (from minute, version)
    end: datetime = T0 + timedelta(days=DAYS)
    judged_from: int = JUDGED_FROM

    def minute(self, t: datetime) -> float:
        return (t - T0).total_seconds() / 60

    def at(self, minute: float) -> datetime:
        return T0 + timedelta(minutes=float(minute))


# --------------------------------------------------------------------------- traffic shape
def _local(zone: str) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: local hour of day (float) and local weekday (0 = Monday)."""
    tz = zoneinfo.ZoneInfo(zone)
    hours = np.arange(DAYS * 24 + 1)
    offset = np.array([(T0 + timedelta(hours=int(h))).astimezone(tz).utcoffset().total_seconds() / 60 for h in hours])
    m = np.arange(MINUTES)
    local = m + offset[m // 60]
    return (local % 1440) / 60, ((local // 1440).astype(int) + T0.weekday()) % 7


_LOCAL = {r: _local(z) for r, z in ZONES.items()}


def _daily(hour: np.ndarray) -> np.ndarray:
    """Two peaks (10:30, 15:30 local) over a night trough; mean about 1 over a day."""
    g = lambda c, w: np.exp(-0.5 * ((hour - c) / w) ** 2)  # noqa: E731
    return (0.12 + 1.0 * g(10.5, 1.8) + 0.85 * g(15.5, 2.0) + 0.35 * g(20.5, 1.5)) / 0.62


def _shape(s: Series) -> np.ndarray:
    m = np.arange(MINUTES)
    out = np.zeros(MINUTES)
    for region, w in s.regions:
        hour, weekday = _LOCAL[region]
        weekend = np.where(weekday >= 5, 0.25 if s.b2b else 0.9, 1.0)
        out += w * _daily(hour) * weekend
    out *= s.rate * (1 + s.trend * (m - 4.5 * 1440) / (7 * 1440))
    out[(m < s.first_minute) | (m >= s.last_minute)] = 0
    return out


def _catalogue(rng: np.random.Generator) -> list[Series]:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    tr = lambda: u(-0.10, 0.25)  # noqa: E731
    young = int(rng.integers(2 * 1440, 4 * 1440))
    return [
        Series("support-chat", "claude-sonnet-4-5", "anthropic", u(5, 8), (("us", 0.5), ("eu", 0.5)), 0.9,
               dur_ms=4000, in_tok=3000, out_tok=350, cached=0.7, trend=tr(), group="support"),
        Series("support-chat", "claude-haiku-4-5", "anthropic", u(2, 4), (("us", 0.5), ("eu", 0.5)), 0.9,
               dur_ms=1800, out_tok=200, trend=tr(), group="support"),
        Series("search-assist", "gpt-4o-mini", "openai", u(30, 36), (("us", 0.45), ("eu", 0.35), ("apac", 0.2)),
               0.3, dur_ms=900, ttft_ms=300, in_tok=1200, out_tok=120, trend=tr(), group="search"),
        Series("writer", "gpt-4o", "openai", u(3, 5), (("us", 0.6), ("eu", 0.4)), 0.7, b2b=True, dur_ms=5000,
               out_tok=600, trend=tr(), group="writer"),
        Series("writer", "gpt-4.1", "openai", u(0.3, 0.6), (("us", 0.6), ("eu", 0.4)), 0.7, b2b=True,
               dur_ms=4500, out_tok=600, trend=tr(), group="writer"),
        Series("summarize", "claude-haiku-4-5", "anthropic", u(0.8, 1.5), (("eu", 0.7), ("us", 0.3)), 0.0,
               dur_ms=2500, in_tok=4000, out_tok=300, trend=tr(), group="summarize"),
        Series("legal-review", "mistral-large-latest", "mistral_ai", u(0.1, 0.5), (("us", 0.8), ("eu", 0.2)),
               0.5, b2b=True, dur_ms=9000, ttft_ms=800, in_tok=6000, out_tok=900, trend=tr(), group="legal"),
        Series("tutor", "gemini-2.5-flash", "gcp.gemini", u(2, 4), (("apac", 0.6), ("eu", 0.4)), 0.8,
               dur_ms=2200, ttft_ms=350, trend=tr(), group="tutor"),
        Series("agent", "claude-opus-4-1", "anthropic", u(0.6, 1.2), (("us", 0.7), ("apac", 0.3)), 0.5,
               dur_ms=12000, ttft_ms=1200, in_tok=12000, out_tok=800, cached=0.75, trend=tr(), group="agent"),
        Series("onboarding", "gpt-4.1", "openai", u(1.5, 3), (("us", 0.5), ("eu", 0.5)), 0.8, dur_ms=3000,
               first_minute=young, trend=tr(), group="onboarding"),
        Series("copilot", "gpt-4.1", "openai", u(4, 7), (("us", 0.6), ("apac", 0.4)), 0.95, b2b=True,
               dur_ms=2500, ttft_ms=400, out_tok=180, trend=tr(), group="copilot"),
        Series("tagger", "gpt-4.1-nano", "openai", u(3, 5), (("eu", 1.0),), 0.0, dur_ms=600, in_tok=500,
               out_tok=20, trend=tr(), group="tagger"),
    ]  # fmt: skip


_QUIET, _BUSY, _YOUNG, _SUMMARIZE, _WRITER_OLD, _WRITER_NEW = 6, 2, 9, 5, 3, 4
_CACHED = (0, 8)


# --------------------------------------------------------------------------- the plan
def build(seed: int) -> Scenario:
    """The scenario of ``seed``: series, incidents, benign changes and traffic noise."""
    rng = np.random.default_rng([seed, 8])
    series = _catalogue(rng)
    n = len(series)
    benign: list[Benign] = []
    # weekends of B2B series (their users' local Sat/Sun, taken as the us/eu calendar days in UTC +-6 h)
    sat = 3 * 1440
    for i, s in enumerate(series):
        if s.b2b:
            benign.append(Benign("weekend", sat - 6 * 60, sat + 2 * 1440 + 6 * 60, (i,), ("calls",)))
    us = tuple(i for i, s in enumerate(series) if any(r == "us" for r, _ in s.regions))
    benign.append(Benign("dst", DST_US, DST_US + 2 * 1440, us, ("calls",)))
    # the A/B ramp in writer
    ramp = int(rng.integers(3 * 1440 + 9 * 60, 7 * 1440))
    benign.append(Benign("ab_ramp", ramp, ramp + 12 * 60, (_WRITER_OLD, _WRITER_NEW), None, 0.5))
    # the backfill: one night at 01:00-04:00 UTC
    day = int(rng.integers(3, 9))
    start = day * 1440 + int(rng.integers(60, 240))
    benign.append(Benign("backfill", start, start + int(rng.integers(60, 121)), (_SUMMARIZE,), None,
                         float(rng.uniform(20, 40))))  # fmt: skip
    incidents = _incidents(rng, series)
    # releases: two error bursts share their minute with a release; three more at random
    releases: list[list[tuple[int, str]]] = [[(0, "1.0.0")] for _ in series]
    at_bursts = [inc for inc in incidents if inc.kind == "error_burst"][:2]
    others = [(int(rng.integers(JUDGED_FROM, MINUTES - 600)), int(rng.integers(0, n))) for _ in range(3)]
    for k, (minute, i) in enumerate([(inc.start, inc.series[0]) for inc in at_bursts] + others):
        releases[i].append((minute, f"1.{k + 1}.0"))
        benign.append(Benign("release", minute, minute + 180, (i,), None, 1.1))
    for r in releases:
        r.sort()
    shapes = np.stack([_shape(s) for s in series])
    noise = noise_of(n, np.random.default_rng([seed, 9]))
    return Scenario(seed, series, incidents, benign, noise, shapes, releases)


def noise_of(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.normal(0, 0.12, (n, DAYS * 24 + 1)))


def noise(sc: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Fresh per-hour traffic noise (the harness's Monte Carlo replicates)."""
    return noise_of(len(sc.series), rng)


def _incidents(rng: np.random.Generator, series: list[Series]) -> list[Incident]:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    dur = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    young = series[_YOUNG].first_minute
    out: list[Incident] = []
    taken: dict[int, list[tuple[int, int]]] = {}

    def place(kind: str, members: tuple[int, ...], length: int, factor: float, scope: str = "series",
              at: int | None = None, **kw: Any) -> None:  # fmt: skip
        lo = max(JUDGED_FROM, max(series[i].first_minute + 720 for i in members))
        for _ in range(200):
            start = at if at is not None else int(rng.integers(lo, MINUTES - max(length, 360) - 30))
            end = MINUTES if kind in PERMANENT else start + length
            if at is not None or all(end + 60 < a or start > b + 60 for i in members for a, b in taken.get(i, [])):
                break
        for i in members:
            taken.setdefault(i, []).append((start, end))
        out.append(Incident(kind, start, end, members, factor, scope, **kw))

    by_provider = lambda p: tuple(i for i, s in enumerate(series) if s.provider == p and i != _YOUNG)  # noqa: E731
    place("provider_overload", by_provider("anthropic"), dur(10, 60), u(0.15, 0.6), "provider")
    place("provider_overload", by_provider("openai"), dur(10, 60), u(0.15, 0.6), "provider")
    streams = [i for i, s in enumerate(series) if s.stream >= 0.5 and i not in (_QUIET, _YOUNG)]
    for _ in range(PLAN["stream_outage"]):
        place("stream_outage", (int(rng.choice(streams)),), dur(10, 90), u(0.4, 1.0))
    # the young series' first 12-24 h: a burst, a spike, a drop
    place("error_burst", (_YOUNG,), dur(15, 45), u(0.1, 0.4), at=young + dur(720, 1400))
    place("latency_spike", (_YOUNG,), dur(15, 45), u(2, 4), at=young + dur(720, 1400) + 120)
    place("volume_drop", (_YOUNG,), dur(30, 90), u(0.1, 0.4), at=young + dur(720, 1400) + 240)
    plain = [i for i in range(len(series)) if i not in (_QUIET, _YOUNG)]
    for _ in range(PLAN["error_burst"] - 1):
        edge = bool(rng.random() < 0.5)
        place("error_burst", (int(rng.choice(plain)),), dur(5, 20) if edge else dur(10, 60),
              u(0.03, 0.08) if edge else u(0.08, 0.4), edge=edge)  # fmt: skip
    for _ in range(PLAN["quiet_outage"]):  # in its users' working hours (13:00-19:00 UTC): someone notices
        day = int(rng.integers(JUDGED_FROM // 1440, DAYS - 1))
        place("quiet_outage", (_QUIET,), dur(40, 240), 1.0, at=day * 1440 + dur(13 * 60, 19 * 60))
    place("latency_spike", (_BUSY,), 20, 2.0)
    for _ in range(PLAN["latency_spike"] - 2):
        edge = bool(rng.random() < 0.5)
        place("latency_spike", (int(rng.choice(plain)),), dur(5, 20) if edge else dur(15, 60),
              u(1.5, 2) if edge else u(2, 4), edge=edge)  # fmt: skip
    ttft = [i for i in streams if series[i].stream >= 0.7]
    for _ in range(PLAN["ttft_creep"]):
        ramp = dur(120, 480)
        place("ttft_creep", (int(rng.choice(ttft)),), ramp + dur(30, 120), u(2, 4), ramp=ramp)
    for _ in range(PLAN["volume_drop"] - 1):
        edge = bool(rng.random() < 0.5)
        place("volume_drop", (int(rng.choice(plain)),), dur(15, 40) if edge else dur(30, 120),
              u(0.4, 0.6) if edge else u(0.1, 0.4), edge=edge)  # fmt: skip
    for i in _CACHED:
        place("cache_miss", (i,), 0, u(0.0, 0.3))
    for _ in range(PLAN["output_blowup"]):
        place("output_blowup", (int(rng.choice(plain)),), dur(30, 240), u(1.6, 3))
    return sorted(out, key=lambda inc: inc.start)


# --------------------------------------------------------------------------- calls
def _active(incidents: Sequence[Incident], i: int, lo: float, hi: float) -> list[Incident]:
    return [inc for inc in incidents if i in inc.series and inc.start < hi and lo < inc.end]


def _benign_rate(sc: Scenario, i: int, m: np.ndarray) -> np.ndarray:
    """Multiplier (and added calls/min) of the planned changes on series ``i`` per minute."""
    mult = np.ones(len(m))
    for b in sc.benign:
        if b.kind == "ab_ramp" and i in b.series:
            share = np.clip((m - b.start) / (b.end - b.start), 0, 1) * b.factor
            if i == b.series[0]:
                mult *= 1 - share
            else:  # gpt-4.1 takes the share of gpt-4o's traffic
                old, new = (sc.series[j].rate for j in b.series)
                mult *= 1 + share * old / new
    return mult


def calls(
    sc: Scenario, i: int, lo: int, hi: int, noise: np.ndarray, incidents: Sequence[Incident],
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Series ``i``'s calls starting in minutes [lo, hi), with ``incidents`` applied."""
    s = sc.series[i]
    rng = rng or np.random.default_rng([sc.seed, 10, i, lo, hi])
    m = np.arange(lo, hi)
    rate = sc.shapes[i][lo:hi] * noise[i][m // 60] * _benign_rate(sc, i, m)
    for b in sc.benign:
        if b.kind == "backfill" and i in b.series:
            rate = rate + np.where((m >= b.start) & (m < b.end), b.factor, 0.0)
    act = _active(incidents, i, lo, hi)
    for inc in act:
        if inc.kind == "volume_drop":
            rate = rate * np.where((m >= inc.start) & (m < inc.end), inc.factor, 1.0)
    counts = rng.poisson(rate)
    t = np.repeat(m, counts) + rng.random(int(counts.sum()))
    t.sort()
    k = len(t)
    stream = rng.random(k) < s.stream
    z = rng.standard_normal((5, k))
    in_tok = np.round(s.in_tok * np.exp(0.5 * z[0])).astype(np.int64)
    out_tok = s.out_tok * np.exp(0.6 * z[1])
    cached_share = np.full(k, s.cached)
    ttft = np.where(stream, s.ttft_ms * np.exp(0.3 * z[2]), np.nan)
    gen_ms = (s.dur_ms - s.ttft_ms) * np.exp(0.35 * z[3])
    lat = np.ones(k)
    p_fail = np.full(k, 0.006)
    err = np.zeros(k, dtype=np.int8)  # 0 5xx, 1 overload, 2 broken stream
    rel = np.zeros(k, dtype=np.int64)
    for j, (start, _) in enumerate(sc.releases[i] if sc.releases else [(0, "1.0.0")]):
        rel[t >= start] = j
    out_tok = out_tok * np.where(rel > 0, 1.1, 1.0)  # a release: x1.1, inside the spread
    for inc in act:
        w = (t >= inc.start) & (t < inc.end)
        if inc.kind in ("provider_overload", "error_burst", "quiet_outage"):
            p_fail = np.where(w, 1 - (1 - p_fail) * (1 - inc.factor), p_fail)
            err = np.where(w, 1 if inc.kind == "provider_overload" else 0, err).astype(np.int8)
        elif inc.kind == "stream_outage":
            hit = w & stream
            p_fail = np.where(hit, 1 - (1 - p_fail) * (1 - inc.factor), p_fail)
            err = np.where(hit, 2, err).astype(np.int8)
        elif inc.kind == "latency_spike":
            lat = np.where(w, lat * inc.factor, lat)
        elif inc.kind == "ttft_creep":
            grow = 1 + (inc.factor - 1) * np.clip((t - inc.start) / max(inc.ramp, 1), 0, 1)
            ttft = np.where(w, ttft * grow, ttft)
        elif inc.kind == "cache_miss":
            cached_share = np.where(w, cached_share * inc.factor, cached_share)
        elif inc.kind == "output_blowup":
            out_tok = np.where(w, out_tok * inc.factor, out_tok)
            gen_ms = np.where(w, gen_ms * inc.factor, gen_ms)
    failed = rng.random(k) < p_fail
    out_tok = np.maximum(1, np.round(out_tok)).astype(np.int64)
    cut = ~failed & (rng.random(k) < 0.01)
    out_tok = np.where(failed, 0, out_tok)
    cached = np.where(failed, 0, np.round(in_tok * np.clip(cached_share * np.exp(0.1 * z[4]), 0, 0.95))).astype(
        np.int64
    )
    first = np.nan_to_num(ttft, nan=0.0)
    dur = np.where(failed, 80 + 3000 * rng.random(k) * (err != 1), (first + gen_ms) * lat)
    ttft = np.where(failed, np.nan, ttft * lat)
    p_in, p_out = (p / 1e6 for p in PRICES[s.model])
    cost = np.where(failed, 0.0, (in_tok - 0.9 * cached) * p_in + out_tok * p_out)
    return {
        "t": t, "status": np.where(failed, FAILED, OK), "dur_ms": dur, "ttft_ms": ttft, "in_tok": in_tok,
        "out_tok": out_tok, "cached": cached, "cost": cost, "cut": cut, "err": err, "stream": stream,
        "release": rel,
    }  # fmt: skip


# --------------------------------------------------------------------------- spans
def _rows(sc: Scenario, i: int, c: dict[str, np.ndarray], ids: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """One ``otel_traces`` row per call (``OTEL_TRACES_COLUMNS`` order); and when each arrives (its end)."""
    s = sc.series[i]
    versions = [v for _, v in (sc.releases[i] if sc.releases else [(0, "1.0.0")])]
    types = ERROR_TYPES[s.provider]
    base_ns = int(T0.timestamp()) * 10**9
    name = f"chat {s.model}"
    rows = []
    for k in range(len(c["t"])):
        failed = c["status"][k] == FAILED
        stream = bool(c["stream"][k])
        attrs = {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: s.provider, semconv.REQUEST_MODEL: s.model,
            semconv.USAGE_INPUT_TOKENS: str(int(c["in_tok"][k])), semconv.ENVIRONMENT: "production",
            semconv.RELEASE: versions[int(c["release"][k])],
        }  # fmt: skip
        if stream:
            attrs[semconv.REQUEST_STREAM] = "true"
        if failed:
            attrs[semconv.ERROR_TYPE] = types[int(c["err"][k])]
        else:
            attrs[semconv.RESPONSE_MODEL] = s.model
            attrs[semconv.USAGE_OUTPUT_TOKENS] = str(int(c["out_tok"][k]))
            attrs[semconv.COST_USD] = repr(round(float(c["cost"][k]), 8))
            attrs[semconv.RESPONSE_FINISH_REASONS] = '["length"]' if c["cut"][k] else '["stop"]'
            if c["cached"][k]:
                attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = str(int(c["cached"][k]))
            if stream:
                attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = repr(round(float(c["ttft_ms"][k]) / 1000, 4))
        resource = {semconv.SERVICE_NAME: s.service, semconv.SERVICE_VERSION: attrs[semconv.RELEASE],
                    semconv.DEPLOYMENT_ENVIRONMENT_NAME: "production"}  # fmt: skip
        trace_id, span_id = f"{ids[k, 0]:016x}{ids[k, 1]:016x}", f"{ids[k, 1]:016x}"
        start_ns, dur_ns = base_ns + int(c["t"][k] * 60e9), int(c["dur_ms"][k] * 1e6)
        rows.append(
            client_span_row(
                start_ns, trace_id, span_id, name, s.service, resource, "llmtrace.bench.v8", attrs, dur_ns, failed
            )
        )
    return c["t"] + c["dur_ms"] / 60000, rows


def span_rows(sc: Scenario) -> tuple[np.ndarray, list[tuple[Any, ...]], int]:
    """Every call of the scenario as rows, in order of arrival (when the span ends)."""
    arrive, rows = [], []
    for i in range(len(sc.series)):
        c = calls(sc, i, 0, MINUTES, sc.noise, sc.incidents)
        ids = np.random.default_rng([sc.seed, 11, i]).integers(1, 2**63, (len(c["t"]), 2))
        a, r = _rows(sc, i, c, ids)
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
    """One line per series (rate, first day) for a quick look."""
    return "\n".join(f"{s.service}/{s.model}: {s.rate:.2f}/min from day {s.first_minute / 1440:.1f}" for s in sc.series)
