"""Held-out generator v10 for ``llmtrace anomalies`` (issue #12), written blind in session 17.

Written without reading the detector or the generators v2-v9, so nothing in it was tuned on.
Judged by ``benchmarks/detection_v10.py`` through ``benchmarks/detection_harness.py``.

Time: 9 days from Thu 2026-11-19 00:00 UTC; the last 7 (Sat 21 - Fri 27 Nov) are judged, the
first 2 are history. Thu 26 Nov is US Thanksgiving and Fri 27 Black Friday.

Traffic model (what earlier generators may have missed)
- 14 series (service x model x provider), 0.3-9 calls/min on average, ~45 calls/min in all.
- Each series' rate is a mix of three time zones (Americas UTC-6, Europe UTC+1, Asia UTC+8), each
  following a consumer (evening peak, busy weekends) or business (office hours, quiet weekends)
  daily shape in its own local time, so peaks are double or triple humped, not one smooth curve.
- Calls come in sessions: conversations of ~3 turns a minute apart, agent loops of 6-8 calls 20 s
  apart sharing one trace; counts are overdispersed, not Poisson.
- Slow multiplicative noise: an AR-like log-rate process (10-min steps, ~1 h memory, sd ~0.2),
  a per-day level (sd 0.1) and a latency noise (sd 0.08) per series.
- Latency rises with the series' own load (up to +35 % at its peak): benign, correlated with volume.
- A cron-driven batch (``batch-summarizer``): every 15 min ~36 calls within 3 min, every hour
  ~120 more within 8 min, with extra 429s (+3 %) during the hourly burst; benign periodic spikes.
- Failed calls are retried (60 %, 80 % for 429s) 1-12 s after they fail, in the same trace: an
  error burst also raises volume.
- Reasoning models (``research-agent/o3``) with heavy-tailed reasoning tokens (lognormal sd 1.1) that
  count as output and take time; cached input tokens (cost per call lower on cache hits); streamed and
  non-streamed calls mixed in one series; tool-call, length and rare content_filter finish reasons.
- ``chat-app/gpt-4o`` is served by openai and azure behind a router (70/30).

Incidents (labelled, random times, series drawn with weight sqrt(calls/min) so sparse ones get
their share; ~1 in 4 drawn near the edge, the edge range in brackets):
- latency_spike: durations x3-8 [x2-3] for 15-60 min (TTFT x sqrt of it).
- error_burst: 25-60 % [10-20 %] of calls fail for 10-40 min (with their retries).
- volume_drop: -80..-90 % [-45..-65 %] of calls for 30-90 min.
- ttft_spike: TTFT x4-10 [x2.2-3.5] for 15-45 min (the call lasts longer by as much); streamed series.
- output_shift: output tokens x1.8-3 [x1.35-1.6] from a new release on (permanent).
- own kinds: cost_jump (a wrong price / routed to a dearer model: cost per call x2.5-6 [x1.5-2]
  for 30-180 min, tokens unchanged); empty_output (15-40 % [5-10 %] of successful calls answer
  nothing for 20-90 min); regional_outage (a provider's region fails: calls from one time zone on
  every series of openai or anthropic fail with probability 0.8-1.0 [0.4-0.6] for 20-60 min, so
  the error rate follows that zone's share of the traffic at that hour).
- Every seed: one young series (``voice-agent/gpt-4o-mini``, first call on day 3-6) with an incident
  12-24 h after its first call; one incident forced onto a weekend night (UTC 22:00-05:00); one
  incident overlapping another on the same series.

Benign labelled changes that should not alert (``BENIGN_KINDS``, most specific first):
release (planned, output x0.9-1.15, latency x0.9-1.1, 6 h after), heavy_user (one user adds 30 % of
a chat/support series' calls for an hour with 4x longer inputs), backfill (a planned night batch:
+10 calls/min on the batch series for 2-3 h), router_shift (the router moves chat-app/gpt-4o to
25/75 openai/azure for 6-30 h), holiday (Thanksgiving and Black Friday on series with an Americas
share), cron (the batch series' periodic spikes and 429s, all week), weekend (Fri 16:00 - Mon 08:00
UTC), daily_peak (each series' busiest 4 hours a day: calls, latency and TTFT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from detection_harness import client_span_row, insert_rows  # a span's row; rows into otel_traces

from llmtrace import semconv

T0 = datetime(2026, 11, 19, tzinfo=UTC)  # a Thursday
DAYS = 9
MINUTES = DAYS * 1440
JUDGED_FROM = 2 * 1440
OK, FAILED = 0, 1
ZONES = (-6, 1, 8)  # Americas, Europe, Asia (UTC offsets, hours)
HOLIDAY, BLACK_FRIDAY = 7, 8  # local day index (Americas) of Thu 26 and Fri 27 Nov

ERROR_KINDS = ("error_burst", "regional_outage")
RATE_KINDS = (*ERROR_KINDS, "empty_output")
VOLUME_KINDS = ("volume_drop",)
PERMANENT = ("output_shift",)
KINDS = ("latency_spike", "error_burst", "volume_drop", "ttft_spike", "output_shift",
         "cost_jump", "empty_output", "regional_outage")  # fmt: skip
BENIGN_KINDS = ("release", "heavy_user", "backfill", "router_shift", "holiday", "cron", "weekend", "daily_peak")
ERRORS = ("RateLimitError", "InternalServerError", "APITimeoutError")

_CONSUMER = [.35, .25, .18, .14, .12, .14, .22, .38, .55, .7, .8, .85, .9, .88, .85, .85, .88, .95, 1.05, 1.2,
             1.3, 1.25, 1.0, .65]  # fmt: skip
_BUSINESS = [.08, .06, .05, .05, .06, .1, .22, .5, .95, 1.3, 1.4, 1.35, 1.1, 1.25, 1.4, 1.35, 1.2, .9, .55, .35,
             .25, .2, .15, .1]  # fmt: skip


@dataclass(frozen=True)
class Kind:
    """A series' static traffic and call model."""

    service: str
    model: str
    provider: str
    rate: float  # mean calls/min on a weekday
    zones: tuple[float, float, float]
    shape: str  # consumer | business | cron
    session: float  # mean calls per session
    gap: float  # mean minutes between a session's calls
    stream: float
    in_tok: float
    out_tok: float
    out_sd: float
    max_tokens: int
    ms_tok: float
    overhead_ms: float
    ttft_ms: float
    p_err: float
    price: tuple[float, float]  # USD per million input / output tokens
    cache: float = 0.0  # share of calls with a cache hit
    reasoning: float = 0.0  # median reasoning tokens
    tool: float = 0.0
    weekend: float = 1.0  # business weekend level (consumer: 1.15)
    load: float = 0.35  # latency rise at the series' peak load


