"""Held-out judge 12: one week of LLM call spans from a stranger's production, written blind.

Seeded, numpy only. ``build(seed, end)`` returns a :class:`Week`: every LLM call of ~17 series
(service x model over openai, anthropic, gcp.gemini and mistral_ai) as arrays, the non-LLM spans of
agent traces (``invoke_agent`` roots and ``execute_tool`` children), the labelled incidents and
the labelled benign changes. The spans themselves are built by :func:`otlp_requests` as an OTLP
exporter would send them (``benchmarks/detection_v12.py`` posts them to ``llmtrace server``).

Traffic shapes a detector's author rarely writes: several time zones (a day starting at 01:00 UTC,
one at 14:00 UTC), sharp business hours with a step at 09:00 local and almost nothing at night,
cron batches (every hour at :00 for 20 min; every 6 h for 30 min), a night pause, a quiet
holiday-like Sunday, log-normal latency with rare 60 s timeouts, agent traces with 429 retries
and backoff, a router moving share between two models of one service, token counts that depend
on the prompt version, streams whose TTFT grows with the input length, young series (12-48 h).
Older attribute names on some services (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``),
OpenLIT's ``gen_ai.server.time_to_first_token`` on one, no cost attribute on most spans.

Incidents (label: kind, series or set, start/end minute of the week, effect): the issue's five
kinds at its sizes (latency p95 x3-8 15-60 min, errors 25-60 % 10-40 min, volume -85 % 30-90 min,
TTFT x4-10 15-45 min, output tokens x1.8-3 from a point on), some below those sizes, and beyond:
prompt bloat (input tokens and cost x2.5-4), a truncation burst, a provider-wide outage, a slow
latency ramp over 1-2 h. Benign (must not alert): a planned release with a modest change, daily
peaks, weekends, a gradual router shift between the two models of one service.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import numpy as np

WEEK_MIN = 7 * 24 * 60

# kind -> the window statistic that measures it (see stat())
STAT = {
    "latency_spike": "p95_latency",
    "latency_ramp": "p95_latency",
    "error_burst": "error_rate",
    "provider_outage": "error_rate",
    "volume_drop": "count",
    "ttft_spike": "p95_ttft",
    "output_shift": "mean_output",
    "prompt_bloat": "mean_input",
    "truncation_burst": "trunc_rate",
}


@dataclasses.dataclass
class Series:
    service: str
    provider: str
    model: str
    peak: float  # calls/min at the shape's top
    shape: str  # business | diurnal | hourly_cron | six_hourly | night_pause | flat_peak
    tz: float  # hours east of UTC (local = UTC + tz)
    weekend: float  # factor on Saturday/Sunday (local)
    quiet_sunday: float = 1.0  # extra factor on the Sunday ("holiday")
    young_h: float = 0.0  # first span this many hours before the end (0: a full week)
    lat_ms: float = 900.0  # latency median at the median output
    lat_sigma: float = 0.45
    ms_per_tok: float = 12.0
    in_med: float = 900.0
    out_med: float = 220.0
    tok_sigma: float = 0.55
    max_tokens: int = 1024
    err: float = 0.006
    stream: float = 0.0  # share of calls streamed
    ttft_attr: str = "gen_ai.response.time_to_first_chunk"
    old_names: bool = False  # gen_ai.system and prompt/completion_tokens
    agent: bool = False
    embeddings: bool = False
    share_key: str = ""  # router pair (support-chat models)
    version: str = "1.0.0"

    @property
    def key(self) -> str:
        return f"{self.service}|{self.model}"


def catalogue() -> list[Series]:
    return [
        # support chat, EU business hours (09:00 local = 08:00 UTC), router between two OpenAI models
        Series(
            "support-chat",
            "openai",
            "gpt-4o-mini",
            22,
            "business",
            1,
            0.12,
            quiet_sunday=0.5,
            lat_ms=700,
            ms_per_tok=9,
            in_med=1400,
            out_med=180,
            stream=0.85,
            share_key="a",
            version="4.12.0",
        ),
        Series(
            "support-chat",
            "openai",
            "gpt-4o",
            6,
            "business",
            1,
            0.12,
            quiet_sunday=0.5,
            lat_ms=1500,
            ms_per_tok=16,
            in_med=1600,
            out_med=240,
            stream=0.85,
            share_key="b",
            version="4.12.0",
        ),
        Series(
            "support-chat",
            "anthropic",
            "claude-3-5-haiku-20241022",
            3,
            "business",
            1,
            0.12,
            young_h=30,
            lat_ms=1100,
            ms_per_tok=11,
            in_med=1500,
            out_med=200,
            stream=0.85,
            version="4.12.0",
        ),
        # cron summariser, every hour at :00 for 20 min, older attribute names
        Series(
            "doc-summarizer",
            "anthropic",
            "claude-3-5-haiku-20241022",
            20,
            "hourly_cron",
            0,
            1.0,
            lat_ms=2600,
            ms_per_tok=10,
            in_med=6000,
            out_med=350,
            max_tokens=800,
            old_names=True,
            err=0.004,
            version="2024.11.3",
        ),
        # six-hourly ETL batch at 00/06/12/18 UTC for 30 min
        Series(
            "nightly-etl",
            "openai",
            "gpt-4.1-mini",
            45,
            "six_hourly",
            0,
            1.0,
            lat_ms=1800,
            ms_per_tok=8,
            in_med=2500,
            out_med=400,
            max_tokens=1200,
            err=0.003,
            version="0.9.1",
        ),
        # research agent, US east business hours: agent traces with tools and 429 retries
        Series(
            "research-agent",
            "anthropic",
            "claude-sonnet-4-20250514",
            10,
            "business",
            -5,
            0.3,
            lat_ms=3500,
            lat_sigma=0.6,
            ms_per_tok=20,
            in_med=9000,
            out_med=450,
            max_tokens=4096,
            err=0.004,
            agent=True,
            version="2.3.0",
        ),
        Series(
            "research-agent",
            "openai",
            "gpt-4.1",
            4,
            "business",
            -5,
            0.3,
            lat_ms=2200,
            lat_sigma=0.55,
            ms_per_tok=14,
            in_med=5000,
            out_med=300,
            max_tokens=2048,
            err=0.004,
            agent=True,
            version="2.3.0",
        ),
        # code review bot, Asia (UTC+8 -> the day starts at 01:00 UTC)
        Series(
            "code-review",
            "openai",
            "o3-mini",
            4,
            "business",
            8,
            0.05,
            lat_ms=6000,
            lat_sigma=0.5,
            ms_per_tok=6,
            in_med=7000,
            out_med=1400,
            max_tokens=8000,
            err=0.008,
            version="1.4.2",
        ),
        Series(
            "code-review",
            "openai",
            "gpt-4.1",
            2,
            "business",
            8,
            0.05,
            young_h=44,
            lat_ms=3000,
            ms_per_tok=14,
            in_med=7000,
            out_med=500,
            max_tokens=4000,
            version="1.5.0",
        ),
        # embeddings for search, around the clock
        Series(
            "search",
            "openai",
            "text-embedding-3-small",
            5,
            "diurnal",
            -3,
            0.8,
            lat_ms=120,
            lat_sigma=0.35,
            ms_per_tok=0.0,
            in_med=300,
            out_med=0,
            err=0.002,
            embeddings=True,
            version="7.0.4",
        ),
        # voice assistant, US west consumer traffic (evening peak ~ 03:00 UTC), OpenLIT's TTFT name
        Series(
            "voice-assistant",
            "gcp.gemini",
            "gemini-2.0-flash",
            9,
            "diurnal",
            -8,
            1.3,
            lat_ms=650,
            lat_sigma=0.4,
            ms_per_tok=5,
            in_med=700,
            out_med=90,
            stream=1.0,
            ttft_attr="gen_ai.server.time_to_first_token",
            version="3.3.0",
        ),
        Series(
            "voice-assistant",
            "gcp.gemini",
            "gemini-2.5-flash",
            2.5,
            "diurnal",
            -8,
            1.3,
            young_h=14,
            lat_ms=900,
            lat_sigma=0.4,
            ms_per_tok=6,
            in_med=700,
            out_med=110,
            stream=1.0,
            ttft_attr="gen_ai.server.time_to_first_token",
            version="3.4.0",
        ),
        # translation: flat with one sharp daily peak at 14:00 UTC (benign)
        Series(
            "translation",
            "gcp.gemini",
            "gemini-2.0-flash",
            7,
            "flat_peak",
            0,
            0.7,
            lat_ms=800,
            ms_per_tok=4,
            in_med=500,
            out_med=520,
            max_tokens=2048,
            err=0.003,
            old_names=True,
            version="5.1.0",
        ),
        Series(
            "translation",
            "gcp.gemini",
            "gemini-2.5-flash-lite",
            3,
            "flat_peak",
            0,
            0.7,
            young_h=26,
            lat_ms=600,
            ms_per_tok=3,
            in_med=500,
            out_med=520,
            max_tokens=2048,
            err=0.003,
            old_names=True,
            version="5.2.0",
        ),
        # a new onboarding bot (young), Mistral
        Series(
            "onboarding-bot",
            "mistral_ai",
            "mistral-small-latest",
            2.5,
            "diurnal",
            1,
            1.0,
            young_h=20,
            lat_ms=900,
            ms_per_tok=8,
            in_med=800,
            out_med=160,
            err=0.01,
            version="0.2.0",
        ),
        # internal tools: 0.2-0.5 calls/min, pauses for the night, quiet Sunday
        Series(
            "internal-tools",
            "mistral_ai",
            "mistral-large-latest",
            0.6,
            "night_pause",
            2,
            0.2,
            quiet_sunday=0.3,
            lat_ms=2000,
            ms_per_tok=18,
            in_med=1200,
            out_med=300,
            err=0.01,
            version="0.13.0",
        ),
        # legal drafts: rare, long streamed outputs
        Series(
            "legal-drafts",
            "anthropic",
            "claude-opus-4-20250514",
            1.2,
            "business",
            -5,
            0.05,
            lat_ms=25000,
            lat_sigma=0.5,
            ms_per_tok=30,
            in_med=12000,
            out_med=1800,
            max_tokens=4096,
            stream=1.0,
            err=0.01,
            version="1.0.7",
        ),
    ]


def _hash_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def rate_curve(s: Series, end_epoch_min: int, rng: np.random.Generator) -> np.ndarray:
    """Calls per minute at each minute of the week (before incidents), with hour-level noise."""
    m = np.arange(WEEK_MIN)
    utc_min = end_epoch_min - WEEK_MIN + m
    local = utc_min + round(s.tz * 60)
    hod = (local % 1440) / 60.0  # local hour of day
    dow = ((local // 1440) + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    if s.shape == "business":
        day = np.where((hod >= 9) & (hod < 18), 1.0, 0.0)
        day = day * (1.0 - 0.25 * np.exp(-((hod - 13.0) ** 2) / 0.5))  # lunch dip
        day = np.maximum(day, np.where((hod >= 7) & (hod < 9) | (hod >= 18) & (hod < 21), 0.12, 0.015))
    elif s.shape == "diurnal":
        day = 0.35 + 0.65 * np.clip(np.sin((hod - 7.0) / 24.0 * 2 * np.pi) * 0.5 + 0.5, 0, 1) ** 1.5
    elif s.shape == "hourly_cron":
        mm = local % 60
        day = np.where(mm < 20, 1.0 - mm / 40.0, 0.0)
    elif s.shape == "six_hourly":
        mm = local % 360
        day = np.where(mm < 30, 1.0, 0.0)
    elif s.shape == "night_pause":
        day = np.where((hod >= 7) & (hod < 22), 1.0, 0.0)
    elif s.shape == "flat_peak":
        day = 0.45 + 0.55 * np.exp(-((hod - 14.0) ** 2) / (2 * 0.6**2))
    else:
        raise ValueError(s.shape)
    wk = np.where(dow >= 5, s.weekend, 1.0)
    wk = np.where(dow == 6, wk * s.quiet_sunday, wk)
    hours = WEEK_MIN // 60 + 2
    hour_noise = np.exp(rng.normal(0.0, 0.08, hours))
    day_noise = np.exp(rng.normal(0.0, 0.06, 9))
    noise = hour_noise[m // 60] * day_noise[m // 1440]
    lam = s.peak * day * wk * noise
    if s.young_h:
        lam[: WEEK_MIN - int(s.young_h * 60)] = 0.0
    return lam


@dataclasses.dataclass
class Incident:
    kind: str
    series: list[str]  # series keys touched
    scope: str  # "series" | "service" | "provider"
    start: int  # week minute
    end: int  # week minute (exclusive); WEEK_MIN for a permanent shift
    factor: float  # effect size (multiplier, or error rate, or kept share)
    note: str = ""
    z: float = float("nan")
    extra: float = float("nan")
    young: bool = False
    night: bool = False
    weekend: bool = False
    eligible: bool = False


@dataclasses.dataclass
class Benign:
    kind: str
    series: list[str]
    start: int
    end: int
    note: str


@dataclasses.dataclass
class Calls:
    """One series' LLM calls (arrays of equal length, sorted by time)."""

    t: np.ndarray  # seconds from the week's start
    dur: np.ndarray  # ms
    ttft: np.ndarray  # ms, nan when not streamed
    inp: np.ndarray
    out: np.ndarray
    err: np.ndarray  # 0 = ok, else error code index
    fin: np.ndarray  # 0 stop, 1 length, 2 tool
    trace: np.ndarray  # trace index within the series (agent), else -1
    prompt_v: np.ndarray  # prompt version index

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: np.ndarray) -> Calls:
        return Calls(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: list[Calls]) -> Calls:
        return Calls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Calls)))


