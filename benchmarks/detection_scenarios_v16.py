"""Judge 16's traffic: one seeded week of GenAI spans from a world no earlier judge used.

Services (``service|model`` series, week minutes 0..WEEK, the week ends at the run's present minute):
a B2B legal/finance copilot (US East + US West office hours and an IST support centre with shift
handovers), a consumer voice assistant (short streams, evening peak, busier weekends), a document
pipeline (hourly OCR + summarise batches, a nightly backfill that sometimes runs long), a
multi-tenant copilot (five tenants of very different sizes, one service each), a code assistant
on reasoning models, an embeddings service with backfills, an eval harness every 6 hours, a young
service launched 14 hours before the end and a help centre whose calls move to a new model
(5%, 50%, 100%). Incidents are drawn at random; benign changes are labelled so that a false
episode can be attributed. The spans are encoded by hand as OTLP/HTTP protobuf (no SDK).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from llmtrace.pricing import price_segments

WEEK = 8 * 1440
STOP, LENGTH, NO_FINISH = 0, 1, -1
E_NONE, E_SERVER, E_RATE, E_TIMEOUT = 0, 1, 2, 3
US_TZ = ("America/New_York", "America/Chicago", "America/Los_Angeles")

RESPONSE_MODEL = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "o3": "o3-2025-04-16",
    "o4-mini": "o4-mini-2025-04-16",
    "gemini-2.5-flash": "gemini-2.5-flash",
    "text-embedding-3-small": "text-embedding-3-small",
}
ERROR_NAMES = {
    "openai": {
        E_SERVER: "openai.InternalServerError",
        E_RATE: "openai.RateLimitError",
        E_TIMEOUT: "openai.APITimeoutError",
    },
    "anthropic": {
        E_SERVER: "anthropic.InternalServerError",
        E_RATE: "anthropic.RateLimitError",
        E_TIMEOUT: "anthropic.APITimeoutError",
    },
    "gcp.gemini": {
        E_SERVER: "google.genai.errors.ServerError",
        E_RATE: "google.genai.errors.ClientError",
        E_TIMEOUT: "httpx.ReadTimeout",
    },
}


def end_now() -> datetime:
    """The run's present minute (UTC): the week ends here, so the CLI's ``--until`` is exact."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