CATALOG = (
    Kind("chat-app", "gpt-4o", "openai", 5.6, (.45, .35, .2), "consumer", 3, 1.0, .9, 1200, 350, .7, 2048, 12, 300,
         450, .006, (2.5, 10), cache=.5),
    Kind("chat-app", "gpt-4o", "azure.ai.openai", 2.4, (.45, .35, .2), "consumer", 3, 1.0, .9, 1200, 350, .7, 2048,
         13, 350, 550, .008, (2.5, 10), cache=.5),
    Kind("chat-app", "gpt-4o-mini", "openai", 9, (.45, .35, .2), "consumer", 3, 1.0, .95, 800, 250, .7, 1024, 8, 250,
         300, .005, (.15, .6), cache=.4),
    Kind("chat-app", "claude-sonnet-4-5", "anthropic", 2, (.5, .4, .1), "consumer", 3, 1.2, 1.0, 1500, 450, .7, 4096,
         14, 400, 700, .007, (3, 15), cache=.6),
    Kind("research-agent", "o3", "openai", .8, (.6, .3, .1), "business", 8, .4, .2, 6000, 600, .8, 16000, 15, 1500,
         4000, .01, (2, 8), cache=.3, reasoning=1500, tool=.5, weekend=.3),
    Kind("research-agent", "claude-opus-4-1", "anthropic", .3, (.6, .3, .1), "business", 6, .4, .5, 9000, 600, .8,
         8192, 30, 1200, 1500, .01, (15, 75), cache=.8, tool=.5, weekend=.3),
    Kind("batch-summarizer", "gpt-4.1-mini", "openai", .5, (.3, .6, .1), "cron", 1, 1.0, 0, 3000, 200, .5, 512, 7,
         400, 0, .004, (.4, 1.6)),
    Kind("support-bot", "gemini-2.5-flash", "gcp.gemini", 4, (.2, .7, .1), "business", 4, 1.5, .7, 2000, 300, .6,
         1024, 6, 300, 350, .006, (.3, 2.5), weekend=.4),
    Kind("support-bot", "gpt-4o-mini", "openai", 1.5, (.2, .7, .1), "business", 4, 1.5, .7, 2000, 300, .6, 1024, 8,
         250, 300, .005, (.15, .6), weekend=.4),
    Kind("code-review", "claude-sonnet-4-5", "anthropic", 1.5, (.8, .15, .05), "business", 5, .5, 0, 12000, 700, .7,
         4096, 14, 600, 0, .008, (3, 15), cache=.7, tool=.3, weekend=.15),
    Kind("extract-api", "mistral-large-latest", "mistral_ai", .3, (.3, .6, .1), "business", 1, 1.0, 0, 4000, 500, .5,
         2048, 20, 500, 0, .01, (2, 6), weekend=.3),
    Kind("search-rag", "command-r-plus", "cohere", .6, (.1, .2, .7), "consumer", 2, 1.0, .5, 3000, 300, .6, 1024, 16,
         400, 600, .008, (2.5, 10)),
    Kind("translate", "deepseek-chat", "deepseek", 3, (.05, .15, .8), "business", 2, .5, .3, 1500, 600, .5, 4096, 18,
         500, 800, .015, (.27, 1.1), cache=.4, weekend=.6),
    Kind("voice-agent", "gpt-4o-mini", "openai", 2, (.6, .3, .1), "consumer", 6, .3, 1.0, 600, 120, .5, 512, 8, 200,
         250, .005, (.15, .6)),
)  # fmt: skip
YOUNG = len(CATALOG) - 1  # voice-agent starts during the judged week
BATCH = next(i for i, k in enumerate(CATALOG) if k.shape == "cron")
ROUTER = (0, 1)  # chat-app/gpt-4o on openai and azure


