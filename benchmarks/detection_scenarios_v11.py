"""Held-out scenarios v11: one seeded week of LLM call spans as strangers' instrumentations write them.

Written blind (without reading the detector, the other judges or their docs) for
``benchmarks/detection_v11.py``, which sends these spans over OTLP/HTTP into ``llmtrace server`` and
runs ``llmtrace anomalies``. The week ends at ``end`` (the runner passes now, rounded down to the
minute); mature series start exactly 7 days before it, young ones 12-48 h before it.

Traffic model: per series, a per-minute Poisson rate ``base * season(t)`` (a diurnal sinusoid with
its own peak hour and amplitude, a weekend factor on the real calendar's Saturday and Sunday, a
daily lunch peak on one service) times incident and benign multipliers. Per call: latency
(lognormal + output tokens at a per-token time), TTFT for streams, input/output tokens (lognormal),
errors (status ERROR + ``error.type`` or an exception event, depending on the instrumentation),
finish reasons (stop, length, tool_calls), cost where the instrumentation writes one.

Three instrumentation styles (a third of the services use older or other common names):
- ``semconv``: the current GenAI conventions (``gen_ai.provider.name``, ``gen_ai.usage.input_tokens``,
  ``gen_ai.response.time_to_first_chunk``, ``gen_ai.request.stream``, ``error.type``); no cost attribute.
- ``openlit``: ``gen_ai.system``, ``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.usage.cost``,
  ``gen_ai.request.is_stream``, TTFT as ``gen_ai.server.time_to_first_token``, errors as an exception
  event, ``deployment.environment`` resource attribute.
- ``openllmetry``: semconv 1.26-era names: ``gen_ai.system``, ``llm.request.type``,
  ``gen_ai.usage.prompt_tokens``/``completion_tokens``, ``llm.usage.total_tokens``,
  ``gen_ai.completion.0.finish_reason``, ``llm.is_streaming``; no TTFT attribute at all.

Incidents (labelled: kind, series set, start, end, effect) drawn per seed: the issue's five kinds at
the issue's sizes (latency spike p95 x3-8 15-60 min, error burst 25-60 % 10-40 min, volume drop
-85 % 30-90 min, TTFT spike x4-10 15-45 min, output-token shift x1.8-3 from a point on), some on
young series, some overlapping, some below those sizes; beyond them: cost jump (prompt bloat:
input tokens x3-6), truncation burst (finish ``length`` 30-60 %), provider-wide outage, slow latency
ramp. Benign changes (labelled, must not alert): a planned release (output tokens x1.15, latency
x1.1), a daily lunch peak, the weekend, a traffic shift between two models of one service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SERIES", "STAT_OF_KIND", "Call", "Incident", "Scenario", "Series", "generate", "window_stat"]

MIN_NS = 60 * 10**9
WEEK_MIN = 7 * 1440


@dataclass(frozen=True)
class Series:
    service: str
    model: str
    provider: str  # what the instrumentation writes (gen_ai.provider.name or gen_ai.system)
    style: str  # semconv | openlit | openllmetry
    rate: float  # mean calls/min at season factor 1
    stream: float  # share of streamed calls
    lat_ms: float  # median latency of the fixed part
    per_tok_ms: float  # generation time per output token
    ttft_s: float
    out_tok: float  # median output tokens
    in_tok: float  # median input tokens
    err: float  # base error probability
    peak_hour: float  # UTC hour of the diurnal peak
    amp: float  # diurnal amplitude (0..1)
    weekend: float  # weekend factor
    young_h: float = 0.0  # hours of history before end (0: the whole week)
    op: str = "chat"
    price_in: float = 0.0  # USD per 1M tokens (written only by openlit-style spans)
    price_out: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.service}/{self.model}"


# ~17 series, 4 services per style roughly; rates 0.2-50 calls/min at the peak.
SERIES: list[Series] = [
    # semconv services
    Series("support-bot", "gpt-4o-mini", "openai", "semconv", 6, 0.9, 350, 12, 0.45, 180, 900, 0.004, 15, 0.6, 0.5),
    Series(
        "support-bot", "claude-3-5-haiku", "anthropic", "semconv", 3, 0.9, 400, 10, 0.55, 200, 950, 0.005, 15, 0.6, 0.5
    ),
    Series("search-rag", "gpt-4o", "openai", "semconv", 3, 0.0, 900, 18, 0.0, 250, 3500, 0.006, 14, 0.5, 0.6),
    Series(
        "search-rag",
        "text-embedding-3-small",
        "openai",
        "semconv",
        6,
        0.0,
        120,
        0,
        0.0,
        0,
        400,
        0.002,
        14,
        0.5,
        0.6,
        op="embeddings",
    ),
    Series("agent-planner", "gpt-4.1-mini", "openai", "semconv", 2.0, 0.0, 500, 8, 0.0, 60, 1500, 0.005, 10, 0.4, 0.7),
    Series(
        "agent-planner",
        "claude-sonnet-4",
        "anthropic",
        "semconv",
        0.0,
        0.3,
        1800,
        22,
        1.1,
        400,
        4000,
        0.006,
        10,
        0.4,
        0.7,
    ),  # rate 0: its calls come from the agent traces started on gpt-4.1-mini
    Series(
        "voice-assist",
        "gpt-4o-mini",
        "openai",
        "semconv",
        4,
        1.0,
        300,
        9,
        0.35,
        90,
        600,
        0.004,
        18,
        0.5,
        0.8,
        young_h=36,
    ),
    # openlit services
    Series(
        "doc-summarizer",
        "gpt-4o",
        "openai",
        "openlit",
        3,
        0.5,
        1100,
        15,
        0.7,
        450,
        6000,
        0.005,
        9,
        0.5,
        0.3,
        price_in=2.5,
        price_out=10,
    ),
    Series(
        "doc-summarizer",
        "gemini-2.0-flash",
        "gemini",
        "openlit",
        5,
        0.5,
        500,
        5,
        0.4,
        350,
        5000,
        0.006,
        9,
        0.5,
        0.3,
        price_in=0.1,
        price_out=0.4,
    ),
    Series(
        "code-review",
        "claude-sonnet-4",
        "anthropic",
        "openlit",
        1.2,
        1.0,
        1500,
        20,
        1.2,
        600,
        8000,
        0.008,
        13,
        0.7,
        0.15,
        price_in=3,
        price_out=15,
    ),
    Series(
        "code-review",
        "claude-3-5-haiku",
        "anthropic",
        "openlit",
        0.4,
        1.0,
        450,
        10,
        0.5,
        220,
        3000,
        0.008,
        13,
        0.7,
        0.15,
        young_h=20,
        price_in=0.8,
        price_out=4,
    ),
    # openllmetry services
    Series(
        "translator", "claude-3-haiku", "anthropic", "openllmetry", 4, 0.6, 300, 6, 0.3, 160, 500, 0.004, 8, 0.6, 0.6
    ),
    Series("translator", "gpt-3.5-turbo", "openai", "openllmetry", 2, 0.0, 400, 7, 0.0, 150, 450, 0.004, 8, 0.6, 0.6),
    Series(
        "batch-tagger", "gemini-1.5-flash", "gemini", "openllmetry", 0.25, 0.0, 700, 4, 0.0, 40, 1200, 0.01, 3, 0.3, 1.0
    ),
    Series(
        "batch-tagger",
        "gpt-4o-mini",
        "openai",
        "openllmetry",
        35,
        0.0,
        280,
        6,
        0.0,
        30,
        800,
        0.003,
        3,
        0.3,
        1.0,
        young_h=16,
    ),
    Series(
        "email-drafts",
        "gpt-4.1-mini",
        "openai",
        "openllmetry",
        1.5,
        0.0,
        600,
        9,
        0.0,
        300,
        1200,
        0.005,
        16,
        0.6,
        0.4,
        young_h=44,
    ),
]
AGENT_ROUTER = "agent-planner/gpt-4.1-mini"
AGENT_WORKER = "agent-planner/claude-sonnet-4"
LUNCH_SERVICE = "support-bot"
SHIFT_PAIR = ("support-bot/gpt-4o-mini", "support-bot/claude-3-5-haiku")
RELEASE_SERIES = "search-rag/gpt-4o"
BY_KEY = {s.key: s for s in SERIES}
STREAMABLE = [s.key for s in SERIES if s.stream > 0]

ERRORS = {
    "openai": ["openai.RateLimitError", "openai.APITimeoutError", "openai.InternalServerError"],
    "anthropic": ["anthropic.RateLimitError", "anthropic.APITimeoutError", "anthropic.InternalServerError"],
    "gemini": [
        "google.api_core.exceptions.ResourceExhausted",
        "google.api_core.exceptions.DeadlineExceeded",
        "google.api_core.exceptions.InternalServerError",
    ],
}


@dataclass
class Incident:
    kind: str
    series: list[str]  # series keys it touches
    start: int  # minute index from the week's start (may be fractional-free ints)
    end: int  # exclusive; for output_shift: end of the week
    effect: float  # multiplier (latency, ttft, output, input), error/truncation probability, or kept share (volume)
    scope: str = "series"  # series | service | provider
    scope_name: str = ""
    benign: bool = False
    note: str = ""
    stats: dict[str, Any] = field(default_factory=dict)  # filled by the runner: eligibility

    @property
    def label(self) -> str:
        target = self.scope_name if self.scope != "series" else self.series[0]
        return f"{self.kind}@{target}[{self.start}-{self.end}]x{self.effect:.2f}"


@dataclass
class Calls:
    """Columns of one series' calls, in time order."""

    key: str
    t_ns: np.ndarray
    dur_ms: np.ndarray
    ttft_s: np.ndarray  # nan when not streamed
    in_tok: np.ndarray
    out_tok: np.ndarray
    err: np.ndarray  # 0 ok, 1..3 index into ERRORS + 1
    finish: np.ndarray  # 0 stop, 1 length, 2 tool_calls, -1 none (error)
    trace: np.ndarray  # agent trace index (-1: its own trace)
    release: np.ndarray  # 0 old version, 1 new