def _calls_for(
    s: Series, lam: np.ndarray, rng: np.random.Generator, m0: int, m1: int, release_min: int | None
) -> Calls:
    counts = rng.poisson(lam[m0:m1])
    n = int(counts.sum())
    minute = np.repeat(np.arange(m0, m1), counts)
    t = minute * 60.0 + rng.random(n) * 60.0
    # prompt version: v3 before a planned release point, v4 after (10 % longer prompts, same outputs)
    pv = np.zeros(n, dtype=np.int8)
    if release_min is not None:
        pv[minute >= release_min] = 1
    inp = rng.lognormal(np.log(s.in_med), s.tok_sigma, n) * np.where(pv == 1, 1.1, 1.0)
    if s.embeddings:
        out = np.zeros(n)
    else:
        out = rng.lognormal(np.log(s.out_med), s.tok_sigma, n) * np.where(pv == 1, 1.04, 1.0)
    fin = np.zeros(n, dtype=np.int8)
    trunc = (out >= s.max_tokens) | (rng.random(n) < 0.008)
    out = np.where(trunc, s.max_tokens, out)
    fin[trunc & ~np.asarray(s.embeddings)] = 1
    if s.agent:
        fin[(rng.random(n) < 0.55) & (fin == 0)] = 2
    stream = rng.random(n) < s.stream
    ttft = np.where(stream, (180.0 + 0.06 * inp) * rng.lognormal(0.0, 0.3, n), np.nan)
    gen = s.lat_ms * rng.lognormal(0.0, s.lat_sigma, n)
    if s.out_med > 0:
        gen = gen * 0.4 + out * s.ms_per_tok * rng.lognormal(0.0, 0.2, n)
    dur = np.where(stream, ttft + out * s.ms_per_tok * rng.lognormal(0.0, 0.2, n), gen)
    err = np.zeros(n, dtype=np.int8)
    e = rng.random(n) < s.err
    err[e] = rng.integers(1, 4, int(e.sum()))
    timeout = rng.random(n) < 0.0008
    err[timeout] = 4
    dur = np.where(timeout, 60000.0 + rng.random(n) * 50, dur)
    failed = err > 0
    dur = np.where(failed & ~timeout, 80 + rng.lognormal(np.log(250), 0.5, n), dur)
    out = np.where(failed, 0, out)
    order = np.argsort(t, kind="stable")
    c = Calls(t, dur, ttft, np.round(inp), np.round(out), err, fin, np.full(n, -1, dtype=np.int64), pv)
    return c.take(order)


