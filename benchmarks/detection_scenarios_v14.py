"""Judge 14's generator: a week of GenAI traffic with labelled incidents and benign changes.

Written apart from the detector (blind: no look at ``llmtrace/analytics/anomalies*`` nor at earlier
judges' scenarios) so the judge measures it honestly. What it models, and why:

- traffic by *requests*, not by series: a RAG question is an embedding, a rerank and a chat call in
  one trace; a shopper's chat is a session of turns; a coding agent is a run of tool-calling steps;
  a document pipeline serves tenants with their own clocks. Series of one service move together.
- clocks that are not sinusoids: EU office hours with a lunch dip and a Friday-afternoon decline, a
  US consumer evening peak, a flat API, a batch every 2 h for 20 min, a Monday-09:00 report burst,
  a public holiday in Germany, weekends at 10-110% depending on the product.
- calls: lognormal latency tied to the tokens written, TTFT on streams, reasoning models that
  think before their first token, a semantic cache answering in ~50 ms, prompt caching, rare slow
  outliers, errors typed per provider (429, 5xx, client timeouts), app-level retries and a
  fallback model that takes the failed calls of its primary.
- incidents: latency spikes and slow ramps, error bursts, volume drops of a series, a whole service
  or one tenant, TTFT spikes, output-token shifts shipped in a release; some overlapping, some in a
  young series' first day. Benign changes (release, canary, holiday, onboarding, weekly burst) are
  labelled so that false episodes can be attributed.
- eligibility is measured on the generated calls themselves: the incident window's statistic
  against the same statistic over comparable windows (same clock time on the other days, the
  windows just before), so "3x normal variation" includes day-to-day wobble, not just sampling.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

WEEK = 8 * 1440  # minutes of spans; minute 0 is the week's start, WEEK its end (= the run's "now")
SCALE = 1.0  # global traffic multiplier (lower it if a seed is too slow)
BATCH = 4000  # spans per OTLP request

ETYPES: dict[str, tuple[str, str, str]] = {  # provider -> (429, 5xx, client timeout) exception classes
    "openai": ("openai.RateLimitError", "openai.InternalServerError", "openai.APITimeoutError"),
    "anthropic": ("anthropic.RateLimitError", "anthropic.OverloadedError", "anthropic.APITimeoutError"),
    "gcp.gemini": ("google.genai.errors.ClientError", "google.genai.errors.ServerError", "httpx.ReadTimeout"),
    "gcp.vertex_ai": (
        "google.api_core.exceptions.ResourceExhausted",
        "google.api_core.exceptions.ServiceUnavailable",
        "google.api_core.exceptions.DeadlineExceeded",
    ),
    "aws.bedrock": (
        "botocore.errorfactory.ThrottlingException",
        "botocore.errorfactory.ServiceUnavailableException",
        "botocore.exceptions.ReadTimeoutError",
    ),
    "mistral_ai": ("mistralai.models.SDKError", "mistralai.models.SDKError", "httpx.ReadTimeout"),
    "cohere": ("cohere.errors.TooManyRequestsError", "cohere.errors.InternalServerError", "httpx.ReadTimeout"),
    "deepseek": ("openai.RateLimitError", "openai.InternalServerError", "openai.APITimeoutError"),
}
FINISH = {  # provider vocabulary: (stop, length, tool call, content filter)
    "openai": ("stop", "length", "tool_calls", "content_filter"),
    "deepseek": ("stop", "length", "tool_calls", "content_filter"),
    "mistral_ai": ("stop", "length", "tool_calls", "content_filter"),
    "anthropic": ("end_turn", "max_tokens", "tool_use", "refusal"),
    "aws.bedrock": ("end_turn", "max_tokens", "tool_use", "content_filtered"),
    "gcp.gemini": ("STOP", "MAX_TOKENS", "STOP", "SAFETY"),
    "gcp.vertex_ai": ("STOP", "MAX_TOKENS", "STOP", "SAFETY"),
    "cohere": ("stop", "length", "tool_calls", "content_filter"),
}
PRICES = {  # USD per 1M tokens (input, output, cached input); only for services whose SDK prices calls
    "gpt-4.1-mini": (0.4, 1.6, 0.1),
    "gpt-5-mini": (0.25, 2.0, 0.025),
    "gpt-4.1": (2.0, 8.0, 0.5),
    "gpt-4.1-nano": (0.1, 0.4, 0.025),
    "gpt-4o-mini": (0.15, 0.6, 0.075),
    "o4-mini": (1.1, 4.4, 0.275),
    "text-embedding-3-small": (0.02, 0.0, 0.02),
    "text-embedding-3-large": (0.13, 0.0, 0.13),
    "claude-haiku-4-5": (1.0, 5.0, 0.1),
    "claude-sonnet-4-5": (3.0, 15.0, 0.3),
}


# ---------------------------------------------------------------- clock


def end_now() -> datetime:
    """The week ends at the present minute, as the judged CLI run sees it."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


