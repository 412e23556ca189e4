"""Traffic for the blind judge 15: one week of GenAI spans with labelled incidents and benign changes.

A seed and an end minute give one week (8 days ending at ``end``), always the same. Week minutes
run from 0 (``end`` - 8 days) to ``WEEK`` (``end``). Twelve service x model series over eight
services, none of them shaped like judge 14's:

* ``gateway`` (Europe/Istanbul): an API gateway at 30-60 calls/min in its weekday working hours
  (a few a minute at night and on the weekend), primary ``gpt-4.1-mini``; a provider fallback
  (``claude-3-5-haiku``, anthropic) takes a request only when the primary's last attempt failed,
  in the same trace, under a ``POST /v1/chat`` server span.
* ``support-desk``: one service in two regions, ``ap-northeast-1`` on Tokyo office hours and
  ``sa-east-1`` on Sao Paulo office hours (resource ``cloud.region``), every call a stream with a
  time to first chunk; a planned migration mid-week moves it from ``claude-sonnet-4`` to
  ``claude-sonnet-4-5`` over an hour (benign, labelled ``migration``).
* ``growth-app`` (America/Bogota): a consumer app growing 4 %/day, evening peak, 60 % streams,
  ``gemini-2.5-flash`` (operation ``generate_content``) and ``gpt-4o-mini`` titles; a prompt
  release makes its answers 1.3x longer from a point on (``release``, its z is recorded); the
  Friday-afternoon marketing email doubles its traffic for 90 minutes (``marketing_email``).
* ``agent-ops`` (Asia/Kolkata): an agent whose ``invoke_agent`` traces hold 3-12 model calls
  (planner ``gpt-4.1`` first and last, ``claude-haiku-4-5`` for the tool steps in between) with an
  ``execute_tool`` span after each non-final call.
* ``nightly-batch`` (Asia/Tokyo): ``gpt-4.1-nano`` at 25 calls/min from 02:00 local for 40 min.
* ``chat-lite`` (Australia/Brisbane): a very sparse chat (0.2-2 calls/min), ``mistral-small``, streams.
* ``embed-svc`` (UTC): ``text-embedding-3-small`` embeddings, no output tokens.
* ``summarizer-v2`` (UTC): a young service, 24-40 h of history at the end (its three incidents come
  after 12 h or more), ``deepseek-chat`` streams.

Incidents (10-150 min, any time of day or week, some overlapping, small to large): latency
spikes, slow ramps, TTFT spikes, 5xx bursts, 429 storms with app retries (same trace), timeouts
(errors of a client timeout's length), volume drops of a service, of one model, of one region,
partial outages (one region's calls fail), permanent output-token shifts (x1.8-3 or x0.4), cost
spikes from prompt bloat (input tokens x3-10 on part of the calls), truncation bursts (finish
reason ``length``), empty-output bursts. ``eligibility`` applies the issue's rule to each.

Spans follow the GenAI conventions (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.*``,
``gen_ai.response.finish_reasons``, ``gen_ai.request.stream``,
``gen_ai.response.time_to_first_chunk``, ``error.type`` with status ERROR); no cost attribute is
sent (the server prices calls at ingest, as it does for other instrumentations).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

WEEK = 8 * 1440
BATCH_SPANS = 4000

# finish reasons and error classes (codes in the call arrays)
FINISH = ("", "stop", "length", "tool_calls")
STOP, LENGTH, TOOL = 1, 2, 3
E_SERVER, E_RATE, E_TIMEOUT, E_CONNECT = 1, 2, 3, 4
ERROR_TYPES = {
    "openai": (
        "",
        "openai.InternalServerError",
        "openai.RateLimitError",
        "openai.APITimeoutError",
        "openai.APIConnectionError",
    ),
    "anthropic": (
        "",
        "anthropic.InternalServerError",
        "anthropic.RateLimitError",
        "anthropic.APITimeoutError",
        "anthropic.APIConnectionError",
    ),
    "gcp.gemini": (
        "",
        "google.genai.errors.ServerError",
        "google.genai.errors.ClientError",
        "httpx.ReadTimeout",
        "httpx.ConnectError",
    ),
    "mistral_ai": (
        "",
        "mistralai.models.SDKError",
        "mistralai.models.SDKError",
        "httpx.ReadTimeout",
        "httpx.ConnectError",
    ),
    "deepseek": (
        "",
        "openai.InternalServerError",
        "openai.RateLimitError",
        "openai.APITimeoutError",
        "openai.APIConnectionError",
    ),
}
SERVER_ADDRESS = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gcp.gemini": "generativelanguage.googleapis.com",
    "mistral_ai": "api.mistral.ai",
    "deepseek": "api.deepseek.com",
}
RESPONSE_MODEL = {
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022",
    "claude-sonnet-4-20250514": "claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "gemini-2.5-flash": "gemini-2.5-flash",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "mistral-small-latest": "mistral-small-2506",
    "text-embedding-3-small": "text-embedding-3-small",
    "deepseek-chat": "deepseek-chat",
}

GW = "gateway|gpt-4.1-mini"
FB = "gateway|claude-3-5-haiku-20241022"
SDA = "support-desk|claude-sonnet-4-20250514"
SDB = "support-desk|claude-sonnet-4-5"
GR = "growth-app|gemini-2.5-flash"
GT = "growth-app|gpt-4o-mini"
AP = "agent-ops|gpt-4.1"
AW = "agent-ops|claude-haiku-4-5"
BA = "nightly-batch|gpt-4.1-nano"
CL = "chat-lite|mistral-small-latest"
EM = "embed-svc|text-embedding-3-small"
SU = "summarizer-v2|deepseek-chat"
SD = "support-desk"  # whichever support-desk model serves at the incident's time

WEEKLY = {"gateway", "support-desk", "agent-ops", "embed-svc", "summarizer-v2"}  # quiet weekends
SU_KINDS = {"latency_spike", "error_burst", "ttft_spike", "rate_limit", "truncation", "cost_spike", "output_shift"}
UP_KINDS = {
    "latency_spike",
    "slow_ramp",
    "ttft_spike",
    "error_burst",
    "rate_limit",
    "timeout",
    "region_outage",
    "cost_spike",
    "truncation",
    "empty_output",
}
DOWN_KINDS = {"volume_drop", "model_drop", "region_drop"}
ERROR_KINDS = {"error_burst", "rate_limit", "timeout", "region_outage"}
VOLUME_KINDS = DOWN_KINDS
RATE_KINDS = ERROR_KINDS | {"truncation", "empty_output"}  # a share of calls: also >= 10 extra events

# kind: (per week, targets, min/max minutes)
PLAN: dict[str, tuple[int, tuple[str, ...], tuple[int, int]]] = {
    "latency_spike": (4, (GW, SD, GR, AP, AW, BA, CL, EM, GT), (10, 150)),
    "slow_ramp": (2, (GW, SD, GR, EM, AW), (60, 150)),
    "ttft_spike": (3, (SD, GR, CL), (10, 150)),
    "error_burst": (3, (GW, SD, GR, AW, AP, CL, EM, BA), (10, 150)),
    "rate_limit": (2, (GW, SD, GR, AW), (10, 120)),
    "timeout": (2, (GW, SD, AP, GR, BA), (10, 120)),
    "volume_drop": (
        3,
        ("gateway", "growth-app", "support-desk", "embed-svc", "chat-lite", "agent-ops"),
        (10, 150),
    ),
    "model_drop": (2, (GT, GR, AP, AW), (10, 150)),
    "region_drop": (1, ("ap-northeast-1", "sa-east-1"), (15, 150)),
    "region_outage": (2, ("ap-northeast-1", "sa-east-1"), (10, 120)),
    "output_shift": (2, (GW, GR, SD, CL, AP), (120, 120)),
    "cost_spike": (2, (GW, GR, SD, AW, EM, BA), (10, 150)),
    "truncation": (2, (GW, GR, SD, CL, BA), (10, 150)),
    "empty_output": (2, (GW, GR, SD, AW, CL), (10, 150)),
}


RESOURCE_OF = {
    "gateway": ("eu-central-1",),
    "support-desk": ("ap-northeast-1", "sa-east-1"),
    "growth-app": ("us-east-1",),
    "agent-ops": ("ap-south-1",),
    "nightly-batch": ("ap-northeast-1",),
    "chat-lite": ("ap-southeast-2",),
    "embed-svc": ("us-east-1",),
    "summarizer-v2": ("eu-west-1",),
}

# one row per series: stream = share of calls streamed, inp/out = lognormal median:sigma of tokens,
# tps = output tokens per second, prefill = seconds to the first token at 1k input tokens
SERIES_TABLE = """
service       model                     provider   op               tz
gateway       gpt-4.1-mini              openai     chat             Europe/Istanbul
gateway       claude-3-5-haiku-20241022 anthropic  chat             Europe/Istanbul
support-desk  claude-sonnet-4-20250514  anthropic  chat             Asia/Tokyo
support-desk  claude-sonnet-4-5         anthropic  chat             Asia/Tokyo
growth-app    gemini-2.5-flash          gcp.gemini generate_content America/Bogota
growth-app    gpt-4o-mini               openai     chat             America/Bogota
agent-ops     gpt-4.1                   openai     chat             Asia/Kolkata
agent-ops     claude-haiku-4-5          anthropic  chat             Asia/Kolkata
nightly-batch gpt-4.1-nano              openai     chat             Asia/Tokyo
chat-lite     mistral-small-latest      mistral_ai chat             Australia/Brisbane
embed-svc     text-embedding-3-small    openai     embeddings       UTC
summarizer-v2 deepseek-chat             deepseek   chat             UTC
"""
SHAPE_TABLE = """
model                     stream inp      out     tps prefill max  cache err
gpt-4.1-mini              0.0    900:0.6  220:0.7 95  0.35    1024 0.0   0.004
claude-3-5-haiku-20241022 0.0    900:0.6  200:0.7 70  0.45    1024 0.0   0.01
claude-sonnet-4-20250514  1.0    2500:0.5 350:0.6 55  0.8     2048 0.6   0.003
claude-sonnet-4-5         1.0    2500:0.5 380:0.6 62  0.75    2048 0.6   0.003
gemini-2.5-flash          0.6    600:0.7  300:0.7 150 0.3     1500 0.0   0.003
gpt-4o-mini               0.0    300:0.4  12:0.3  80  0.25    32   0.0   0.003
gpt-4.1                   0.0    3000:0.4 250:0.6 60  0.5     4096 0.0   0.003
claude-haiku-4-5          0.0    1500:0.5 120:0.6 80  0.4     1024 0.3   0.003
gpt-4.1-nano              0.0    4000:0.5 150:0.5 200 0.4     512  0.0   0.003
mistral-small-latest      1.0    500:0.7  280:0.7 110 0.3     1200 0.0   0.003
text-embedding-3-small    0.0    1200:0.9 0:0     0   0.05    0    0.0   0.002
deepseek-chat             1.0    3500:0.5 400:0.5 40  1.2     2048 0.0   0.005
"""


def _series(row: str, shape: str) -> Series:
    service, model, provider, op, tz = row.split()
    model_again, stream, inp, out, tps, prefill, max_tokens, cache, err = shape.split()
    assert model_again == model, (row, shape)
    med_i, sig_i = (float(x) for x in inp.split(":"))
    med_o, sig_o = (float(x) for x in out.split(":"))
    return Series(
        service, model, provider, op, tz, RESOURCE_OF[service], float(stream), (med_i, sig_i), (med_o, sig_o),
        float(tps), float(prefill), int(max_tokens), float(cache), float(err),
    )  # fmt: skip


# ---------------------------------------------------------------- clock


def end_now() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


class Clock:
    """Week minutes <-> UTC and local time (every zone used here keeps one offset all year)."""

    def __init__(self, end: datetime):
        self.end = end
        self.end_minute = int(end.timestamp()) // 60
        self.start_minute = self.end_minute - WEEK

    def offset(self, tz: str) -> int:
        return int(ZoneInfo(tz).utcoffset(self.end).total_seconds() // 60)

    def local(self, m: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
        """(local hour as a float, local weekday with Monday = 0) of week minutes."""
        lm = self.start_minute + np.asarray(m, dtype=float) + self.offset(tz)
        day = np.floor(lm / 1440.0)
        return (lm - day * 1440.0) / 60.0, ((day + 3) % 7).astype(int)  # 1970-01-01 was a Thursday

    def midnights(self, tz: str) -> list[tuple[int, int]]:
        """(week minute, weekday) of each local midnight from a day before the week to a day after."""
        off = self.offset(tz)
        first = (self.start_minute + off) // 1440 - 1
        out = []
        for d in range(first, first + 11):
            out.append((d * 1440 - off - self.start_minute, (d + 3) % 7))
        return out

    def iso(self, m: float) -> str:
        return datetime.fromtimestamp((self.start_minute + m) * 60.0, tz=timezone.utc).isoformat()


# ---------------------------------------------------------------- series, incidents, benign changes


@dataclass
class Series:
    service: str
    model: str
    provider: str
    op: str
    tz: str
    regions: tuple[str, ...]
    stream: float  # share of calls streamed
    inp: tuple[float, float]  # lognormal median, sigma
    out: tuple[float, float]
    tps: float  # output tokens per second
    prefill: float  # seconds before the first token at 1k input tokens
    max_tokens: int
    cache: float = 0.0  # share of calls with a cache read
    err: float = 0.003  # background failure rate
    first: int = 0  # week minute of the first call (0: the whole week)

    @property
    def key(self) -> str:
        return f"{self.service}|{self.model}"


@dataclass
class Incident:
    kind: str
    series: list[str]
    start: int
    end: int
    size: float
    scope: str = "series"  # series | service | model | region
    region: str = ""
    permanent: bool = False
    touched: list[str] = field(default_factory=list)
    cause: str = ""
    note: str = ""

    @property
    def direction(self) -> int:
        if self.kind == "output_shift":
            return 1 if self.size > 1 else -1
        return -1 if self.kind in DOWN_KINDS else 1

    def label(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "series": list(self.series),
            "start": self.start,
            "end": self.end,
            "size": round(self.size, 3),
            "scope": self.scope,
            "region": self.region,
            "permanent": self.permanent,
            "touched": list(self.touched),
            "cause": self.cause,
            "note": self.note,
            "direction": self.direction,
        }


@dataclass
class Benign:
    kind: str
    series: list[str]
    start: float
    end: float
    note: str = ""
    z: float | None = None
    eligible: bool | None = None


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _office(
    h: np.ndarray, wd: np.ndarray, open_: float, close: float, peak: float, night: float, weekend: float
) -> np.ndarray:
    day = _sig((h - open_) / 0.6) * _sig((close - h) / 0.8)
    dip = 1.0 - 0.22 * np.exp(-(((h - 12.6) / 0.7) ** 2))
    weekday = night + (peak - night) * day * dip
    weekend_level = night + (weekend - night) * _sig((h - 10) / 1.0) * _sig((19 - h) / 1.0)
    return np.where(wd < 5, weekday, weekend_level)


def _evening(h: np.ndarray, wd: np.ndarray, low: float, high: float, peak_h: float = 20.5) -> np.ndarray:
    f = ((1.0 + np.cos(2 * np.pi * (h - peak_h) / 24.0)) / 2.0) ** 1.4
    return (low + (high - low) * f) * np.where(wd >= 5, 1.2, 1.0)


class Week:
    """One seed's week: series, expected rates per minute, incidents, benign changes."""

    def __init__(self, seed: int, end: datetime, scale: float = 1.0):
        self.seed = seed
        self.scale = scale
        self.clock = Clock(end)
        rng = np.random.default_rng([seed, self.clock.end_minute % (7 * 1440), 15])
        self.salt = int(rng.integers(1, 2**62))
        minutes = np.arange(WEEK) + 0.5
        self.minutes = minutes
        # ---- the planned events
        self.migration = self._weekday_at(WEEK // 2 - 720 + int(rng.integers(0, 1440)), "Asia/Tokyo", 10.0)
        self.release = self._weekday_at(
            int(rng.integers(2 * 1440, 6 * 1440)), "America/Bogota", float(rng.uniform(10, 16)), WEEK - 12 * 60
        )
        fridays = [m + int(rng.uniform(14, 15.5) * 60) for m, wd in self.clock.midnights("America/Bogota") if wd == 4]
        fridays = [f for f in fridays if f >= 0 and f + 90 <= WEEK]
        self.email = fridays[-1] if fridays else -1
        young_first = WEEK - int(rng.uniform(24, 40) * 60)
        self.series = [
            _series(row, shape)
            for row, shape in zip(
                SERIES_TABLE.strip().splitlines()[1:], SHAPE_TABLE.strip().splitlines()[1:], strict=True
            )
        ]
        self.by_key = {s.key: s for s in self.series}
        self.by_key[SDB].first = self.migration
        self.by_key[SU].first = young_first
        self.demand = self._demand(rng)
        self.rate = self._rates()
        self.benign = self._benign()
        self.incidents: list[Incident] = []
        self._schedule(rng)

    # ---- planned times

    def _weekday_at(self, around: int, tz: str, hour: float, latest: int = WEEK) -> int:
        """The first weekday ``hour`` local at or after week minute ``around``, else the last one before
        ``latest`` (a release planned on a Friday evening goes out the Friday, not after the week)."""
        slots = [m + int(hour * 60) for m, wd in self.clock.midnights(tz) if wd < 5]
        slots = [t for t in slots if 0 <= t < latest]
        after = [t for t in slots if t >= around]
        return after[0] if after else slots[-1]

    # ---- traffic

    def _wobble(self, rng: np.random.Generator, sd: float = 0.07, block: int = 30) -> np.ndarray:
        """A slowly varying multiplicative noise: AR(1) on half-hour blocks, and a per-day factor."""
        n = WEEK // block + 1
        e = np.empty(n)
        e[0] = rng.normal(0, sd)
        for i in range(1, n):
            e[i] = 0.85 * e[i - 1] + rng.normal(0, sd * math.sqrt(1 - 0.85**2))
        day = rng.normal(0, 0.05, WEEK // 1440 + 2)
        idx = np.arange(WEEK)
        return np.exp(e[idx // block] + day[(idx + self.clock.start_minute % 1440) // 1440])

    def _demand(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Requests per minute per (service or service:region) before routing and incidents."""
        m, c, sc = self.minutes, self.clock, self.scale
        d: dict[str, np.ndarray] = {}
        h, wd = c.local(m, "Europe/Istanbul")
        d["gateway"] = sc * _office(h, wd, 9.0, 17.0, 50.0, 2.0, 4.5) * self._wobble(rng)
        for region, tz in (("ap-northeast-1", "Asia/Tokyo"), ("sa-east-1", "America/Sao_Paulo")):
            h, wd = c.local(m, tz)
            d[f"support-desk:{region}"] = sc * _office(h, wd, 9.0, 18.0, 4.2, 0.15, 0.5) * self._wobble(rng)
        h, wd = c.local(m, "America/Bogota")
        growth = 1.04 ** (m / 1440.0)
        email = np.where((m >= self.email) & (m < self.email + 90), 2.0, 1.0) if self.email >= 0 else 1.0
        d["growth-app"] = sc * _evening(h, wd, 0.5, 3.6) * growth * email * self._wobble(rng)
        h, wd = c.local(m, "Asia/Kolkata")
        d["agent-ops"] = _office(h, wd, 9.5, 19.0, 0.42, 0.05, 0.1) * self._wobble(rng)  # sessions / min
        h, _ = c.local(m, "Asia/Tokyo")
        lm = c.start_minute + m + c.offset("Asia/Tokyo")
        day_index = np.floor(lm / 1440.0).astype(int)
        jitter = rng.integers(0, 4, day_index.max() - day_index.min() + 1)[day_index - day_index.min()]
        in_batch = (h * 60 >= 120 + jitter) & (h * 60 < 160 + jitter)
        d["nightly-batch"] = np.where(in_batch, 25.0, 0.0) * max(sc, 0.5)
        h, wd = c.local(m, "Australia/Brisbane")
        d["chat-lite"] = _evening(h, wd, 0.2, 2.0, 20.0) / np.where(wd >= 5, 1.2, 1.0) * self._wobble(rng, 0.1)
        h, wd = c.local(m, "UTC")
        d["embed-svc"] = sc * _office(h, wd, 8.0, 20.0, 3.2, 0.6, 0.8) * self._wobble(rng)
        first = self.by_key[SU].first
        d["summarizer-v2"] = np.where(m >= first, 1.2 + 2.2 * _sig((h - 8) / 0.7) * _sig((18 - h) / 0.7), 0.0) * (
            self._wobble(rng)
        )
        self.batch_minutes = in_batch
        return d

    def migration_share(self, t: np.ndarray) -> np.ndarray:
        """Share of support-desk requests on the new model (0 before the migration, 1 an hour after)."""
        return np.clip((np.asarray(t, dtype=float) - self.migration) / 60.0, 0.0, 1.0)

    def _rates(self) -> dict[str, np.ndarray]:
        """Expected model calls per minute per series (before incidents), for scheduling."""
        d, m = self.demand, self.minutes
        sd = d["support-desk:ap-northeast-1"] + d["support-desk:sa-east-1"]
        pb = self.migration_share(m)
        return {
            GW: d["gateway"],
            FB: d["gateway"] * 0.005,
            SDA: sd * (1 - pb),
            SDB: sd * pb,
            GR: d["growth-app"],
            GT: d["growth-app"] * 0.3,
            AP: d["agent-ops"] * 2.0,
            AW: d["agent-ops"] * 5.5,
            BA: d["nightly-batch"],
            CL: d["chat-lite"],
            EM: d["embed-svc"],
            SU: d["summarizer-v2"],
        }

    def expected(self, keys: list[str], start: float, end: float, region: str = "") -> float:
        a, b = max(int(start), 0), min(int(end), WEEK)
        total = 0.0
        for k in keys:
            r = self.rate[k][a:b]
            if region:
                d = self.demand
                share = d[f"support-desk:{region}"][a:b] / np.maximum(
                    d["support-desk:ap-northeast-1"][a:b] + d["support-desk:sa-east-1"][a:b], 1e-9
                )
                r = r * share
            total += float(r.sum())
        return total

    # ---- benign changes

    def _benign(self) -> list[Benign]:
        out = [
            Benign("release", [GR], self.release, self.release + 360, "prompt v2: answers x1.3"),
            Benign("migration", [SDA], self.migration, WEEK, "claude-sonnet-4 retired over an hour"),
            Benign("migration", [SDB], self.migration, self.migration + 60 + 360, "claude-sonnet-4-5 takes over"),
            Benign("young_start", [SDB], self.migration, self.migration + 1440),
            Benign("young_start", [SU], self.by_key[SU].first, self.by_key[SU].first + 720),
            Benign("growth", [GR, GT], 0, WEEK, "+4 %/day"),
            Benign("fallback", [FB], 0, WEEK, "takes requests only when the primary fails"),
        ]
        if self.email >= 0:
            out.append(Benign("marketing_email", [GR, GT], self.email, self.email + 120, "Friday email: x2 for 90 min"))
        on = np.flatnonzero(np.diff(np.r_[0, self.batch_minutes.astype(int), 0]))
        for a, b in zip(on[::2], on[1::2], strict=True):
            out.append(Benign("batch_schedule", [BA], float(a) - 5, float(b) + 10, "02:00 local, 40 min"))
        office = {  # zone, series, opening and closing hours (as in _demand)
            "gateway": ("Europe/Istanbul", [GW, FB], 9.0, 17.0),
            "support-desk:ap": ("Asia/Tokyo", [SDA, SDB], 9.0, 18.0),
            "support-desk:sa": ("America/Sao_Paulo", [SDA, SDB], 9.0, 18.0),
            "agent-ops": ("Asia/Kolkata", [AP, AW], 9.5, 19.0),
            "embed-svc": ("UTC", [EM], 8.0, 20.0),
            "summarizer-v2": ("UTC", [SU], 8.0, 18.0),
        }
        evening = {"growth-app": ("America/Bogota", [GR, GT]), "chat-lite": ("Australia/Brisbane", [CL])}
        zones = [(tz, keys) for tz, keys, *_h in office.values()] + list(evening.values()) + [("Asia/Tokyo", [BA])]
        for tz, keys in zones:
            for m, wd in self.clock.midnights(tz):
                if wd == 5:
                    out.append(Benign("weekend", keys, max(m, 0), min(m + 2 * 1440 + 600, WEEK), tz))
        for tz, keys, open_, close in office.values():  # the morning and evening ramps, 2 h before to 1.5 h after
            for m, wd in self.clock.midnights(tz):
                if wd < 5:
                    out.append(Benign("daily_peak", keys, m + (open_ - 2) * 60, m + (open_ + 1.5) * 60, tz))
                    out.append(Benign("daily_peak", keys, m + (close - 1.5) * 60, m + (close + 2) * 60, tz))
        for tz, keys in evening.values():
            for m, _wd in self.clock.midnights(tz):
                out.append(Benign("daily_peak", keys, m + 1020, m + 1410, tz))
        return [b for b in out if b.end > 0 and b.start < WEEK]

    # ---- incidents

    def _targets(self, kind: str, target: str, start: int, end: int) -> tuple[list[str], str, str, list[str]]:
        """(series, scope, region, touched) of an incident on ``target`` in [start, end)."""
        services = {s.service for s in self.series}
        if target in services or target == SD or target in ("ap-northeast-1", "sa-east-1"):
            service = "support-desk" if target in (SD, "ap-northeast-1", "sa-east-1") else target
            keys = [s.key for s in self.series if s.service == service and s.key != FB]
            total = self.expected(keys, start, end)
            keys = [k for k in keys if self.expected([k], start, end) >= 0.1 * max(total, 1e-9)]
            region = target if target.endswith("-1") else ""
            scope = "region" if region else ("service" if target in services else "series")
            if scope == "series" and len(keys) > 1:  # a support-desk model incident during the migration hour
                scope = "service"
        else:
            keys, scope, region = [target], "series", ""
        if kind == "model_drop":
            scope = "model"
        touched = [FB] if GW in keys and kind in ERROR_KINDS else []
        return keys, scope, region, touched

    def _schedule(self, rng: np.random.Generator) -> None:
        kinds = [k for k, (n, _t, _d) in PLAN.items() for _ in range(n)]
        order = rng.permutation(len(kinds))
        young_su = 3  # incidents on the 12-30 h old series (only these)
        young_sdb = 1  # and on the new support-desk model in its first two days
        shift_on: set[str] = set()
        for i in order:
            kind = kinds[i]
            _n, targets, (dmin, dmax) = PLAN[kind]
            for _attempt in range(400):
                dur = round(math.exp(rng.uniform(math.log(dmin), math.log(dmax + 1))))
                dur = min(max(dur, dmin), dmax)
                lo, hi = 30, WEEK - dur
                target = str(targets[rng.integers(len(targets))])
                if young_su and kind in SU_KINDS:
                    target = SU
                    lo = max(lo, self.by_key[SU].first + 12 * 60)  # 12 h of history at least
                    if kind != "output_shift":
                        dur = min(dur, int(rng.integers(10, 46)))
                elif young_sdb and SD in targets and kind not in ("output_shift",):
                    target = SD
                    lo, hi = self.migration + 70, min(hi, self.migration + 48 * 60 - dur)
                if kind == "output_shift":
                    if target == SD:
                        lo = max(lo, self.migration + 90)
                    hi = min(hi, WEEK - 150)
                if hi <= lo:
                    continue
                if self.incidents and target != SU and rng.random() < 0.25:  # overlap another incident
                    other = self.incidents[int(rng.integers(len(self.incidents)))]
                    start = int(other.start + rng.uniform(-0.5, 0.8) * (other.end - other.start))
                    if not lo <= start <= hi:
                        continue
                else:
                    start = int(rng.integers(lo, hi))
                end = start + dur
                keys, scope, region, touched = self._targets(kind, target, start, end)
                if (
                    not keys
                    or (kind == "output_shift" and keys[0] in shift_on)
                    or (len(keys) > 1 and kind == "output_shift")
                ):
                    continue
                need = 12 if kind in ("latency_spike", "slow_ramp", "ttft_spike", "output_shift", "cost_spike") else 25
                exp = self.expected(keys, start, end, region)
                if kind == "ttft_spike":
                    exp *= min(self.by_key[k].stream for k in keys)
                if exp < need:
                    continue
                if any(
                    (o.kind == kind or target == SU)
                    and set(o.series) & set(keys)
                    and o.start < end + 60
                    and start < o.end + 60
                    for o in self.incidents
                ):
                    continue
                break
            else:
                continue
            if target == SU:
                young_su = max(young_su - 1, 0)
            if target == SD and self.migration + 70 <= start < self.migration + 48 * 60:
                young_sdb = max(young_sdb - 1, 0)
            size, cause = self._size(kind, rng)
            permanent = kind == "output_shift"
            if permanent:
                shift_on.add(keys[0])
            self.incidents.append(Incident(kind, keys, start, end, size, scope, region, permanent, touched, cause))
        self.incidents.sort(key=lambda x: (x.start, x.kind))
        for a in self.incidents:
            sa = {k.split("|")[0] for k in a.series + a.touched}
            for b in self.incidents:
                if a is b or not (a.start < b.end and b.start < a.end):
                    continue
                if sa & {k.split("|")[0] for k in b.series + b.touched}:
                    a.note = "overlap"

    def _size(self, kind: str, rng: np.random.Generator) -> tuple[float, str]:
        """(size, cause): small ones as well as big ones (log-uniform where the range is wide)."""

        def lu(lo: float, hi: float) -> float:
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

        if kind == "latency_spike":
            return lu(1.4, 6.0), "slow provider region"
        if kind == "slow_ramp":
            return float(rng.uniform(1.6, 4.0)), "queue building up, then drained"
        if kind == "ttft_spike":
            return lu(1.5, 8.0), "provider prefill backlog"
        if kind == "error_burst":
            return lu(0.03, 0.7), "5xx from the provider"
        if kind == "rate_limit":
            return lu(0.1, 0.8), "429 storm (retried by the app)"
        if kind == "timeout":
            return lu(0.03, 0.4), "client timeouts"
        if kind in DOWN_KINDS:
            cause = {"volume_drop": "upstream outage", "model_drop": "feature flag off", "region_drop": "regional LB"}
            return float(rng.uniform(0.5, 1.0)), cause[kind]
        if kind == "region_outage":
            return float(rng.uniform(0.3, 1.0)), "one region cannot reach the provider"
        if kind == "output_shift":
            return (float(rng.uniform(1.8, 3.0)) if rng.random() < 0.7 else 0.4), "model update"
        if kind == "cost_spike":
            return float(rng.uniform(3, 10)), f"prompt bloat on {lu(0.1, 1.0):.2f} of calls"
        if kind == "truncation":
            return lu(0.04, 0.6), "max_tokens set too low"
        if kind == "empty_output":
            return lu(0.04, 0.6), "empty completions"
        raise ValueError(kind)

    def share_of(self, inc: Incident) -> float:
        """The share of calls a cost spike bloats (kept in its cause text)."""
        return float(inc.cause.split(" on ")[1].split(" ")[0]) if inc.kind == "cost_spike" else 1.0


# ---------------------------------------------------------------- calls

FIELDS = ("t", "dur", "err", "etype", "ttft", "stream", "inp", "out", "cache", "reasoning", "finish", "region")
FIELDS += ("trace", "span", "parent", "attempt", "cost")


def unit_prices(s: Series) -> tuple[float, float, float]:
    """USD per input, per cache-read input and per output token of a series' calls (llmtrace's table,
    the response model's price first, as the server prices them: mistral-small-2506 is not -latest's)."""
    from llmtrace.pricing import tokens_cost_usd

    n, models = 10_000, [RESPONSE_MODEL[s.model], s.model]
    p_in = (tokens_cost_usd(s.provider, models, n, 0, 0, 0) or 0.0) / n
    p_cache = (tokens_cost_usd(s.provider, models, n, 0, n, 0) or 0.0) / n
    p_out = (tokens_cost_usd(s.provider, models, 0, n, 0, 0) or 0.0) / n if s.op != "embeddings" else 0.0
    return p_in, p_cache, p_out


def _arrivals(rate: np.ndarray, rng: np.random.Generator, first: int = 0) -> np.ndarray:
    counts = rng.poisson(np.maximum(rate, 0.0))
    counts[: max(first, 0)] = 0
    t = np.repeat(np.arange(WEEK, dtype=float), counts) + rng.random(int(counts.sum()))
    return np.sort(t)


class _Ids:
    def __init__(self) -> None:
        self.trace = 0
        self.span = 0

    def traces(self, n: int) -> np.ndarray:
        self.trace += n
        return np.arange(self.trace - n + 1, self.trace + 1, dtype=np.int64)

    def spans(self, n: int) -> np.ndarray:
        self.span += n
        return np.arange(self.span - n + 1, self.span + 1, dtype=np.int64)


def _draw(
    week: Week, s: Series, t: np.ndarray, rng: np.random.Generator, wobble: np.ndarray, stream: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """A series' calls at times ``t`` in their normal state (background errors included)."""
    n = t.size
    c: dict[str, np.ndarray] = {"t": t.astype(float)}
    inp = np.maximum(np.round(rng.lognormal(math.log(s.inp[0]), s.inp[1], n)), 5).astype(np.int64)
    if s.op == "embeddings":
        out = np.zeros(n, dtype=np.int64)
        finish = np.zeros(n, dtype=np.int8)
    else:
        out = np.maximum(np.round(rng.lognormal(math.log(s.out[0]), s.out[1], n)), 1).astype(np.int64)
        finish = np.full(n, STOP, dtype=np.int8)
        capped = out >= s.max_tokens
        out[capped] = s.max_tokens
        finish[capped] = LENGTH
        out[rng.random(n) < 0.001] = 0  # an occasional empty answer
    if s.key == GR:  # the prompt release: answers 1.3x longer from then on
        after = t >= week.release
        out[after] = np.minimum(np.round(out[after] * 1.3), s.max_tokens)
        finish[after & (out >= s.max_tokens)] = LENGTH
    if stream is None:
        stream = rng.random(n) < s.stream
    cache = np.where(rng.random(n) < s.cache, np.round(inp * rng.uniform(0.3, 0.8, n)), 0).astype(np.int64)
    lat = wobble[np.minimum(t.astype(int), WEEK - 1)] * rng.lognormal(0, 0.22, n)
    lat *= np.where(rng.random(n) < 0.02, rng.uniform(1.5, 3.5, n), 1.0)  # a heavy tail
    if s.op == "embeddings":
        dur = (0.05 + inp / 150_000.0) * lat
        ttft = np.full(n, np.nan)
    else:
        first_token = (
            s.prefill * (1 + inp / 8000.0) * rng.lognormal(0, 0.3, n) * wobble[np.minimum(t.astype(int), WEEK - 1)]
        )
        decode = out / s.tps * lat
        dur = first_token + decode
        ttft = np.where(stream, first_token, np.nan)
    c.update(
        dur=dur,
        err=np.zeros(n, dtype=bool),
        etype=np.zeros(n, dtype=np.int8),
        ttft=ttft,
        stream=stream,
        inp=inp,
        out=out,
        cache=cache,
        reasoning=np.zeros(n, dtype=np.int64),
        cost=np.zeros(n),
        finish=finish,
        region=np.zeros(n, dtype=np.int8),
        trace=np.zeros(n, dtype=np.int64),
        span=np.zeros(n, dtype=np.int64),
        parent=np.zeros(n, dtype=np.int64),
        attempt=np.zeros(n, dtype=np.int8),
    )
    bad = rng.random(n) < s.err
    kinds = rng.choice([E_SERVER, E_RATE, E_TIMEOUT], p=[0.6, 0.25, 0.15], size=n)
    _fail(c, bad, kinds, rng, s)
    return c


def _fail(
    c: dict[str, np.ndarray], mask: np.ndarray, etype: np.ndarray | int, rng: np.random.Generator, s: Series
) -> None:
    """Turn the masked calls into failures of class ``etype`` (no usage, no first token)."""
    if not mask.any():
        return
    et = np.broadcast_to(np.asarray(etype, dtype=np.int8), mask.shape)
    n = int(mask.sum())
    c["err"][mask] = True
    c["etype"][mask] = et[mask]
    c["inp"][mask] = 0
    c["out"][mask] = 0
    c["cache"][mask] = 0
    c["finish"][mask] = 0
    c["ttft"][mask] = np.nan
    timeout = 120.0 if s.service == "nightly-batch" else 60.0
    dur = np.select(
        [et[mask] == E_SERVER, et[mask] == E_RATE, et[mask] == E_TIMEOUT],
        [rng.uniform(0.3, 3.0, n), rng.uniform(0.05, 0.4, n), timeout * rng.uniform(1.0, 1.01, n)],
        rng.uniform(0.5, 5.0, n),
    )
    c["dur"][mask] = dur


def _ramp(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 -> 1 over the first 70 % of [start, end), back to 0 by its end."""
    x = (t - start) / max(end - start, 1e-9)
    return np.clip(np.where(x < 0.7, x / 0.7, (1 - x) / 0.3), 0, 1)


def _apply(week: Week, key: str, c: dict[str, np.ndarray], rng: np.random.Generator, regions: tuple[str, ...]) -> None:
    """Every non-volume incident on ``key`` applied to its calls ``c`` (any subset, e.g. retries)."""
    s = week.by_key[key]
    t = c["t"]
    for inc in week.incidents:
        if key not in inc.series or inc.kind in VOLUME_KINDS:
            continue
        w = (t >= inc.start) & ((t < inc.end) | inc.permanent)
        if inc.region:
            w &= c["region"] == regions.index(inc.region)
        if not w.any():
            continue
        ok = w & ~c["err"]
        k = inc.size
        if inc.kind == "latency_spike":
            c["dur"][ok] *= k
            c["ttft"][ok] *= 1 + 0.3 * (k - 1)
        elif inc.kind == "slow_ramp":
            f = 1 + (k - 1) * _ramp(t[ok], inc.start, inc.end)
            c["dur"][ok] *= f
            c["ttft"][ok] *= 1 + 0.3 * (f - 1)
        elif inc.kind == "ttft_spike":
            sel = ok & c["stream"]
            extra = c["ttft"][sel] * (k - 1)
            c["ttft"][sel] += extra
            c["dur"][sel] += extra
        elif inc.kind in ("error_burst", "rate_limit", "timeout", "region_outage"):
            et = {"error_burst": E_SERVER, "rate_limit": E_RATE, "timeout": E_TIMEOUT, "region_outage": E_CONNECT}
            _fail(c, ok & (rng.random(t.size) < k), et[inc.kind], rng, s)
        elif inc.kind == "output_shift":
            old = c["out"][ok]
            new = np.round(old * k).astype(np.int64)
            capped = new >= s.max_tokens
            new[capped] = s.max_tokens
            c["out"][ok] = new
            c["finish"][np.flatnonzero(ok)[capped]] = LENGTH
            c["dur"][ok] += (new - old) / s.tps
        elif inc.kind == "cost_spike":
            sel = ok & (rng.random(t.size) < week.share_of(inc))
            extra = np.round(c["inp"][sel] * (k - 1)).astype(np.int64)
            c["inp"][sel] += extra
            if s.op == "embeddings":
                c["dur"][sel] += extra / 150_000.0
            else:
                pre = s.prefill * extra / 8000.0
                c["dur"][sel] += pre
                c["ttft"][sel] += pre
        elif inc.kind == "truncation":
            sel = ok & (rng.random(t.size) < k)
            cap = max(int(s.out[0] * 0.35), 8)
            old = c["out"][sel]
            new = np.minimum(old, cap)
            c["out"][sel] = new
            c["finish"][sel] = LENGTH
            c["dur"][sel] -= (old - new) / s.tps
        elif inc.kind == "empty_output":
            sel = ok & (rng.random(t.size) < k)
            old = c["out"][sel]
            c["out"][sel] = 0
            c["dur"][sel] -= old / s.tps * 0.95
    np.maximum(c["dur"], 0.01, out=c["dur"])
    has = ~np.isnan(c["ttft"])
    c["ttft"][has] = np.minimum(c["ttft"][has], c["dur"][has])


def _drop(
    week: Week,
    service: str,
    key: str | None,
    t: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    models_only: bool = False,
) -> np.ndarray:
    """Which requests of ``service`` (model ``key``) at ``t`` survive the volume incidents."""
    keep = np.ones(t.size, dtype=bool)
    regions = week.by_key[SDA].regions
    for inc in week.incidents:
        if inc.kind not in VOLUME_KINDS or not any(k.split("|")[0] == service for k in inc.series):
            continue
        if (inc.kind == "model_drop" and key not in inc.series) or (models_only and inc.kind != "model_drop"):
            continue
        w = (t >= inc.start) & (t < inc.end)
        if inc.region:
            w &= region == regions.index(inc.region)
        keep &= ~(w & (rng.random(t.size) < inc.size))
    return keep


def _cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p["t"].size]
    if not parts:
        return {f: np.zeros(0) for f in FIELDS}
    out = {f: np.concatenate([p[f] for p in parts]) for f in FIELDS}
    order = np.argsort(out["t"], kind="stable")
    return {f: v[order] for f, v in out.items()}


def _sub(c: dict[str, np.ndarray], sel: np.ndarray) -> dict[str, np.ndarray]:
    return {f: v[sel] for f, v in c.items()}


@dataclass
class Extra:
    """Spans that are not model calls: agent roots, tool calls, request roots."""

    service: str
    region: int
    trace: int
    span: int
    parent: int
    t: float
    dur: float
    name: str
    kind: int  # SpanKind: 1 internal, 2 server
    attrs: dict[str, Any]
    error: bool = False


def generate(week: Week) -> tuple[dict[str, dict[str, np.ndarray]], list[Extra]]:
    """Every model call per series (sorted by time) and the other spans."""
    rng = np.random.default_rng([week.seed, week.clock.end_minute % (7 * 1440), 16])
    ids = _Ids()
    wob = {s.key: week._wobble(rng, 0.06, 60) for s in week.series}
    calls: dict[str, dict[str, np.ndarray]] = {}
    extras: list[Extra] = []

    def plain(key: str, t: np.ndarray, region: np.ndarray | None = None) -> dict[str, np.ndarray]:
        s = week.by_key[key]
        c = _draw(week, s, t, rng, wob[key])
        if region is not None:
            c["region"] = region.astype(np.int8)
        c["trace"] = ids.traces(t.size)
        c["span"] = ids.spans(t.size)
        _apply(week, key, c, rng, s.regions)
        return c

    # gateway: primary, then the fallback for requests whose primary failed
    t = _arrivals(week.demand["gateway"], rng)
    t = t[_drop(week, "gateway", GW, t, np.zeros(t.size), rng)]
    calls[GW] = plain(GW, t)
    # support-desk: two regions, routed by the migration
    parts_a, parts_b = [], []
    for r, region in enumerate(week.by_key[SDA].regions):
        t = _arrivals(week.demand[f"support-desk:{region}"], rng)
        reg = np.full(t.size, r)
        new = rng.random(t.size) < week.migration_share(t)
        for key, sel, parts in ((SDA, ~new, parts_a), (SDB, new, parts_b)):
            tt, rr = t[sel], reg[sel]
            keep = _drop(week, "support-desk", key, tt, rr, rng)
            parts.append(plain(key, tt[keep], rr[keep]))
    calls[SDA], calls[SDB] = _cat(parts_a), _cat(parts_b)
    # growth-app: answers and titles
    for key, share in ((GR, 1.0), (GT, 0.3)):
        t = _arrivals(week.demand["growth-app"] * share, rng)
        calls[key] = plain(key, t[_drop(week, "growth-app", key, t, np.zeros(t.size), rng)])
    # the simple ones
    for key, name in ((BA, "nightly-batch"), (CL, "chat-lite"), (EM, "embed-svc"), (SU, "summarizer-v2")):
        t = _arrivals(week.demand[name], rng, week.by_key[key].first)
        calls[key] = plain(key, t[_drop(week, name, key, t, np.zeros(t.size), rng)])
    # agent-ops: sessions of 3-12 calls with a tool call after each but the last
    calls[AP], calls[AW], agent_extras = _agents(week, rng, ids, wob)
    extras += agent_extras
    # 429s are retried by the apps (same trace, backing off), twice at most
    for key in calls:
        calls[key] = _retries(week, key, calls[key], rng, ids, wob)
    # the gateway's fallback takes what the primary could not answer
    c = calls[GW]
    last = c["err"] & ((c["etype"] != E_RATE) | (c["attempt"] >= 2))
    tf = c["t"][last] + (c["dur"][last] + rng.uniform(0.02, 0.1, int(last.sum()))) / 60.0
    fb = _draw(week, week.by_key[FB], tf, rng, wob[FB])
    fb["trace"] = c["trace"][last]
    fb["span"] = ids.spans(tf.size)
    _apply(week, FB, fb, rng, ("eu-central-1",))
    calls[FB] = _cat([fb])
    # a request root for every non-agent trace with more than one call
    for service in (
        "gateway",
        "support-desk",
        "growth-app",
        "nightly-batch",
        "chat-lite",
        "embed-svc",
        "summarizer-v2",
    ):
        keys = [k for k in calls if k.split("|")[0] == service]
        extras += _roots(service, keys, calls, ids)
    for key, c in calls.items():  # what each call costs (llmtrace's prices), for the cost spikes' statistic
        p_in, p_cache, p_out = unit_prices(week.by_key[key])
        c["cost"] = np.where(c["err"], 0.0, (c["inp"] - c["cache"]) * p_in + c["cache"] * p_cache + c["out"] * p_out)
    return calls, extras


def _agents(
    week: Week, rng: np.random.Generator, ids: _Ids, wob: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Extra]]:
    starts = _arrivals(week.demand["agent-ops"], rng)
    starts = starts[_drop(week, "agent-ops", None, starts, np.zeros(starts.size), rng)]
    n = rng.integers(3, 13, starts.size)
    traces = ids.traces(starts.size)
    roots = ids.spans(starts.size)
    sess = np.repeat(np.arange(starts.size), n)
    step = np.concatenate([np.arange(k) for k in n]) if starts.size else np.zeros(0, dtype=int)
    last = step == n[sess] - 1
    planner = (step == 0) | last
    tool = rng.lognormal(math.log(0.6), 0.7, sess.size)
    provisional = starts[sess] + step * 6.0 / 60.0
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, sel in ((AP, planner), (AW, ~planner)):
        s = week.by_key[key]
        c = _draw(week, s, provisional[sel], rng, wob[key])
        c["inp"] = np.where(c["err"], 0, c["inp"] + step[sel] * 400)
        c["finish"] = np.where(c["err"] | (c["finish"] == LENGTH), c["finish"], np.where(last[sel], STOP, TOOL)).astype(
            np.int8
        )
        c["trace"] = traces[sess[sel]]
        c["parent"] = roots[sess[sel]]
        c["span"] = ids.spans(int(sel.sum()))
        keep = _drop(week, "agent-ops", key, c["t"], np.zeros(c["t"].size), rng, models_only=True)
        c["_idx"] = np.flatnonzero(sel)
        out[key] = _sub(c, keep)
        _apply(week, key, out[key], rng, s.regions)
    # real times: each step after the previous call and its tool
    dur = np.full(sess.size, np.nan)
    present = np.zeros(sess.size, dtype=bool)
    for key in (AP, AW):
        dur[out[key]["_idx"]] = out[key]["dur"]
        present[out[key]["_idx"]] = True
    t = np.empty(sess.size)
    extras = []
    pos = 0
    tool_names = ("search_kb", "run_sql", "http_get", "read_file", "create_ticket")
    tool_pick = rng.integers(0, len(tool_names), sess.size)
    tool_ids = ids.spans(sess.size)
    for i, k in enumerate(n.tolist()):
        clock = starts[i] + 0.3 / 60.0
        for j in range(pos, pos + k):
            t[j] = clock
            if present[j]:
                clock += dur[j] / 60.0
            if j < pos + k - 1:
                if present[j]:
                    extras.append(
                        Extra(
                            "agent-ops",
                            0,
                            int(traces[i]),
                            int(tool_ids[j]),
                            int(roots[i]),
                            clock,
                            float(tool[j]),
                            f"execute_tool {tool_names[tool_pick[j]]}",
                            1,
                            {
                                "gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": tool_names[tool_pick[j]],
                                "gen_ai.tool.type": "function",
                            },
                        )
                    )
                    clock += tool[j] / 60.0
                clock += 0.05 / 60.0
        extras.append(
            Extra(
                "agent-ops",
                0,
                int(traces[i]),
                int(roots[i]),
                0,
                float(starts[i]),
                (clock - starts[i]) * 60.0 + 0.2,
                "invoke_agent ops-agent",
                1,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "ops-agent"},
            )
        )
        pos += k
    res = []
    for key in (AP, AW):
        c = out[key]
        c["t"] = t[c.pop("_idx")]
        res.append(_cat([_sub(c, c["t"] < WEEK)]))
    return res[0], res[1], [e for e in extras if e.t < WEEK]


def _retries(
    week: Week, key: str, c: dict[str, np.ndarray], rng: np.random.Generator, ids: _Ids, wob: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    s = week.by_key[key]
    parts = [c]
    prev = c
    for attempt in (1, 2):
        sel = prev["err"] & (prev["etype"] == E_RATE)
        if not sel.any():
            break
        back = (0.5 * 2**attempt) * rng.uniform(0.8, 1.6, int(sel.sum()))
        t = prev["t"][sel] + (prev["dur"][sel] + back) / 60.0
        r = _draw(week, s, t, rng, wob[key], prev["stream"][sel])
        for f in ("trace", "parent", "region"):
            r[f] = prev[f][sel]
        r["span"] = ids.spans(t.size)
        r["attempt"] = np.full(t.size, attempt, dtype=np.int8)
        _apply(week, key, r, rng, s.regions)
        keep = r["t"] < WEEK
        r = _sub(r, keep)
        parts.append(r)
        prev = r
    return _cat(parts)


def _roots(service: str, keys: list[str], calls: dict[str, dict[str, np.ndarray]], ids: _Ids) -> list[Extra]:
    if not keys:
        return []
    tr = np.concatenate([calls[k]["trace"] for k in keys])
    t0 = np.concatenate([calls[k]["t"] for k in keys])
    t1 = np.concatenate([calls[k]["t"] + calls[k]["dur"] / 60.0 for k in keys])
    reg = np.concatenate([calls[k]["region"] for k in keys])
    ok_end = np.concatenate([~calls[k]["err"] for k in keys])
    order = np.lexsort((t0, tr))
    tr, t0, t1, reg, ok_end = tr[order], t0[order], t1[order], reg[order], ok_end[order]
    uniq, first, count = np.unique(tr, return_index=True, return_counts=True)
    multi = count > 1
    if not multi.any():
        return []
    span_of = dict(zip(uniq[multi].tolist(), ids.spans(int(multi.sum())).tolist(), strict=True))
    out = []
    for u, f, n in zip(uniq[multi].tolist(), first[multi].tolist(), count[multi].tolist(), strict=True):
        a, b = t0[f], float(t1[f : f + n].max())
        ok = bool(ok_end[f + n - 1])
        route = "/v1/chat" if service == "gateway" else "/api/answer"
        out.append(
            Extra(
                service,
                int(reg[f]),
                u,
                span_of[u],
                0,
                a - 0.01 / 60.0,
                (b - a) * 60.0 + 0.02,
                f"POST {route}",
                2,
                {"http.request.method": "POST", "http.route": route, "http.response.status_code": 200 if ok else 502},
                error=not ok,
            )
        )
    for k in keys:
        c = calls[k]
        sel = np.isin(c["trace"], uniq[multi]) & (c["parent"] == 0)
        c["parent"][sel] = [span_of[x] for x in c["trace"][sel].tolist()]
    return out


# ---------------------------------------------------------------- eligibility


def _stat(kind: str, c: dict[str, np.ndarray], a: int, b: int) -> tuple[float, int, int]:
    """(statistic, calls, events) of a window [a, b) of calls ``c`` (sorted by t)."""
    i, j = np.searchsorted(c["t"], [a, b])
    n = int(j - i)
    if kind in VOLUME_KINDS:
        return float(n), n, n
    if n == 0:
        return math.nan, 0, 0
    err = c["err"][i:j]
    ok = ~err
    if kind in ERROR_KINDS:
        e = int(err.sum())
        return e / n, n, e
    if kind in ("latency_spike", "slow_ramp"):
        d = c["dur"][i:j][ok]
        return (float(np.percentile(d, 95)) if d.size >= 5 else math.nan), n, int(d.size)
    if kind == "ttft_spike":
        f = c["ttft"][i:j][ok]
        f = f[~np.isnan(f)]
        return (float(np.percentile(f, 95)) if f.size >= 5 else math.nan), n, int(f.size)
    if kind == "output_shift":
        o = c["out"][i:j][ok]
        return (float(o.mean()) if o.size >= 5 else math.nan), n, int(o.size)
    if kind == "cost_spike":
        x = c["cost"][i:j][ok]
        return (float(x.mean()) if x.size >= 5 else math.nan), n, int(x.size)
    m = int(ok.sum())
    if m == 0:
        return math.nan, n, 0
    if kind == "truncation":
        e = int((c["finish"][i:j][ok] == LENGTH).sum())
    elif kind == "empty_output":
        e = int((c["out"][i:j][ok] == 0).sum())
    else:
        raise ValueError(kind)
    return e / m, m, e


def union(calls: dict[str, dict[str, np.ndarray]], keys: list[str]) -> dict[str, np.ndarray]:
    if len(keys) == 1:
        return calls[keys[0]]
    return _cat([calls[k] for k in keys])


def eligibility(week: Week, inc: Any, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The issue's rule: >= 10 minutes, the window's statistic >= 3 sd (in the incident's direction)
    from the median of comparable windows, and for rates and volume also >= 10 extra or missing events.

    Comparable windows: the same clock time on the other days of the week (of the same kind, weekday
    or weekend day in the series' zone, for a service with a weekly shape) and the windows just
    before (the one right before when there are 3 other days to compare with, else the six before:
    the hours before a morning or evening window are on the daily ramp), none of them overlapping
    another incident on these series (nor, for a permanent shift, after its start; nor, for latency,
    tokens, cost and truncation, before an earlier permanent change on these series). The sd is
    estimated robustly (1.4826 x the median absolute deviation; the plain sd where that is 0), so a
    pre-dawn window just before a morning incident does not count as normal variation. The
    statistic, over the incident's series together: p95 latency (successful calls), p95 TTFT,
    error share, calls, mean output tokens, mean cost per successful call (llmtrace's prices: a
    bloated prompt moves an output-priced model's cost less than its input tokens), share of
    truncated or of empty answers. Fewer than 3 comparable windows (a series too young): not eligible, z 0."""
    c = union(calls, list(inc.series))
    a, b = int(inc.start), int(inc.end)
    length = b - a
    kind = inc.kind
    direction = inc.direction
    first = max(week.by_key[k].first for k in inc.series)
    others = [
        o for o in week.incidents if o is not inc and set(o.series + o.touched) & set(inc.series)
    ]  # windows they touch are not "normal"
    stat, n, events = _stat(kind, c, a, b)
    tz = week.by_key[inc.series[0]].tz
    day = [a + d * 1440 for d in range(-7, 8) if d]
    _h, wd = week.clock.local(np.array([a, *day], dtype=float), tz)
    if any(k.split("|")[0] in WEEKLY for k in inc.series):
        day = [s0 for s0, w in zip(day, wd[1:], strict=True) if (w >= 5) == (wd[0] >= 5)]

    # an earlier permanent change on these series (a model update, the prompt release) is a new normal
    # for the statistics it moves: compare with what came after it only
    changes = [o.start for o in others if o.permanent and o.start < a]
    if GR in inc.series and week.release < a:
        changes.append(week.release)
    if changes and kind in ("latency_spike", "slow_ramp", "output_shift", "cost_spike", "truncation"):
        first = max(first, max(changes) + 120)

    def usable(s0: int) -> bool:
        e0 = s0 + length
        if s0 < first or e0 > WEEK or (inc.permanent and e0 > a):
            return False
        return not any(s0 < o.end + 10 and o.start - 5 < e0 for o in others)

    day = [s0 for s0 in day if usable(s0)]
    before = [a - k * length for k in range(1, 7)]
    if len(day) >= 3:  # the same hour on other days shows the daily shape; the hours before are on it
        before = before[:1]
    comp = []
    for s0 in day + [s0 for s0 in before if usable(s0)]:
        v, m, _ev = _stat(kind, c, s0, s0 + length)
        if not math.isnan(v):
            comp.append((v, m))
    out: dict[str, Any] = {"n": n, "windows": len(comp), "stat": None, "baseline": None}
    if math.isnan(stat) or len(comp) < 3:
        return {**out, "eligible": False, "z": 0.0, "effect": None, "extra": 0}
    vals = np.array([v for v, _m in comp])
    med = float(np.median(vals))
    sd = 1.4826 * float(np.median(np.abs(vals - med)))
    if sd <= 0:
        sd = float(np.std(vals, ddof=1))
    sd = max(sd, 1e-9)
    z = min(max(direction * (stat - med) / sd, -1e4), 1e4)
    effect = stat / med if med > 0 else None
    if kind in VOLUME_KINDS:
        extra = round(med - stat)
    elif kind in RATE_KINDS:
        extra = round(events - med * n)
    else:
        extra = 0
    eligible = length >= 10 and z >= 3 and (kind not in VOLUME_KINDS | RATE_KINDS or extra >= 10)
    return {
        **out,
        "stat": round(stat, 4),
        "baseline": round(med, 4),
        "eligible": bool(eligible),
        "z": round(float(z), 1),
        "effect": round(effect, 2) if effect is not None else None,
        "extra": extra,
    }


def release_eligibility(week: Week, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The benign prompt release measured by the same rule (as an output shift x1.3 on its series)."""
    pseudo = Incident("output_shift", [GR], week.release, min(week.release + 120, WEEK), 1.3, permanent=True)
    return eligibility(week, pseudo, calls)


# ---------------------------------------------------------------- spans


def _version(service: str, t: float, week: Week) -> str:
    if service == "growth-app":
        return "2.15.0" if t >= week.release else "2.14.3"
    return {"support-desk": "5.2.0", "gateway": "1.31.2", "agent-ops": "0.9.4"}.get(service, "1.0.0")


def _kv(attrs: Any, key: str, value: Any) -> None:
    kv = attrs.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    elif isinstance(value, (list, tuple)):
        for v in value:
            kv.value.array_value.values.add().string_value = v
    else:
        kv.value.string_value = value


def _scope(req: ExportTraceServiceRequest, scopes: dict[tuple[str, str, str], Any], *rkey: str) -> Any:
    """The scope spans of one resource (service, region, version) in a request, added on first use."""
    if rkey not in scopes:
        service, region, version = rkey
        rs = req.resource_spans.add()
        for k, v in (
            ("service.name", service),
            ("service.version", version),
            ("deployment.environment.name", "production"),
            ("cloud.provider", "aws"),
            ("cloud.region", region),
            ("telemetry.sdk.language", "python"),
        ):
            _kv(rs.resource.attributes, k, v)
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.genai"
        ss.scope.version = "0.3b0"
        scopes[rkey] = ss
    return scopes[rkey]


def requests(week: Week, calls: dict[str, dict[str, np.ndarray]], extras: list[Extra]) -> Iterator[tuple[bytes, int]]:
    """OTLP/HTTP protobuf bodies of ``BATCH_SPANS`` spans each, in time order: (body, spans)."""
    base_ns = week.clock.start_minute * 60_000_000_000
    salt = week.salt
    keys = list(calls)
    starts = [calls[k]["t"] for k in keys] + [np.array([e.t for e in extras])]
    src = np.concatenate([np.full(x.size, i) for i, x in enumerate(starts)])
    idx = np.concatenate([np.arange(x.size) for x in starts])
    order = np.argsort(np.concatenate(starts), kind="stable")
    src, idx = src[order], idx[order]
    cols = {k: {f: v.tolist() for f, v in calls[k].items()} for k in keys}
    for lo in range(0, src.size, BATCH_SPANS):
        req = ExportTraceServiceRequest()
        scopes: dict[tuple[str, str, str], Any] = {}

        chunk = range(lo, min(lo + BATCH_SPANS, src.size))
        for p in chunk:
            i, j = int(src[p]), int(idx[p])
            if i == len(keys):
                e = extras[j]
                ss = _scope(req, scopes, e.service, RESOURCE_OF[e.service][e.region], _version(e.service, e.t, week))
                sp = ss.spans.add()
                sp.trace_id = ((salt << 64) | e.trace).to_bytes(16, "big")
                sp.span_id = (salt + e.span).to_bytes(8, "big")
                if e.parent:
                    sp.parent_span_id = (salt + e.parent).to_bytes(8, "big")
                sp.name = e.name
                sp.kind = e.kind
                st = base_ns + int(e.t * 60e9)
                sp.start_time_unix_nano = st
                sp.end_time_unix_nano = st + int(e.dur * 1e9)
                for k, v in e.attrs.items():
                    _kv(sp.attributes, k, v)
                if e.error:
                    sp.status.code = 2
                continue
            key = keys[i]
            s = week.by_key[key]
            c = cols[key]
            t = c["t"][j]
            ss = _scope(req, scopes, s.service, s.regions[c["region"][j]], _version(s.service, t, week))
            sp = ss.spans.add()
            sp.trace_id = ((salt << 64) | c["trace"][j]).to_bytes(16, "big")
            sp.span_id = (salt + c["span"][j]).to_bytes(8, "big")
            if c["parent"][j]:
                sp.parent_span_id = (salt + c["parent"][j]).to_bytes(8, "big")
            sp.name = f"{s.op} {s.model}"
            sp.kind = 3  # CLIENT
            st = base_ns + int(t * 60e9)
            sp.start_time_unix_nano = st
            sp.end_time_unix_nano = st + int(c["dur"][j] * 1e9)
            a = sp.attributes
            _kv(a, "gen_ai.operation.name", s.op)
            _kv(a, "gen_ai.provider.name", s.provider)
            _kv(a, "gen_ai.request.model", s.model)
            _kv(a, "server.address", SERVER_ADDRESS[s.provider])
            _kv(a, "server.port", 443)
            if s.op == "embeddings":
                _kv(a, "gen_ai.request.encoding_formats", ["float"])
            else:
                _kv(a, "gen_ai.request.max_tokens", s.max_tokens)
                _kv(a, "gen_ai.request.temperature", 0.2)
            if c["stream"][j]:
                _kv(a, "gen_ai.request.stream", True)
            if c["attempt"][j]:
                _kv(a, "http.request.resend_count", int(c["attempt"][j]))
            if c["err"][j]:
                et = ERROR_TYPES[s.provider][c["etype"][j]]
                _kv(a, "error.type", et)
                sp.status.code = 2
                sp.status.message = et.rsplit(".", 1)[-1]
                continue
            _kv(a, "gen_ai.response.model", RESPONSE_MODEL[s.model])
            _kv(a, "gen_ai.response.id", f"r{c['span'][j]:x}")
            _kv(a, "gen_ai.usage.input_tokens", c["inp"][j])
            if s.op == "embeddings":
                _kv(a, "gen_ai.embeddings.dimension.count", 1536)
            else:
                _kv(a, "gen_ai.usage.output_tokens", c["out"][j])
                _kv(a, "gen_ai.response.finish_reasons", [FINISH[c["finish"][j]]])
            if c["cache"][j]:
                _kv(a, "gen_ai.usage.cache_read.input_tokens", c["cache"][j])
            ttft = c["ttft"][j]
            if ttft == ttft:  # not NaN
                _kv(a, "gen_ai.response.time_to_first_chunk", round(ttft, 4))
        yield req.SerializeToString(), len(chunk)
