"""A test generator for runaway users (llmtrace.analytics.anomalies_users), written straight into
``otel_traces`` as the Collector stores spans (the real views fill ``llm_calls`` and the rollups).

One series, ``helpdesk / gpt-4o-mini``, over ``DAYS`` days to a fixed ``END``:

* the base traffic: chat sessions (geometric, ~3 turns ~45 s apart) at ``RATE`` calls/min with a
  daily profile (nights at 25 %, busy afternoons) and gamma noise per 10 minutes (cv 0.3); users
  Zipf-distributed over ``USERS`` ids (``hd-u0000`` the busiest);
* benign: a sync user (``SYNC_USER``) that runs 10-20 minutes every night at 02:00 with 8-14 calls/min,
  heavier some nights than others; a new customer (``NEW_USER``, never seen before) adding 30 % of the
  series' calls for an hour on the last day; a person (``CHATTY_USER``) in one 16-turn chat at night;
* the incident: ``hd-u0017`` (a mid-size user with a history) loops, ``LOOP_RATE`` extra calls/min
  (each its own trace, no session) for ``LOOP_MINUTES`` minutes from ``LOOP_START``.

``LOOP_RATE`` is about the series' mean rate: the series' volume alone moves about x2 for 25 minutes,
inside its own noise; the user goes from at most a few calls an hour to ~100.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

END = datetime(2026, 3, 12, tzinfo=timezone.utc)  # fixed: no test depends on the day it runs
DAYS = 5
RATE = 3.0  # base calls per minute over the day (mean)
USERS = 300
SERVICE, MODEL = "helpdesk", "gpt-4o-mini"
SYNC_USER, NEW_USER, CHATTY_USER, LOOP_USER = "hd-sync", "hd-newco", "hd-u0250", "hd-u0017"
LOOP_START = END - timedelta(hours=7, minutes=40)  # 16:20 UTC, a busy hour
LOOP_MINUTES, LOOP_RATE = 25, 3.5
NEW_START = END - timedelta(hours=10)  # 14:00-15:00 UTC
CHATTY_START = END - timedelta(hours=22, minutes=30)  # 01:30 UTC, the night
_PROFILE = np.array([.25, .25, .25, .25, .3, .4, .6, .9, 1.2, 1.4, 1.5, 1.5, 1.4, 1.4, 1.5, 1.6, 1.6, 1.5, 1.3,
                     1.1, .9, .7, .5, .35])  # fmt: skip


def _profile(minutes: np.ndarray) -> np.ndarray:
    return _PROFILE[(minutes // 60) % 24] / _PROFILE.mean()


def calls(seed: int = 7) -> dict[str, np.ndarray]:
    """Every call: minute since the start (float), user, session ('' for none)."""
    rng = np.random.default_rng(seed)
    total = DAYS * 1440
    minutes = np.arange(total)
    noise = rng.gamma(1 / 0.3**2, 0.3**2, total // 10 + 1)[minutes // 10]
    lam = RATE * _profile(minutes) * noise / 3.0  # session starts per minute
    n = rng.poisson(lam)
    starts = np.repeat(minutes, n) + rng.random(int(n.sum()))
    probs = 1 / np.arange(1, USERS + 1) ** 1.1
    users = rng.choice(USERS, size=len(starts), p=probs / probs.sum())
    sizes = rng.geometric(1 / 3, len(starts))
    t, u, s = [], [], []
    for k, (t0, user, size) in enumerate(zip(starts, users, sizes, strict=True)):
        gaps = np.concatenate([[0.0], rng.exponential(0.75, size - 1)])
        t.append(t0 + np.cumsum(gaps))
        u += [f"hd-u{user:04d}"] * size
        s += [f"hd-s{k}"] * size
    parts = [(np.concatenate(t), np.array(u), np.array(s))]

    def extra(times: np.ndarray, user: str, session: str = "") -> None:
        parts.append((times, np.full(len(times), user), np.full(len(times), session)))

    start = minutes_of(END) - total
    for day in range(DAYS):  # the nightly sync: 10-20 minutes at 02:00, 8-14 calls/min
        dur, per = rng.uniform(10, 20), rng.uniform(8, 14)
        t0 = day * 1440 + 120
        extra(t0 + rng.random(rng.poisson(dur * per)) * dur, SYNC_USER)
    new0 = minutes_of(NEW_START) - start  # the new customer: 30 % of the series' calls for an hour
    new_rate = 0.43 * RATE * float(_profile(np.arange(new0, new0 + 60)).mean())
    extra(new0 + rng.random(rng.poisson(60 * new_rate)) * 60, NEW_USER)
    chat0 = minutes_of(CHATTY_START) - start  # one person, one long conversation
    extra(chat0 + np.cumsum(rng.exponential(0.75, 16)), CHATTY_USER, "hd-long-chat")
    loop0 = minutes_of(LOOP_START) - start
    extra(loop0 + rng.random(rng.poisson(LOOP_MINUTES * LOOP_RATE)) * LOOP_MINUTES, LOOP_USER)
    t = np.concatenate([p[0] for p in parts])
    keep = t < total
    return {
        "t": t[keep],
        "user": np.concatenate([p[1] for p in parts])[keep],
        "session": np.concatenate([p[2] for p in parts])[keep],
    }


def minutes_of(at: datetime) -> int:
    return int(at.timestamp()) // 60


def rows(c: dict[str, np.ndarray], seed: int = 7) -> list[tuple[Any, ...]]:
    """``otel_traces`` rows of the calls: chat spans of the helpdesk's model, each its own trace."""
    rng = np.random.default_rng([seed, 1])
    start = (minutes_of(END) - DAYS * 1440) * 60 * 10**9
    start_ns = start + np.round(c["t"] * 60e9).astype(np.int64)
    dur_ns = np.round(rng.lognormal(np.log(900), 0.4, len(start_ns)) * 1e6).astype(np.int64)
    ids = rng.integers(1, 2**63, (len(start_ns), 3))
    resource = {"service.name": SERVICE, "deployment.environment.name": "production", "service.version": "v1.0"}
    out = []
    for k in range(len(start_ns)):
        attrs = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": MODEL,
            "gen_ai.usage.input_tokens": "400", "gen_ai.usage.output_tokens": "120", "user.id": str(c["user"][k]),
            "gen_ai.response.finish_reasons": '["stop"]', "llmtrace.cost.usd": "0.0001",
        }  # fmt: skip
        if c["session"][k]:
            attrs["session.id"] = str(c["session"][k])
        out.append((int(start_ns[k]), f"{ids[k, 0]:016x}{ids[k, 1]:016x}", f"{ids[k, 2]:016x}", "", "",
                    f"chat {MODEL}", "Client", SERVICE, resource, "llmtrace", "0.1.0", attrs, int(dur_ns[k]),
                    "Unset", "", [], [], [], [], [], [], []))  # fmt: skip
    return out


def insert(client: Any, seed: int = 7) -> int:
    """The scenario into ``client``'s ``otel_traces`` (schema applied); returns the number of calls."""
    r = rows(calls(seed), seed)
    for k in range(0, len(r), 50_000):
        client.insert("otel_traces", r[k : k + 50_000], column_names=OTEL_TRACES_COLUMNS)
    return len(r)