Call = Calls


@dataclass
class Scenario:
    seed: int
    end_ns: int
    start_ns: int
    incidents: list[Incident]
    benign: list[Incident]
    calls: dict[str, Calls]
    knobs: dict[str, dict[str, np.ndarray]]  # per series: the minute arrays, incidents applied
    base_knobs: dict[str, dict[str, np.ndarray]]  # the same without incidents (for redraws)


def _season(s: Series, minute0_unix_min: int, n: int, lunch: bool) -> np.ndarray:
    m = minute0_unix_min + np.arange(n)
    hour = (m % 1440) / 60.0
    f = 1.0 + s.amp * np.cos(2 * math.pi * (hour - s.peak_hour) / 24.0)
    dow = ((m // 1440) + 3) % 7  # 1970-01-01 was a Thursday: 0 Monday ... 5 Saturday, 6 Sunday
    f = f * np.where(dow >= 5, s.weekend, 1.0)
    if lunch:  # daily peak 11:30-13:00 UTC, x2.5
        f = f * np.where((hour >= 11.5) & (hour < 13.0), 2.5, 1.0)
    return np.maximum(f, 0.02)


def _base_knobs(s: Series, week0_min: int, n: int) -> dict[str, np.ndarray]:
    first = 0 if not s.young_h else n - int(s.young_h * 60)
    rate = s.rate * _season(s, week0_min, n, s.service == LUNCH_SERVICE)
    rate[:first] = 0.0
    return {
        "rate": rate,
        "lat": np.ones(n),
        "ttft": np.ones(n),
        "err": np.full(n, s.err),
        "out": np.ones(n),
        "inp": np.ones(n),
        "trunc": np.full(n, 0.01),
        "release": np.zeros(n),
        "errkind": np.zeros(n),  # 0 mixed, 1 rate limits, 2 timeouts, 3 server errors
    }


def draw_calls(
    s: Series,
    k: dict[str, np.ndarray],
    rng: np.random.Generator,
    week0_ns: int,
    lo: int = 0,
    hi: int | None = None,
    counts: np.ndarray | None = None,
) -> Calls:
    """One series' calls on minutes [lo, hi) from its knob arrays."""
    hi = len(k["rate"]) if hi is None else hi
    if counts is None:
        counts = rng.poisson(k["rate"][lo:hi])
    idx = np.repeat(np.arange(lo, hi), counts)
    n = len(idx)
    t = week0_ns + (idx * MIN_NS + rng.uniform(0, MIN_NS, n)).astype(np.int64)
    t.sort()
    err_p = k["err"][idx]
    err = rng.random(n) < err_p
    ek = k["errkind"][idx]
    rand_kind = rng.integers(1, 4, n)
    err_kind = np.where(ek > 0, ek, rand_kind).astype(np.int64)
    err_code = np.where(err, err_kind, 0)
    out = np.maximum(1, rng.lognormal(math.log(max(s.out_tok, 1)), 0.45, n) * k["out"][idx]).astype(np.int64)
    inp = np.maximum(5, rng.lognormal(math.log(s.in_tok), 0.4, n) * k["inp"][idx]).astype(np.int64)
    if s.op == "embeddings":
        out[:] = 0
    trunc = rng.random(n) < k["trunc"][idx]
    tool = (rng.random(n) < 0.12) & (s.service == "agent-planner")
    finish = np.where(trunc, 1, np.where(tool, 2, 0))
    out = np.where(trunc, np.maximum(out, (s.out_tok * 1.6 * k["out"][idx])).astype(np.int64), out)
    stream = rng.random(n) < s.stream
    ttft = np.where(stream, rng.lognormal(math.log(max(s.ttft_s, 0.05)), 0.35, n), np.nan)
    fixed = rng.lognormal(math.log(s.lat_ms), 0.35, n)
    gen = out * s.per_tok_ms * rng.lognormal(0, 0.15, n)
    base_ttft_ms = np.where(stream, ttft * 1000.0, 0.0)
    dur = (np.where(stream, base_ttft_ms, fixed) + gen) * k["lat"][idx]
    ttft_m = k["ttft"][idx]
    dur = dur + np.where(stream, base_ttft_ms * (ttft_m - 1.0), 0.0)
    ttft = np.where(stream, ttft * ttft_m, np.nan)
    # errors: rate limits return fast, timeouts at 30-60 s, server errors after a while
    err_dur = np.select(
        [err_code == 1, err_code == 2, err_code == 3],
        [rng.uniform(40, 250, n), rng.uniform(30000, 60000, n), rng.uniform(300, 3000, n)],
        dur,
    )
    dur = np.where(err, err_dur, dur)
    out = np.where(err, 0, out)
    finish = np.where(err, -1, finish)
    ttft = np.where(err, np.nan, ttft)
    return Calls(s.key, t, dur, ttft, inp, out, err_code, finish, np.full(n, -1), k["release"][idx].astype(np.int8))


def draw_source(
    keys: list[str],
    knobs: dict[str, dict[str, np.ndarray]],
    rng: np.random.Generator,
    week0_ns: int,
    lo: int = 0,
    hi: int | None = None,
) -> dict[str, Calls]:
    """Calls of one independent source: a series, or the agent service (router + worker calls)."""
    if keys == [AGENT_ROUTER, AGENT_WORKER]:
        router = draw_calls(BY_KEY[AGENT_ROUTER], knobs[AGENT_ROUTER], rng, week0_ns, lo, hi)
        n = len(router.t_ns)
        router.trace = np.arange(n)
        # each agent trace: 1 router call, then 2-3 worker calls (rate follows the router's)
        per = rng.integers(2, 4, n)
        minutes = ((router.t_ns - week0_ns) // MIN_NS).astype(np.int64)
        counts = np.bincount(minutes - lo, weights=per, minlength=(hi or len(knobs[AGENT_ROUTER]["rate"])) - lo)
        worker = draw_calls(
            BY_KEY[AGENT_WORKER], knobs[AGENT_WORKER], rng, week0_ns, lo, hi, counts=counts.astype(np.int64)
        )
        # attach worker calls to the router traces of their minute (by order)
        tr = np.repeat(np.arange(n), per)
        order = np.argsort(np.repeat(router.t_ns, per), kind="stable")
        worker.trace = tr[order][: len(worker.t_ns)]
        # worker calls start after their router call (and one after the other)
        offs = np.zeros(len(worker.t_ns), dtype=np.int64)
        rt = router.t_ns[worker.trace] + (router.dur_ms[worker.trace] * 1e6).astype(np.int64)
        step = np.zeros(len(worker.t_ns), dtype=np.int64)
        if len(worker.t_ns):
            first = np.r_[True, worker.trace[1:] != worker.trace[:-1]]
            grp = np.cumsum(first) - 1
            starts = np.flatnonzero(first)
            step = np.arange(len(worker.t_ns)) - starts[grp]
            offs = (step * 2.5e9).astype(np.int64)
        worker.t_ns = rt + offs + 50_000_000
        return {AGENT_ROUTER: router, AGENT_WORKER: worker}
    (key,) = keys
    return {key: draw_calls(BY_KEY[key], knobs[key], rng, week0_ns, lo, hi)}


SOURCES: list[list[str]] = [[AGENT_ROUTER, AGENT_WORKER]] + [
    [s.key] for s in SERIES if s.key not in (AGENT_ROUTER, AGENT_WORKER)
]


def source_of(key: str) -> list[str]:
    return next(src for src in SOURCES if key in src)


# ---------------------------------------------------------------- incidents


def _first_minute(key: str) -> int:
    s = BY_KEY[key]
    return 0 if not s.young_h else WEEK_MIN - int(s.young_h * 60)


def _pick_start(
    rng: np.random.Generator,
    keys: list[str],
    dur: int,
    taken: list[tuple[int, int, str]],
    overlap_with: tuple[int, int] | None = None,
) -> int:
    lo = max(_first_minute(k) for k in keys) + 12 * 60  # at least 12 h of history
    hi = max(WEEK_MIN - dur - 45, lo + 1)
    if overlap_with is not None:
        a, b = overlap_with
        return int(rng.integers(max(lo, a - dur + 5), max(max(lo, a - dur + 5) + 1, b - 5)))
    for _ in range(200):
        st = int(rng.integers(lo, hi))
        if all(not (set(keys) & set(k.split("|"))) or st + dur + 60 < a or st > b + 60 for a, b, k in taken):
            return st
    return int(rng.integers(lo, hi))


def _apply(inc: Incident, knobs: dict[str, dict[str, np.ndarray]]) -> None:
    a, b = inc.start, inc.end
    for key in inc.series:
        k = knobs[key]
        if inc.kind in ("latency_spike", "latency_spike_small"):
            k["lat"][a:b] *= inc.effect
        elif inc.kind == "latency_ramp":
            ramp = (b - a) * 2 // 3
            k["lat"][a : a + ramp] *= np.linspace(1.0, inc.effect, ramp)
            k["lat"][a + ramp : b] *= inc.effect
        elif inc.kind in ("error_burst", "error_burst_small", "provider_outage"):
            k["err"][a:b] = np.maximum(k["err"][a:b], inc.effect)
            k["errkind"][a:b] = 3 if inc.kind == "provider_outage" else 1
        elif inc.kind in ("volume_drop", "volume_drop_small"):
            k["rate"][a:b] *= inc.effect
        elif inc.kind in ("ttft_spike", "ttft_spike_small"):
            k["ttft"][a:b] *= inc.effect
        elif inc.kind in ("output_shift", "output_shift_small", "planned_release"):
            k["out"][a:b] *= inc.effect
            if inc.kind == "planned_release":
                k["lat"][a:b] *= 1.1
                k["release"][a:b] = 1
        elif inc.kind == "cost_jump":
            k["inp"][a:b] *= inc.effect
        elif inc.kind == "truncation_burst":
            k["trunc"][a:b] = np.maximum(k["trunc"][a:b], inc.effect)
        elif inc.kind == "traffic_shift":
            pass  # applied by _apply_shift
        else:
            raise ValueError(inc.kind)


def _incidents(rng: np.random.Generator) -> tuple[list[Incident], list[Incident]]:
    out: list[Incident] = []
    taken: list[tuple[int, int, str]] = []
    semconv_stream = [k for k in STREAMABLE if BY_KEY[k].style != "openllmetry"]  # it writes no TTFT
    all_keys = [s.key for s in SERIES]
    mature = [k for k in all_keys if not BY_KEY[k].young_h]
    young = [k for k in all_keys if BY_KEY[k].young_h]

    def add(
        kind: str,
        keys: list[str],
        dur: int,
        effect: float,
        scope: str = "series",
        name: str = "",
        overlap: tuple[int, int] | None = None,
        permanent: bool = False,
        note: str = "",
    ) -> Incident:
        st = _pick_start(rng, keys, 120 if permanent else dur, taken, overlap)
        end = WEEK_MIN if permanent else st + dur
        inc = Incident(kind, keys, st, end, effect, scope, name, note=note)
        taken.append((st, end if not permanent else st + 360, "|".join(keys)))
        out.append(inc)
        return inc

    def pick(pool: list[str]) -> str:
        return str(pool[int(rng.integers(len(pool)))])

    # the five kinds at the sizes
    for i in range(3):
        key = pick(young if i == 0 else mature)
        add("latency_spike", [key], int(rng.integers(15, 61)), float(rng.uniform(3, 8)))
    for i in range(3):
        key = pick(young if i == 0 else mature)
        add("error_burst", [key], int(rng.integers(10, 41)), float(rng.uniform(0.25, 0.6)))
    for i in range(2):
        key = pick([k for k in (young if i == 0 else mature) if k != AGENT_WORKER])
        add("volume_drop", [key], int(rng.integers(30, 91)), 0.15)
    for i in range(2):
        key = pick([k for k in semconv_stream if (BY_KEY[k].young_h > 0) == (i == 0)])
        add("ttft_spike", [key], int(rng.integers(15, 46)), float(rng.uniform(4, 10)))
    for i in range(2):
        key = pick([k for k in (young if i == 0 else mature) if BY_KEY[k].op != "embeddings"])
        add("output_shift", [key], 0, float(rng.uniform(1.8, 3.0)), permanent=True)
    # overlapping: an error burst during a latency spike on the same series
    first = out[1]
    add(
        "error_burst",
        first.series,
        int(rng.integers(10, 30)),
        float(rng.uniform(0.25, 0.6)),
        overlap=(first.start, first.end),
        note="overlaps a latency spike",
    )
    # below the sizes
    add("latency_spike_small", [pick(mature)], int(rng.integers(5, 20)), float(rng.uniform(1.3, 2.0)))
    add("error_burst_small", [pick(mature)], int(rng.integers(5, 15)), float(rng.uniform(0.05, 0.15)))
    add("volume_drop_small", [pick([k for k in mature if k != AGENT_WORKER])], int(rng.integers(10, 30)), 0.6)
    add("ttft_spike_small", [pick(semconv_stream)], int(rng.integers(5, 15)), float(rng.uniform(1.5, 2.5)))
    # beyond
    add(
        "cost_jump",
        [pick([k for k in all_keys if BY_KEY[k].op != "embeddings"])],
        int(rng.integers(30, 121)),
        float(rng.uniform(3, 6)),
    )
    add(
        "truncation_burst",
        [pick([k for k in all_keys if BY_KEY[k].op != "embeddings"])],
        int(rng.integers(15, 46)),
        float(rng.uniform(0.3, 0.6)),
    )
    prov = ["openai", "anthropic", "gemini"][int(rng.integers(3))]
    members = [k for k in all_keys if BY_KEY[k].provider == prov]
    add("provider_outage", members, int(rng.integers(10, 31)), float(rng.uniform(0.7, 1.0)), "provider", prov)
    add(
        "latency_ramp",
        [pick(mature)],
        int(rng.integers(180, 301)),
        float(rng.uniform(3, 4)),
        note="linear ramp over the first 2/3, then flat",
    )
    return out, []


def _benign(rng: np.random.Generator, week0_min: int) -> list[Incident]:
    ben: list[Incident] = []
    st = int(rng.integers(2 * 1440, 5 * 1440))
    ben.append(
        Incident(
            "planned_release",
            [RELEASE_SERIES],
            st,
            WEEK_MIN,
            1.15,
            benign=True,
            note="service.version 2.4.0 -> 2.5.0; output tokens x1.15, latency x1.1",
        )
    )
    sh = int(rng.integers(2 * 1440, 6 * 1440))
    ben.append(
        Incident(
            "traffic_shift",
            list(SHIFT_PAIR),
            sh,
            WEEK_MIN,
            0.4,
            scope="service",
            scope_name="support-bot",
            benign=True,
            note="40 % of gpt-4o-mini traffic moves to claude-3-5-haiku",
        )
    )
    for d in range(8):  # daily lunch peaks (11:30-13:00 UTC) of support-bot
        a = (d * 1440 - week0_min % 1440) + 690
        if 0 <= a < WEEK_MIN:
            ben.append(
                Incident(
                    "daily_peak",
                    [k for k in BY_KEY if k.startswith(LUNCH_SERVICE + "/")],
                    a,
                    a + 90,
                    2.5,
                    "service",
                    LUNCH_SERVICE,
                    benign=True,
                )
            )
    # weekend (the real calendar's Saturday 00:00 to Monday 00:00 UTC inside the week)
    for m in range(0, WEEK_MIN, 1440):
        day = (week0_min + m) // 1440
        if (day + 3) % 7 == 5:
            a = m - (week0_min % 1440)
            ben.append(
                Incident("weekend", list(BY_KEY), max(0, a), min(WEEK_MIN, a + 2880), 0.0, "app", "", benign=True)
            )
    return ben


def generate(seed: int, end_ns: int) -> Scenario:
    rng = np.random.default_rng(seed)
    week0_ns = end_ns - WEEK_MIN * MIN_NS
    week0_min = week0_ns // MIN_NS
    base = {s.key: _base_knobs(s, week0_min, WEEK_MIN) for s in SERIES}
    benign = _benign(rng, week0_min)
    for b in benign:
        if b.kind == "planned_release":
            _apply(b, base)
        elif b.kind == "traffic_shift":
            src, dst = b.series
            moved = base[src]["rate"][b.start :] * b.effect
            base[src]["rate"][b.start :] -= moved
            base[dst]["rate"][b.start :] += moved
    incidents, _ = _incidents(rng)
    knobs = {k: {n: a.copy() for n, a in v.items()} for k, v in base.items()}
    for inc in incidents:
        _apply(inc, knobs)
    calls: dict[str, Calls] = {}
    for src in SOURCES:
        calls.update(draw_source(src, knobs, rng, week0_ns))
    return Scenario(seed, end_ns, week0_ns, incidents, benign, calls, knobs, base)


# ---------------------------------------------------------------- window statistics (eligibility)

STAT_OF_KIND = {
    "latency_spike": "p95_latency",
    "latency_spike_small": "p95_latency",
    "latency_ramp": "p95_latency",
    "error_burst": "errors",
    "error_burst_small": "errors",
    "provider_outage": "errors",
    "volume_drop": "calls",
    "volume_drop_small": "calls",
    "ttft_spike": "p95_ttft",
    "ttft_spike_small": "p95_ttft",
    "output_shift": "mean_output",
    "output_shift_small": "mean_output",
    "cost_jump": "mean_input",
    "truncation_burst": "truncations",
}
RATE_STATS = {"errors", "calls", "truncations"}


def window_stat(calls: list[Calls], stat: str, a_ns: int, b_ns: int) -> float:
    """The incident window's statistic over the calls of the series it touches (pooled)."""
    sel = [(c, (c.t_ns >= a_ns) & (c.t_ns < b_ns)) for c in calls]
    if stat == "calls":
        return float(sum(int(m.sum()) for _, m in sel))
    if stat == "errors":
        return float(sum(int((c.err[m] > 0).sum()) for c, m in sel))
    if stat == "truncations":
        return float(sum(int((c.finish[m] == 1).sum()) for c, m in sel))
    if stat == "p95_latency":
        v = np.concatenate([c.dur_ms[m] for c, m in sel])
        return float(np.percentile(v, 95)) if len(v) else math.nan
    if stat == "p95_ttft":
        v = np.concatenate([c.ttft_s[m] for c, m in sel])
        v = v[~np.isnan(v)]
        return float(np.percentile(v, 95)) if len(v) else math.nan
    if stat == "mean_output":
        v = np.concatenate([c.out_tok[m & (c.err == 0)] for c, m in sel])
        return float(v.mean()) if len(v) else math.nan
    if stat == "mean_input":
        v = np.concatenate([c.in_tok[m] for c, m in sel])
        return float(v.mean()) if len(v) else math.nan
    raise ValueError(stat)