class Clock:
    """Week minutes <-> UTC, and each time zone's local hour, weekday and date per week minute."""

    def __init__(self, end: datetime):
        self.end = end
        self.end_minute = int(end.timestamp()) // 60
        self.start_minute = self.end_minute - WEEK
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def tables(self, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per week minute: local hour (float), weekday (0 = Monday), local day number."""
        if tz not in self._cache:
            zone = ZoneInfo(tz)
            hours = WEEK // 60 + 1
            offs = np.empty(hours, dtype=np.int64)
            for h in range(hours):
                t = datetime.fromtimestamp((self.start_minute + 60 * h) * 60, UTC)
                off = t.astimezone(zone).utcoffset()
                offs[h] = int(off.total_seconds() // 60) if off is not None else 0
            m = np.arange(WEEK, dtype=np.int64)
            local = self.start_minute + m + offs[m // 60]
            day = local // 1440
            self._cache[tz] = ((local % 1440) / 60.0, (day + 3) % 7, day)
        return self._cache[tz]

    def local(self, minutes: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
        hour, wd, _day = self.tables(tz)
        idx = np.clip(minutes.astype(np.int64), 0, WEEK - 1)
        return hour[idx], wd[idx]

    def iso(self, minute: float) -> str:
        return (self.end - timedelta(minutes=WEEK - minute)).isoformat()


# ---------------------------------------------------------------- profiles (multipliers in [0, ~1])

# fmt: off
OFFICE = ([0, 6, 7.5, 9, 10.5, 12, 12.5, 13.5, 14.5, 16, 17, 18.5, 20, 22, 24],
          [0.03, 0.03, 0.25, 0.9, 1.0, 0.85, 0.5, 0.6, 0.95, 0.9, 0.6, 0.2, 0.08, 0.04, 0.03])
CONSUMER = ([0, 2, 5, 7, 9, 12, 14, 17, 19, 20.5, 22, 23, 24],
            [0.35, 0.15, 0.08, 0.3, 0.45, 0.55, 0.5, 0.6, 0.9, 1.0, 0.8, 0.55, 0.35])
# fmt: on
SUPPORT = ([0, 7, 9, 12, 17, 20, 24], [0.2, 0.25, 0.8, 1.0, 0.9, 0.45, 0.2])


def office(clock: Clock, tz: str, weekend: float) -> np.ndarray:
    """Office hours: morning and afternoon peaks, lunch dip, Friday afternoon fading, quiet weekend."""
    h, wd, _ = clock.tables(tz)
    p = np.interp(h, *OFFICE)
    p = np.where(wd == 4, p * np.interp(h, [12, 14, 24], [1.0, 0.6, 0.6]), p)
    return np.where(wd >= 5, p * weekend, p)


def consumer(clock: Clock, tz: str) -> np.ndarray:
    """A consumer app: evening peak, busier weekend days."""
    h, wd, _ = clock.tables(tz)
    p = np.interp(h, *CONSUMER)
    return np.where(wd >= 5, p * np.interp(h, [0, 9, 18, 24], [1.0, 1.25, 1.1, 1.0]), p)


def flat(clock: Clock, tz: str, weekend: float = 0.9) -> np.ndarray:
    h, wd, _ = clock.tables(tz)
    p = 1.0 + 0.08 * np.cos(2 * np.pi * (h - 14) / 24)
    return np.where(wd >= 5, p * weekend, p)


def support(clock: Clock, tz: str) -> np.ndarray:
    h, wd, _ = clock.tables(tz)
    p = np.interp(h, *SUPPORT)
    return np.where(wd >= 5, p * 0.35, p)


def batch(clock: Clock) -> np.ndarray:
    """A cron batch at every even UTC hour, 20 minutes long, weekends too."""
    m = np.arange(WEEK) + clock.start_minute
    return ((m % 120) < 20).astype(float)


def monday_burst(clock: Clock, tz: str) -> np.ndarray:
    """The weekly report: Monday 09:00 local, a fast rise and a 45-minute tail."""
    h, wd, _ = clock.tables(tz)
    x = (h - 9.0) * 60
    return np.where((wd == 0) & (x >= 0) & (x < 50), np.exp(-x / 18.0), 0.0)


# ---------------------------------------------------------------- series, incidents, benign


@dataclass
class Series:
    """One service x request model, with how its calls look."""

    service: str
    model: str
    provider: str
    op: str
    tz: str
    stream: float = 0.0  # share of streamed calls
    base: float = 0.3  # seconds before tokens flow (non-stream overhead, or stream TTFT median)
    tps: float = 80.0  # output tokens per second
    sigma: float = 0.35  # lognormal spread of latency
    ttft_sigma: float = 0.3
    reasoning: float = 0.0  # median reasoning tokens (0: not a reasoning model)
    reasoning_tps: float = 150.0
    inp: float = 800.0
    inp_sigma: float = 0.6
    out: float = 200.0
    out_sigma: float = 0.7
    max_tokens: int = 4096
    sys_tokens: int = 0  # cacheable system prompt
    prompt_cache: float = 0.0  # share of calls reading the prompt cache
    err: float = 0.005
    tools: float = 0.0  # share of successful calls ending in a tool call
    filtered: float = 0.0
    timeout: float = 60.0
    sdk_cost: bool = False
    first: int = 0  # first minute with traffic (young series start late)
    release: str = "v1.0.0"
    address: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        self.key = f"{self.service}|{self.model}"


@dataclass
class Incident:
    """A labelled incident: what, where (series or a scope), when [start, end), how big."""

    kind: str
    series: list[str]
    start: int
    end: int
    size: float
    scope: str = "series"
    cause: str = ""
    tenant: str = ""
    permanent: bool = False
    touched: list[str] = field(default_factory=list)  # other series whose consequences it explains
    note: str = ""

    def label(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "series": self.series,
            "scope": self.scope,
            "start": self.start,
            "end": self.end,
            "size": round(self.size, 2),
            "cause": self.cause,
            "tenant": self.tenant,
            "permanent": self.permanent,
            "touched": self.touched,
            "note": self.note,
        }


@dataclass
class Benign:
    kind: str
    series: list[str]
    start: int
    end: int
    note: str = ""


def catalogue() -> list[Series]:
    """The app's 27 series (young ones get their first minute in Week)."""
    b, la, utc = "Europe/Berlin", "America/Los_Angeles", "UTC"
    oai, ant = "api.openai.com", "api.anthropic.com"
    mis, gem = "api.mistral.ai", "generativelanguage.googleapis.com"
    br_eu = "bedrock-runtime.eu-central-1.amazonaws.com"
    # fmt: off
    return [
        # kb-assistant: EU internal RAG (embed -> rerank -> answer), semantic cache, A/B of gpt-5-mini
        Series("kb-assistant", "text-embedding-3-small", "openai", "embeddings", b, base=0.11, sigma=0.3,
               inp=40, inp_sigma=0.5, out=0, err=0.002, timeout=20, sdk_cost=True, address=oai),
        Series("kb-assistant", "rerank-v3.5", "cohere", "rerank", b, base=0.19, sigma=0.28, inp=2400,
               inp_sigma=0.3, out=0, err=0.003, timeout=20, address="api.cohere.com"),
        Series("kb-assistant", "gpt-4.1-mini", "openai", "chat", b, stream=1.0, base=0.45, tps=75, inp=3200,
               inp_sigma=0.3, out=260, out_sigma=0.6, max_tokens=1200, sys_tokens=1400, prompt_cache=0.8,
               err=0.006, sdk_cost=True, address=oai),
        Series("kb-assistant", "gpt-5-mini", "openai", "chat", b, stream=1.0, base=0.5, tps=90, reasoning=500,
               reasoning_tps=180, inp=3200, inp_sigma=0.3, out=300, out_sigma=0.6, max_tokens=4000,
               sys_tokens=1400, prompt_cache=0.7, err=0.008, sdk_cost=True, address=oai),
        # shopper-chat: US consumer assistant, sessions of turns
        Series("shopper-chat", "gpt-4.1-nano", "openai", "chat", la, base=0.3, tps=160, sigma=0.3, inp=420,
               inp_sigma=0.3, out=12, out_sigma=0.3, max_tokens=20, err=0.004, sdk_cost=True, address=oai),
        Series("shopper-chat", "text-embedding-3-small", "openai", "embeddings", la, base=0.1, sigma=0.35, inp=25,
               out=0, err=0.002, timeout=20, sdk_cost=True, address=oai),
        Series("shopper-chat", "claude-haiku-4-5", "anthropic", "chat", la, stream=1.0, base=0.55, tps=95,
               inp=2600, inp_sigma=0.4, out=180, out_sigma=0.7, max_tokens=800, sys_tokens=2000,
               prompt_cache=0.85, err=0.008, filtered=0.0008, sdk_cost=True, address=ant),
        # doc-extract: multi-tenant document API (tenants on their own clocks)
        Series("doc-extract", "gemini-2.5-flash", "gcp.gemini", "generate_content", utc, base=1.1, tps=170,
               sigma=0.45, inp=6000, inp_sigma=0.8, out=700, out_sigma=0.5, max_tokens=4000, err=0.01,
               timeout=90, address=gem),
        Series("doc-extract", "gemini-2.5-pro", "gcp.gemini", "generate_content", utc, base=2.0, tps=90,
               sigma=0.5, reasoning=1400, reasoning_tps=140, inp=14000, inp_sigma=0.7, out=900, out_sigma=0.5,
               max_tokens=8000, err=0.015, timeout=180, address=gem),
        # batch-enricher: every 2 h for 20 min
        Series("batch-enricher", "mistral-embed", "mistral_ai", "embeddings", utc, base=0.18, sigma=0.3, inp=350,
               out=0, err=0.004, timeout=30, address=mis),
        Series("batch-enricher", "mistral-large-latest", "mistral_ai", "chat", utc, base=0.9, tps=45, sigma=0.4,
               inp=1500, out=220, out_sigma=0.5, max_tokens=600, err=0.012, timeout=60, address=mis),
        # weekly-report: trickle in office hours, burst Monday 09:00
        Series("weekly-report", "anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", "chat", b, base=1.8,
               tps=55, sigma=0.35, inp=9000, inp_sigma=0.5, out=900, out_sigma=0.4, max_tokens=2000, err=0.01,
               timeout=120, address=br_eu),
        # code-agent: developer tool, agent runs with a reasoning planner
        Series("code-agent", "o4-mini", "openai", "chat", b, stream=1.0, base=0.6, tps=110, sigma=0.4,
               reasoning=1200, reasoning_tps=120, inp=5000, out=350, out_sigma=0.6, max_tokens=8000,
               sys_tokens=3000, prompt_cache=0.6, err=0.01, timeout=300, sdk_cost=True, address=oai),
        Series("code-agent", "claude-sonnet-4-5", "anthropic", "chat", b, stream=1.0, base=1.2, tps=60,
               inp=18000, inp_sigma=0.6, out=420, out_sigma=0.8, max_tokens=4000, sys_tokens=6000,
               prompt_cache=0.9, err=0.01, tools=0.65, timeout=180, sdk_cost=True, address=ant),
        Series("code-agent", "claude-haiku-4-5", "anthropic", "chat", b, stream=0.0, base=0.5, tps=110,
               inp=3000, out=150, out_sigma=0.5, max_tokens=600, err=0.006, sdk_cost=True, address=ant),
        # support-triage: 24/5 ticket classification (canary to ministral) and drafted replies
        Series("support-triage", "mistral-small-latest", "mistral_ai", "chat", "Europe/Dublin", base=0.4,
               tps=120, sigma=0.3, inp=900, out=30, out_sigma=0.4, max_tokens=60, err=0.005, address=mis),
        Series("support-triage", "ministral-8b-latest", "mistral_ai", "chat", "Europe/Dublin", base=0.25,
               tps=180, sigma=0.3, inp=900, out=30, out_sigma=0.4, max_tokens=60, err=0.005,
               release="v3.1.0", address=mis),
        Series("support-triage", "gemini-2.5-pro", "gcp.vertex_ai", "generate_content", "Europe/Dublin",
               stream=1.0, base=1.0, tps=85, reasoning=700, reasoning_tps=160, inp=4000, out=380,
               max_tokens=2000, err=0.01, timeout=120, address="europe-west1-aiplatform.googleapis.com"),
        # translation-api: deepseek primary, gpt-4.1-nano fallback for its failures
        Series("translation-api", "deepseek-chat", "deepseek", "chat", "Asia/Tokyo", base=0.9, tps=35,
               sigma=0.55, inp=700, out=650, out_sigma=0.6, max_tokens=2000, err=0.015, timeout=60,
               address="api.deepseek.com"),
        Series("translation-api", "gpt-4.1-nano", "openai", "chat", "Asia/Tokyo", base=0.35, tps=150,
               inp=700, out=650, out_sigma=0.6, max_tokens=2000, err=0.004, address=oai),
        # hr-helpdesk: sparse office-hours bot
        Series("hr-helpdesk", "claude-haiku-4-5", "anthropic", "chat", b, stream=1.0, base=0.6, tps=95,
               inp=2200, out=240, max_tokens=1000, sys_tokens=1600, prompt_cache=0.5, err=0.006, address=ant),
        Series("hr-helpdesk", "amazon.titan-embed-text-v2:0", "aws.bedrock", "embeddings", b, base=0.14,
               sigma=0.3, inp=30, out=0, err=0.003, timeout=20, address="bedrock-runtime.eu-west-1.amazonaws.com"),
        # sales-email: US office, long streamed drafts
        Series("sales-email", "gpt-4.1", "openai", "chat", la, stream=1.0, base=0.7, tps=55, inp=1800, out=380,
               out_sigma=0.5, max_tokens=1500, err=0.005, sdk_cost=True, address=oai),
        # legal-search: EU office, llama on bedrock
        Series("legal-search", "meta.llama3-3-70b-instruct-v1:0", "aws.bedrock", "chat", b, base=1.4, tps=40,
               sigma=0.5, inp=5000, out=320, max_tokens=1500, err=0.008, timeout=90, address=br_eu),
        # fraud-screen: flat 24/7 scoring API, tight latency
        Series("fraud-screen", "gemini-2.0-flash-lite", "gcp.vertex_ai", "generate_content", utc, base=0.26,
               tps=400, sigma=0.12, inp=600, inp_sigma=0.15, out=18, out_sigma=0.15, max_tokens=32, err=0.002,
               timeout=5, address="us-central1-aiplatform.googleapis.com"),
        # voice-notes: a new service (young)
        Series("voice-notes", "gpt-4o-mini", "openai", "chat", b, stream=1.0, base=0.4, tps=85, inp=1500,
               out=220, max_tokens=1000, err=0.006, sdk_cost=True, address=oai),
        Series("voice-notes", "text-embedding-3-large", "openai", "embeddings", b, base=0.16, sigma=0.3, inp=220,
               out=0, err=0.002, timeout=20, sdk_cost=True, address=oai),
    ]
    # fmt: on


TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


class Week:
    """One seed's week: series, traffic streams' parameters, incidents and benign changes."""

    def __init__(self, seed: int, end: datetime, scale: float = SCALE):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.clock = Clock(end)
        self.scale = scale
        self.series = catalogue()
        self.by_key = {s.key: s for s in self.series}
        self.services = sorted({s.service for s in self.series})
        r = self.rng
        # young series
        self.ab_start = WEEK - int(r.uniform(16, 30) * 60)  # kb-assistant A/B of gpt-5-mini at 20%
        self.canary_start = WEEK - int(r.uniform(34, 44) * 60)  # support-triage -> ministral over 8 h
        self.voice_start = WEEK - int(r.uniform(26, 36) * 60)  # voice-notes launch
        self.by_key["kb-assistant|gpt-5-mini"].first = self.ab_start
        self.by_key["support-triage|ministral-8b-latest"].first = self.canary_start
        for s in self.series:
            if s.service == "voice-notes":
                s.first = self.voice_start
        # a German public holiday on a weekday between days 2 and 6 (not today)
        _, wd, day = self.clock.tables("Europe/Berlin")
        days = sorted({int(d) for d in day[1440 : 6 * 1440]})
        weekdays = [d for d in days if int(wd[np.argmax(day == d)]) in (1, 2, 3, 4)]
        self.holiday_day = int(r.choice(weekdays))
        self.onboard = int(r.uniform(2.5, 4.5) * 1440)  # doc-extract's new tenant hooli
        self.releases: dict[str, list[tuple[int, str]]] = {s.key: [(0, s.release)] for s in self.series}
        self.small: dict[str, tuple[int, float, float]] = {}  # planned release: (minute, latency x, output x)
        self.incidents: list[Incident] = []
        self.benign: list[Benign] = []
        self.exp = self.expected_calls()
        self._benign_labels()
        self._small_releases()
        self._incidents()
        for key, rel in self.releases.items():  # name releases in time order
            major = rel[0][1].split(".")[0]
            self.releases[key] = [(at, f"{major}.{i}.0") for i, (at, _n) in enumerate(sorted(rel))]

    # ---- traffic shape (deterministic part, requests per minute)

    def holiday(self) -> np.ndarray:
        _, _, day = self.clock.tables("Europe/Berlin")
        return np.where(day == self.holiday_day, 0.22, 1.0)

    def shapes(self) -> dict[str, np.ndarray]:
        """Requests (or turns, runs, items) per minute of each stream, before noise and incidents."""
        c, s = self.clock, self.scale
        hol = self.holiday()
        m = np.arange(WEEK)
        out = {
            "kb": 3.6 * s * office(c, "Europe/Berlin", 0.22) * hol,
            "shop": 5.0 * s * consumer(c, "America/Los_Angeles"),
            "doc:acme": 1.1 * s * flat(c, "UTC"),
            "doc:globex": 1.3 * s * office(c, "Europe/Berlin", 0.1) * hol,
            "doc:initech": 0.9 * s * office(c, "America/New_York", 0.1),
            "doc:umbrella": 0.35 * s * flat(c, "Asia/Singapore", 0.6),
            "doc:hooli": np.where(m >= self.onboard, 0.5 * s * flat(c, "UTC"), 0.0),
            "batch": 16.0 * s * batch(c),
            "report": s * (0.35 * office(c, "Europe/Berlin", 0.05) * hol + 11.0 * monday_burst(c, "Europe/Berlin")),
            "agent": 0.85 * s * (0.55 * office(c, "Europe/Berlin", 0.3) + 0.6 * office(c, "America/Los_Angeles", 0.3)),
            "triage": 1.6 * s * support(c, "Europe/Dublin"),
            "translate": 1.8 * s * (0.3 + 0.7 * office(c, "Asia/Tokyo", 0.3)),
            "hr": 0.7 * s * office(c, "Europe/Berlin", 0.08) * hol,
            "sales": 1.4 * s * office(c, "America/Los_Angeles", 0.12),
            "legal": 0.6 * s * office(c, "Europe/Berlin", 0.1) * hol,
            "fraud": 2.2 * s * flat(c, "UTC", 0.95),
            "voice": np.where(m >= self.voice_start, 1.6 * s * office(c, "Europe/Berlin", 0.3) * hol, 0.0),
        }
        return out

    def canary_share(self, minute: np.ndarray) -> np.ndarray:
        """Share of triage tickets classified by ministral: 5%, 20%, 35%, 50% over 8 hours, then 50%."""
        x = (minute - self.canary_start) / 120.0
        steps = np.array([0.05, 0.2, 0.35, 0.5])
        return np.where(x < 0, 0.0, steps[np.clip(x.astype(int), 0, 3)])

    def ab_share(self, minute: np.ndarray) -> np.ndarray:
        return np.where(minute >= self.ab_start, 0.2, 0.0)

    # ---- benign changes

    def _benign_labels(self) -> None:
        keys = [s.key for s in self.series]
        svc = {v: [s.key for s in self.series if s.service == v] for v in self.services}
        _, _, day_b = self.clock.tables("Europe/Berlin")
        hol = np.flatnonzero(day_b == self.holiday_day)
        eu_office = svc["kb-assistant"] + svc["hr-helpdesk"] + svc["legal-search"] + svc["weekly-report"]
        eu_office += svc["voice-notes"] + svc["doc-extract"]
        self.benign.append(Benign("holiday", eu_office, int(hol[0]), int(hol[-1]) + 1 + 600, "German public holiday"))
        self.benign.append(
            Benign("onboarding", svc["doc-extract"], self.onboard, self.onboard + 720, "tenant hooli +20%")
        )
        self.benign.append(
            Benign(
                "canary",
                svc["support-triage"],
                self.canary_start,
                self.canary_start + 14 * 60,
                "mistral-small -> ministral-8b, 5/20/35/50% over 8 h",
            )
        )
        self.benign.append(
            Benign("young_start", ["kb-assistant|gpt-5-mini"], self.ab_start, self.ab_start + 1440, "A/B at 20%")
        )
        self.benign.append(
            Benign("young_start", svc["voice-notes"], self.voice_start, self.voice_start + 1440, "launch")
        )
        self.benign.append(Benign("store_start", keys, 0, 1440, "first day of the store"))
        self.benign.append(Benign("batch_schedule", svc["batch-enricher"], 0, WEEK, "2-hourly batch"))
        burst = np.flatnonzero(monday_burst(self.clock, "Europe/Berlin") > 0)
        for run in np.split(burst, np.flatnonzero(np.diff(burst) > 1) + 1):
            if run.size:
                self.benign.append(Benign("weekly_burst", svc["weekly-report"], int(run[0]) - 10, int(run[-1]) + 90))
        # weekends (local) plus the Monday return, and daily peaks, per series' own clock
        for s in self.series:
            h, wd, _ = self.clock.tables(s.tz)
            wkd = (wd >= 5) | ((wd == 0) & (h < 11))
            for lo, hi in _runs(wkd):
                self.benign.append(Benign("weekend", [s.key], lo, hi))
            fri = (wd == 4) & (h >= 12) & (h < 20)
            for lo, hi in _runs(fri):
                self.benign.append(Benign("friday_pm", [s.key], lo, hi))
        for key, x in self.exp.items():
            day = np.arange(WEEK) // 1440
            peak = np.zeros(WEEK, dtype=bool)
            for d in range(8):
                sel = day == d
                mx = x[sel].max() if sel.any() else 0
                if mx > 0:
                    peak[sel] = x[sel] >= 0.8 * mx
            for lo, hi in _runs(peak):
                self.benign.append(Benign("daily_peak", [key], lo, hi))

    def _small_releases(self) -> None:
        """Planned releases with small, benign shifts (latency x1.05-1.12, outputs x1.05-1.15)."""
        r = self.rng
        chat = [s for s in self.series if s.op in ("chat", "generate_content") and s.first == 0]
        for s in r.choice(chat, size=3, replace=False):
            at = int(r.uniform(1.5, 7.2) * 1440)
            self.releases[s.key].append((at, "v1.1.0"))
            self.small[s.key] = (at, float(r.uniform(1.05, 1.12)), float(r.uniform(1.05, 1.15)))
            self.benign.append(Benign("release", [s.key], at, at + 360, "small planned release"))

    # ---- incidents

    def expected_calls(self) -> dict[str, np.ndarray]:
        """Per series and minute, calls expected from the deterministic shapes (no noise, no incident)."""
        sh = self.shapes()
        m = np.arange(WEEK)
        kb = sh["kb"]
        ab = self.ab_share(m)
        doc = sum(sh[f"doc:{t}"] for t in TENANTS)
        can = self.canary_share(m)
        ag = sh["agent"]
        return {
            "kb-assistant|text-embedding-3-small": kb,
            "kb-assistant|rerank-v3.5": kb,
            "kb-assistant|gpt-4.1-mini": kb * (1 - ab),
            "kb-assistant|gpt-5-mini": kb * ab,
            "shopper-chat|gpt-4.1-nano": sh["shop"] / SHOP_TURNS,
            "shopper-chat|text-embedding-3-small": sh["shop"] * 0.5,
            "shopper-chat|claude-haiku-4-5": sh["shop"],
            "doc-extract|gemini-2.5-flash": doc * 0.9,
            "doc-extract|gemini-2.5-pro": doc * 0.1,
            "batch-enricher|mistral-embed": sh["batch"],
            "batch-enricher|mistral-large-latest": sh["batch"] * 0.3,
            "weekly-report|anthropic.claude-sonnet-4-5-20250929-v1:0": sh["report"],
            "code-agent|o4-mini": ag * 0.5,
            "code-agent|claude-sonnet-4-5": ag * AGENT_STEPS,
            "code-agent|claude-haiku-4-5": ag * 0.3,
            "support-triage|mistral-small-latest": sh["triage"] * (1 - can),
            "support-triage|ministral-8b-latest": sh["triage"] * can,
            "support-triage|gemini-2.5-pro": sh["triage"] * 0.3,
            "translation-api|deepseek-chat": sh["translate"],
            "translation-api|gpt-4.1-nano": sh["translate"] * 0.045,
            "hr-helpdesk|claude-haiku-4-5": sh["hr"],
            "hr-helpdesk|amazon.titan-embed-text-v2:0": sh["hr"],
            "sales-email|gpt-4.1": sh["sales"],
            "legal-search|meta.llama3-3-70b-instruct-v1:0": sh["legal"],
            "fraud-screen|gemini-2.0-flash-lite": sh["fraud"],
            "voice-notes|gpt-4o-mini": sh["voice"],
            "voice-notes|text-embedding-3-large": sh["voice"] * 2.0,
        }

    def _incidents(self) -> None:
        r = self.rng
        exp = self.exp
        taken: dict[str, list[tuple[int, int]]] = {k: [] for k in self.by_key}

        def free(keys: list[str], lo: int, hi: int, gap: int = 150) -> bool:
            return all(not (lo < b + gap and hi > a - gap) for k in keys for a, b in taken[k])

        def place(
            keys: list[str], dur: int, lo: int, hi: int, night: bool = False, traffic: np.ndarray | None = None
        ) -> int | None:
            w = sum(exp[k] for k in keys) if traffic is None else traffic
            starts = np.arange(lo, max(lo + 1, hi - dur))
            weight = np.convolve(w, np.ones(dur), "full")[dur - 1 : dur - 1 + WEEK][starts] + 1e-9
            if night:  # volume drops at night or on the weekend, where traffic is there but low
                h, wd = self.clock.local(starts, self.by_key[keys[0]].tz)
                weight = weight * (((h < 6) | (h >= 21) | (wd >= 5)) + 0.02)
            weight = weight * (weight > 0.05 * weight.max())
            for _ in range(60):
                s = int(r.choice(starts, p=weight / weight.sum()))
                if free(keys, s, s + dur):
                    return s
            return None

        def add(
            kind: str, keys: list[str], dur: int, size: float, lo: int | None = None, hi: int = WEEK - 10, **kw: Any
        ) -> None:
            first = max(self.by_key[k].first for k in keys)
            lo = max(1440, first + 120) if lo is None else lo
            start = place(keys, dur, lo, hi, night=kw.pop("night", False), traffic=kw.pop("traffic", None))
            if start is None:
                return
            end = WEEK if kw.get("permanent") else min(start + dur, WEEK)
            inc = Incident(kind, keys, start, end, size, **kw)
            self.incidents.append(inc)
            for k in keys:
                taken[k].append((start, start + dur))

        loguni = lambda a, b: float(math.exp(r.uniform(math.log(a), math.log(b))))  # noqa: E731
        # young series first: one incident in each one's first day
        for key in (
            "kb-assistant|gpt-5-mini",
            "support-triage|ministral-8b-latest",
            "voice-notes|gpt-4o-mini",
            "voice-notes|text-embedding-3-large",
        ):
            s = self.by_key[key]
            kind = r.choice(["latency_spike", "error_burst", "ttft_spike" if s.stream else "volume_drop"])
            lo, hi = s.first + 120, min(WEEK - 10, s.first + 1440)
            self._one(add, loguni, key, str(kind), lo, hi, young=True)
        # scoped volume drops: two service-wide, one tenant
        multi = ["kb-assistant", "shopper-chat", "code-agent", "hr-helpdesk", "support-triage", "batch-enricher"]
        for svc, night in zip(r.choice(multi, size=2, replace=False), (False, True), strict=True):
            keys = [s.key for s in self.series if s.service == svc and s.first == 0]
            add(
                "service_drop",
                keys,
                int(r.uniform(20, 90)),
                float(r.uniform(0.5, 1.0)),
                scope="service",
                night=night,
                note=f"{svc} ingress down",
            )
        tenant = str(r.choice(["acme", "globex", "initech"]))
        add(
            "tenant_drop",
            ["doc-extract|gemini-2.5-flash", "doc-extract|gemini-2.5-pro"],
            int(r.uniform(30, 120)),
            float(r.choice([1.0, r.uniform(0.6, 1.0)])),
            scope="tenant",
            tenant=tenant,
            note=f"tenant {tenant}'s integration stops",
            traffic=self.shapes()[f"doc:{tenant}"],
        )
        # overlapping pairs: a provider degradation is slow and failing at once
        for key in r.choice(
            [s.key for s in self.series if s.first == 0 and s.service != "translation-api"], 2, replace=False
        ):
            dur = int(r.uniform(30, 60))
            start = place([key], dur, 1440, WEEK - 10)
            if start is None:
                continue
            self.incidents.append(Incident("latency_spike", [key], start, start + dur, loguni(2, 5), note="overlap"))
            e0 = start + int(r.uniform(5, dur - 20))
            self.incidents.append(
                Incident("error_burst", [key], e0, e0 + 15, float(r.uniform(0.1, 0.4)), cause="server", note="overlap")
            )
            taken[key].append((start, start + dur))
        # per series: ~2-3 in the week
        for s in self.series:
            if s.first or s.key == "translation-api|gpt-4.1-nano":
                continue
            kinds = ["latency_spike"] * 3 + ["error_burst"] * 3 + ["volume_drop"] * 2
            if s.stream:
                kinds += ["ttft_spike"] * 3
            if s.op != "embeddings" and s.op != "rerank":
                kinds += ["slow_ramp"] + (["output_shift"] if s.out >= 100 else [])
            n = int(r.choice([1, 2, 2, 2, 3]))
            have_shift = False
            for kind in r.choice(kinds, size=n, replace=False):
                if kind == "output_shift":
                    if have_shift:
                        continue
                    have_shift = True
                self._one(add, loguni, s.key, str(kind), 1440, WEEK - 10, young=False)

    def _one(
        self,
        add: Callable[..., None],
        loguni: Callable[[float, float], float],
        key: str,
        kind: str,
        lo: int,
        hi: int,
        young: bool,
    ) -> None:
        r = self.rng
        s = self.by_key[key]
        tight = s.sigma <= 0.15
        if kind == "latency_spike":
            f = loguni(1.5, 2.2) if tight else loguni(1.5, 8)
            add(kind, [key], int(r.uniform(10, 60)), f, lo=lo, hi=hi, note="tight series" if tight else "")
        elif kind == "error_burst":
            cause = str(r.choice(["rate_limit", "server", "timeout"], p=[0.4, 0.4, 0.2]))
            touched = ["translation-api|gpt-4.1-nano"] if s.service == "translation-api" else []
            if s.service == "kb-assistant":
                touched = [k for k in self.by_key if k.startswith("kb-assistant|") and k != key]
            add(
                kind,
                [key],
                int(r.uniform(10, 40)),
                float(r.uniform(0.05, 0.6)),
                lo=lo,
                hi=hi,
                cause=cause,
                touched=touched,
            )
        elif kind == "volume_drop":
            night = bool(r.random() < 0.35)
            add(
                kind,
                [key],
                int(r.uniform(20, 120)),
                float(r.uniform(0.3, 1.0)),
                lo=lo,
                hi=hi,
                night=night,
                note="night/weekend" if night else "",
            )
        elif kind == "ttft_spike":
            add(kind, [key], int(r.uniform(10, 45)), loguni(2, 10), lo=lo, hi=hi)
        elif kind == "slow_ramp":
            add(
                kind,
                [key],
                int(r.uniform(120, 240)),
                float(r.uniform(2.0, 3.5)),
                lo=lo,
                hi=hi,
                note="linear rise, then fixed",
            )
        elif kind == "output_shift":
            n_before = len(self.incidents)
            add(
                kind,
                [key],
                360,
                float(r.uniform(1.5, 3.0)),
                lo=max(lo, 1440),
                hi=WEEK - 120,
                permanent=True,
                note="release v2.0.0 rewrites the prompt",
            )
            if len(self.incidents) > n_before:
                inc = self.incidents[-1]
                self.releases[key].append((inc.start, "v2.0.0"))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(idx[::2], idx[1::2], strict=True)]