class Clock:
    """Week minutes to UTC and to local hour / weekday (fixed offsets: no DST change in these zones in December)."""

    def __init__(self, end: datetime) -> None:
        self.end = end
        self.end_minute = int(end.timestamp()) // 60
        self.start_minute = self.end_minute - WEEK
        self._off: dict[str, int] = {}

    def offset(self, tz: str) -> int:
        if tz not in self._off:
            off = self.end.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)
            self._off[tz] = int(off.total_seconds() // 60)
        return self._off[tz]

    def local(self, m: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
        """Local hour (float) and weekday (Monday 0) of week minutes ``m``."""
        lm = self.start_minute + np.asarray(m, dtype=float) + self.offset(tz)
        day = np.floor(lm / 1440.0)
        return (lm - day * 1440.0) / 60.0, ((day + 3) % 7).astype(int)

    def local_day(self, m: np.ndarray, tz: str) -> np.ndarray:
        return np.floor((self.start_minute + np.asarray(m, dtype=float) + self.offset(tz)) / 1440.0).astype(int)

    def day_start(self, day: int, tz: str) -> int:
        """The week minute at which local day ``day`` (days since 1970 locally) begins."""
        return int(day * 1440 - self.offset(tz) - self.start_minute)

    def iso(self, m: float) -> str:
        return (self.end - timedelta(minutes=WEEK - float(m))).isoformat()


# ---------------------------------------------------------------- daily shapes


def _bump(h: np.ndarray, a: float, b: float, edge: float = 0.6) -> np.ndarray:
    """1 inside [a, b] local hours, soft edges (hours), 0 outside."""
    return 1.0 / (1.0 + np.exp(-(h - a) / edge * 4)) / (1.0 + np.exp(-(b - h) / edge * 4))


def office(h: np.ndarray, wd: np.ndarray, a: float = 8.5, b: float = 18.0) -> np.ndarray:
    """Office hours with a lunch dip; a trickle at night and on the weekend."""
    x = 0.04 + 0.96 * _bump(h, a, b) * (1 - 0.25 * np.exp(-(((h - 12.6) / 0.6) ** 2)))
    return np.where(wd >= 5, 0.08 + 0.1 * x, x)


def consumer(h: np.ndarray, wd: np.ndarray) -> np.ndarray:
    """A consumer app: low at night, lunch hump, evening peak; weekends busier."""
    x = 0.12 + 0.3 * _bump(h, 7.5, 23.0, 1.2) + 0.55 * np.exp(-(((h - 20.5) / 2.2) ** 2))
    x += 0.15 * np.exp(-(((h - 12.5) / 1.5) ** 2))
    return np.where(wd >= 5, 1.35 * x, x)


def ist_support(h: np.ndarray, wd: np.ndarray) -> np.ndarray:
    """A 24x7 support centre in India: three shifts, a dip at each handover (06:00, 14:00, 22:00 IST)."""
    x = 0.85 + 0.15 * np.exp(-(((h - 11) / 3) ** 2))
    for hh in (6.0, 14.0, 22.0):
        x = x - 0.55 * np.exp(-(((h - hh - 0.15) / 0.3) ** 2))
    return np.where(wd >= 5, 0.5 * x, x)


def dev_hours(h: np.ndarray, wd: np.ndarray) -> np.ndarray:
    """Developers: late morning to evening, an evening tail, some weekend work."""
    x = 0.05 + 0.8 * _bump(h, 9.5, 19.0, 0.8) + 0.15 * _bump(h, 19.0, 23.5, 1.0)
    return np.where(wd >= 5, 0.22 * x, x)


# ---------------------------------------------------------------- series


@dataclass
class Series:
    """One service x request model, its traffic and its calls' shapes."""

    service: str
    model: str
    provider: str
    op: str
    tz: str
    rate: float  # calls per minute at the profile's 1.0
    stream: float  # share of streamed calls
    inp: tuple[float, float]  # input tokens: median, log sd
    out: tuple[float, float]  # output tokens: median, log sd
    tps: float  # output tokens per second
    ttft: float  # median TTFT of a stream (s)
    overhead: float  # seconds besides decoding
    max_tokens: int = 4096
    cache_share: float = 0.0
    reasoning: float = 0.0  # reasoning share of output tokens
    timeout_s: float = 60.0
    first: int = 0
    us: bool = False  # a US office: the public holiday takes 60% off
    key: str = ""

    def __post_init__(self) -> None:
        self.key = f"{self.service}|{self.model}"


def _series() -> list[Series]:
    oa, an, ge = "openai", "anthropic", "gcp.gemini"
    ny, la, chi = US_TZ[0], US_TZ[2], US_TZ[1]
    return [
        Series("legal-copilot", "claude-sonnet-4-5", an, "chat", ny, 14, 0.8, (3500, 0.7), (600, 0.6), 55, 0.9, 0.8,
               cache_share=0.5, us=True),
        Series("legal-copilot", "claude-haiku-4-5", an, "chat", ny, 9, 0.0, (1200, 0.5), (90, 0.5), 120, 0.4, 0.4,
               us=True),
        Series("voice-assistant", "gpt-4o-mini", oa, "chat", chi, 30, 1.0, (450, 0.4), (70, 0.5), 90, 0.35, 0.15,
               max_tokens=300, timeout_s=15),
        Series("voice-assistant", "gpt-4.1-nano", oa, "chat", chi, 8, 0.0, (300, 0.3), (12, 0.4), 150, 0.2, 0.12,
               max_tokens=50, timeout_s=10),
        Series("doc-pipeline", "gemini-2.5-flash", ge, "chat", "UTC", 0.5, 0.0, (2500, 0.5), (900, 0.5), 120, 0.6,
               1.2, max_tokens=8192, timeout_s=120),
        Series("doc-pipeline", "gpt-4.1-mini", oa, "chat", "UTC", 0.4, 0.0, (4000, 0.6), (350, 0.4), 80, 0.5, 0.6,
               max_tokens=1024, timeout_s=90),
        Series("copilot-acme", "gpt-4.1", oa, "chat", ny, 28, 0.9, (2200, 0.6), (380, 0.7), 60, 0.6, 0.5,
               cache_share=0.4, us=True),
        Series("copilot-globex", "gpt-4.1", oa, "chat", "Europe/London", 6, 0.9, (2000, 0.6), (350, 0.7), 60, 0.6,
               0.5, cache_share=0.4),
        Series("copilot-initech", "gpt-4.1", oa, "chat", chi, 1.5, 0.9, (1800, 0.6), (300, 0.7), 60, 0.6, 0.5,
               us=True),
        Series("copilot-umbrella", "gpt-4.1", oa, "chat", "Asia/Tokyo", 0.4, 0.9, (1800, 0.6), (300, 0.7), 60, 0.6,
               0.5),
        Series("copilot-hooli", "gpt-4.1", oa, "chat", la, 0.12, 0.9, (1800, 0.6), (300, 0.7), 60, 0.6, 0.5, us=True),
        Series("code-assistant", "o3", oa, "chat", la, 2.5, 0.0, (6000, 0.7), (2200, 0.8), 45, 0.0, 2.0,
               max_tokens=32000, reasoning=0.7, timeout_s=600, us=True),
        Series("code-assistant", "o4-mini", oa, "chat", la, 9, 0.6, (3000, 0.7), (900, 0.8), 110, 1.5, 0.8,
               max_tokens=16000, reasoning=0.55, timeout_s=300, us=True),
        Series("embed-service", "text-embedding-3-small", oa, "embeddings", "UTC", 4, 0.0, (600, 0.6), (0, 0.0), 1,
               0.0, 0.12, timeout_s=30),
        Series("eval-harness", "gpt-4.1-mini", oa, "chat", "UTC", 20, 0.0, (1500, 0.4), (200, 0.5), 80, 0.5, 0.5,
               max_tokens=1024),
        Series("help-center", "gpt-4o-mini", oa, "chat", ny, 6, 0.7, (900, 0.5), (220, 0.6), 85, 0.45, 0.3,
               max_tokens=1024),
        Series("help-center", "gpt-4.1-mini", oa, "chat", ny, 6, 0.7, (900, 0.5), (240, 0.6), 75, 0.5, 0.3,
               max_tokens=1024),
        Series("meeting-notes", "claude-haiku-4-5", an, "chat", ny, 4, 0.5, (5000, 0.6), (450, 0.5), 110, 0.5, 0.5,
               max_tokens=2048, first=WEEK - 840),
    ]  # fmt: skip


# ---------------------------------------------------------------- labels


@dataclass
class Incident:
    """A labelled incident on one or more series (``touched``: series it moves traffic onto)."""

    kind: str
    series: list[str]
    start: int
    end: int
    size: float
    effect: float | None = None
    scope: str = "series"
    permanent: bool = False
    cause: str = ""
    note: str = ""
    touched: list[str] = field(default_factory=list)

    def label(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Benign:
    """A benign change: the CLI should not call it an anomaly."""

    kind: str
    series: list[str]
    start: float
    end: float
    note: str = ""


KINDS = {  # kind: (weight, cause)
    "latency_spike": (3, "provider degraded"),
    "slow_ramp": (2, "memory leak in the proxy"),
    "ttft_spike": (2, "provider queueing"),
    "error_burst": (3, "provider 5xx"),
    "rate_limit": (2, "quota exhausted (429s, retried)"),
    "timeout": (2, "upstream hangs"),
    "volume_drop": (2, "client-side outage"),
    "model_drop": (1.5, "model turned off (traffic to the other model)"),
    "output_shift": (1.5, "release changed the answers"),
    "cost_spike": (1.5, "prompt bloat"),
    "truncation": (1.5, "max_tokens lowered"),
    "empty_output": (1.5, "content filter returns nothing"),
}


class Week:
    """One seed's world: series, planned benign changes and incidents (the calls come from :func:`generate`)."""

    def __init__(self, seed: int, end: datetime) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.clock = Clock(end)
        self.series = _series()
        self.by_key = {s.key: s for s in self.series}
        self.benign: list[Benign] = []
        self.incidents: list[Incident] = []
        rng = self.rng
        # the canary: 5%, 50%, 100% of help-center moves from gpt-4o-mini to gpt-4.1-mini
        s1 = int(rng.uniform(2.3, 3.3) * 1440)
        s2 = s1 + int(rng.uniform(0.9, 1.4) * 1440)
        s3 = s2 + int(rng.uniform(0.9, 1.4) * 1440)
        self.canary = [s1, s2, s3]
        self.by_key["help-center|gpt-4.1-mini"].first = s1
        # a release on the legal copilot's drafting model: answers x1.2 from a weekday morning on
        day = int(rng.integers(2, 7))
        self.release = self._local_time(day, 15.0 + float(rng.uniform(0, 3)), "UTC")
        # a marketing push on the voice assistant: x2 for two hours in the evening
        pday = int(rng.integers(2, 7))
        self.push = self._local_time(pday, 17.0 + float(rng.uniform(0, 2)), "America/Chicago")
        # one US public holiday on a weekday (NY local)
        ny = "America/New_York"
        days = np.unique(self.clock.local_day(np.arange(1440, WEEK - 1440, 60), ny))
        weekdays = [int(d) for d in days if (d + 3) % 7 < 5]
        self.holiday = int(rng.choice(weekdays))
        self.backfills = sorted(int(x) for x in rng.uniform(1440, WEEK - 300, 2))
        self.long_nights = rng.random(9) < 0.35  # the doc pipeline's nightly backfill runs long
        self._benign()
        self._incidents()

    def _local_time(self, day_index: int, hour: float, tz: str) -> int:
        d0 = int(self.clock.local_day(np.array([0]), tz)[0])
        return int(self.clock.day_start(d0 + day_index, tz) + hour * 60)

    # -------------------------------------------------- benign

    def _benign(self) -> None:
        b, c = self.benign, self.clock
        hc = ["help-center|gpt-4o-mini", "help-center|gpt-4.1-mini"]
        b.append(Benign("canary", hc, self.canary[0], WEEK, "5% / 50% / 100% to gpt-4.1-mini"))
        b.append(Benign("release", ["legal-copilot|claude-sonnet-4-5"], self.release, WEEK, "answers x1.2"))
        voice = [s.key for s in self.series if s.service == "voice-assistant"]
        b.append(Benign("marketing_push", voice, self.push, self.push + 120, "x2 volume for 2 h"))
        us = [s.key for s in self.series if s.us]
        h0 = c.day_start(self.holiday, "America/New_York")
        b.append(Benign("holiday", us, h0 - 180, h0 + 1440 + 180, "US public holiday: -60%"))
        for m in range(0, WEEK, 360):
            b.append(Benign("eval_burst", ["eval-harness|gpt-4.1-mini"], m - 5, m + 45, "every 6 h"))
        for m in self.backfills:
            b.append(Benign("backfill", ["embed-service|text-embedding-3-small"], m - 5, m + 200, "re-embedding"))
        doc = [s.key for s in self.series if s.service == "doc-pipeline"]
        for i, d in enumerate(np.unique(c.local_day(np.arange(0, WEEK, 60), "UTC"))):
            start = c.day_start(int(d), "UTC") + 60
            b.append(Benign("backfill", doc, start - 5, start + (330 if self.long_nights[i] else 150), "nightly"))
        young = self.by_key["meeting-notes|claude-haiku-4-5"]
        b.append(Benign("young_start", [young.key], young.first, WEEK, "launched 14 h before the end"))
        for s in self.series:
            days = np.unique(c.local_day(np.arange(0, WEEK + 1440, 60), s.tz))
            for d in days:
                wd = (int(d) + 3) % 7
                start = c.day_start(int(d), s.tz)
                if wd == 5:
                    b.append(Benign("weekend", [s.key], start - 60, start + 2 * 1440 + 720, "Sat-Sun, Monday's return"))
                if wd < 5 or s.service in ("voice-assistant", "help-center"):
                    hour = 20.5 if s.service in ("voice-assistant", "help-center") else 10.5
                    b.append(Benign("daily_peak", [s.key], start + (hour - 2.5) * 60, start + (hour + 2.5) * 60))

    # -------------------------------------------------- incidents

    def _incidents(self) -> None:
        rng = self.rng
        n = int(rng.integers(20, 27))
        kinds = list(KINDS)
        w = np.array([KINDS[k][0] for k in kinds], dtype=float)
        for _ in range(n):
            kind = str(rng.choice(kinds, p=w / w.sum()))
            inc = self._draw(kind)
            if inc is not None:
                self.incidents.append(inc)
        for i, a in enumerate(self.incidents):
            for j, o in enumerate(self.incidents):
                if i != j and set(a.series) & set(o.series + o.touched) and a.start < o.end and o.start < a.end:
                    a.note = "overlap"

    def _candidates(self, kind: str) -> list[Series]:
        out = []
        for s in self.series:
            if s.service == "eval-harness":
                continue
            if kind == "ttft_spike" and s.stream < 0.5:
                continue
            if kind in ("output_shift", "truncation", "empty_output", "ttft_spike") and s.op == "embeddings":
                continue
            if kind == "model_drop" and sum(x.service == s.service for x in self.series) != 2:
                continue
            if kind == "model_drop" and s.service == "help-center":
                continue
            out.append(s)
        return out

    def _draw(self, kind: str) -> Incident | None:
        rng = self.rng
        cands = self._candidates(kind)
        weights = np.array([math.sqrt(s.rate) * (3.0 if s.first > 0 else 1.0) for s in cands])
        s = cands[int(rng.choice(len(cands), p=weights / weights.sum()))]
        dur = round(math.exp(rng.uniform(math.log(5), math.log(180))))
        lo = max(s.first + 60, 1440 + 720) if s.first == 0 else s.first + 45
        hi = self.canary[2] - dur - 5 if s.key == "help-center|gpt-4o-mini" else WEEK - dur - 5
        if hi <= lo:
            return None
        if self.incidents and rng.random() < 0.15:  # overlap a previous incident on purpose
            o = self.incidents[int(rng.integers(len(self.incidents)))]
            start = int(np.clip(o.start + rng.integers(-30, 60), lo, hi))
            other = self.by_key[o.series[0]]
            if kind not in ("volume_drop", "model_drop") and other in cands:
                s = other
        else:
            start = int(rng.integers(lo, hi))
        series, scope, touched, effect, size = [s.key], "series", [], None, 0.0
        perm = False
        if kind in ("latency_spike", "slow_ramp"):
            effect = round(float(math.exp(rng.uniform(math.log(1.25), math.log(4.0)))), 2)
            size = effect
        elif kind == "ttft_spike":
            effect = round(float(math.exp(rng.uniform(math.log(1.4), math.log(6.0)))), 2)
            size = effect
        elif kind in ("error_burst", "timeout"):
            size = round(float(math.exp(rng.uniform(math.log(0.02), math.log(0.7)))), 3)
        elif kind == "rate_limit":
            size = round(float(rng.uniform(0.1, 0.85)), 3)
        elif kind == "volume_drop":
            scope = "service"
            series = [x.key for x in self.series if x.service == s.service and x.first <= start]
            size = round(float(rng.choice([rng.uniform(0.25, 0.6), 1.0])), 2)
        elif kind == "model_drop":
            touched = [x.key for x in self.series if x.service == s.service and x.key != s.key]
            size = 1.0
        elif kind == "output_shift":
            perm = True
            effect = round(float(rng.choice([rng.uniform(0.35, 0.7), rng.uniform(1.4, 2.5)])), 2)
            size = effect
            dur = 360
            hi = WEEK - 120
            start = int(rng.integers(lo, max(hi, lo + 1)))
        elif kind == "cost_spike":
            effect = round(float(rng.uniform(1.5, 5.0)), 2)
            size = effect
        elif kind in ("truncation", "empty_output"):
            size = round(float(math.exp(rng.uniform(math.log(0.03), math.log(0.6)))), 3)
        end = min(start + dur, WEEK) if not perm else WEEK
        return Incident(kind, series, start, end, size, effect, scope, perm, KINDS[kind][1], "", touched)


# ---------------------------------------------------------------- traffic


def _lam(week: Week, s: Series) -> np.ndarray:
    """Expected calls per minute of a series over the week, before incidents."""
    c = week.clock
    m = np.arange(WEEK, dtype=float)
    h, wd = c.local(m, s.tz)
    hol = c.local_day(m, "America/New_York") == week.holiday
    us_cut = np.where(hol, 0.4, 1.0)
    if s.service == "legal-copilot":
        he, we = c.local(m, "America/New_York")
        hw, ww = c.local(m, "America/Los_Angeles")
        hi, wi = c.local(m, "Asia/Kolkata")
        lam = s.rate * (0.55 * office(he, we) * us_cut + 0.3 * office(hw, ww) * us_cut + 0.15 * ist_support(hi, wi))
    elif s.service == "voice-assistant":
        lam = s.rate * consumer(h, wd)
        lam[week.push : week.push + 120] *= 2.0
    elif s.service == "doc-pipeline":
        lam = np.full(WEEK, 0.6 * s.rate)
        minute = (c.start_minute + m.astype(int)) % 60
        lam[minute < 8] += 9.0 * s.rate * (1 + 0.3 * office(h, wd)[minute < 8])
        for b in week.benign:
            if b.kind == "backfill" and s.key in b.series:
                lam[int(max(b.start + 5, 0)) : int(min(b.end, WEEK))] += 6.0 * s.rate
    elif s.service == "embed-service":
        hh, ww = c.local(m, "America/New_York")
        lam = s.rate * (0.3 + 0.7 * office(hh, ww))
        for start in week.backfills:
            lam[start : start + 195] += 25.0
    elif s.service == "eval-harness":
        lam = np.full(WEEK, 0.02)
        for start in range(0, WEEK, 360):
            lam[start : start + 40] = s.rate * (0.8 + 0.4 * week.rng.random())
    elif s.service == "help-center":
        lam = s.rate * (0.4 + 0.6 * consumer(h, wd))
        share = np.zeros(WEEK)
        a, b2, c3 = week.canary
        share[a:b2], share[b2:c3], share[c3:] = 0.05, 0.5, 1.0
        lam = lam * (share if s.model == "gpt-4.1-mini" else 1 - share)
    elif s.service == "code-assistant":
        lam = s.rate * dev_hours(h, wd) * us_cut
    elif s.service == "meeting-notes":
        lam = s.rate * (0.25 + 0.75 * office(h, wd))
    else:  # the copilot's tenants
        lam = s.rate * office(h, wd) * (us_cut if s.us else 1.0)
    lam = np.asarray(lam, dtype=float)
    lam[: max(s.first, 0)] = 0.0
    return lam


def _ln(rng: np.random.Generator, med: float, sd: float, n: int) -> np.ndarray:
    return med * np.exp(rng.normal(0.0, sd, n))


def _calls(week: Week, s: Series, lam: np.ndarray) -> dict[str, np.ndarray]:
    """Sample the calls of a series from its expected rate (successful, before incidents)."""
    rng = week.rng
    counts = rng.poisson(np.maximum(lam, 0))
    n = int(counts.sum())
    t = np.repeat(np.arange(WEEK, dtype=float), counts) + rng.random(n)
    t = np.sort(t)
    stream = rng.random(n) < s.stream
    inp = np.maximum(_ln(rng, s.inp[0], s.inp[1], n), 5).astype(np.int64)
    if s.op == "embeddings":
        out = np.zeros(n, dtype=np.int64)
    else:
        out = np.clip(_ln(rng, s.out[0], s.out[1], n), 1, s.max_tokens).astype(np.int64)
    finish = np.full(n, NO_FINISH if s.op == "embeddings" else STOP)
    if s.op != "embeddings":
        cut = rng.random(n) < 0.003
        out[cut] = s.max_tokens
        finish[out >= s.max_tokens] = LENGTH
    cache = np.where(rng.random(n) < s.cache_share, (inp * rng.uniform(0.4, 0.8, n)).astype(np.int64), 0)
    reasoning = (out * s.reasoning * rng.uniform(0.7, 1.0, n)).astype(np.int64) if s.reasoning else np.zeros(n, int)
    ttft = np.where(stream, _ln(rng, s.ttft, 0.35, n) + inp / 40000.0, np.nan)
    decode = out / (s.tps * np.exp(rng.normal(0, 0.2, n)))
    dur = _ln(rng, s.overhead, 0.3, n) + decode + inp / 60000.0
    dur = np.where(stream, np.maximum(dur, ttft + 0.05), dur)
    return {
        "t": t,
        "stream": stream,
        "inp": inp,
        "out": out,
        "cache": cache,
        "reasoning": reasoning,
        "ttft": ttft,
        "dur": dur,
        "finish": finish,
        "err": np.zeros(n, dtype=bool),
        "etype": np.zeros(n, dtype=np.int64),
    }


def _win(c: dict[str, np.ndarray], inc: Incident) -> np.ndarray:
    return (c["t"] >= inc.start) & (c["t"] < inc.end)


def _take(c: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in c.items()}


def _cat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    order = np.argsort(both["t"], kind="stable")
    return {k: v[order] for k, v in both.items()}


def _fail(c: dict[str, np.ndarray], mask: np.ndarray, etype: int, s: Series, rng: np.random.Generator) -> None:
    """Turn calls into failures: no usage, no answer; short unless a timeout."""
    n = int(mask.sum())
    c["err"][mask] = True
    c["etype"][mask] = etype
    for k in ("inp", "out", "cache", "reasoning"):
        c[k][mask] = 0
    c["ttft"][mask] = np.nan
    c["finish"][mask] = NO_FINISH
    if etype == E_TIMEOUT:
        c["dur"][mask] = s.timeout_s + rng.uniform(0, 0.05, n)
    elif etype == E_RATE:
        c["dur"][mask] = rng.uniform(0.05, 0.4, n)
    else:
        c["dur"][mask] = rng.uniform(0.2, 3.0, n)


def generate(week: Week) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Every series' calls, incidents applied; ``extras``: per-call trace and span ids."""
    rng = week.rng
    lams = {s.key: _lam(week, s) for s in week.series}
    for inc in week.incidents:  # volume incidents act on the rate
        a, b = inc.start, inc.end
        if inc.kind == "volume_drop":
            for k in inc.series:
                lams[k][a:b] *= 1 - inc.size
        elif inc.kind == "model_drop":
            moved = lams[inc.series[0]][a:b] * inc.size
            lams[inc.series[0]][a:b] -= moved
            for k in inc.touched:
                lams[k][a:b] += moved
    calls = {s.key: _calls(week, s, lams[s.key]) for s in week.series}
    for inc in week.incidents:
        for k in inc.series:
            s, c = week.by_key[k], calls[k]
            w = _win(c, inc)
            ok = w & ~c["err"]
            if inc.kind == "latency_spike":
                c["dur"][ok] *= inc.effect or 1.0
            elif inc.kind == "slow_ramp":
                frac = np.clip((c["t"][ok] - inc.start) / max(inc.end - inc.start, 1), 0, 1)
                c["dur"][ok] *= 1 + ((inc.effect or 1.0) - 1) * frac
            elif inc.kind == "ttft_spike":
                st = ok & c["stream"]
                extra = c["ttft"][st] * ((inc.effect or 1.0) - 1)
                c["ttft"][st] += extra
                c["dur"][st] += extra
            elif inc.kind == "output_shift":
                ch = ok & (c["finish"] != LENGTH)
                new = np.clip(c["out"][ch] * (inc.effect or 1.0), 1, s.max_tokens).astype(np.int64)
                c["dur"][ch] += (new - c["out"][ch]) / s.tps
                c["dur"][ch] = np.maximum(c["dur"][ch], np.nan_to_num(c["ttft"][ch]) + 0.05)
                c["out"][ch] = new
                c["finish"][ch & (c["out"] >= s.max_tokens)] = LENGTH
            elif inc.kind == "cost_spike":
                c["inp"][ok] = (c["inp"][ok] * (inc.effect or 1.0)).astype(np.int64)
                c["dur"][ok] += c["inp"][ok] / 60000.0
            elif inc.kind == "truncation":
                hit = ok & (rng.random(c["t"].size) < inc.size) & (c["out"] > 20)
                c["out"][hit] = np.maximum((c["out"][hit] * rng.uniform(0.2, 0.6, int(hit.sum()))).astype(int), 1)
                c["finish"][hit] = LENGTH
            elif inc.kind == "empty_output":
                hit = ok & (rng.random(c["t"].size) < inc.size)
                c["out"][hit] = 0
                c["reasoning"][hit] = 0
                c["finish"][hit] = STOP
                c["dur"][hit] = np.where(np.isnan(c["ttft"][hit]), s.overhead, c["ttft"][hit] + 0.05)
            elif inc.kind == "error_burst":
                _fail(c, ok & (rng.random(c["t"].size) < inc.size), E_SERVER, s, rng)
            elif inc.kind == "timeout":
                _fail(c, ok & (rng.random(c["t"].size) < inc.size), E_TIMEOUT, s, rng)
            elif inc.kind == "rate_limit":
                hit = ok & (rng.random(c["t"].size) < inc.size)
                idx = np.flatnonzero(hit)
                retries = _take(c, idx)  # each 429 is retried once, 1-20 s later (with the same odds)
                retries["t"] = np.minimum(retries["t"] + rng.uniform(1, 20, idx.size) / 60.0, WEEK - 1e-4)
                _fail(c, hit, E_RATE, s, rng)
                _fail(retries, rng.random(idx.size) < inc.size, E_RATE, s, rng)
                calls[k] = _cat(c, retries)
    # base errors, then the benign release
    for s in week.series:
        c = calls[s.key]
        ok = ~c["err"]
        _fail(c, ok & (rng.random(c["t"].size) < 0.003), E_SERVER, s, rng)
        _fail(c, ~c["err"] & (rng.random(c["t"].size) < 0.0005), E_TIMEOUT, s, rng)
    rel = calls["legal-copilot|claude-sonnet-4-5"]
    ch = (rel["t"] >= week.release) & ~rel["err"] & (rel["finish"] == STOP)
    new = (rel["out"][ch] * 1.2).astype(np.int64)
    rel["dur"][ch] += (new - rel["out"][ch]) / 55.0
    rel["out"][ch] = new
    extras: dict[str, Any] = {}
    for s in week.series:
        c = calls[s.key]
        c["reasoning"] = np.minimum(c["reasoning"], c["out"])
        c["ttft"] = np.round(c["ttft"], 4)
        c["dur"] = np.round(np.where(np.isnan(c["ttft"]), c["dur"], np.maximum(c["dur"], c["ttft"] + 0.01)), 6)
        c["cost"] = _cost(s, c)
        n = c["t"].size
        extras[s.key] = {"ids": rng.integers(0, 2**63, size=(n, 3), dtype=np.int64)}
    return calls, extras


def _cost(s: Series, c: dict[str, np.ndarray]) -> np.ndarray:
    """Each successful call's price from llmtrace's table (response model first), as the server prices it."""
    seg = price_segments(s.provider, [RESPONSE_MODEL[s.model], s.model])
    if seg is None:
        raise RuntimeError(f"{s.key} has no price")
    inp, out, read = (c[k].astype(float) for k in ("inp", "out", "cache"))
    cost = np.zeros(inp.size)
    chosen = np.zeros(inp.size, dtype=int)
    for i, cand in enumerate(seg):
        chosen[inp > cand[0]] = i
    for i, (_thr, fee, pin, pout, pread, _pwrite) in enumerate(seg):
        m = chosen == i
        cost[m] = fee + np.maximum(inp[m] - read[m], 0) * pin + out[m] * pout + read[m] * pread
    return np.where(c["err"], 0.0, cost)


# ---------------------------------------------------------------- eligibility


def _stat(kind: str, c: dict[str, np.ndarray], mask: np.ndarray, embeddings: np.ndarray) -> tuple[float, bool]:
    """The window's statistic for an incident kind and whether it is a count."""
    ok = mask & ~c["err"]
    if kind in ("latency_spike", "slow_ramp"):
        d = c["dur"][ok]
        return (float(np.median(d)) if d.size >= 3 else math.nan), False
    if kind == "ttft_spike":
        d = c["ttft"][ok & ~np.isnan(c["ttft"])]
        return (float(np.median(d)) if d.size >= 3 else math.nan), False
    if kind in ("error_burst", "rate_limit", "timeout"):
        return float((mask & c["err"]).sum()), True
    if kind in ("volume_drop", "model_drop"):
        return float(mask.sum()), True
    if kind == "output_shift":
        d = c["out"][ok]
        return (float(d.mean()) if d.size >= 3 else math.nan), False
    if kind == "cost_spike":
        d = c["cost"][ok]
        return (float(d.mean()) if d.size >= 3 else math.nan), False
    if kind == "truncation":
        return float((ok & (c["finish"] == LENGTH)).sum()), True
    if kind == "empty_output":
        return float((ok & (c["out"] == 0) & ~embeddings).sum()), True
    raise ValueError(kind)


def _joined(week: Week, keys: list[str], calls: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [calls[k] for k in keys]
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "err", "dur", "ttft", "out", "cost", "finish")}
    out["emb"] = np.concatenate(
        [np.full(p["t"].size, week.by_key[k].op == "embeddings") for k, p in zip(keys, parts, strict=True)]
    )
    return out


def window_z(
    week: Week,
    kind: str,
    keys: list[str],
    start: int,
    end: int,
    calls: dict[str, dict[str, np.ndarray]],
    avoid: list[tuple[int, int]],
) -> dict[str, Any]:
    """The rule: the window's statistic against the same clock window on the other days of the same type
    (weekday, or weekend and the US holiday for US series), sd over those windows; a young series with
    fewer than two such days is compared with the windows just before it. Count statistics floor the
    sd at Poisson's."""  # fmt: skip
    c = _joined(week, keys, calls)
    primary = week.by_key[keys[0]]
    first = max(week.by_key[k].first for k in keys)
    x, is_count = _stat(kind, c, (c["t"] >= start) & (c["t"] < end), c["emb"])
    n = int(((c["t"] >= start) & (c["t"] < end)).sum())

    def day_type(m: int) -> int:
        _h, wd = week.clock.local(np.array([m]), primary.tz)
        hol = primary.us and week.clock.local_day(np.array([m]), "America/New_York")[0] == week.holiday
        return int(wd[0] >= 5 or hol)

    want = day_type(start)
    length = end - start
    base: list[float] = []
    for k in range(-8, 9):
        a = start + k * 1440
        if k == 0 or a < first or a + length > WEEK or day_type(a) != want:
            continue
        if any(a < e and s < a + length for s, e in avoid):
            continue
        v, _ = _stat(kind, c, (c["t"] >= a) & (c["t"] < a + length), c["emb"])
        if not math.isnan(v):
            base.append(v)
    if len(base) < 2:
        base = []
        for j in range(1, 7):
            a = start - j * length
            if a < first or any(a < e and s < a + length for s, e in avoid):
                continue
            v, _ = _stat(kind, c, (c["t"] >= a) & (c["t"] < a + length), c["emb"])
            if not math.isnan(v):
                base.append(v)
    if len(base) < 2 or math.isnan(x):
        return {"z": 0.0, "eligible": False, "n": n, "extra": None, "stat": x, "baseline": None}
    med = float(np.median(base))
    sd = float(np.std(base, ddof=1))
    sd = max(sd, math.sqrt(max(med, 1.0))) if is_count else max(sd, 0.01 * abs(med), 1e-9)
    z = abs(x - med) / sd
    extra = round(abs(x - med), 1) if is_count else None
    ok = length >= 10 and z >= 3 and (not is_count or (extra or 0) >= 10)
    return {
        "z": round(z, 1),
        "eligible": bool(ok),
        "n": n,
        "extra": extra,
        "stat": round(x, 4),
        "baseline": round(med, 4),
    }


def eligibility(week: Week, inc: Incident, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """>= 10 minutes, >= 3 sd from the median of comparable windows; rates and volume also >= 10 events.
    A permanent shift is judged on its first 6 hours."""
    end = min(inc.start + 360, WEEK) if inc.permanent else inc.end
    avoid = [(o.start, o.end) for o in week.incidents if o is not inc and set(o.series + o.touched) & set(inc.series)]
    return window_z(week, inc.kind, inc.series, inc.start, end, calls, avoid)


def release_eligibility(week: Week, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Would the benign release (answers x1.2) be an incident by the rule? (its first 6 hours)"""
    key = "legal-copilot|claude-sonnet-4-5"
    avoid = [(o.start, o.end) for o in week.incidents if key in o.series + o.touched]
    return window_z(week, "output_shift", [key], week.release, min(week.release + 360, WEEK), calls, avoid)


# ---------------------------------------------------------------- OTLP/HTTP protobuf, by hand


def _varint(v: int) -> bytes:
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field_no: int, payload: bytes) -> bytes:
    return _varint(field_no << 3 | 2) + _varint(len(payload)) + payload


def _kv_str(key: str, value: str) -> bytes:
    return _ld(9, _ld(1, key.encode()) + _ld(2, _ld(1, value.encode())))


def _kv_int(key: str, value: int) -> bytes:
    return _ld(9, _ld(1, key.encode()) + _ld(2, b"\x18" + _varint(int(value))))


def _kv_double(key: str, value: float) -> bytes:
    return _ld(9, _ld(1, key.encode()) + _ld(2, b"\x21" + struct.pack("<d", float(value))))


def _kv_bool(key: str, value: bool) -> bytes:
    return _ld(9, _ld(1, key.encode()) + _ld(2, b"\x10" + (b"\x01" if value else b"\x00")))


def _kv_strs(key: str, values: list[str]) -> bytes:
    arr = b"".join(_ld(1, _ld(1, v.encode())) for v in values)
    return _ld(9, _ld(1, key.encode()) + _ld(2, _ld(5, arr)))


def _resource(service: str) -> bytes:
    """The Resource message's content: its attributes (service.name names the series' service)."""
    return b"".join(
        _ld(1, _ld(1, k.encode()) + _ld(2, _ld(1, v.encode())))
        for k, v in (("service.name", service), ("deployment.environment.name", "production"))
    )


_SCOPE = _ld(1, _ld(1, b"judge16.genai") + _ld(2, b"1.0"))


def _span_encoder(s: Series) -> Callable[..., bytes]:
    """A function from one call's values to its Span message (fixed attributes encoded once)."""
    op = "embeddings" if s.op == "embeddings" else "chat"
    host = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}.get(
        s.provider, "generativelanguage.googleapis.com"
    )
    fixed = (
        _kv_str("gen_ai.operation.name", op)
        + _kv_str("gen_ai.provider.name", s.provider)
        + _kv_str("gen_ai.request.model", s.model)
        + _kv_str("server.address", host)
    )
    resp = _kv_str("gen_ai.response.model", RESPONSE_MODEL[s.model])
    name = _ld(5, f"{op} {s.model}".encode()) + b"\x30\x03"  # kind CLIENT
    finish = {
        STOP: _kv_strs("gen_ai.response.finish_reasons", ["stop"]),
        LENGTH: _kv_strs("gen_ai.response.finish_reasons", ["length"]),
        NO_FINISH: b"",
    }
    max_tok = _kv_int("gen_ai.request.max_tokens", s.max_tokens) if s.op != "embeddings" else b""
    names = ERROR_NAMES[s.provider]

    def encode(
        ids: np.ndarray, start_ns: int, end_ns: int, err: bool, etype: int, stream: bool, inp: int, out: int,
        cache: int, reasoning: int, ttft: float, fin: int,
    ) -> bytes:  # fmt: skip
        b = _ld(1, struct.pack("<qq", int(ids[0]), int(ids[1]))) + _ld(2, struct.pack("<q", int(ids[2]))) + name
        b += b"\x39" + struct.pack("<Q", start_ns) + b"\x41" + struct.pack("<Q", end_ns) + fixed + max_tok
        if s.op != "embeddings":
            b += _kv_bool("gen_ai.request.stream", stream)
        if err:
            b += _kv_str("error.type", names[etype])
            b += _ld(15, _ld(2, names[etype].encode()) + b"\x18\x02")
            return b
        b += resp + _kv_int("gen_ai.usage.input_tokens", inp)
        if s.op != "embeddings":
            b += _kv_int("gen_ai.usage.output_tokens", out) + finish[fin]
        if cache:
            b += _kv_int("gen_ai.usage.cache_read.input_tokens", cache)
        if reasoning:
            b += _kv_int("gen_ai.usage.reasoning.output_tokens", reasoning)
        if not math.isnan(ttft):
            b += _kv_double("gen_ai.response.time_to_first_chunk", ttft)
        return b

    return encode


def requests(
    week: Week, calls: dict[str, dict[str, np.ndarray]], extras: dict[str, Any], batch: int = 4000
) -> Iterator[tuple[bytes, int]]:
    """ExportTraceServiceRequest bodies of ``batch`` spans each, in time order (one ResourceSpans per service)."""
    keys = [s.key for s in week.series]
    sid = np.concatenate([np.full(calls[k]["t"].size, i) for i, k in enumerate(keys)])
    row = np.concatenate([np.arange(calls[k]["t"].size) for k in keys])
    t = np.concatenate([calls[k]["t"] for k in keys])
    order = np.argsort(t, kind="stable")
    sid, row = sid[order], row[order]
    enc = [_span_encoder(s) for s in week.series]
    base_us = week.clock.start_minute * 60_000_000
    for lo in range(0, sid.size, batch):
        by_service: dict[str, list[bytes]] = {}
        for i, r in zip(sid[lo : lo + batch].tolist(), row[lo : lo + batch].tolist(), strict=True):
            s, c = week.series[i], calls[keys[i]]
            start_us = base_us + round(float(c["t"][r]) * 60e6)
            end_us = start_us + round(float(c["dur"][r]) * 1e6)
            span = enc[i](
                extras[keys[i]]["ids"][r], start_us * 1000, end_us * 1000, bool(c["err"][r]), int(c["etype"][r]),
                bool(c["stream"][r]), int(c["inp"][r]), int(c["out"][r]), int(c["cache"][r]),
                int(c["reasoning"][r]), float(c["ttft"][r]), int(c["finish"][r]),
            )  # fmt: skip
            by_service.setdefault(s.service, []).append(_ld(2, span))
        body = b"".join(
            _ld(1, _ld(1, _resource(svc)) + _ld(2, _SCOPE + b"".join(spans))) for svc, spans in by_service.items()
        )
        yield body, min(batch, sid.size - lo)
