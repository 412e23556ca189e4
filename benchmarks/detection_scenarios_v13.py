"""Judge 13's traffic: one seeded week of LLM call spans, written blind to the detector.

A stranger's product portfolio, not the earlier judges': a multi-tenant support bot (three big
customers in three time zones, one of which changes its clock mid-week), a code-review service on
reasoning models (20-120 s calls, minutes-long streams, reasoning tokens), a consumer search
product behind a semantic cache (40% of answers in ~50 ms), a document pipeline on Bedrock with an
unplanned 10x backfill, a young tutoring product growing 5-15% a day with a launch that doubles one
model, an agent service instrumented the OpenInference way (agent runs with tool spans between the
model calls, no gen_ai.* at all), very sparse services (0.2-1 calls/min) and 3-5 young series.

Four providers (openai, anthropic, gcp.gemini, aws.bedrock); span shapes:

- ``semconv``: current GenAI conventions (gen_ai.provider.name, gen_ai.usage.*,
  gen_ai.response.time_to_first_chunk on streams, error.type + status ERROR);
- ``older``: gen_ai.system and the older gen_ai.usage.prompt_tokens / completion_tokens;
- ``openlit``: gen_ai.system, gen_ai.request.is_stream, gen_ai.server.time_to_first_token;
- ``openinference``: openinference.span.kind LLM/EMBEDDING/RERANKER, llm.provider, llm.system,
  llm.model_name, llm.invocation_parameters (model, stream), llm.token_count.*, a
  "First Token Stream Event" event on streams, errors as status ERROR + an exception event
  (no error.type attribute); agent runs as AGENT root spans with TOOL spans between LLM spans.

No cost attribute on any span. Every incident and benign change is labelled (``Incident``,
``Benign``). ``week(seed, end)`` returns the series, incidents, benign changes and a generator of
OTLP ``ExportTraceServiceRequest`` batches; ``window_stat`` / ``base_redraws`` give the judge the
statistic of an incident's window and its spread under redrawn base traffic (eligibility).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

WEEK = 7 * 1440  # minutes

# ---------------------------------------------------------------- series


@dataclass
class Series:
    service: str
    model: str
    provider: str
    op: str  # chat | embeddings | rerank
    profile: str  # chat_stream | chat | reasoning_stream | reasoning | embed | rerank | cache_chat
    style: str  # semconv | older | openlit | openinference
    rate: float  # calls/min at the shape's peak (before growth / launches)
    shape: str  # office | consumer | flat | dev | evening
    tenants: tuple[tuple[str, float, float], ...] = ()  # (name, weight, utc offset hours)
    first: int = 0  # week minute of the first call (young series > 0)
    tz: float = 0.0
    err: float = 0.008
    stream: float = 1.0  # share of streamed calls (chat profiles)
    in_med: float = 900.0
    out_med: float = 220.0
    agent: bool = False  # OpenInference agent runs (tool spans between model calls)
    growth: float = 0.0  # per-day growth factor (0.1 = +10%/day)

    @property
    def key(self) -> str:
        return f"{self.service}|{self.model}"


@dataclass
class Incident:
    kind: str
    series: list[str]  # series keys touched
    start: int  # week minute
    end: int  # week minute (permanent: WEEK)
    size: float  # nominal factor (latency/ttft/output x, error share, volume kept share, extra x)
    scope: str = "series"  # series | service | provider
    permanent: bool = False
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def label(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "series": self.series,
            "start": self.start,
            "end": self.end,
            "size": self.size,
            "scope": self.scope,
            "permanent": self.permanent,
            "note": self.note,
        }


@dataclass
class Benign:
    kind: str  # release | daily_peak | weekend | growth | launch | dst
    series: list[str]
    start: int
    end: int
    note: str = ""


PROVIDER_ERRORS = {
    "openai": ("openai.InternalServerError", "openai.APITimeoutError"),
    "anthropic": ("anthropic.InternalServerError", "anthropic.APIStatusError"),
    "gcp.gemini": ("google.genai.errors.ServerError", "httpx.ReadTimeout"),
    "aws.bedrock": ("botocore.exceptions.ClientError", "botocore.exceptions.ReadTimeoutError"),
}
RATE_LIMIT_ERROR = {
    "openai": "openai.RateLimitError",
    "anthropic": "anthropic.RateLimitError",
    "gcp.gemini": "google.genai.errors.ClientError",
    "aws.bedrock": "botocore.exceptions.ClientError",
}


def portfolio(rng: np.random.Generator) -> list[Series]:
    """~20 series over four providers; rates jittered per seed."""
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    tenants = (("acme", 0.45, -5.0), ("globex", 0.35, 1.0), ("initech", 0.20, 8.0))
    s = [
        Series(
            "support-bot",
            "gpt-4.1-mini",
            "openai",
            "chat",
            "chat_stream",
            "semconv",
            j(46, 54),
            "tenants",
            tenants=tenants,
            err=0.004,
            in_med=1400,
            out_med=180,
        ),
        Series(
            "support-bot",
            "text-embedding-3-small",
            "openai",
            "embeddings",
            "embed",
            "semconv",
            j(5, 7),
            "tenants",
            tenants=tenants,
            err=0.001,
            in_med=60,
            out_med=0,
        ),
        Series(
            "support-bot",
            "cohere.rerank-v3-5:0",
            "aws.bedrock",
            "rerank",
            "rerank",
            "semconv",
            j(4, 6),
            "tenants",
            tenants=tenants,
            err=0.002,
            in_med=2500,
            out_med=0,
        ),
        Series(
            "support-bot",
            "gpt-5-mini",
            "openai",
            "chat",
            "chat_stream",
            "semconv",
            j(3.5, 5),
            "tenants",
            tenants=tenants,
            first=WEEK - int(j(34, 40) * 60),
            err=0.006,
            in_med=1400,
            out_med=260,
        ),
        Series(
            "code-review",
            "claude-opus-4-1",
            "anthropic",
            "chat",
            "reasoning_stream",
            "semconv",
            j(1.2, 1.8),
            "dev",
            err=0.01,
            in_med=9000,
            out_med=1400,
        ),
        Series(
            "code-review",
            "o3",
            "openai",
            "chat",
            "reasoning",
            "semconv",
            j(0.4, 0.7),
            "dev",
            err=0.01,
            stream=0.0,
            in_med=7000,
            out_med=900,
        ),
        Series(
            "search-answers",
            "gemini-2.5-flash",
            "gcp.gemini",
            "chat",
            "cache_chat",
            "semconv",
            j(14, 18),
            "consumer",
            tz=-6.0,
            err=0.006,
            stream=0.7,
            in_med=2200,
            out_med=300,
        ),
        Series(
            "search-answers",
            "gemini-embedding-001",
            "gcp.gemini",
            "embeddings",
            "embed",
            "semconv",
            j(4, 5),
            "consumer",
            tz=-6.0,
            err=0.002,
            in_med=25,
            out_med=0,
        ),
        Series(
            "doc-extract",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "aws.bedrock",
            "chat",
            "chat",
            "older",
            j(3.5, 5),
            "flat",
            err=0.012,
            stream=0.0,
            in_med=5000,
            out_med=700,
        ),
        Series(
            "doc-extract",
            "amazon.titan-embed-text-v2:0",
            "aws.bedrock",
            "embeddings",
            "embed",
            "older",
            j(1.5, 2),
            "flat",
            err=0.003,
            in_med=700,
            out_med=0,
        ),
        Series(
            "tutor",
            "gpt-4o-mini",
            "openai",
            "chat",
            "chat_stream",
            "semconv",
            j(5, 7),
            "evening",
            tz=-5.0,
            err=0.005,
            in_med=1100,
            out_med=350,
            first=WEEK - 6 * 1440 - int(j(0, 600)),
            growth=j(0.05, 0.15),
        ),
        Series(
            "tutor",
            "gpt-4o",
            "openai",
            "chat",
            "chat_stream",
            "semconv",
            j(3, 4),
            "evening",
            tz=-5.0,
            err=0.006,
            in_med=1500,
            out_med=450,
            growth=j(0.05, 0.15),
        ),
        Series(
            "agent-ops",
            "claude-sonnet-4-5",
            "anthropic",
            "chat",
            "chat_stream",
            "openinference",
            j(4, 6),
            "office",
            tz=1.0,
            err=0.008,
            in_med=6000,
            out_med=350,
            agent=True,
            stream=0.5,
        ),
        Series(
            "agent-ops",
            "gpt-4.1",
            "openai",
            "chat",
            "chat",
            "openinference",
            j(2, 3),
            "office",
            tz=1.0,
            err=0.006,
            stream=0.0,
            in_med=5000,
            out_med=300,
            agent=True,
        ),
        Series(
            "agent-ops",
            "claude-haiku-4-5",
            "anthropic",
            "chat",
            "chat_stream",
            "openinference",
            j(3, 4.5),
            "flat",
            tz=1.0,
            first=WEEK - int(j(20, 24) * 60),
            err=0.008,
            in_med=3000,
            out_med=200,
            agent=True,
            stream=0.5,
        ),
        Series(
            "legal-summarizer",
            "mistral.mistral-large-2407-v1:0",
            "aws.bedrock",
            "chat",
            "chat_stream",
            "openlit",
            j(0.35, 0.5),
            "office",
            tz=-8.0,
            err=0.01,
            in_med=12000,
            out_med=900,
        ),
        Series(
            "hr-helpdesk",
            "gpt-4o-mini",
            "openai",
            "chat",
            "chat",
            "older",
            j(0.8, 1.1),
            "office",
            tz=2.0,
            err=0.005,
            stream=0.0,
            in_med=800,
            out_med=250,
        ),
        Series(
            "voice-notes",
            "gemini-2.5-flash-lite",
            "gcp.gemini",
            "chat",
            "chat_stream",
            "semconv",
            j(5, 7),
            "consumer",
            tz=0.0,
            first=WEEK - int(j(28, 32) * 60),
            err=0.007,
            in_med=3000,
            out_med=400,
        ),
        Series(
            "translate",
            "gemini-2.5-flash",
            "gcp.gemini",
            "chat",
            "chat_stream",
            "openlit",
            j(1.5, 2.5),
            "flat",
            first=WEEK - int(j(44, 50) * 60),
            err=0.006,
            in_med=600,
            out_med=650,
        ),
        Series(
            "code-review",
            "claude-sonnet-4-5",
            "anthropic",
            "chat",
            "chat_stream",
            "semconv",
            j(0.6, 0.9),
            "dev",
            err=0.01,
            in_med=6000,
            out_med=500,
        ),
    ]
    return s


# ---------------------------------------------------------------- clock and shapes


class Clock:
    """Week minutes <-> real UTC time; the week ends at ``end`` (a whole minute)."""

    def __init__(self, end: datetime):
        self.end = end
        self.t0 = end - timedelta(minutes=WEEK)
        self.t0_min = int(self.t0.timestamp()) // 60

    def local(self, m: np.ndarray, tz: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hour of day, weekday Mon=0) at utc offset ``tz`` hours."""
        u = self.t0_min + m + np.asarray(tz) * 60.0
        hour = (u % 1440) / 60.0
        weekday = ((u // 1440) + 3) % 7
        return hour, weekday

    def iso(self, m: float) -> str:
        return (self.t0 + timedelta(minutes=float(m))).isoformat()


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def office(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    day = _sig((hour - 8.3) * 2.5) * _sig((18.2 - hour) * 1.7) * (1 - 0.18 * np.exp(-(((hour - 12.6) / 0.6) ** 2)))
    return (0.05 + 0.95 * day) * np.where(weekday >= 5, 0.12, 1.0)


def consumer(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    v = 0.18 + 0.55 * np.exp(-(((hour - 20.8) / 2.6) ** 2)) + 0.3 * np.exp(-(((hour - 12.5) / 2.2) ** 2))
    v = v + 0.2 * _sig((hour - 7.0) * 1.5) * _sig((23.5 - hour) * 1.5)
    return v * np.where(weekday >= 5, 1.2, 1.0) / 1.1


def evening(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:  # homework: after school, Sunday evening
    v = 0.04 + 0.96 * np.exp(-(((hour - 19.5) / 2.4) ** 2)) + 0.25 * np.exp(-(((hour - 15.5) / 1.5) ** 2))
    return v * np.where(weekday == 5, 0.45, np.where(weekday == 6, 1.15, 1.0)) / 1.05


def flat(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    return 0.85 + 0.15 * np.sin((hour - 9) / 24 * 2 * math.pi)


def dev(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    return office(hour, weekday) * np.where(weekday >= 5, 0.35, 1.0)


SHAPES = {"office": office, "consumer": consumer, "evening": evening, "flat": flat, "dev": dev}


# ---------------------------------------------------------------- one seed's week


class Week:
    """Everything about one seed: series, labels, and the call draws behind the spans."""

    def __init__(self, seed: int, end: datetime):
        self.seed = seed
        self.clock = Clock(end)
        rng = np.random.default_rng([13, seed])
        self.series = portfolio(rng)
        self.by_key = {s.key: s for s in self.series}
        # acme's clock moves one hour (UTC-5 -> UTC-4) at 02:00 local (07:00 UTC) on day 2 or 3 of the week
        day = int(rng.uniform(2.3, 3.6) * 1440)
        self.dst_at = day + (420 - (self.clock.t0_min + day) % 1440) % 1440
        self.launch_at = int(rng.uniform(3.2, 4.8) * 1440)  # tutor/gpt-4o doubles at a launch
        self.release_at = int(rng.uniform(1.5, 5.5) * 1440)  # support-bot 2.3.1 -> 2.4.0 (modest change)
        self.agent_release_at = 0  # set by the output_shift incident (agent-ops 1.8.0 -> 1.9.0)
        self.incidents: list[Incident] = []
        self.benign: list[Benign] = []
        self._place(rng)
        self._label_benign()

    # ---- rates
    def base_rate(self, s: Series, m: np.ndarray) -> np.ndarray:
        """Calls/min of ``s`` at week minutes ``m`` without incidents (benign changes included)."""
        if s.tenants:
            lam = np.zeros_like(m, dtype=float)
            for name, _w, _tz in s.tenants:
                lam += self.tenant_rate(s, name, m)
        else:
            hour, wd = self.clock.local(m, s.tz)
            lam = s.rate * SHAPES[s.shape](hour, wd)
        if s.growth:
            lam = lam * np.exp(math.log1p(s.growth) * (m - WEEK) / 1440.0)
        if s.key == "tutor|gpt-4o":
            lam = lam * np.where(m >= self.launch_at, 2.0, 1.0)
        return np.where(m >= s.first, lam, 0.0)

    def tenant_rate(self, s: Series, name: str, m: np.ndarray) -> np.ndarray:
        w, tz = next((w, tz) for n, w, tz in s.tenants if n == name)
        tzs = np.where(m >= self.dst_at, tz + 1.0, tz) if name == "acme" else tz
        hour, wd = self.clock.local(m, tzs)
        return s.rate * w / 0.85 * office(hour, wd)

    def rate(self, s: Series, m: np.ndarray, incidents: list[Incident]) -> np.ndarray:
        lam = self.base_rate(s, m)
        for inc in incidents:
            if s.key not in inc.series:
                continue
            inside = (m >= inc.start) & (m < inc.end)
            if inc.kind in ("volume_drop", "volume_drop_small"):
                lam = np.where(inside, lam * inc.size, lam)
            elif inc.kind == "tenant_drop":
                lam = np.where(inside, lam - self.tenant_rate(s, inc.params["tenant"], m), lam)
            elif inc.kind == "volume_spike":
                lam = np.where(inside, lam * inc.size, lam)
        return np.maximum(lam, 0.0)

    # ---- calls
    def draw(
        self, s: Series, rng: np.random.Generator, lo: int, hi: int, incidents: list[Incident]
    ) -> dict[str, np.ndarray]:
        """Every call of ``s`` in week minutes [lo, hi): arrays of one row per call."""
        m = np.arange(lo, hi, dtype=float)
        lam = self.rate(s, m, incidents)
        if s.agent:  # agent runs: Poisson arrivals of runs, 1-5 model calls each, spaced by tools
            runs = rng.poisson(lam / 2.4)
            t_run = np.repeat(m, runs) + rng.random(int(runs.sum()))
            steps = np.minimum(rng.geometric(0.42, t_run.size), 5)
            run_id = np.repeat(np.arange(t_run.size), steps)
            step = np.arange(run_id.size) - np.repeat(np.cumsum(steps) - steps, steps)
            t = np.repeat(t_run, steps) + step * rng.uniform(0.05, 0.35, run_id.size)
        else:
            n = rng.poisson(lam)
            t = np.repeat(m, n) + rng.random(int(n.sum()))
            run_id = np.arange(t.size)
            step = np.zeros(t.size, dtype=int)
        c = self._calls(s, rng, t)
        c["run"], c["step"] = run_id, step
        for inc in incidents:
            if s.key in inc.series:
                self._apply(s, inc, rng, c)
        self._failed(c, c["err"] & (c["etype"] != 2), rng)
        if any(inc.kind == "retry_storm" and s.key in inc.series for inc in incidents):
            c = self._retries(s, rng, c, [i for i in incidents if i.kind == "retry_storm" and s.key in i.series])
        keep = (c["t"] >= lo) & (c["t"] < hi)
        return {k: v[keep] for k, v in c.items()}

    def _calls(self, s: Series, rng: np.random.Generator, t: np.ndarray) -> dict[str, np.ndarray]:
        n = t.size
        ln = lambda med, sig: med * np.exp(sig * rng.standard_normal(n))  # noqa: E731
        inp = np.maximum(1, ln(s.in_med, 0.55)).astype(np.int64)
        out = np.maximum(1, ln(max(s.out_med, 1), 0.6)).astype(np.int64) if s.out_med else np.zeros(n, np.int64)
        if self.release_at and s.key == "support-bot|gpt-4.1-mini":
            out = np.where(t >= self.release_at, (out * 1.12).astype(np.int64), out)
        cache = np.zeros(n, np.int64)
        reasoning = np.zeros(n, np.int64)
        stream = rng.random(n) < s.stream if s.op == "chat" else np.zeros(n, bool)
        ttft = np.full(n, np.nan)
        p = s.profile
        if p in ("embed", "rerank"):
            dur = ln(55.0 if p == "embed" else 140.0, 0.45) + inp * (0.01 if p == "embed" else 0.02)
        elif p.startswith("reasoning"):
            reasoning = np.maximum(200, ln(3500, 0.8)).astype(np.int64)
            out = out + reasoning
            think = reasoning / ln(70, 0.25) * 1000.0
            first = think + ln(900, 0.4)
            dur = first + (out - reasoning) / ln(55, 0.3) * 1000.0
            ttft = np.where(stream, first, np.nan)
        else:
            first = ln(420.0 if s.provider != "anthropic" else 650.0, 0.45) + inp * 0.04
            dur = first + out / ln(85.0, 0.3) * 1000.0
            ttft = np.where(stream, first, np.nan)
            if p == "cache_chat":  # semantic cache answers ~40% at ~50 ms (cached prompt tokens billed as read)
                hit = rng.random(n) < 0.4
                dur = np.where(hit, ln(48.0, 0.35), dur)
                ttft = np.where(hit & stream, dur * 0.7, ttft)
                cache = np.where(hit, inp, (inp * rng.uniform(0.0, 0.3, n)).astype(np.int64))
            elif s.provider in ("openai", "anthropic"):
                cache = (inp * rng.uniform(0.0, 0.6, n) * (rng.random(n) < 0.5)).astype(np.int64)
        if self.release_at and s.key == "support-bot|gpt-4.1-mini":
            dur = np.where(t >= self.release_at, dur * 0.92, dur)
        err = rng.random(n) < s.err
        if s.service == "doc-extract":  # rare client timeouts at 60 s
            timeout = rng.random(n) < 0.0015
            dur = np.where(timeout, 60000.0 + rng.random(n) * 200, dur)
            err = err | timeout
        etype = np.where(err, 0, -1)
        return {
            "t": t,
            "dur": dur,
            "ttft": ttft,
            "inp": inp,
            "out": out,
            "cache": cache,
            "reasoning": reasoning,
            "stream": stream,
            "err": err,
            "etype": etype,
        }

    def _apply(self, s: Series, inc: Incident, rng: np.random.Generator, c: dict[str, np.ndarray]) -> None:
        t = c["t"]
        inside = (t >= inc.start) & (t < inc.end)
        n = t.size
        k = inc.kind
        if k in ("latency_spike", "latency_small"):
            if inc.params.get("mode") == "tail":  # a quarter of the calls hang on a slow backend
                slow = inside & (rng.random(n) < 0.25)
                c["dur"] = np.where(slow, c["dur"] * inc.size * 1.35, c["dur"])
            else:
                c["dur"] = np.where(inside, c["dur"] * inc.size * np.exp(0.15 * rng.standard_normal(n)), c["dur"])
                c["ttft"] = np.where(inside, c["ttft"] * inc.size, c["ttft"])
        elif k == "slow_ramp":  # ramps from x1 to x size over params["ramp"] minutes, then holds
            f = np.clip((t - inc.start) / inc.params["ramp"], 0, 1)
            mult = np.where(inside, 1 + (inc.size - 1) * f, 1.0)
            c["dur"] = c["dur"] * mult
            c["ttft"] = c["ttft"] * mult
        elif k in ("ttft_spike", "ttft_small"):
            extra = np.where(inside, c["ttft"] * (inc.size - 1), 0.0)
            c["ttft"] = np.where(inside, c["ttft"] * inc.size, c["ttft"])
            c["dur"] = c["dur"] + np.nan_to_num(extra)
        elif k in ("error_burst", "error_small", "rate_limit", "retry_storm"):
            hit = inside & (rng.random(n) < inc.size)
            c["err"] = c["err"] | hit
            c["etype"] = np.where(hit, 2 if k == "rate_limit" else 1, c["etype"])
            if k == "rate_limit":
                c["dur"] = np.where(hit, 25.0 + 40 * rng.random(n), c["dur"])
        elif k in ("output_shift", "output_small"):
            after = t >= inc.start
            c["out"] = np.where(after, (c["out"] * inc.size).astype(np.int64), c["out"])
            gen = (c["out"] - c["reasoning"]) * (inc.size - 1) / inc.size / 85.0 * 1000.0
            c["dur"] = np.where(after, c["dur"] + gen, c["dur"])
        elif k == "cache_failure":  # the semantic cache answers (almost) nothing; backend p95 up
            was_hit = c["dur"] < 120.0
            miss = inside & was_hit & (rng.random(n) < inc.size)
            first = 420.0 * np.exp(0.45 * rng.standard_normal(n)) + c["inp"] * 0.04
            full = first + c["out"] / (85.0 * np.exp(0.3 * rng.standard_normal(n))) * 1000.0
            c["dur"] = np.where(miss, full, c["dur"])
            c["ttft"] = np.where(miss & c["stream"], first, c["ttft"])
            c["cache"] = np.where(miss, 0, c["cache"])
            slow = inside & ~was_hit
            c["dur"] = np.where(slow, c["dur"] * 1.4, c["dur"])
            c["ttft"] = np.where(slow, c["ttft"] * 1.4, c["ttft"])

    @staticmethod
    def _failed(c: dict[str, np.ndarray], errs: np.ndarray, rng: np.random.Generator) -> None:
        """A failed call: no usage, no first token, short unless it timed out."""
        quick = errs & (c["dur"] < 59000)
        c["dur"] = np.where(quick, np.minimum(c["dur"], 150 + 900 * rng.random(c["t"].size)), c["dur"])
        c["ttft"] = np.where(c["err"], np.nan, c["ttft"])
        for col in ("out", "inp", "cache", "reasoning"):
            c[col] = np.where(c["err"], 0, c[col])

    def _retries(
        self, s: Series, rng: np.random.Generator, c: dict[str, np.ndarray], storms: list[Incident]
    ) -> dict[str, np.ndarray]:
        """Clients retry failed calls inside a storm (up to 3 retries, 1-8 s backoff): calls go up."""
        parts = [c]
        cur = c
        for attempt in range(3):
            t = cur["t"]
            inside = np.zeros(t.size, bool)
            for inc in storms:
                inside |= (t >= inc.start) & (t < inc.end)
            again = cur["err"] & inside
            if not again.any():
                break
            idx = np.flatnonzero(again)
            nxt = {k: v[idx].copy() for k, v in cur.items()}
            nxt["t"] = nxt["t"] + (2**attempt) * rng.uniform(1, 2, idx.size) / 60.0
            nxt["step"] = nxt["step"] + 100 * (attempt + 1)
            fresh = self._calls(s, rng, nxt["t"])
            for col in ("dur", "ttft", "inp", "out", "cache", "reasoning", "stream"):
                nxt[col] = fresh[col]
            still = rng.random(idx.size) < storms[0].size
            nxt["err"] = still | fresh["err"]
            nxt["etype"] = np.where(still, 1, fresh["etype"])
            self._failed(nxt, nxt["err"], rng)
            parts.append(nxt)
            cur = nxt
        return {k: np.concatenate([p[k] for p in parts]) for k in c}

    # ---- incidents
    def _place(self, rng: np.random.Generator) -> None:
        u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
        ri = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        K = lambda svc, model: f"{svc}|{model}"  # noqa: E731
        busy = K("support-bot", "gpt-4.1-mini")
        add = self.incidents.append

        def when(s_key: str, dur: int, after: int = 0, night: bool | None = None, weekend: bool | None = None) -> int:
            s = self.by_key[s_key]
            lo = max(s.first + 12 * 60 + 10, after, 600)
            for _ in range(400):
                st = ri(lo, WEEK - dur - 45)
                hour, wd = self.clock.local(np.array([st + dur / 2]), s.tz)
                if night is not None and night != bool(hour[0] < 6 or hour[0] >= 22):
                    continue
                if weekend is not None and weekend != bool(wd[0] >= 5):
                    continue
                if any(abs(st - i.start) < 90 and s_key in i.series for i in self.incidents):
                    continue
                return st
            return ri(lo, WEEK - dur - 45)

        # the five kinds at its sizes
        d = ri(15, 60)
        st = when(busy, d, night=False)
        add(Incident("latency_spike", [busy], st, st + d, round(u(3, 8), 2), params={"mode": "all"}))
        d2 = ri(10, 40)  # overlapping error burst on the same busy series
        st2 = st + ri(-d2 + 5, d - 5)
        add(Incident("error_burst", [busy], st2, st2 + d2, round(u(0.25, 0.6), 2), note="overlaps a latency spike"))
        k = K("legal-summarizer", "mistral.mistral-large-2407-v1:0")
        d = ri(30, 60)
        st = when(k, d, night=False, weekend=False)
        add(Incident("latency_spike", [k], st, st + d, round(u(3, 8), 2), params={"mode": "tail"}, note="sparse"))
        k = K("code-review", "o3")
        d = ri(30, 60)
        st = when(k, d, weekend=False, night=False)
        add(
            Incident(
                "latency_spike", [k], st, st + d, round(u(3, 8), 2), params={"mode": "all"}, note="sparse reasoning"
            )
        )
        k = K("search-answers", "gemini-2.5-flash")
        d = ri(10, 40)
        st = when(k, d)
        add(Incident("error_burst", [k], st, st + d, round(u(0.25, 0.6), 2)))
        gem = [s.key for s in self.series if s.provider == "gcp.gemini"]
        d = ri(10, 25)
        st = when(K("voice-notes", "gemini-2.5-flash-lite"), d, night=True)
        add(
            Incident(
                "error_burst",
                gem,
                st,
                st + d,
                round(u(0.25, 0.45), 2),
                scope="provider",
                note="gcp.gemini outage at night, every gemini series",
            )
        )
        k = K("doc-extract", "anthropic.claude-3-5-haiku-20241022-v1:0")
        d = ri(30, 90)
        st = when(k, d)
        add(Incident("volume_drop", [k], st, st + d, 0.15))
        k = K("hr-helpdesk", "gpt-4o-mini")
        d = ri(30, 90)
        st = when(k, d, night=False, weekend=False)
        add(Incident("volume_drop", [k], st, st + d, 0.15, note="sparse"))
        k = K("code-review", "claude-opus-4-1")
        d = ri(15, 45)
        st = when(k, d, night=False, weekend=False)
        add(Incident("ttft_spike", [k], st, st + d, round(u(4, 10), 2), note="reasoning streams"))
        k = K("tutor", "gpt-4o-mini")
        d = ri(15, 45)
        st = when(k, d, night=False, after=3 * 1440)
        add(Incident("ttft_spike", [k], st, st + d, round(u(4, 10), 2)))
        k = K("agent-ops", "gpt-4.1")
        st = when(k, 360, weekend=False, night=False)
        self.agent_release_at = st
        add(
            Incident(
                "output_shift",
                [k],
                st,
                WEEK,
                round(u(1.8, 3), 2),
                permanent=True,
                note="agent-ops 1.9.0: new prompt, longer answers",
            )
        )
        # beyond the five
        sb = [s.key for s in self.series if s.service == "support-bot"]
        d = ri(30, 60)
        tenant = ["acme", "globex"][ri(0, 1)]
        st = when(busy, d, night=False, weekend=False)
        for _ in range(50):  # the tenant must be at work then
            if (
                self.tenant_rate(self.by_key[busy], tenant, np.array([st + d / 2.0]))[0]
                > 0.3 * self.by_key[busy].rate * 0.45
            ):
                break
            st = when(busy, d, night=False, weekend=False)
        add(
            Incident(
                "tenant_drop",
                sb,
                st,
                st + d,
                0.0,
                scope="service",
                params={"tenant": tenant},
                note=f"tenant {tenant}'s traffic disappears (its SSO broke)",
            )
        )
        k = K("search-answers", "gemini-2.5-flash")
        d = ri(20, 60)
        st = when(k, d, night=False)
        add(Incident("cache_failure", [k], st, st + d, 0.95, note="semantic cache down: hits 40% -> ~2%"))
        k = K("agent-ops", "claude-sonnet-4-5")
        d = ri(15, 30)
        st = when(k, d, night=False, weekend=False)
        add(Incident("retry_storm", [k], st, st + d, round(u(0.3, 0.5), 2), note="errors retried: calls up"))
        k = K("tutor", "gpt-4o")
        d = ri(10, 30)
        st = when(k, d, night=False, after=self.launch_at + 60)
        add(Incident("rate_limit", [k], st, st + d, round(u(0.4, 0.7), 2), note="429s after the launch"))
        k = K("doc-extract", "anthropic.claude-3-5-haiku-20241022-v1:0")
        ramp = ri(120, 180)
        st = when(k, ramp + 60)
        add(
            Incident(
                "slow_ramp",
                [k],
                st,
                st + ramp + 60,
                round(u(3, 4), 2),
                params={"ramp": ramp},
                note="a slowly filling queue; judged on the last hour",
            )
        )
        d = 120
        st = when(k, d, weekend=True)
        add(
            Incident(
                "volume_spike",
                [k, K("doc-extract", "amazon.titan-embed-text-v2:0")],
                st,
                st + d,
                10.0,
                scope="service",
                note="unplanned backfill job: 10x for 2 h (labelled a real incident)",
            )
        )
        # young series (>= 12 h after their first span)
        k = K("support-bot", "gpt-5-mini")
        d = ri(15, 45)
        st = when(k, d, night=False)
        add(Incident("latency_spike", [k], st, st + d, round(u(3, 8), 2), params={"mode": "all"}, note="young"))
        k = K("voice-notes", "gemini-2.5-flash-lite")
        d = ri(10, 40)
        st = when(k, d, night=False)
        add(Incident("error_burst", [k], st, st + d, round(u(0.25, 0.6), 2), note="young"))
        k = K("translate", "gemini-2.5-flash")
        d = ri(30, 90)
        st = when(k, d)
        add(Incident("volume_drop", [k], st, st + d, 0.15, note="young"))
        k = K("agent-ops", "claude-haiku-4-5")
        d = ri(15, 45)
        st = when(k, d)
        add(Incident("ttft_spike", [k], st, st + d, round(u(4, 10), 2), note="young"))
        k = K("translate", "gemini-2.5-flash")
        st = when(k, 360)
        add(Incident("output_shift", [k], st, WEEK, round(u(1.8, 3), 2), permanent=True, note="young; prompt change"))
        # below the sizes
        k = K("search-answers", "gemini-2.5-flash")
        d = ri(20, 40)
        st = when(k, d)
        add(
            Incident("latency_small", [k], st, st + d, round(u(1.4, 1.8), 2), params={"mode": "all"}, note="below size")
        )
        k = K("code-review", "claude-sonnet-4-5")
        d = ri(15, 40)
        st = when(k, d, night=False, weekend=False)
        add(Incident("error_small", [k], st, st + d, round(u(0.06, 0.12), 2), note="below size, sparse"))
        k = K("tutor", "gpt-4o-mini")
        d = ri(30, 60)
        st = when(k, d, night=False)
        add(Incident("volume_drop_small", [k], st, st + d, round(u(0.5, 0.65), 2), note="below size"))
        k = busy
        d = ri(15, 30)
        st = when(k, d, night=False, weekend=False)
        add(Incident("ttft_small", [k], st, st + d, round(u(1.5, 2.2), 2), note="below size"))

    def _label_benign(self) -> None:
        sb = [s.key for s in self.series if s.service == "support-bot"]
        add = self.benign.append
        add(
            Benign(
                "release",
                ["support-bot|gpt-4.1-mini"],
                self.release_at,
                self.release_at + 360,
                "support-bot 2.4.0: latency -8%, output +12%",
            )
        )
        # where acme's one-hour shift shows: its weekday morning and evening ramps after the change
        m = np.arange(WEEK, dtype=float)
        hour, wd = self.clock.local(m, np.where(m >= self.dst_at, -4.0, -5.0))
        ramps = (m >= self.dst_at) & (wd < 5) & (((hour >= 6) & (hour < 10)) | ((hour >= 16) & (hour < 20)))
        for a, b in _runs(ramps):
            add(Benign("dst", sb, a, b, "tenant acme's clock moved one hour: its ramps come an hour earlier"))
        add(Benign("launch", ["tutor|gpt-4o"], self.launch_at, self.launch_at + 360, "tutor gpt-4o launch: x2"))
        add(Benign("growth", ["tutor|gpt-4o-mini", "tutor|gpt-4o"], 0, WEEK, "tutor grows 5-15%/day"))
        for s in self.series:
            if s.first:
                add(Benign("young_start", [s.key], s.first, s.first + 24 * 60, "a new series' first day"))
        m = np.arange(WEEK, dtype=float)
        for s in self.series:
            lam = self.base_rate(s, m)
            peak = lam > 0.8 * (lam.max() + 1e-9) if not s.growth else np.zeros(WEEK, bool)
            for a, b in _runs(peak):
                add(Benign("daily_peak", [s.key], a, b))
            for a, b in _runs(self._weekend(s, m)):
                add(Benign("weekend", [s.key], a, b, "Saturday, Sunday and the Monday-morning return (local)"))

    def _weekend(self, s: Series, m: np.ndarray) -> np.ndarray:
        """Local weekend of the series (of any of its tenants), up to 10:00 on Monday."""
        zones = [np.where(m >= self.dst_at, tz + 1.0, tz) if n == "acme" else tz for n, _w, tz in s.tenants] or [s.tz]
        mask = np.zeros(m.size, bool)
        for tz in zones:
            hour, wd = self.clock.local(m, tz)
            mask |= (wd >= 5) | ((wd == 0) & (hour < 10))
        return mask

    # ---- judge helpers
    def versions(self, s: Series, t: np.ndarray) -> np.ndarray:
        if s.service == "support-bot":
            return np.where(t >= self.release_at, "2.4.0", "2.3.1")
        if s.service == "agent-ops":
            return np.where(t >= self.agent_release_at, "1.9.0", "1.8.0")
        if s.service == "translate":
            shift = next(
                i.start
                for i in self.incidents
                if i.kind == "output_shift" and i.series == ["translate|gemini-2.5-flash"]
            )
            return np.where(t >= shift, "0.7.0", "0.6.2")
        return np.full(
            t.size,
            {
                "code-review": "5.2.0",
                "search-answers": "2026.11.3",
                "doc-extract": "1.14.2",
                "tutor": "0.9.1",
                "legal-summarizer": "3.0.0",
                "hr-helpdesk": "1.1.0",
                "voice-notes": "0.2.0",
            }[s.service],
        )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


# ---------------------------------------------------------------- window statistics (eligibility)

FAMILY = {
    "latency_spike": "latency",
    "latency_small": "latency",
    "slow_ramp": "latency",
    "cache_failure": "latency",
    "ttft_spike": "ttft",
    "ttft_small": "ttft",
    "error_burst": "errors",
    "error_small": "errors",
    "rate_limit": "errors",
    "retry_storm": "errors",
    "volume_drop": "calls",
    "volume_drop_small": "calls",
    "tenant_drop": "calls",
    "volume_spike": "calls",
    "output_shift": "tokens",
    "output_small": "tokens",
}


def stat_window(inc: Incident) -> tuple[int, int]:
    if inc.permanent:
        return inc.start, inc.start + 120
    if inc.kind == "slow_ramp":
        return inc.end - 60, inc.end
    return inc.start, inc.end


def window_stat(fam: str, calls: list[dict[str, np.ndarray]]) -> tuple[float, float]:
    """(statistic, events) of a window's calls: p95 latency / p95 TTFT / error share / count / mean output."""
    c = {k: np.concatenate([x[k] for x in calls]) for k in ("dur", "ttft", "err", "out", "reasoning")}
    n = c["dur"].size
    if fam == "calls":
        return float(n), float(n)
    if fam == "errors":
        return (float(c["err"].mean()) if n else 0.0), float(c["err"].sum())
    if fam == "latency":
        return (float(np.percentile(c["dur"], 95)) if n else float("nan")), float(n)
    if fam == "ttft":
        v = c["ttft"][~np.isnan(c["ttft"])]
        return (float(np.percentile(v, 95)) if v.size else float("nan")), float(v.size)
    ok = ~c["err"]
    return (float(c["out"][ok].mean()) if ok.any() else float("nan")), float(ok.sum())


def eligibility(week: Week, inc: Incident, actual: list[dict[str, np.ndarray]], redraws: int = 30) -> dict[str, Any]:
    """The incident's window statistic against ``redraws`` redraws of the same window's base traffic."""
    fam = FAMILY[inc.kind]
    lo, hi = stat_window(inc)
    got, events = window_stat(fam, [{k: v[(a["t"] >= lo) & (a["t"] < hi)] for k, v in a.items()} for a in actual])
    base = []
    base_events = []
    for r in range(redraws):
        rng = np.random.default_rng([1313, week.seed, r, lo])
        draws = [week.draw(week.by_key[k], rng, lo, hi, []) for k in inc.series]
        b, e = window_stat(fam, draws)
        base.append(b)
        base_events.append(e)
    base_a = np.array(base, dtype=float)
    base_a = base_a[~np.isnan(base_a)]
    mean = float(base_a.mean()) if base_a.size else float("nan")
    sd = float(base_a.std(ddof=1)) if base_a.size > 2 else float("nan")
    if math.isnan(got) or math.isnan(mean):  # no calls in the window (or never any): nothing to see
        z = 0.0
    else:
        z = abs(got - mean) / sd if sd > 0 else (float("inf") if got != mean else 0.0)
    if fam == "calls":
        extra = abs(got - mean)
    elif fam == "errors":
        extra = events - float(np.mean(base_events)) * 1.0
    else:
        extra = float("nan")
    effect = got / mean if mean else float("nan")
    long_enough = (inc.end - inc.start) >= 10
    eligible = bool(long_enough and z >= 3 and (fam not in ("calls", "errors") or extra >= 10))
    return {
        "stat": got,
        "base_mean": mean,
        "base_sd": sd,
        "z": round(float(z), 2),
        "effect": round(float(effect), 3),
        "extra": round(float(extra), 1),
        "eligible": eligible,
    }


# ---------------------------------------------------------------- spans


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int | np.integer):
        return KeyValue(key=key, value=AnyValue(int_value=int(value)))
    if isinstance(value, float | np.floating):
        return KeyValue(key=key, value=AnyValue(double_value=float(value)))
    if isinstance(value, list):
        return KeyValue(
            key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))
        )
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


class SpanWriter:
    """Turns one series' call arrays into OTLP spans in the series' instrumentation style."""

    def __init__(self, week: Week, rng: np.random.Generator):
        self.week = week
        self.rng = rng
        self.t0_ns = int(week.clock.t0.timestamp()) * 10**9

    def spans(self, s: Series, c: dict[str, np.ndarray]) -> list[tuple[int, str, Any]]:
        """[(start ns, service version, Span)] for the calls, plus agent/tool spans for agent series."""
        from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

        n = c["t"].size
        rng = self.rng
        start = self.t0_ns + (c["t"] * 60e9).astype(np.int64)
        dur_ns = (c["dur"] * 1e6).astype(np.int64)
        ids = rng.bytes(8 * n)
        versions = self.week.versions(s, c["t"])
        out: list[tuple[int, str, Any]] = []
        trace_ids: dict[int, tuple[bytes, bytes]] = {}
        finish_len = rng.random(n) < 0.02
        tool_use = rng.random(n) < (0.55 if s.agent else 0.0)
        err_names = PROVIDER_ERRORS[s.provider]
        const = self._const(s)
        name = (
            f"{s.op} {s.model}"
            if s.style != "openinference"
            else {"chat": "ChatCompletion", "embeddings": "CreateEmbeddings", "rerank": "Rerank"}[s.op]
        )
        kind = Span.SPAN_KIND_CLIENT if s.style != "openinference" else Span.SPAN_KIND_INTERNAL
        for i in range(n):
            run = int(c["run"][i])
            if s.agent:
                if run not in trace_ids:
                    trace_ids[run] = (rng.bytes(16), rng.bytes(8))
                    tid, root = trace_ids[run]
                    out.append(
                        (
                            int(start[i]) - 2_000_000,
                            versions[i],
                            self._agent_root(s, tid, root, int(start[i]) - 2_000_000),
                        )
                    )
                tid, parent = trace_ids[run]
            else:
                tid, parent = rng.bytes(16), b""
            err = bool(c["err"][i])
            attrs = list(const)
            attrs += self._usage(s, c, i, err, finish_len[i], tool_use[i])
            events = []
            status = None
            if err:
                et = int(c["etype"][i])
                etype = RATE_LIMIT_ERROR[s.provider] if et == 2 else err_names[1 if c["dur"][i] > 59000 else 0]
                status = Status(code=Status.STATUS_CODE_ERROR, message=f"{etype.rsplit('.', 1)[-1]}: upstream error")
                if s.style == "openinference":
                    from opentelemetry.proto.trace.v1.trace_pb2 import Span as _S

                    events.append(
                        _S.Event(
                            time_unix_nano=int(start[i] + dur_ns[i]),
                            name="exception",
                            attributes=[_kv("exception.type", etype), _kv("exception.message", "upstream error")],
                        )
                    )
                else:
                    attrs.append(_kv("error.type", etype))
            elif s.style == "openinference" and c["stream"][i] and not math.isnan(c["ttft"][i]):
                events.append(
                    Span.Event(time_unix_nano=int(start[i] + c["ttft"][i] * 1e6), name="First Token Stream Event")
                )
            sp = Span(
                trace_id=tid,
                span_id=ids[8 * i : 8 * i + 8],
                parent_span_id=parent,
                name=name,
                kind=kind,
                start_time_unix_nano=int(start[i]),
                end_time_unix_nano=int(start[i] + dur_ns[i]),
                attributes=attrs,
                events=events,
            )
            if status is not None:
                sp.status.CopyFrom(status)
            out.append((int(start[i]), versions[i], sp))
            if s.agent and tool_use[i] and not err:  # the tool the model asked for runs after it
                ts = int(start[i] + dur_ns[i]) + 1_000_000
                out.append((ts, versions[i], self._tool(s, tid, parent, ts)))
        return out

    def _const(self, s: Series) -> list[Any]:
        if s.style == "openinference":
            kind = {"chat": "LLM", "embeddings": "EMBEDDING", "rerank": "RERANKER"}[s.op]
            prov = {"gcp.gemini": "google", "aws.bedrock": "aws"}.get(s.provider, s.provider)
            return [
                _kv("openinference.span.kind", kind),
                _kv("llm.provider", prov),
                _kv("llm.system", prov),
                _kv("llm.model_name", s.model),
            ]
        attrs = [_kv("gen_ai.operation.name", s.op), _kv("gen_ai.request.model", s.model)]
        if s.style == "semconv":
            attrs.append(_kv("gen_ai.provider.name", s.provider))
        else:
            attrs.append(_kv("gen_ai.system", s.provider))
        host = {
            "openai": "api.openai.com",
            "anthropic": "api.anthropic.com",
            "gcp.gemini": "generativelanguage.googleapis.com",
            "aws.bedrock": "bedrock-runtime.us-east-1.amazonaws.com",
        }[s.provider]
        attrs += [_kv("server.address", host), _kv("server.port", 443)]
        return attrs

    def _usage(self, s: Series, c: dict[str, np.ndarray], i: int, err: bool, length: bool, tool: bool) -> list[Any]:
        inp, out = int(c["inp"][i]), int(c["out"][i])
        stream = bool(c["stream"][i])
        ttft = float(c["ttft"][i])
        finish = "length" if length else ("tool_calls" if tool else "stop")
        if s.provider == "anthropic":
            finish = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[finish]
        if s.style == "openinference":
            a = [_kv("llm.invocation_parameters", json.dumps({"model": s.model, "stream": stream, "temperature": 0.2}))]
            if not err:
                a += [
                    _kv("llm.token_count.prompt", inp),
                    _kv("llm.token_count.completion", out),
                    _kv("llm.token_count.total", inp + out),
                ]
                if int(c["cache"][i]):
                    a.append(_kv("llm.token_count.prompt_details.cache_read", int(c["cache"][i])))
            return a
        a = []
        if s.op == "chat":
            a.append(_kv("gen_ai.request.max_tokens", 4096 if s.profile.startswith("reasoning") else 1024))
            if s.style == "openlit":
                a.append(_kv("gen_ai.request.is_stream", stream))
            elif stream:
                a.append(_kv("gen_ai.request.stream", True))
        if err:
            return a
        if s.style == "older":
            a += [_kv("gen_ai.usage.prompt_tokens", inp)]
            if s.op == "chat":
                a.append(_kv("gen_ai.usage.completion_tokens", out))
        else:
            a += [_kv("gen_ai.usage.input_tokens", inp)]
            if s.op == "chat":
                a.append(_kv("gen_ai.usage.output_tokens", out))
        if s.op != "chat":
            if s.op == "embeddings":
                a.append(_kv("gen_ai.embeddings.dimension.count", 1536))
            return a
        a += [
            _kv("gen_ai.response.model", s.model),
            _kv("gen_ai.response.finish_reasons", [finish]),
            _kv("gen_ai.response.id", "r" + self.rng.bytes(6).hex()),
        ]
        if int(c["cache"][i]):
            a.append(_kv("gen_ai.usage.cache_read.input_tokens", int(c["cache"][i])))
        if int(c["reasoning"][i]):
            a.append(_kv("gen_ai.usage.reasoning.output_tokens", int(c["reasoning"][i])))
        if stream and not math.isnan(ttft):
            key = "gen_ai.server.time_to_first_token" if s.style == "openlit" else "gen_ai.response.time_to_first_chunk"
            a.append(_kv(key, round(ttft / 1000.0, 4)))
        return a

    def _agent_root(self, s: Series, tid: bytes, sid: bytes, ts: int) -> Any:
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        return Span(
            trace_id=tid,
            span_id=sid,
            name="agent.run",
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=ts,
            end_time_unix_nano=ts + 30_000_000_000,
            attributes=[_kv("openinference.span.kind", "AGENT"), _kv("input.value", "triage the ticket")],
        )

    def _tool(self, s: Series, tid: bytes, parent: bytes, ts: int) -> Any:
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        tool = ["search_tickets", "get_runbook", "query_metrics", "page_oncall"][int(self.rng.integers(0, 4))]
        d = int(self.rng.lognormal(math.log(300e6), 0.8))
        return Span(
            trace_id=tid,
            span_id=self.rng.bytes(8),
            parent_span_id=parent,
            name=tool,
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=ts,
            end_time_unix_nano=ts + d,
            attributes=[_kv("openinference.span.kind", "TOOL"), _kv("tool.name", tool)],
        )


def generate(week: Week) -> dict[str, dict[str, np.ndarray]]:
    """Every series' calls for the week, incidents applied (seeded)."""
    out = {}
    for idx, s in enumerate(week.series):
        rng = np.random.default_rng([7, week.seed, idx])
        out[s.key] = week.draw(s, rng, 0, WEEK, week.incidents)
    return out


def requests(week: Week, calls: dict[str, dict[str, np.ndarray]], batch: int = 4000) -> Iterator[tuple[bytes, int]]:
    """Serialized ExportTraceServiceRequests in time order, ``batch`` spans each (as an exporter sends)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    writer = SpanWriter(week, np.random.default_rng([99, week.seed]))
    rows: list[tuple[int, str, str, Any]] = []
    for s in week.series:
        for ts, ver, sp in writer.spans(s, calls[s.key]):
            rows.append((ts, s.service, ver, sp))
    rows.sort(key=lambda r: r[0])
    scopes = {
        "semconv": ("opentelemetry.instrumentation.genai", "0.3b0"),
        "older": ("genai-tracer", "0.9.0"),
        "openlit": ("openlit.otel.tracing", "1.35.0"),
        "openinference": ("openinference.instrumentation", "0.1.30"),
    }
    style = {s.service: s.style for s in week.series}
    for lo in range(0, len(rows), batch):
        groups: dict[tuple[str, str], list[Any]] = {}
        for _ts, svc, ver, sp in rows[lo : lo + batch]:
            groups.setdefault((svc, ver), []).append(sp)
        rs = []
        for (svc, ver), spans in groups.items():
            res = Resource(
                attributes=[
                    _kv("service.name", svc),
                    _kv("service.version", ver),
                    _kv("deployment.environment.name", "production"),
                    _kv("telemetry.sdk.language", "python"),
                ]
            )
            name, version = scopes[style[svc]]
            rs.append(
                ResourceSpans(
                    resource=res,
                    scope_spans=[ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)],
                )
            )
        req = ExportTraceServiceRequest(resource_spans=rs)
        yield req.SerializeToString(), len(rows[lo : lo + batch])


def end_now() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(second=0, microsecond=0)