@dataclass
class Series:
    kind: Kind
    rate: float  # this seed's mean calls/min over the judged week
    first_minute: int
    last_minute: int = MINUTES

    @property
    def service(self) -> str:
        return self.kind.service

    @property
    def model(self) -> str:
        return self.kind.model

    @property
    def provider(self) -> str:
        return self.kind.provider

    @property
    def group(self) -> str:
        return self.kind.service

    @property
    def attrs(self) -> dict[str, str]:
        k = self.kind
        return {"service": k.service, "model": k.model, "provider": k.provider, "environment": "production"}


@dataclass
class Incident:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    factor: float
    edge: bool
    scope: str = "series"
    zone: int = -1  # regional_outage: the failing time zone
    spill: tuple[int, ...] = ()


@dataclass
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
    zone_rate: np.ndarray  # (series, zone, minute) expected calls per minute, before noise
    incidents: list[Incident] = field(default_factory=list)
    benign: list[Benign] = field(default_factory=list)
    releases: list[list[tuple[int, str, float, float]]] = field(default_factory=list)  # (minute, version, out, lat)
    end: datetime = T0 + timedelta(days=DAYS)
    judged_from: int = JUDGED_FROM

    def minute(self, t: datetime) -> float:
        return (t - T0).total_seconds() / 60

    def at(self, minute: float) -> datetime:
        return T0 + timedelta(minutes=float(minute))


# --------------------------------------------------------------------------- traffic shape
def _shape(values: list[float], hours: np.ndarray) -> np.ndarray:
    v = np.array([*values, values[0]]) / np.mean(values)
    return np.interp(hours, np.arange(25), v)


def _zone_rates(k: Kind, scale: float, first: int) -> np.ndarray:
    """Expected calls/min per time zone and minute (zero before the series' first call)."""
    m = np.arange(MINUTES)
    out = np.zeros((3, MINUTES))
    for z, off in enumerate(ZONES):
        local = m + off * 60
        day = np.floor_divide(local, 1440)
        weekday = (3 + day) % 7
        if k.shape == "cron":
            shape, level = np.ones(MINUTES), np.ones(MINUTES)
        else:
            shape = _shape(_CONSUMER if k.shape == "consumer" else _BUSINESS, (local % 1440) / 60)
            weekend = 1.15 if k.shape == "consumer" else k.weekend
            level = np.where(weekday >= 5, weekend, 1.0)
            if z == 0:  # Thanksgiving and Black Friday, Americas only
                level = np.where(day == HOLIDAY, 0.45 if k.shape == "consumer" else 0.12, level)
                level = np.where((day == BLACK_FRIDAY) & (k.shape == "business"), 0.5, level)
        out[z] = k.rate * scale * k.zones[z] * shape * level
    out[:, :first] = 0
    return out