def _assign_traces(c: Calls, rng: np.random.Generator) -> None:
    """Agent series: consecutive calls form traces of 2-7 steps (their times pulled together)."""
    n = len(c)
    if not n:
        return
    sizes = rng.integers(2, 8, n // 2 + 2)
    ids = np.repeat(np.arange(len(sizes)), sizes)[:n]
    c.trace[:] = ids
    first = np.zeros(n, dtype=bool)
    first[0] = True
    first[1:] = ids[1:] != ids[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    # a step starts after the previous call and a tool call (0.3-3 s)
    gap = (c.dur / 1000.0) + rng.uniform(0.3, 3.0, n)
    csum = np.concatenate([[0.0], np.cumsum(gap)])
    c.t[:] = c.t[starts] + (csum[np.arange(n)] - csum[starts])


# ----- incidents -----


def _apply(inc: Incident, key: str, c: Calls, s: Series, rng: np.random.Generator) -> Calls:
    a, b = inc.start * 60.0, inc.end * 60.0
    w = (c.t >= a) & (c.t < b)
    ok = c.err == 0
    k = inc.kind
    if k == "latency_spike":
        c.dur = np.where(w & ok, c.dur * inc.factor * rng.lognormal(0, 0.1, len(c)), c.dur)
        c.ttft = np.where(w & ok, c.ttft * inc.factor, c.ttft)
    elif k == "latency_ramp":  # rises linearly to x factor at 70 % of the window, then eases off
        frac = np.clip((c.t - a) / max(b - a, 1.0), 0, 1)
        shape = np.where(frac < 0.7, frac / 0.7, 1.0 - (frac - 0.7) / 0.3 * 0.6)
        mult = 1.0 + (inc.factor - 1.0) * shape
        c.dur = np.where(w & ok, c.dur * mult, c.dur)
    elif k == "ttft_spike":
        extra = np.where(w & ok & ~np.isnan(c.ttft), c.ttft * (inc.factor - 1.0), 0.0)
        c.ttft = np.where(w & ok, c.ttft * inc.factor, c.ttft)
        c.dur = c.dur + extra
    elif k in ("error_burst", "provider_outage"):
        hit = w & (rng.random(len(c)) < inc.factor)
        code = 5 if k == "error_burst" else 6
        if s.agent and k == "error_burst":
            code = 7  # rate limited: the agent retries with backoff
        c.err = np.where(hit, code, c.err)
        c.dur = np.where(hit, 60 + rng.lognormal(np.log(180), 0.4, len(c)), c.dur)
        c.out = np.where(hit, 0, c.out)
        c.ttft = np.where(hit, np.nan, c.ttft)
        if s.agent and hit.any():
            # retries after 429: up to 3 more attempts, each failing with the same probability
            parts = [c]
            cur = np.flatnonzero(hit)
            delay = np.zeros(len(cur))
            for attempt in range(3):
                delay = delay + 2.0**attempt * rng.uniform(1.0, 2.0, len(cur))
                r = c.take(cur)
                r.t = r.t + delay
                again = (r.t < b) & (rng.random(len(r)) < inc.factor)
                r.err = np.where(again, 7, 0).astype(np.int8)
                r.dur = np.where(again, r.dur, c.dur[cur] * 0 + s.lat_ms * rng.lognormal(0, s.lat_sigma, len(r)))
                r.out = np.where(again, 0, np.round(rng.lognormal(np.log(max(s.out_med, 1)), s.tok_sigma, len(r))))
                parts.append(r)
                keep = again
                cur, delay = cur[keep], delay[keep]
                if not len(cur):
                    break
            c = Calls.concat(parts)
            c = c.take(np.argsort(c.t, kind="stable"))
    elif k == "volume_drop":
        if s.agent:
            tr = np.unique(c.trace[w])
            drop_tr = tr[rng.random(len(tr)) > inc.factor]
            drop = w & np.isin(c.trace, drop_tr)
        else:
            drop = w & (rng.random(len(c)) > inc.factor)
        c = c.take(np.flatnonzero(~drop))
    elif k == "output_shift":
        mult = inc.factor * rng.lognormal(0, 0.05, len(c))
        newout = np.minimum(np.round(c.out * mult), s.max_tokens)
        grow = np.where(w & ok, newout - c.out, 0)
        c.out = np.where(w & ok, newout, c.out)
        c.fin = np.where(w & ok & (newout >= s.max_tokens), 1, c.fin).astype(np.int8)
        c.dur = c.dur + grow * s.ms_per_tok
    elif k == "prompt_bloat":
        newin = np.round(c.inp * inc.factor)
        c.ttft = np.where(w & ~np.isnan(c.ttft), c.ttft + 0.06 * (newin - c.inp), c.ttft)
        c.dur = np.where(w, c.dur + 0.03 * (newin - c.inp), c.dur)
        c.inp = np.where(w, newin, c.inp)
    elif k == "truncation_burst":
        hit = w & ok & (rng.random(len(c)) < inc.factor)
        grow = np.where(hit, s.max_tokens - c.out, 0)
        c.out = np.where(hit, s.max_tokens, c.out)
        c.fin = np.where(hit, 1, c.fin).astype(np.int8)
        c.dur = c.dur + np.maximum(grow, 0) * s.ms_per_tok * 0.2
    else:
        raise ValueError(k)
    return c


def stat(kind: str, c: Calls) -> float:
    name = STAT[kind]
    ok = c.err == 0
    if name == "count":
        return float(len(c))
    if name == "error_rate":
        return float((c.err > 0).mean()) if len(c) else float("nan")
    if name == "p95_latency":
        return float(np.percentile(c.dur[ok], 95)) if ok.sum() >= 5 else float("nan")
    if name == "p95_ttft":
        v = c.ttft[ok & ~np.isnan(c.ttft)]
        return float(np.percentile(v, 95)) if len(v) >= 5 else float("nan")
    if name == "mean_output":
        return float(c.out[ok].mean()) if ok.sum() >= 5 else float("nan")
    if name == "mean_input":
        return float(c.inp.mean()) if len(c) >= 5 else float("nan")
    if name == "trunc_rate":
        return float((c.fin[ok] == 1).mean()) if ok.sum() >= 5 else float("nan")
    raise ValueError(name)


@dataclasses.dataclass
class Week:
    seed: int
    end_epoch_min: int
    series: list[Series]
    calls: dict[str, Calls]
    lam: dict[str, np.ndarray]
    incidents: list[Incident]
    benign: list[Benign]
    first_minute: dict[str, int]


def _plan(
    seed: int, series: list[Series], lam: dict[str, np.ndarray], end_epoch_min: int, rng: np.random.Generator
) -> tuple[list[Incident], list[Benign], dict[str, int]]:
    by_key = {s.key: s for s in series}
    first = {k: int(np.flatnonzero(v > 0)[0]) for k, v in lam.items()}
    incs: list[Incident] = []

    def pick_start(key: str, dur: int, weighted: bool) -> int:
        lo = first[key] + 12 * 60 + 1  # at least 12 h of history
        hi = WEEK_MIN - dur - 35
        if hi <= lo:
            return -1
        if weighted:
            w = lam[key][lo:hi].copy()
            if w.sum() <= 0:
                return int(rng.integers(lo, hi))
            return lo + int(rng.choice(len(w), p=w / w.sum()))
        return int(rng.integers(lo, hi))

    def add(kind: str, key: str, dur: int, factor: float, weighted: bool = True, note: str = "") -> None:
        st = pick_start(key, dur, weighted)
        if st < 0:
            return
        incs.append(Incident(kind, [key], "series", st, st + dur, factor, note))

    keys = [s.key for s in series]
    non_embed = [s.key for s in series if not s.embeddings]
    streams = [s.key for s in series if s.stream > 0]
    young = [s.key for s in series if s.young_h]
    # the five kinds, at its sizes
    for _ in range(3):
        add("latency_spike", str(rng.choice(keys)), int(rng.integers(15, 61)), float(rng.uniform(3, 8)))
    for _ in range(3):
        add("error_burst", str(rng.choice(keys)), int(rng.integers(10, 41)), float(rng.uniform(0.25, 0.6)))
    for _ in range(2):
        add("volume_drop", str(rng.choice(keys)), int(rng.integers(30, 91)), float(rng.uniform(0.10, 0.18)))
    for _ in range(2):
        add("ttft_spike", str(rng.choice(streams)), int(rng.integers(15, 46)), float(rng.uniform(4, 10)))
    k = str(rng.choice(non_embed))
    st = pick_start(k, 6 * 60, True)
    if st > 0:
        incs.append(
            Incident(
                "output_shift", [k], "series", st, WEEK_MIN, float(rng.uniform(1.8, 3.0)), "new release, permanent"
            )
        )
    # on young series (>= 12 h after their first span)
    for kind, lo_hi, size in (
        ("latency_spike", (15, 61), (3, 8)),
        ("error_burst", (10, 41), (0.25, 0.6)),
        ("volume_drop", (30, 91), (0.1, 0.18)),
    ):
        add(kind, str(rng.choice(young)), int(rng.integers(*lo_hi)), float(rng.uniform(*size)), note="young")
    # at random times (uniform: nights, weekends)
    add("latency_spike", str(rng.choice(keys)), int(rng.integers(10, 121)), float(rng.uniform(3, 8)), weighted=False)
    add("error_burst", str(rng.choice(keys)), int(rng.integers(5, 121)), float(rng.uniform(0.25, 0.6)), weighted=False)
    # below the sizes
    add("latency_spike", str(rng.choice(keys)), int(rng.integers(15, 61)), float(rng.uniform(1.5, 2.5)), note="small")
    add("error_burst", str(rng.choice(keys)), int(rng.integers(10, 41)), float(rng.uniform(0.06, 0.15)), note="small")
    add("volume_drop", str(rng.choice(keys)), int(rng.integers(30, 91)), float(rng.uniform(0.45, 0.65)), note="small")
    add("ttft_spike", str(rng.choice(streams)), int(rng.integers(5, 15)), float(rng.uniform(2, 4)), note="small")
    # beyond the five
    add("prompt_bloat", str(rng.choice(non_embed)), int(rng.integers(30, 181)), float(rng.uniform(2.5, 4.0)))
    add("truncation_burst", str(rng.choice(non_embed)), int(rng.integers(15, 61)), float(rng.uniform(0.3, 0.6)))
    add("latency_ramp", str(rng.choice(keys)), int(rng.integers(60, 121)), float(rng.uniform(3, 5)), note="slow ramp")
    # provider-wide outage (every series of the provider)
    prov = str(rng.choice(sorted({s.provider for s in series})))
    members = [s.key for s in series if s.provider == prov]
    dur = int(rng.integers(10, 31))
    lo = max(first[m] for m in members if not by_key[m].young_h) + 12 * 60
    st = int(rng.integers(lo, WEEK_MIN - dur - 35))
    incs.append(
        Incident(
            "provider_outage", members, "provider", st, st + dur, float(rng.uniform(0.7, 0.95)), f"provider {prov}"
        )
    )
    # overlaps: a latency spike on a series inside an error burst, an error burst during a volume drop
    for base_kind, add_kind, size in (
        ("error_burst", "latency_spike", (3, 6)),
        ("volume_drop", "error_burst", (0.3, 0.5)),
    ):
        bases = [i for i in incs if i.kind == base_kind and i.scope == "series" and not i.note]
        if bases:
            b = bases[int(rng.integers(len(bases)))]
            st = b.start + int(rng.integers(-5, 6))
            dur = int(rng.integers(15, 40))
            if first[b.series[0]] + 12 * 60 < st and st + dur < WEEK_MIN - 35:
                incs.append(
                    Incident(add_kind, list(b.series), "series", st, st + dur, float(rng.uniform(*size)), "overlapping")
                )
    # benign changes
    benign: list[Benign] = []
    day0 = WEEK_MIN - 3 * 1440
    rel = day0 + int(rng.integers(8 * 60, 10 * 60))
    benign.append(
        Benign(
            "planned_release",
            ["support-chat|gpt-4o-mini", "support-chat|gpt-4o"],
            rel,
            WEEK_MIN,
            "prompt v4: +10% input tokens, +4% output tokens, release 4.13.0",
        )
    )
    sh = WEEK_MIN - 2 * 1440 + int(rng.integers(9 * 60, 11 * 60))
    benign.append(
        Benign(
            "router_shift",
            ["support-chat|gpt-4o-mini", "support-chat|gpt-4o"],
            sh,
            WEEK_MIN,
            "router moves 30% of gpt-4o-mini's share to gpt-4o over 2 h",
        )
    )
    benign.append(Benign("daily_peak", ["translation|gemini-2.0-flash"], 0, WEEK_MIN, "x2.2 at 14:00 UTC daily"))
    benign.append(Benign("weekend", keys, 0, WEEK_MIN, "weekends and a quiet Sunday"))
    for i in incs:
        i.young = any(by_key[k].young_h for k in i.series)
    return incs, benign, first


def _router(lam: dict[str, np.ndarray], start: int) -> None:
    a, b = lam["support-chat|gpt-4o-mini"], lam["support-chat|gpt-4o"]
    ramp = np.clip((np.arange(WEEK_MIN) - start) / 120.0, 0, 1) * 0.3
    moved = a * ramp
    a -= moved
    b += moved


def _series_calls(
    s: Series,
    lam: np.ndarray,
    seed: int,
    noise: int,
    incs: list[Incident],
    release_min: int | None,
    m0: int = 0,
    m1: int = WEEK_MIN,
) -> Calls:
    rng = np.random.default_rng(_hash_seed("calls", seed, noise, s.key, m0, m1))
    c = _calls_for(s, lam, rng, m0, m1, release_min)
    if s.agent:
        _assign_traces(c, rng)
        c = c.take(np.argsort(c.t, kind="stable"))
    for inc in sorted((i for i in incs if s.key in i.series), key=lambda i: i.start):
        c = _apply(inc, s.key, c, s, rng)
    return c


def build(seed: int, end_epoch_min: int, *, redraws: int = 30) -> Week:
    series = catalogue()
    rng = np.random.default_rng(_hash_seed("plan", seed))
    lam = {s.key: rate_curve(s, end_epoch_min, np.random.default_rng(_hash_seed("rate", seed, s.key))) for s in series}
    incs, benign, first = _plan(seed, series, lam, end_epoch_min, rng)
    shift = next(b for b in benign if b.kind == "router_shift")
    _router(lam, shift.start)
    rel = next(b for b in benign if b.kind == "planned_release").start
    release = {s.key: rel if s.service == "support-chat" else None for s in series}
    calls = {s.key: _series_calls(s, lam[s.key], seed, 0, incs, release[s.key]) for s in series}
    by_key = {s.key: s for s in series}
    # eligibility: the incident's window statistic against ~30 redraws of the same window's base traffic
    for inc in incs:
        m0, m1 = inc.start, min(inc.end, WEEK_MIN)
        if inc.kind == "output_shift":
            m1 = min(inc.start + 120, WEEK_MIN)  # the first two hours of a permanent shift
        extra = 0.0
        zs = []
        pooled_obs: list[Calls] = []
        pooled_base: list[list[Calls]] = [[] for _ in range(redraws)]
        for key in inc.series:
            c = calls[key]
            w = (c.t >= m0 * 60) & (c.t < m1 * 60)
            pooled_obs.append(c.take(np.flatnonzero(w)))
            for r in range(redraws):
                pooled_base[r].append(_series_calls(by_key[key], lam[key], seed, r + 1, [], release[key], m0, m1))
        obs_c = Calls.concat(pooled_obs)
        base_cs = [Calls.concat(p) for p in pooled_base]
        obs = stat(inc.kind, obs_c)
        base = np.array([stat(inc.kind, b) for b in base_cs])
        base = base[~np.isnan(base)]
        if len(base) >= 10 and not math.isnan(obs):
            sd = float(base.std(ddof=1))
            mu = float(base.mean())
            z = abs(obs - mu) / sd if sd > 0 else (float("inf") if obs != mu else 0.0)
            zs.append(z)
        if STAT[inc.kind] == "count":
            extra = float(np.mean([len(b) for b in base_cs]) - len(obs_c))
        elif STAT[inc.kind] == "error_rate":
            extra = float((obs_c.err > 0).sum() - np.mean([(b.err > 0).sum() for b in base_cs]))
        elif STAT[inc.kind] == "trunc_rate":
            extra = float((obs_c.fin == 1).sum() - np.mean([(b.fin == 1).sum() for b in base_cs]))
        else:
            extra = float(len(obs_c))  # calls that show the effect
        inc.z = zs[0] if zs else float("nan")
        inc.extra = extra
        dur_ok = (inc.end - inc.start) >= 10
        inc.eligible = bool(dur_ok and inc.z >= 3.0 and extra >= 10)
        utc_h = ((end_epoch_min - WEEK_MIN + inc.start) % 1440) / 60
        inc.night = not 7 <= utc_h < 21
        dow = (((end_epoch_min - WEEK_MIN + inc.start) // 1440) + 3) % 7
        inc.weekend = dow >= 5
    return Week(seed, end_epoch_min, series, calls, lam, incs, benign, first)


# ----- spans -----

_ERR = {
    "openai": [
        "",
        "openai.InternalServerError",
        "openai.APIConnectionError",
        "openai.BadRequestError",
        "openai.APITimeoutError",
        "openai.InternalServerError",
        "openai.APIStatusError",
        "openai.RateLimitError",
    ],
    "anthropic": [
        "",
        "anthropic.InternalServerError",
        "anthropic.APIConnectionError",
        "anthropic.BadRequestError",
        "anthropic.APITimeoutError",
        "anthropic.OverloadedError",
        "anthropic.APIStatusError",
        "anthropic.RateLimitError",
    ],
    "gcp.gemini": [
        "",
        "google.genai.errors.ServerError",
        "httpx.ConnectError",
        "google.genai.errors.ClientError",
        "httpx.ReadTimeout",
        "google.genai.errors.ServerError",
        "google.genai.errors.ServerError",
        "google.genai.errors.ClientError",
    ],
    "mistral_ai": [
        "",
        "mistralai.models.SDKError",
        "httpx.ConnectError",
        "mistralai.models.HTTPValidationError",
        "httpx.ReadTimeout",
        "mistralai.models.SDKError",
        "mistralai.models.SDKError",
        "mistralai.models.SDKError",
    ],
}
_FIN = {
    "openai": ["stop", "length", "tool_calls"],
    "anthropic": ["end_turn", "max_tokens", "tool_use"],
    "gcp.gemini": ["STOP", "MAX_TOKENS", "STOP"],
    "mistral_ai": ["stop", "length", "tool_calls"],
}
_ADDR = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gcp.gemini": "generativelanguage.googleapis.com",
    "mistral_ai": "api.mistral.ai",
}


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def otlp_requests(week: Week, batch: int = 3000) -> Any:
    """Yield (serialized ExportTraceServiceRequest, spans in it), in time order, ~batch spans each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    t0_ns = (week.end_epoch_min - WEEK_MIN) * 60 * 10**9
    rng = np.random.default_rng(_hash_seed("ids", week.seed))
    # one flat, time-sorted index over every series' calls
    keys = [s.key for s in week.series]
    by_key = {s.key: s for s in week.series}
    idx_s = np.concatenate([np.full(len(week.calls[k]), i, dtype=np.int32) for i, k in enumerate(keys)])
    idx_c = np.concatenate([np.arange(len(week.calls[k])) for k in keys])
    t_all = np.concatenate([week.calls[k].t for k in keys])
    order = np.argsort(t_all, kind="stable")
    idx_s, idx_c = idx_s[order], idx_c[order]
    trace_ids = rng.bytes(16 * len(order))
    span_ids = rng.bytes(8 * len(order))
    agent_trace: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    release_start = next(b.start for b in week.benign if b.kind == "planned_release") * 60.0
    resource_cache: dict[tuple[str, str], Any] = {}

    def resource(s: Series, version: str) -> Any:
        r = resource_cache.get((s.service, version))
        if r is None:
            attrs = [
                _kv("service.name", s.service),
                _kv("service.version", version),
                _kv("deployment.environment.name", "production"),
                _kv("telemetry.sdk.language", "python"),
            ]
            r = resource_cache[(s.service, version)] = Resource(attributes=attrs)
        return r

    scope = InstrumentationScope(name="opentelemetry.instrumentation.genai", version="0.4b0")
    pos = 0
    n = len(order)
    while pos < n:
        stop = min(n, pos + batch)
        groups: dict[tuple[str, str], list[Any]] = {}
        spans_in = 0
        for j in range(pos, stop):
            si, ci = int(idx_s[j]), int(idx_c[j])
            s = by_key[keys[si]]
            c = week.calls[keys[si]]
            t = float(c.t[ci])
            start_ns = t0_ns + int(t * 1e9)
            dur_ns = int(float(c.dur[ci]) * 1e6)
            err = int(c.err[ci])
            version = s.version
            if s.service == "support-chat" and t >= release_start:
                version = "4.13.0"
            op = "embeddings" if s.embeddings else "chat"
            attrs = [
                _kv("gen_ai.operation.name", op),
                _kv("gen_ai.system" if s.old_names else "gen_ai.provider.name", s.provider),
                _kv("gen_ai.request.model", s.model),
                _kv("server.address", _ADDR[s.provider]),
                _kv("server.port", 443),
            ]
            inp, out = int(c.inp[ci]), int(c.out[ci])
            if not s.embeddings:
                attrs.append(_kv("gen_ai.request.max_tokens", s.max_tokens))
                attrs.append(_kv("gen_ai.request.temperature", 0.2 if s.agent else 0.7))
            if err == 0:
                attrs.append(
                    _kv(
                        "gen_ai.response.model",
                        s.model if s.provider != "openai" or s.embeddings else s.model + "-2024-xx",
                    )
                )
                attrs.append(_kv("gen_ai.response.id", span_ids[8 * j : 8 * j + 8].hex()))
                if s.old_names:
                    attrs.append(_kv("gen_ai.usage.prompt_tokens", inp))
                    if not s.embeddings:
                        attrs.append(_kv("gen_ai.usage.completion_tokens", out))
                else:
                    attrs.append(_kv("gen_ai.usage.input_tokens", inp))
                    if not s.embeddings:
                        attrs.append(_kv("gen_ai.usage.output_tokens", out))
                if not s.embeddings:
                    attrs.append(_kv("gen_ai.response.finish_reasons", [_FIN[s.provider][int(c.fin[ci])]]))
            if s.service == "support-chat":
                attrs.append(_kv("gen_ai.prompt.name", "support-answer"))
                attrs.append(_kv("gen_ai.prompt.version", "v4" if int(c.prompt_v[ci]) else "v3"))
            if not math.isnan(float(c.ttft[ci])):
                attrs.append(_kv("gen_ai.request.stream", True))
                if err == 0:
                    attrs.append(_kv(s.ttft_attr, round(float(c.ttft[ci]) / 1000.0, 4)))
            status = Status()
            if err:
                etype = _ERR[s.provider][err]
                attrs.append(_kv("error.type", etype))
                status = Status(code=Status.STATUS_CODE_ERROR, message=f"{etype.rsplit('.', 1)[-1]}: request failed")
            trace_id = trace_ids[16 * j : 16 * j + 16]
            parent = b""
            sid = span_ids[8 * j : 8 * j + 8]
            extra_spans = []
            if s.agent:
                tk = (si, int(c.trace[ci]))
                got = agent_trace.get(tk)
                if got is None:
                    root_id = hashlib.sha256(repr((week.seed, tk)).encode()).digest()[:8]
                    got = agent_trace[tk] = (trace_id, root_id)
                    # the agent's root span (it ends after its steps; the duration is a guess)
                    extra_spans.append(
                        Span(
                            trace_id=trace_id,
                            span_id=root_id,
                            name="invoke_agent research_agent",
                            kind=Span.SPAN_KIND_INTERNAL,
                            start_time_unix_nano=start_ns - 5_000_000,
                            end_time_unix_nano=start_ns + 30 * 10**9,
                            attributes=[
                                _kv("gen_ai.operation.name", "invoke_agent"),
                                _kv("gen_ai.agent.name", "research_agent"),
                            ],
                        )
                    )
                trace_id, parent = got
                if err == 0 and int(c.fin[ci]) == 2:
                    tool_id = hashlib.sha256(sid).digest()[:8]
                    extra_spans.append(
                        Span(
                            trace_id=trace_id,
                            span_id=tool_id,
                            parent_span_id=parent,
                            name="execute_tool web_search",
                            kind=Span.SPAN_KIND_INTERNAL,
                            start_time_unix_nano=start_ns + dur_ns + 2_000_000,
                            end_time_unix_nano=start_ns + dur_ns + 700_000_000,
                            attributes=[
                                _kv("gen_ai.operation.name", "execute_tool"),
                                _kv("gen_ai.tool.name", "web_search"),
                                _kv("gen_ai.tool.type", "function"),
                            ],
                        )
                    )
            span = Span(
                trace_id=trace_id,
                span_id=sid,
                parent_span_id=parent,
                name=f"{op} {s.model}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start_ns,
                end_time_unix_nano=start_ns + max(dur_ns, 1000),
                attributes=attrs,
                status=status,
            )
            groups.setdefault((s.service, version), []).extend([span, *extra_spans])
            spans_in += 1 + len(extra_spans)
        req = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=resource(by_key[next(k for k in keys if k.startswith(svc + "|"))], ver),
                    scope_spans=[ScopeSpans(scope=scope, spans=sp)],
                )
                for (svc, ver), sp in groups.items()
            ]
        )
        yield req.SerializeToString(), spans_in, stop - pos
        pos = stop