SHOP_TURNS = 4.0  # mean turns per shopper session
AGENT_STEPS = 3.5  # mean executor steps per agent run


# ---------------------------------------------------------------- generation


class Gen:
    """Draws requests, then calls, then each call's fields; keeps what eligibility and encoding need."""

    def __init__(self, week: Week):
        self.w = week
        self.r = np.random.default_rng(week.seed * 7919 + 14)
        self.next_req = 1
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in week.by_key}
        self.roots: list[tuple[np.ndarray, np.ndarray, str, str]] = []  # (req ids, start, service, name)
        self.tools: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (req ids, start, duration s)
        self.err_p: dict[str, np.ndarray] = {}
        self.err_cause: dict[str, np.ndarray] = {}
        self.vol: dict[str, np.ndarray] = {}
        for s in week.series:
            p = np.full(WEEK, s.err)
            cause = np.zeros(WEEK, dtype=np.int8)
            self.vol[s.key] = np.ones(WEEK)
            for inc in week.incidents:
                if s.key not in inc.series:
                    continue
                sl = slice(inc.start, inc.end)
                if inc.kind == "error_burst":
                    p[sl] = 1 - (1 - p[sl]) * (1 - inc.size)
                    cause[sl] = {"rate_limit": 1, "server": 2, "timeout": 3}[inc.cause]
                elif inc.kind == "volume_drop":
                    self.vol[s.key][sl] *= 1 - inc.size
            self.err_p[s.key] = p
            self.err_cause[s.key] = cause

    # ---- helpers

    def noise(self, n_days_sigma: float = 0.06, sigma: float = 0.12) -> np.ndarray:
        """Multiplicative wobble: an AR(1) over 10-minute blocks and a per-day level."""
        blocks = WEEK // 10
        e = self.r.normal(0, sigma * math.sqrt(1 - 0.9**2), blocks)
        x = np.empty(blocks)
        x[0] = self.r.normal(0, sigma)
        for i in range(1, blocks):
            x[i] = 0.9 * x[i - 1] + e[i]
        day = self.r.normal(0, n_days_sigma, 8)
        z = np.repeat(x, 10) + np.repeat(day, 1440)
        return np.exp(z - (sigma**2 + n_days_sigma**2) / 2)

    def scope_mult(self, service: str, tenant: str = "") -> np.ndarray:
        mult = np.ones(WEEK)
        for inc in self.w.incidents:
            if inc.kind == "service_drop" and self.w.by_key[inc.series[0]].service == service:
                mult[inc.start : inc.end] *= 1 - inc.size
            if inc.kind == "tenant_drop" and tenant and inc.tenant == tenant:
                mult[inc.start : inc.end] *= 1 - inc.size
        return mult

    def arrivals(self, rate: np.ndarray) -> np.ndarray:
        counts = self.r.poisson(np.maximum(rate, 0))
        t = np.repeat(np.arange(WEEK, dtype=float), counts) + self.r.random(int(counts.sum()))
        return np.sort(t)

    def thin(self, key: str, t: np.ndarray) -> np.ndarray:
        """Keep mask after a series-level volume drop."""
        v = self.vol[key][np.clip(t.astype(int), 0, WEEK - 1)]
        return self.r.random(t.size) < v

    def fails(self, key: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Error flag and type code (1 = 429, 2 = 5xx, 3 = timeout) for calls at times t."""
        m = np.clip(t.astype(int), 0, WEEK - 1)
        p = self.err_p[key][m]
        err = self.r.random(t.size) < p
        base = self.r.choice([1, 2, 3], size=t.size, p=[0.6, 0.3, 0.1]).astype(np.int8)
        cause = self.err_cause[key][m]
        base_p = self.w.by_key[key].err
        from_inc = (cause > 0) & (self.r.random(t.size) * p >= base_p)
        et = np.where(from_inc, cause, base)
        return err, np.where(err, et, 0).astype(np.int8)

    def new_reqs(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_req, self.next_req + n, dtype=np.int64)
        self.next_req += n
        return ids

    def emit(self, key: str, t: np.ndarray, req: np.ndarray, err: np.ndarray, et: np.ndarray, **extra: Any) -> None:
        d = {"t": t, "req": req, "err": err, "et": et}
        n = t.size
        for name, default in (("sess", -1), ("user", -1), ("tenant", -1), ("semhit", False), ("retry", False)):
            v = extra.get(name, default)
            d[name] = v if isinstance(v, np.ndarray) else np.full(n, v)
        self.parts[key].append(d)

    def simple(self, key: str, t: np.ndarray, req: np.ndarray, retry_p: float = 0.0, **extra: Any) -> np.ndarray:
        """Calls of one series at t (after its volume drop), with app-level retries of failures; fail mask."""
        keep = self.thin(key, t)
        t, req = t[keep], req[keep]
        extra = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in extra.items()}
        err, et = self.fails(key, t)
        if isinstance(extra.get("semhit"), np.ndarray):  # a semantic cache hit never reaches the provider
            err &= ~extra["semhit"]
            et = np.where(err, et, 0).astype(np.int8)
        self.emit(key, t, req, err, et, **extra)
        failed_all = err
        cur_t, cur_req, cur_err, cur_extra = t, req, err, extra
        for _round in range(2):
            if retry_p <= 0:
                break
            again = cur_err & (self.r.random(cur_t.size) < retry_p)
            if not again.any():
                break
            rt = cur_t[again] + self.r.uniform(1, 5, again.sum()) / 60.0
            rr = cur_req[again]
            rx = {k: (v[again] if isinstance(v, np.ndarray) else v) for k, v in cur_extra.items()}
            inside = rt < WEEK
            rt, rr = rt[inside], rr[inside]
            rx = {k: (v[inside] if isinstance(v, np.ndarray) else v) for k, v in rx.items()}
            rerr, ret = self.fails(key, rt)
            self.emit(key, rt, rr, rerr, ret, retry=True, **rx)
            cur_t, cur_req, cur_err, cur_extra = rt, rr, rerr, rx
        return failed_all if keep.all() else _expand(keep, failed_all)

    # ---- services

    def run(self) -> None:
        w = self.w
        sh = w.shapes()
        self.kb(sh["kb"] * self.noise() * self.scope_mult("kb-assistant"))
        self.shop(sh["shop"] * self.noise())  # its service drop thins turns, not sessions
        for i, ten in enumerate(TENANTS):
            rate = sh[f"doc:{ten}"] * self.noise() * self.scope_mult("doc-extract", ten)
            t = self.arrivals(rate)
            req = self.new_reqs(t.size)
            pro = self.r.random(t.size) < 0.1
            users = self.r.integers(0, 40, t.size) + 100 * i
            for key, sel in (("doc-extract|gemini-2.5-flash", ~pro), ("doc-extract|gemini-2.5-pro", pro)):
                self.simple(key, t[sel], req[sel], retry_p=0.7, tenant=i, user=users[sel])
        bt = self.arrivals(sh["batch"] * self.noise(0.03, 0.05) * self.scope_mult("batch-enricher"))
        breq = self.new_reqs(bt.size)
        self.simple("batch-enricher|mistral-embed", bt, breq, retry_p=0.9)
        enrich = self.r.random(bt.size) < 0.3
        self.simple("batch-enricher|mistral-large-latest", bt[enrich] + 0.01, breq[enrich], retry_p=0.9)
        rt = self.arrivals(sh["report"] * self.noise() * self.scope_mult("weekly-report"))
        self.simple(
            "weekly-report|anthropic.claude-sonnet-4-5-20250929-v1:0",
            rt,
            self.new_reqs(rt.size),
            user=self.r.integers(0, 60, rt.size),
        )
        self.agent(sh["agent"] * self.noise() * self.scope_mult("code-agent"))
        self.triage(sh["triage"] * self.noise() * self.scope_mult("support-triage"))
        self.translate(sh["translate"] * self.noise() * self.scope_mult("translation-api"))
        ht = self.arrivals(sh["hr"] * self.noise() * self.scope_mult("hr-helpdesk"))
        hreq = self.new_reqs(ht.size)
        hu = self.r.integers(0, 900, ht.size)
        self.simple("hr-helpdesk|amazon.titan-embed-text-v2:0", ht, hreq, user=hu)
        self.simple("hr-helpdesk|claude-haiku-4-5", ht + 0.004, hreq, user=hu)
        st = self.arrivals(sh["sales"] * self.noise() * self.scope_mult("sales-email"))
        self.simple("sales-email|gpt-4.1", st, self.new_reqs(st.size), user=self.r.integers(0, 45, st.size))
        lt = self.arrivals(sh["legal"] * self.noise() * self.scope_mult("legal-search"))
        self.simple(
            "legal-search|meta.llama3-3-70b-instruct-v1:0",
            lt,
            self.new_reqs(lt.size),
            user=self.r.integers(0, 25, lt.size),
        )
        ft = self.arrivals(sh["fraud"] * self.noise(0.04, 0.08) * self.scope_mult("fraud-screen"))
        self.simple("fraud-screen|gemini-2.0-flash-lite", ft, self.new_reqs(ft.size))
        vt = self.arrivals(sh["voice"] * self.noise() * self.scope_mult("voice-notes"))
        vreq = self.new_reqs(vt.size)
        self.simple("voice-notes|gpt-4o-mini", vt, vreq, retry_p=0.5)
        chunks = self.r.integers(1, 4, vt.size)
        et = np.repeat(vt, chunks) + 0.3 / 60 + np.concatenate([np.arange(c) for c in chunks]) * 0.002
        self.simple("voice-notes|text-embedding-3-large", et, np.repeat(vreq, chunks))

    def kb(self, rate: np.ndarray) -> None:
        """RAG: embed, rerank, answer (20% on gpt-5-mini in the A/B); a failed answer is re-asked."""
        t = self.arrivals(rate)
        users = self.r.integers(0, 320, t.size)
        for _round in range(3):
            if t.size == 0:
                break
            req = self.new_reqs(t.size)
            self.roots.append((req, t, "kb-assistant", "POST /ask"))
            self.simple("kb-assistant|text-embedding-3-small", t, req, user=users)
            self.simple("kb-assistant|rerank-v3.5", t + 0.25 / 60, req, user=users)
            ab = self.r.random(t.size) < self.w.ab_share(t.astype(int))
            hit = self.r.random(t.size) < 0.18
            failed = np.zeros(t.size, dtype=bool)
            for key, sel in (("kb-assistant|gpt-5-mini", ab), ("kb-assistant|gpt-4.1-mini", ~ab)):
                failed[sel] = self.simple(key, t[sel] + 0.5 / 60, req[sel], user=users[sel], semhit=hit[sel])
            again = failed & (self.r.random(t.size) < 0.5)
            t, users = t[again] + self.r.uniform(5, 25, again.sum()) / 60, users[again]
            keep = t < WEEK
            t, users = t[keep], users[keep]

    def shop(self, rate: np.ndarray) -> None:
        """Sessions of turns: classify intent once, search products on half the turns, answer each turn."""
        starts = self.arrivals(rate / SHOP_TURNS)
        turns = self.r.geometric(1 / SHOP_TURNS, starts.size)
        sess = np.repeat(np.arange(starts.size, dtype=np.int64) + self.w.seed * 10**7, turns)
        gaps = self.r.lognormal(math.log(45), 0.6, int(turns.sum())) / 60.0
        first = np.concatenate([[0], np.cumsum(turns)[:-1]])
        gaps[first] = 0
        cum = np.cumsum(gaps)
        t = np.repeat(starts, turns) + cum - np.repeat(cum[first], turns)
        inside = t < WEEK
        mult = self.vol_scope_at("shopper-chat", t)
        keep = inside & (self.r.random(t.size) < mult)
        t, sess = t[keep], sess[keep]
        is_first = np.zeros(keep.size, dtype=bool)
        is_first[first] = True
        is_first = is_first[keep]
        users = (sess % 1000003) * 7 % 50000
        req = self.new_reqs(t.size)
        self.simple("shopper-chat|gpt-4.1-nano", t[is_first], req[is_first], sess=sess[is_first], user=users[is_first])
        srch = self.r.random(t.size) < 0.5
        self.simple(
            "shopper-chat|text-embedding-3-small", t[srch] + 0.005, req[srch], sess=sess[srch], user=users[srch]
        )
        self.simple("shopper-chat|claude-haiku-4-5", t + 0.01, req, retry_p=0.3, sess=sess, user=users)

    def vol_scope_at(self, service: str, t: np.ndarray) -> np.ndarray:
        """Shopper sessions are drawn before their turns: apply a service drop to the turns."""
        return self.scope_mult(service)[np.clip(t.astype(int), 0, WEEK - 1)]

    def agent(self, rate: np.ndarray) -> None:
        """Agent runs: a reasoning plan (half the runs), tool-calling steps, a summary (30%)."""
        t0 = self.arrivals(rate)
        req = self.new_reqs(t0.size)
        users = self.r.integers(0, 180, t0.size)
        self.roots.append((req, t0, "code-agent", "invoke_agent coder"))
        plan = self.r.random(t0.size) < 0.5
        self.simple("code-agent|o4-mini", t0[plan], req[plan], user=users[plan])
        steps = self.r.geometric(1 / AGENT_STEPS, t0.size)
        idx = np.repeat(np.arange(t0.size), steps)
        gaps = self.r.lognormal(math.log(12), 0.6, idx.size) / 60.0
        first = np.concatenate([[0], np.cumsum(steps)[:-1]])
        cum = np.cumsum(gaps)
        st = t0[idx] + np.where(plan[idx], 0.25, 0.0) + cum - np.repeat(cum[first], steps)
        ok = st < WEEK
        self.simple("code-agent|claude-sonnet-4-5", st[ok], req[idx][ok], user=users[idx][ok])
        tool_t = st[ok] + self.r.lognormal(math.log(6), 0.5, ok.sum()) / 60.0
        self.tools.append((req[idx][ok], tool_t, self.r.lognormal(math.log(2.5), 0.8, ok.sum())))
        summ = self.r.random(t0.size) < 0.3
        end_t = t0 + np.bincount(idx, weights=gaps, minlength=t0.size) + 0.5
        sel = summ & (end_t < WEEK)
        self.simple("code-agent|claude-haiku-4-5", end_t[sel], req[sel], user=users[sel])

    def triage(self, rate: np.ndarray) -> None:
        t = self.arrivals(rate)
        req = self.new_reqs(t.size)
        can = self.r.random(t.size) < self.w.canary_share(t.astype(int))
        self.simple("support-triage|mistral-small-latest", t[~can], req[~can], retry_p=0.6)
        self.simple("support-triage|ministral-8b-latest", t[can], req[can], retry_p=0.6)
        draft = self.r.random(t.size) < 0.3
        self.simple("support-triage|gemini-2.5-pro", t[draft] + 0.02, req[draft])

    def translate(self, rate: np.ndarray) -> None:
        """deepseek first; its failures (and 3% of requests, long documents) go to gpt-4.1-nano."""
        t = self.arrivals(rate)
        req = self.new_reqs(t.size)
        failed = self.simple("translation-api|deepseek-chat", t, req)
        long_doc = self.r.random(t.size) < 0.03
        fb = (failed & (self.r.random(t.size) < 0.95)) | long_doc
        ft = t[fb] + np.where(failed[fb], 0.4, 0.0) + 0.01
        ok = ft < WEEK
        self.simple("translation-api|gpt-4.1-nano", ft[ok], req[fb][ok])

    # ---- per-call fields

    def finish(self) -> dict[str, dict[str, np.ndarray]]:
        calls = {}
        for s in self.w.series:
            parts = self.parts[s.key]
            d = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
            if not d:
                d = {k: np.zeros(0) for k in ("t", "req", "err", "et", "sess", "user", "tenant", "semhit", "retry")}
            order = np.argsort(d["t"], kind="stable")
            d = {k: v[order] for k, v in d.items()}
            d["err"] = d["err"].astype(bool)
            d["semhit"] = d["semhit"].astype(bool) & ~d["err"]
            calls[s.key] = self.fields(s, d)
        return calls

    def fields(self, s: Series, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        r = self.r
        n = d["t"].size
        m = np.clip(d["t"].astype(int), 0, WEEK - 1)
        err, hit = d["err"], d["semhit"]
        inp = np.maximum(1, r.lognormal(math.log(max(s.inp, 1)), s.inp_sigma, n)).astype(np.int64) + s.sys_tokens
        out_mult = np.ones(n)
        lat_mult = np.ones(n)
        ttft_mult = np.ones(n)
        release = np.zeros(n, dtype=np.int16)
        rel = self.w.releases[s.key]
        for i, (at, _name) in enumerate(rel):
            release[d["t"] >= at] = i
        if s.key in self.w.small:
            at, lm, om = self.w.small[s.key]
            lat_mult[d["t"] >= at] *= lm
            out_mult[d["t"] >= at] *= om
        for inc in self.w.incidents:
            if s.key not in inc.series:
                continue
            w = (d["t"] >= inc.start) & (d["t"] < inc.end)
            if inc.kind == "latency_spike":
                lat_mult[w] *= inc.size
                ttft_mult[w] *= inc.size
            elif inc.kind == "slow_ramp":
                frac = (d["t"][w] - inc.start) / max(inc.end - inc.start, 1)
                lat_mult[w] *= 1 + (inc.size - 1) * frac
                ttft_mult[w] *= 1 + (inc.size - 1) * frac
            elif inc.kind == "ttft_spike":
                ttft_mult[w] *= inc.size
            elif inc.kind == "output_shift":
                out_mult[w] *= inc.size
        # provider load: slower when the US and Europe are both awake (~14-20 UTC)
        hour_utc = ((self.w.clock.start_minute + m) % 1440) / 60.0
        load = 1 + {"openai": 0.12, "anthropic": 0.15}.get(s.provider, 0.05) * np.exp(-((hour_utc - 17) ** 2) / 8)
        reasoning = np.zeros(n, dtype=np.int64)
        if s.reasoning:
            reasoning = r.lognormal(math.log(s.reasoning), 0.8, n).astype(np.int64)
        out = np.zeros(n, dtype=np.int64)
        if s.out > 0:
            vis = np.maximum(1, r.lognormal(math.log(s.out), s.out_sigma, n) * out_mult).astype(np.int64)
            out = np.minimum(vis + reasoning, s.max_tokens)
        truncated = (out >= s.max_tokens) & (s.out > 0)
        reasoning = np.minimum(reasoning, out) if s.out > 0 else reasoning
        visible = out - reasoning
        cached = np.zeros(n, dtype=np.int64)
        cwrite = np.zeros(n, dtype=np.int64)
        if s.sys_tokens:
            c = r.random(n) < s.prompt_cache
            cached = np.where(c, s.sys_tokens, 0)
            if s.provider == "anthropic":
                cwrite = np.where(~c, s.sys_tokens, 0)
        stream = r.random(n) < s.stream
        think = reasoning / s.reasoning_tps
        ttft_raw = s.base * r.lognormal(0, s.ttft_sigma, n) * np.where(cached > 0, 0.85, 1.0) + think
        gen = visible / s.tps * r.lognormal(0, 0.2, n)
        if s.op in ("embeddings", "rerank"):
            dur = s.base * (1 + inp / 8000) * r.lognormal(0, s.sigma, n)
        else:
            dur = ttft_raw * r.lognormal(0, max(s.sigma - s.ttft_sigma, 0.05), n) + gen
        ttft = ttft_raw * ttft_mult * load  # a latency spike slows the first token too
        # a stream lasts its first token plus the generation; a plain call is one wait
        dur = np.where(stream, ttft + gen * lat_mult * load, dur * lat_mult * load)
        slow = r.random(n) < 0.008
        dur = np.where(slow, dur * r.uniform(3, 10, n), dur)
        # semantic cache hits: answered locally in ~50 ms
        dur = np.where(hit, r.lognormal(math.log(0.045), 0.3, n), dur)
        ttft = np.where(hit, dur * 0.6, ttft)
        cached = np.where(hit, 0, cached)
        cwrite = np.where(hit, 0, cwrite)
        # failures: short (429), a little longer (5xx), or the client's timeout
        et = d["et"]
        fail_dur = np.select(
            [et == 1, et == 2, et == 3],
            [r.lognormal(math.log(0.25), 0.4, n), r.lognormal(math.log(1.5), 0.7, n), np.full(n, s.timeout)],
            default=0.0,
        )
        dur = np.where(err, fail_dur * np.where(et == 3, r.uniform(1.0, 1.02, n), 1.0), dur)
        inp = np.where(err, 0, inp)
        out = np.where(err, 0, out)
        reasoning = np.where(err, 0, reasoning)
        cached = np.where(err, 0, cached)
        cwrite = np.where(err, 0, cwrite)
        fin = np.zeros(n, dtype=np.int8)  # 0 stop, 1 length, 2 tool, 3 filter, -1 none
        if s.out > 0:
            fin = np.where(truncated, 1, np.where(r.random(n) < s.tools, 2, 0)).astype(np.int8)
            fin = np.where(r.random(n) < s.filtered, 3, fin).astype(np.int8)
        fin = np.where(err | (s.out <= 0), -1, fin).astype(np.int8)
        cost = np.full(n, np.nan)
        if s.sdk_cost and s.model in PRICES:
            pi, po, pc = PRICES[s.model]
            cost = ((inp - cached) * pi + cached * pc + cwrite * pi * 0.25 + out * po) / 1e6
            if s.op == "rerank":
                cost = np.full(n, 0.002)
            cost = np.where(hit, 0.0, cost)
            cost = np.where(err, np.nan, cost)
        ttft = np.where(stream & ~err, ttft, np.nan)
        return {
            **d,
            "dur": dur,
            "ttft": ttft,
            "stream": stream,
            "inp": inp,
            "out": out,
            "cache": cached,
            "cwrite": cwrite,
            "reasoning": reasoning,
            "fin": fin,
            "cost": cost,
            "release": release,
        }


def _expand(keep: np.ndarray, sub: np.ndarray) -> np.ndarray:
    full = np.zeros(keep.size, dtype=bool)
    full[keep] = sub
    return full


def generate(week: Week) -> tuple[dict[str, dict[str, np.ndarray]], Gen]:
    g = Gen(week)
    g.run()
    return g.finish(), g


# ---------------------------------------------------------------- eligibility


def _stat(kind: str, c: dict[str, np.ndarray], sel: np.ndarray) -> tuple[float, int]:
    """The statistic an incident of this kind moves, over the calls in sel; and its trial count."""
    ok = sel & ~c["err"]
    if kind in ("latency_spike", "slow_ramp"):
        x = c["dur"][ok]
        return (float(np.percentile(x, 95)) if x.size >= 3 else math.nan), int(x.size)
    if kind == "ttft_spike":
        x = c["ttft"][ok]
        x = x[~np.isnan(x)]
        return (float(np.percentile(x, 95)) if x.size >= 3 else math.nan), int(x.size)
    if kind == "output_shift":
        x = c["out"][ok]
        return (float(np.mean(x)) if x.size >= 3 else math.nan), int(x.size)
    if kind == "error_burst":
        n = int(sel.sum())
        return (float(c["err"][sel].mean()) if n >= 3 else math.nan), n
    raise ValueError(kind)


def _merge(calls: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = ("t", "err", "dur", "ttft", "out")
    return {k: np.concatenate([c[k] for c in calls]) for k in keys}


def eligibility(week: Week, inc: Incident, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Effect, z against comparable windows, extra events, eligible (>= 10 min, z >= 3, extra >= 10 for rates)."""
    c = _merge([calls[k] for k in inc.series])
    t = c["t"]
    first = max(week.by_key[k].first for k in inc.series)
    s0 = inc.start
    e0 = min(inc.start + 360, WEEK) if inc.permanent else inc.end
    length = e0 - s0
    # comparable windows: same clock time on the other days, and the windows just before (after, if
    # too few before); none touching another incident of these series or crossing a permanent shift
    cands = [s0 + d * 1440 for d in range(-7, 8) if d] + [s0 - j * length for j in range(1, 7)]
    cands += [e0 + j * length for j in range(0, 3)] if s0 - first < 3 * length else []
    if inc.permanent:
        cands = [s0 - 1440 * d for d in range(1, 8)] + [s0 - j * length for j in range(1, 4)]
    others = [o for o in week.incidents if o is not inc and set(o.series) & set(inc.series)]
    shifts = [o.start for o in others if o.permanent]
    windows = []
    for a in sorted(set(cands)):
        b = a + length
        if a < first or b > WEEK or (a < e0 and b > s0):
            continue
        if any(a < o.end + 30 and b > o.start - 30 for o in others if not o.permanent):
            continue
        if any((a < sh) != (s0 < sh) or (b > sh and a < sh) for sh in shifts):
            continue
        windows.append((a, b))
    out: dict[str, Any] = {"z": 0.0, "effect": math.nan, "extra": 0, "n": 0, "windows": len(windows)}
    if inc.kind in ("volume_drop", "service_drop", "tenant_drop"):
        # the expectation is the deterministic profile rescaled to the local level (the two hours either
        # side, outside incidents): the day's wobble that the neighbouring hours show is not "normal
        # variation" a reader of the week would have to allow for
        exp = sum(week.exp[k] for k in inc.series)
        obs = np.bincount(np.clip(t.astype(int), 0, WEEK - 1), minlength=WEEK).astype(float)
        valid = np.ones(WEEK)
        for o in [*others, inc]:
            if o.kind in ("volume_drop", "service_drop", "tenant_drop", "error_burst"):
                valid[o.start : o.end] = 0
        cum_e = np.concatenate([[0], np.cumsum(exp)])
        cum_o = np.concatenate([[0], np.cumsum(obs)])
        cum_ve = np.concatenate([[0], np.cumsum(exp * valid)])
        cum_vo = np.concatenate([[0], np.cumsum(obs * valid)])

        def resid(a: int, b: int) -> tuple[float, float, int]:
            lo, hi = max(0, a - 120), min(WEEK, b + 120)
            ne = cum_ve[a] - cum_ve[lo] + cum_ve[hi] - cum_ve[b]
            no = cum_vo[a] - cum_vo[lo] + cum_vo[hi] - cum_vo[b]
            level = (no + 1) / (ne + 1) if ne >= 3 else 1.0
            e = float(cum_e[b] - cum_e[a]) * level
            o = int(cum_o[b] - cum_o[a])
            return (o - e) / math.sqrt(max(e, 1.0)), e, o

        r0, e_inc, o_inc = resid(s0, e0)
        base = [resid(a, b)[0] for a, b in windows if cum_e[b] - cum_e[a] >= 1]
        sd = max(float(np.std(base, ddof=1)) if len(base) >= 3 else math.inf, 1.0)
        mid = float(np.median(base)) if base else 0.0
        z = (mid - r0) / sd
        out.update(
            z=z, effect=o_inc / e_inc if e_inc else math.nan, extra=round(e_inc - o_inc), n=o_inc, base=round(e_inc, 1)
        )
        eligible = len(base) >= 3 and z >= 3 and e_inc - o_inc >= 10
    else:
        s_inc, n_inc = _stat(inc.kind, c, (t >= s0) & (t < e0))
        vals = []
        for a, b in windows:
            v, _n = _stat(inc.kind, c, (t >= a) & (t < b))
            if not math.isnan(v):
                vals.append(v)
        if math.isnan(s_inc) or len(vals) < 3:
            out.update(n=n_inc, note="too few calls or windows")
            eligible = False
        else:
            mid = float(np.median(vals))
            sd = float(np.std(vals, ddof=1))
            extra = 0
            if inc.kind == "error_burst":
                p0 = max(mid, 1e-4)
                sd = max(sd, math.sqrt(p0 * (1 - p0) / max(n_inc, 1)))
                extra = round((s_inc - mid) * n_inc)
            else:
                sd = max(sd, 0.02 * abs(mid))
            z = (s_inc - mid) / sd if sd > 0 else 0.0
            out.update(z=z, effect=s_inc / mid if mid else math.inf, extra=extra, n=n_inc, base=round(mid, 4))
            eligible = z >= 3 and (inc.kind != "error_burst" or extra >= 10)
    out["z"] = round(float(out["z"]), 2)
    out["effect"] = round(float(out["effect"]), 3) if out["effect"] == out["effect"] else None
    out["eligible"] = bool(eligible and length >= 10)
    return out


# ---------------------------------------------------------------- OTLP encoding


def _kv(key: str, v: Any) -> KeyValue:
    if isinstance(v, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=key, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=key, value=AnyValue(double_value=v))
    if isinstance(v, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in v])))
    return KeyValue(key=key, value=AnyValue(string_value=str(v)))