def noise(sc: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Slow per-series noise at 10-minute steps: log-rate (~1 h memory, sd ~0.2, plus a per-day
    level), and log-latency (sd 0.08)."""
    n, steps = len(sc.series), MINUTES // 10 + 2
    kernel = 0.85 ** np.arange(30)
    kernel /= math.sqrt((kernel**2).sum())
    white = rng.normal(0, 0.2, (n, steps + 29))
    lr = np.stack([np.convolve(w, kernel, "valid") for w in white])
    daily = np.repeat(rng.normal(0, 0.1, (n, DAYS + 1)), 144, axis=1)[:, :steps]
    lat = np.stack([np.convolve(w, kernel, "valid") for w in rng.normal(0, 0.08, (n, steps + 29))])
    return {"lr": lr + daily - 0.02, "lat": lat}


# --------------------------------------------------------------------------- calls
def _empty() -> dict[str, np.ndarray]:
    f, i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return {"t": f, "status": i, "dur_ms": f, "ttft_ms": f, "out_tok": i, "in_tok": i, "cached": i, "cost": f,
            "cut": np.zeros(0, bool), "stream": np.zeros(0, bool), "finish": i, "err": i, "release": i,
            "reasoning": i, "trace": i, "zone": i, "heavy": np.zeros(0, bool)}  # fmt: skip


def _sessions(rng: np.random.Generator, minutes: np.ndarray, rate: np.ndarray, k: Kind) -> tuple[np.ndarray, ...]:
    """Call times of sessions started at ``rate / k.session`` per minute; and each call's session."""
    starts = rng.poisson(rate / k.session)
    t0 = np.repeat(minutes, starts) + rng.random(starts.sum())
    sizes = rng.geometric(1 / k.session, len(t0)) if k.session > 1 else np.ones(len(t0), dtype=np.int64)
    first = np.cumsum(sizes) - sizes
    gaps = rng.exponential(k.gap, sizes.sum())
    gaps[first] = 0
    cs = np.cumsum(gaps)
    t = np.repeat(t0, sizes) + cs - np.repeat(cs[first], sizes)
    return t, np.repeat(rng.integers(0, 2**62, len(t0)), sizes)


def _cron(rng: np.random.Generator, lo: int, hi: int, lr: np.ndarray) -> np.ndarray:
    """The batch's quarter-hourly (~36 calls in 3 min) and hourly (~120 more in 8 min) runs."""
    times = []
    for q in range((lo // 15) * 15, hi, 15):
        if q < lo:
            continue
        level = math.exp(lr[q // 10])
        n = rng.poisson(36 * level) + (rng.poisson(120 * level) if q % 60 == 0 else 0)
        spread = 8.0 if q % 60 == 0 else 3.0
        times.append(q + rng.random(n) * spread)
    return np.concatenate(times) if times else np.zeros(0)


def calls(
    sc: Scenario, i: int, lo: int, hi: int, nz: dict[str, np.ndarray], incidents: list[Incident],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Series ``i``'s calls starting in [lo, hi) minutes with noise ``nz`` and ``incidents``."""
    s, k = sc.series[i], sc.series[i].kind
    lo, hi = max(lo, s.first_minute), min(hi, MINUTES)
    if hi <= lo:
        return _empty()
    m = np.arange(lo, hi)
    level = np.exp(nz["lr"][i][m // 10])
    for b in sc.benign:
        if b.kind == "router_shift" and i in b.series and b.end > lo and b.start < hi:
            level = np.where((m >= b.start) & (m < b.end), level * b.factor, level)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # times, traces, zones, heavy
    for z in range(3):
        t, trace = _sessions(rng, m, sc.zone_rate[i, z, lo:hi] * level, k)
        parts.append((t, trace, np.full(len(t), z), np.zeros(len(t), bool)))
    extra = [_cron(rng, lo, hi, nz["lr"][i])] if i == BATCH else []
    for b in sc.benign:
        if i in b.series and b.end > lo and b.start < hi and b.kind in ("backfill", "heavy_user"):
            a, e = max(lo, b.start), min(hi, b.end)
            rate = b.factor if b.kind == "backfill" else 0.43 * float(sc.zone_rate[i, :, a:e].sum(0).mean())
            n = rng.poisson(rate * (e - a))
            times = a + rng.random(n) * (e - a)
            if b.kind == "heavy_user":
                parts.append((times, rng.integers(0, 2**62, n), np.zeros(n, int), np.ones(n, bool)))
            else:
                extra.append(times)
    for times in extra:  # batch work runs in Europe
        n = len(times)
        parts.append((times, rng.integers(0, 2**62, n), np.ones(n, int), np.zeros(n, bool)))
    t, trace, zone, heavy = (np.concatenate([p[x] for p in parts]) for x in range(4))
    mine = [inc for inc in incidents if i in inc.series]
    c = _draw(sc, i, t, zone, heavy, nz, mine, rng)
    c["trace"] = trace
    # retries: most failures are retried once 1-12 s later, in the same trace
    failed = c["status"] == FAILED
    again = failed & (rng.random(len(t)) < np.where(c["err"] == 0, 0.8, 0.6))
    if again.any():
        rt = t[again] + c["dur_ms"][again] / 60000 + rng.uniform(1 / 60, 0.2, again.sum())
        r = _draw(sc, i, rt, zone[again], heavy[again], nz, mine, rng)
        r["trace"] = trace[again]
        c = {key: np.concatenate([c[key], r[key]]) for key in c}
    keep = (c["t"] >= lo) & (c["t"] < min(hi, MINUTES))
    u = rng.random(len(c["t"]))
    for inc in mine:
        if inc.kind == "volume_drop":
            keep &= ~((c["t"] >= inc.start) & (c["t"] < inc.end) & (u > inc.factor))
    order = np.argsort(c["t"][keep], kind="stable")
    return {key: v[keep][order] for key, v in c.items()}


def _draw(
    sc: Scenario, i: int, t: np.ndarray, zone: np.ndarray, heavy: np.ndarray, nz: dict[str, np.ndarray],
    mine: list[Incident], rng: np.random.Generator,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Every attribute of the calls at ``t`` (minutes)."""
    k = sc.series[i].kind
    n = len(t)
    mi = np.clip(t.astype(np.int64), 0, MINUTES - 1)
    total = sc.zone_rate[i].sum(0)
    load = 1 + k.load * total[mi] / max(float(total.max()), 1e-9)
    lat = load * np.exp(nz["lat"][i][mi // 10])
    rel_at = np.array([r[0] for r in sc.releases[i]])
    rel = np.searchsorted(rel_at, t, side="right") - 1
    rel_out = np.array([r[2] for r in sc.releases[i]])[rel]
    lat = lat * np.array([r[3] for r in sc.releases[i]])[rel]
    stream = rng.random(n) < k.stream
    in_tok = np.rint(rng.lognormal(math.log(k.in_tok), 0.6, n) * np.where(heavy, 4, 1)).astype(np.int64) + 20
    hit = rng.random(n) < k.cache
    cached = np.where(hit, np.rint(in_tok * rng.uniform(0.5, 0.9, n)), 0).astype(np.int64)
    out = rng.lognormal(math.log(k.out_tok), k.out_sd, n) * rel_out
    reasoning = rng.lognormal(math.log(k.reasoning), 1.1, n) if k.reasoning else np.zeros(n)
    ttft = k.ttft_ms * rng.lognormal(0, 0.35, n) * lat + reasoning * k.ms_tok * 0.9
    tok_ms = k.ms_tok * rng.lognormal(0, 0.15, n) * lat
    overhead = k.overhead_ms * rng.lognormal(0, 0.3, n) * lat
    p_err = np.full(n, k.p_err)
    if i == BATCH:
        p_err = np.where((t % 60) < 8, p_err + 0.03, p_err)  # the hourly burst hits the rate limit
    u_fail, u_err, u_empty, u_fin = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
    err = np.where(u_err < 0.4, 0, np.where(u_err < 0.85, 1, 2))
    cost_mul, empty, add_ttft, slow = np.ones(n), np.zeros(n, bool), np.zeros(n), np.ones(n)
    for inc in mine:
        w = (t >= inc.start) & (t < (MINUTES if inc.kind in PERMANENT else inc.end))
        if not w.any():
            continue
        f = inc.factor
        if inc.kind == "latency_spike":
            slow = np.where(w, slow * f, slow)
            ttft = np.where(w, ttft * math.sqrt(f), ttft)
        elif inc.kind == "ttft_spike":
            add_ttft = np.where(w, add_ttft + ttft * (f - 1), add_ttft)
        elif inc.kind == "error_burst":
            p_err = np.where(w, np.maximum(p_err, f), p_err)
            err = np.where(w & (u_err < 0.8), 1, err)
        elif inc.kind == "regional_outage":
            hit_zone = w & (zone == inc.zone)
            p_err = np.where(hit_zone, np.maximum(p_err, f), p_err)
            err = np.where(hit_zone, np.where(u_err < 0.5, 1, 2), err)
        elif inc.kind == "empty_output":
            empty |= w & (u_empty < f)
        elif inc.kind == "cost_jump":
            cost_mul = np.where(w, cost_mul * f, cost_mul)
        elif inc.kind == "output_shift":
            out = np.where(w, out * f, out)
    ttft = ttft + add_ttft
    out_tok = np.maximum(1, np.rint(out + reasoning)).astype(np.int64)
    cut = out_tok >= k.max_tokens
    out_tok = np.minimum(out_tok, k.max_tokens)
    out_tok = np.where(empty, 0, out_tok)
    cut &= ~empty
    visible = out_tok - np.minimum(np.rint(reasoning).astype(np.int64), out_tok)  # reasoning is in the TTFT
    gen_ms = visible * tok_ms
    dur = np.where(stream, ttft + gen_ms, overhead + add_ttft + gen_ms + reasoning * tok_ms * 0.9) * slow
    ttft = ttft * np.where(slow > 1, np.sqrt(slow), 1)  # a slow backend answers later too
    failed = u_fail < p_err
    fail_ms = np.select([err == 0, err == 1], [rng.uniform(50, 300, n), rng.uniform(200, 3000, n)],
                        rng.uniform(30000, 60000, n))  # fmt: skip
    dur = np.where(failed, fail_ms, np.maximum(dur, 20.0))
    out_tok = np.where(failed, 0, out_tok)
    finish = np.where(cut, 1, np.where(u_fin < k.tool, 3, np.where(u_fin > 0.998, 2, 0)))
    pin, pout = k.price
    cost = ((in_tok - cached) * pin + cached * pin * 0.1 + out_tok * pout) / 1e6 * cost_mul
    return {
        "t": t, "status": np.where(failed, FAILED, OK), "dur_ms": dur,
        "ttft_ms": np.where(stream & ~failed, ttft, np.nan), "out_tok": out_tok, "in_tok": in_tok,
        "cached": cached, "cost": np.where(failed, 0.0, cost), "cut": cut & ~failed, "stream": stream,
        "finish": finish, "err": err, "release": rel, "reasoning": np.rint(reasoning).astype(np.int64),
        "trace": np.zeros(n, dtype=np.int64), "zone": zone, "heavy": heavy,
    }  # fmt: skip


# --------------------------------------------------------------------------- scenario
def _pick_time(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, max(lo + 1, hi)))


_SIZES = {  # kind: (normal range, edge range, duration range in minutes)
    "latency_spike": ((3, 8), (2, 3), (15, 60)),
    "error_burst": ((0.25, 0.6), (0.1, 0.2), (10, 40)),
    "volume_drop": ((0.1, 0.2), (0.35, 0.55), (30, 90)),
    "ttft_spike": ((4, 10), (2.2, 3.5), (15, 45)),
    "output_shift": ((1.8, 3), (1.35, 1.6), (360, 360)),
    "cost_jump": ((2.5, 6), (1.5, 2), (30, 180)),
    "empty_output": ((0.15, 0.4), (0.05, 0.1), (20, 90)),
    "regional_outage": ((0.8, 1.0), (0.4, 0.6), (20, 60)),
}
_COUNTS = {"latency_spike": 2, "error_burst": 2, "volume_drop": 2, "ttft_spike": 1, "output_shift": 1,
           "cost_jump": 1, "empty_output": 1, "regional_outage": 1}  # fmt: skip


def _incident(sc: Scenario, rng: np.random.Generator, kind: str, start: int | None = None,
              series: int | None = None) -> Incident:  # fmt: skip
    normal, edge_range, (dmin, dmax) = _SIZES[kind]
    edge = bool(rng.random() < 0.25)
    lo, hi = edge_range if edge else normal
    factor = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    minutes = int(rng.integers(dmin, dmax + 1))
    if start is None:
        start = _pick_time(rng, JUDGED_FROM + 60, MINUTES - minutes - (420 if kind in PERMANENT else 60))
    if kind == "regional_outage":
        provider = ("openai", "anthropic")[int(rng.integers(2))]
        members = tuple(j for j, s in enumerate(sc.series) if s.provider == provider and s.first_minute < start - 720)
        zr = sc.zone_rate[list(members), :, start].sum(0)
        zone = int(rng.choice(3, p=zr / zr.sum())) if zr.sum() > 0 else 0
        return Incident(kind, start, start + minutes, members, factor, edge, "provider", zone)
    if series is None:
        ok = [j for j, s in enumerate(sc.series) if s.first_minute < start - 720
              and (kind != "ttft_spike" or s.kind.stream >= 0.3)]  # fmt: skip
        weight = np.sqrt([sc.series[j].rate for j in ok])  # sparse series get incidents, dense ones more
        series = int(rng.choice(ok, p=weight / weight.sum()))
    return Incident(kind, start, start + minutes, (series,), factor, edge)


def build(seed: int) -> Scenario:
    """Seed ``seed``'s series, incidents, benign changes and releases."""
    rng = np.random.default_rng([seed, 10])
    young_first = int(rng.integers(3 * 1440, 6 * 1440))
    series, rates, scale = [], [], 1.0
    for j, k in enumerate(CATALOG):
        scale = scale if j == ROUTER[1] else float(rng.lognormal(0, 0.25))  # one demand behind the router
        first = young_first if j == YOUNG else 0
        zr = _zone_rates(k, scale, first)
        rates.append(zr)
        judged = zr[:, max(JUDGED_FROM, first) :].sum() / (MINUTES - max(JUDGED_FROM, first))
        if j == BATCH:
            judged += 36 / 15 + 120 / 60
        series.append(Series(k, float(judged), first))
    sc = Scenario(seed, series, np.stack(rates))
    sc.releases = [[(0, f"{s.service}@1.{int(rng.integers(10, 40))}.0", 1.0, 1.0)] for s in series]
    # benign changes
    everyone = tuple(range(len(series)))
    sc.benign.append(Benign("weekend", 2 * 1440 - 8 * 60, 4 * 1440 + 8 * 60, everyone))
    americas = tuple(j for j, s in enumerate(series) if s.kind.zones[0] >= 0.3 and s.kind.shape != "cron")
    sc.benign.append(Benign("holiday", HOLIDAY * 1440 + 6 * 60, MINUTES, americas))
    sc.benign.append(Benign("cron", 0, MINUTES, (BATCH,), ("calls", "error_rate")))
    for j in everyone:
        total = sc.zone_rate[j].sum(0)
        for d in range(2, DAYS):
            day = total[d * 1440 : (d + 1) * 1440]
            if day.max() > 0 and j != BATCH:
                peak = d * 1440 + int(day.argmax())
                sc.benign.append(Benign("daily_peak", peak - 120, peak + 120, (j,),
                                        ("calls", "latency_p95_ms", "ttft_p95_ms")))  # fmt: skip
    start = _pick_time(rng, JUDGED_FROM, MINUTES - 32 * 60)
    share = 0.25 / 0.7
    length = int(rng.integers(6 * 60, 30 * 60))
    sc.benign.append(Benign("router_shift", start, start + length, (ROUTER[0],), None, share))
    sc.benign.append(Benign("router_shift", start, start + length, (ROUTER[1],), None, 0.75 / 0.3))
    day = int(rng.integers(2, DAYS))
    start = day * 1440 + 60 + int(rng.integers(0, 90))
    sc.benign.append(Benign("backfill", start, start + int(rng.integers(120, 181)), (BATCH,), None, 10.0))
    chat = [j for j, s in enumerate(series) if s.service in ("chat-app", "support-bot") and j != ROUTER[1]]
    for _ in range(int(rng.integers(1, 3))):
        j = int(rng.choice(chat))
        start = _pick_time(rng, JUDGED_FROM, MINUTES - 120)
        sc.benign.append(Benign("heavy_user", start, start + 60, (j,)))
    for _ in range(2):
        j = int(rng.choice([x for x in everyone if x != YOUNG]))
        start = _pick_time(rng, JUDGED_FROM, MINUTES - 400)
        sc.releases[j].append((start, f"{series[j].service}@2.{len(sc.releases[j])}.0",
                               float(rng.uniform(0.9, 1.15)), float(rng.uniform(0.9, 1.1))))  # fmt: skip
        sc.benign.append(Benign("release", start, start + 360, (j,)))
    # incidents
    for kind, count in _COUNTS.items():
        for _ in range(count):
            sc.incidents.append(_incident(sc, rng, kind))
    young_kind = str(rng.choice(["latency_spike", "error_burst", "volume_drop", "ttft_spike"]))
    sc.incidents.append(_incident(sc, rng, young_kind, young_first + int(rng.integers(720, 1441)), YOUNG))
    weekend_night = [m for m in range(2 * 1440, 4 * 1440) if (m % 1440) >= 22 * 60 or (m % 1440) < 5 * 60]
    kind = str(rng.choice(["latency_spike", "error_burst", "volume_drop", "cost_jump", "empty_output"]))
    sc.incidents.append(_incident(sc, rng, kind, int(rng.choice(weekend_night))))
    temporary = [x for x in sc.incidents if x.kind not in ("regional_outage", *PERMANENT)]
    base = temporary[int(rng.integers(len(temporary)))]
    kind = str(rng.choice([k for k in ("latency_spike", "error_burst", "cost_jump", "empty_output") if k != base.kind]))
    at = base.start + int(rng.integers(0, max(1, base.end - base.start - 5)))
    sc.incidents.append(_incident(sc, rng, kind, at, base.series[0]))
    for inc in sc.incidents:
        if inc.kind == "output_shift":  # a new release carries it
            j = inc.series[0]
            sc.releases[j].append((inc.start, f"{series[j].service}@3.0.0", 1.0, 1.0))
    for r in sc.releases:
        r.sort()
    return sc


# --------------------------------------------------------------------------- storing
_FINISH = ('["stop"]', '["length"]', '["content_filter"]', '["tool_calls"]')


def _rows(sc: Scenario, i: int, c: dict[str, np.ndarray], ids: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """One ``otel_traces`` row per call; and when each arrives (its end)."""
    s = sc.series[i]
    versions = [v for _, v, _, _ in sc.releases[i]]
    base_ns = int(T0.timestamp()) * 10**9
    name = f"chat {s.model}"
    rows = []
    for k in range(len(c["t"])):
        failed = c["status"][k] == FAILED
        stream = bool(c["stream"][k])
        version = versions[int(c["release"][k])]
        attrs = {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: s.provider, semconv.REQUEST_MODEL: s.model,
            semconv.USAGE_INPUT_TOKENS: str(int(c["in_tok"][k])), semconv.ENVIRONMENT: "production",
            semconv.RELEASE: version, semconv.REQUEST_MAX_TOKENS: str(s.kind.max_tokens),
        }  # fmt: skip
        if stream:
            attrs[semconv.REQUEST_STREAM] = "true"
        if c["heavy"][k]:
            attrs[semconv.USER_ID] = "tenant-42-batch-user"
        if failed:
            attrs[semconv.ERROR_TYPE] = ERRORS[int(c["err"][k])]
        else:
            attrs[semconv.RESPONSE_MODEL] = s.model
            attrs[semconv.USAGE_OUTPUT_TOKENS] = str(int(c["out_tok"][k]))
            attrs[semconv.COST_USD] = repr(round(float(c["cost"][k]), 8))
            attrs[semconv.RESPONSE_FINISH_REASONS] = _FINISH[int(c["finish"][k])]
            if c["cached"][k]:
                attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] = str(int(c["cached"][k]))
            if c["reasoning"][k]:
                attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] = str(min(int(c["reasoning"][k]), int(c["out_tok"][k])))
            if stream:
                attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = repr(round(float(c["ttft_ms"][k]) / 1000, 4))
        resource = {semconv.SERVICE_NAME: s.service, semconv.SERVICE_VERSION: version,
                    semconv.DEPLOYMENT_ENVIRONMENT_NAME: "production"}  # fmt: skip
        trace_id = f"{int(c['trace'][k]) & (2**64 - 1):016x}{ids[k, 1]:016x}"
        start_ns, dur_ns = base_ns + int(c["t"][k] * 60e9), int(c["dur_ms"][k] * 1e6)
        rows.append(
            client_span_row(
                start_ns,
                trace_id,
                f"{ids[k, 2]:016x}",
                name,
                s.service,
                resource,
                "llmtrace.bench.v10",
                attrs,
                dur_ns,
                failed,
            )
        )
    return c["t"] + c["dur_ms"] / 60000, rows


def series_calls(sc: Scenario, i: int) -> dict[str, np.ndarray]:
    """Series ``i``'s stored calls (the seed's own noise and every incident)."""
    nz = noise(sc, np.random.default_rng([sc.seed, 11]))
    return calls(sc, i, 0, MINUTES, nz, sc.incidents, np.random.default_rng([sc.seed, 12, i]))


def span_rows(sc: Scenario) -> tuple[np.ndarray, list[tuple[Any, ...]], int]:
    """Every call's span row in order of arrival, the arrival minutes, and the number of calls."""
    arrive, rows = [], []
    for i in range(len(sc.series)):
        c = series_calls(sc, i)
        # trace ids: agent sessions share one (first half from the session, made unique per series)
        c["trace"] = c["trace"] ^ (i << 56)
        ids = np.random.default_rng([sc.seed, 13, i]).integers(0, 2**63, (len(c["t"]), 3))
        if sc.series[i].kind.session < 5:  # conversations: one trace per call
            c["trace"] = ids[:, 0]
        a, r = _rows(sc, i, c, ids)
        arrive.append(a)
        rows.extend(r)
    at = np.concatenate(arrive)
    order = np.argsort(at, kind="stable")
    return at[order], [rows[k] for k in order], len(rows)


def insert(client: Any, sc: Scenario) -> int:
    _, rows, n = span_rows(sc)
    insert_rows(client, rows)
    return n