def requests(week: Week, calls: dict[str, dict[str, np.ndarray]], g: Gen) -> Iterator[tuple[bytes, int]]:
    """OTLP/HTTP protobuf bodies of BATCH spans each, in time order; yields (body, span count)."""
    series = week.series
    base_ns = week.clock.start_minute * 60 * 10**9
    salt = zlib.crc32(f"v14-{week.seed}".encode()) & 0xFFFFFFFF
    # one row per span: (start minute, source, index); source >= 0 is a series, -1 a root, -2 a tool
    ts, src, idx = [], [], []
    for i, s in enumerate(series):
        n = calls[s.key]["t"].size
        ts.append(calls[s.key]["t"])
        src.append(np.full(n, i))
        idx.append(np.arange(n))
    root_req = np.concatenate([r[0] for r in g.roots]) if g.roots else np.zeros(0, dtype=np.int64)
    root_t = np.concatenate([r[1] for r in g.roots]) if g.roots else np.zeros(0)
    root_name = [r[3] for r in g.roots for _ in range(r[0].size)]
    root_svc = [r[2] for r in g.roots for _ in range(r[0].size)]
    # a root ends when its last call ends
    pos = {int(q): j for j, q in enumerate(root_req)}
    root_end = root_t + 0.5 / 60
    for s in series:
        c = calls[s.key]
        if s.service not in ("kb-assistant", "code-agent"):
            continue
        j = np.fromiter((pos.get(int(q), -1) for q in c["req"]), dtype=np.int64, count=c["req"].size)
        ok = j >= 0
        np.maximum.at(root_end, j[ok], c["t"][ok] + c["dur"][ok] / 60)
    ts.append(root_t)
    src.append(np.full(root_t.size, -1))
    idx.append(np.arange(root_t.size))
    tool_req = np.concatenate([x[0] for x in g.tools]) if g.tools else np.zeros(0, dtype=np.int64)
    tool_t = np.concatenate([x[1] for x in g.tools]) if g.tools else np.zeros(0)
    tool_d = np.concatenate([x[2] for x in g.tools]) if g.tools else np.zeros(0)
    keep = tool_t < WEEK
    tool_req, tool_t, tool_d = tool_req[keep], tool_t[keep], tool_d[keep]
    ts.append(tool_t)
    src.append(np.full(tool_t.size, -2))
    idx.append(np.arange(tool_t.size))
    t_all = np.concatenate(ts)
    s_all = np.concatenate(src)
    i_all = np.concatenate(idx)
    order = np.argsort(t_all, kind="stable")
    tools = ("read_file", "run_tests", "grep", "apply_patch", "list_dir")
    tenants = list(TENANTS)
    res_cache: dict[str, Resource] = {}

    def resource(service: str) -> Resource:
        if service not in res_cache:
            res_cache[service] = Resource(
                attributes=[
                    _kv("service.name", service),
                    _kv("deployment.environment.name", "production"),
                    _kv("telemetry.sdk.language", "python"),
                ]
            )
        return res_cache[service]

    def ids(req: int) -> bytes:
        return (salt.to_bytes(4, "big") + b"\x14\x00\x00\x00") + int(req).to_bytes(8, "big")

    root_prefix = (salt ^ 0xA5A5A5A5).to_bytes(4, "big")
    span_no = 0
    for lo in range(0, order.size, BATCH):
        by_service: dict[str, list[Span]] = {}
        for o in order[lo : lo + BATCH]:
            span_no += 1
            sid = ((salt << 32) | span_no).to_bytes(8, "big")
            k, i = int(s_all[o]), int(i_all[o])
            if k == -1:
                start = base_ns + int(root_t[i] * 60e9)
                req = int(root_req[i])
                sp = Span(
                    trace_id=ids(req),
                    span_id=(root_prefix + (req & 0xFFFFFFFF).to_bytes(4, "big")),
                    name=root_name[i],
                    kind=Span.SPAN_KIND_SERVER if root_svc[i] == "kb-assistant" else Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=start,
                    end_time_unix_nano=base_ns + int(root_end[i] * 60e9),
                    attributes=[_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", "coder")]
                    if root_svc[i] == "code-agent"
                    else [_kv("http.request.method", "POST"), _kv("http.route", "/ask")],
                )
                by_service.setdefault(root_svc[i], []).append(sp)
                continue
            if k == -2:
                req = int(tool_req[i])
                start = base_ns + int(tool_t[i] * 60e9)
                sp = Span(
                    trace_id=ids(req),
                    span_id=sid,
                    parent_span_id=root_prefix + (req & 0xFFFFFFFF).to_bytes(4, "big"),
                    name=f"execute_tool {tools[req % 5]}",
                    kind=Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + int(tool_d[i] * 1e9),
                    attributes=[
                        _kv("gen_ai.operation.name", "execute_tool"),
                        _kv("gen_ai.tool.name", tools[req % 5]),
                        _kv("gen_ai.tool.type", "function"),
                    ],
                )
                by_service.setdefault("code-agent", []).append(sp)
                continue
            s = series[k]
            c = calls[s.key]
            req = int(c["req"][i])
            start = base_ns + int(c["t"][i] * 60e9)
            err = bool(c["err"][i])
            attrs = [
                _kv("gen_ai.operation.name", s.op),
                _kv("gen_ai.provider.name", s.provider),
                _kv("gen_ai.request.model", s.model),
                _kv("server.address", s.address),
                _kv("llmtrace.release", week.releases[s.key][int(c["release"][i])][1]),
            ]
            if s.op not in ("embeddings", "rerank"):
                attrs.append(_kv("gen_ai.request.max_tokens", s.max_tokens))
            if c["stream"][i]:
                attrs.append(_kv("gen_ai.request.stream", True))
            if err:
                et = ETYPES[s.provider][int(c["et"][i]) - 1]
                attrs.append(_kv("error.type", et))
            else:
                attrs.append(_kv("gen_ai.response.model", s.model))
                attrs.append(_kv("gen_ai.response.id", f"r-{salt:x}-{span_no}"))
                attrs.append(_kv("gen_ai.usage.input_tokens", int(c["inp"][i])))
                if s.op not in ("embeddings", "rerank"):
                    attrs.append(_kv("gen_ai.usage.output_tokens", int(c["out"][i])))
                if c["cache"][i]:
                    attrs.append(_kv("gen_ai.usage.cache_read.input_tokens", int(c["cache"][i])))
                if c["cwrite"][i]:
                    attrs.append(_kv("gen_ai.usage.cache_write.input_tokens", int(c["cwrite"][i])))
                if c["reasoning"][i]:
                    attrs.append(_kv("gen_ai.usage.reasoning.output_tokens", int(c["reasoning"][i])))
                f = int(c["fin"][i])
                if f >= 0:
                    attrs.append(_kv("gen_ai.response.finish_reasons", [FINISH[s.provider][f]]))
                if not math.isnan(c["ttft"][i]):
                    attrs.append(_kv("gen_ai.response.time_to_first_chunk", round(float(c["ttft"][i]), 4)))
                if not math.isnan(c["cost"][i]):
                    attrs.append(_kv("llmtrace.cost.usd", float(c["cost"][i])))
                if c["semhit"][i]:
                    attrs.append(_kv("llmtrace.metadata.semantic_cache", "hit"))
            if c["user"][i] >= 0:
                u = int(c["user"][i])
                attrs.append(_kv("user.id", f"{tenants[int(c['tenant'][i])]}-u{u}" if c["tenant"][i] >= 0 else f"u{u}"))
            if c["tenant"][i] >= 0:
                attrs.append(_kv("llmtrace.metadata.tenant", tenants[int(c["tenant"][i])]))
            if c["sess"][i] >= 0:
                attrs.append(_kv("session.id", f"s{int(c['sess'][i]):x}"))
            parent = b""
            if s.service in ("kb-assistant", "code-agent"):
                parent = root_prefix + (req & 0xFFFFFFFF).to_bytes(4, "big")
            sp = Span(
                trace_id=ids(req),
                span_id=sid,
                parent_span_id=parent,
                name=f"{s.op} {s.model}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + max(int(c["dur"][i] * 1e9), 1000),
                attributes=attrs,
                status=Status(code=Status.STATUS_CODE_ERROR, message=et) if err else Status(),
            )
            by_service.setdefault(s.service, []).append(sp)
        body = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=resource(svc),
                    scope_spans=[ScopeSpans(scope=InstrumentationScope(name="judge14", version="14"), spans=spans)],
                )
                for svc, spans in by_service.items()
            ]
        )
        yield body.SerializeToString(), sum(len(v) for v in by_service.values())
