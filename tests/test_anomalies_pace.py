"""A 2x slowdown of a series whose durations follow its answers' lengths, seen as the share of calls past
the usual p90 *per output token* (``latency_p95_ms_pace``, reported as ``latency_p95_ms``).

Answers of 300-10,000 tokens spread the durations 33x, so a 40-minute slowdown of 2x pushes only the calls
with long answers past the usual p90 of the durations (no more than usual past twice it), and none past
three times the per-token p90 (``latency_p95_ms_per_token``); per output token every slowed call is past
the usual p90. The attacks: a release that shortens every answer (a fixed overhead makes each short
answer slower per token), and weeks without a slowdown, must raise no latency episode.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from llmtrace import semconv
from llmtrace.store.chdb_client import ChdbClient
from tests.test_anomalies_per_token import END, PACE_MS, _row, episodes, exponential_arrivals
from tests.test_anomaly_rollup import fresh as _fresh
from tests.test_anomaly_rollup import store as _store  # one chDB directory a process: theirs
from tests.test_anomaly_rollup import store_url as _store_url

store, store_url, fresh = _store, _store_url, _fresh

SLOW_FROM = END - timedelta(hours=9, minutes=40)
SLOW_FOR = timedelta(minutes=40)
RELEASE = END - timedelta(hours=30)  # from here on, answers are a third of their length
OVERHEAD_MS = 800.0  # a call's fixed time (the prompt, the network): short answers are slower per token


def _week(seed: int, slowdown: float = 1.0, shorter_after: datetime | None = None) -> list[tuple[object, ...]]:
    """Three days of one series at ~30 calls an hour, each ``OVERHEAD_MS`` + its tokens at ~15 ms; the calls
    in the 40 minutes from ``SLOW_FROM`` at ``slowdown`` times that pace."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in exponential_arrivals(rng, END - timedelta(days=3), END, minutes=2.0):
        longest = 3_300 if shorter_after is not None and t >= shorter_after else 10_000
        tokens = int(np.exp(rng.uniform(np.log(longest / 33), np.log(longest))))
        pace = PACE_MS * float(np.exp(rng.normal(0, 0.15)))
        if SLOW_FROM <= t < SLOW_FROM + SLOW_FOR:
            pace *= slowdown
        rows.append(_row(t, tokens, OVERHEAD_MS + tokens * pace))
    return rows


def _latency_episodes(client: ChdbClient, rows: list[tuple[object, ...]]) -> list[Any]:
    return episodes(client, rows, "latency_p95_ms", END, days=3)


def _share_past_p90(rows: list[tuple[object, ...]], per_token: bool) -> float:
    """The slowdown's share of calls past the p90 of the calls before it (duration, or per output token)."""

    def value(row: tuple[object, ...]) -> float:
        duration = float(row[12])  # type: ignore[arg-type]
        return duration / int(row[11][semconv.USAGE_OUTPUT_TOKENS]) if per_token else duration  # type: ignore[index]

    def at(row: tuple[object, ...]) -> datetime:
        return datetime.fromtimestamp(int(row[0]) / 1e9, tz=END.tzinfo)  # type: ignore[arg-type]

    before = sorted(value(r) for r in rows if at(r) < SLOW_FROM)
    bar = before[int(0.9 * len(before))]
    slowed = [value(r) for r in rows if SLOW_FROM <= at(r) < SLOW_FROM + SLOW_FOR]
    return sum(v > bar for v in slowed) / len(slowed)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_a_slowdown_hidden_in_the_durations_spread_is_found_per_output_token(fresh: ChdbClient, seed: int) -> None:
    rows = _week(seed, slowdown=2.0)
    assert _share_past_p90(rows, per_token=False) < 0.6  # the durations alone hardly move...
    assert _share_past_p90(rows, per_token=True) > 0.9  # ... per output token nearly every call is past
    found = _latency_episodes(fresh, rows)
    assert [e.start <= SLOW_FROM + SLOW_FOR and e.end >= SLOW_FROM for e in found] == [True]
    assert "per output token than the usual p90" in found[0].measure


@pytest.mark.parametrize("seed", [21, 22])
def test_the_same_series_without_a_slowdown_has_no_latency_episode(fresh: ChdbClient, seed: int) -> None:
    assert _latency_episodes(fresh, _week(seed)) == []


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_a_release_that_shortens_every_answer_is_no_latency_episode(fresh: ChdbClient, seed: int) -> None:
    """Answers a third as long from the release on: each is slower per token (its fixed overhead weighs
    more), and the share past the usual per-token p90 jumps; it is a lasting shift of the answers, not of
    the model's speed, and must not read as a latency incident."""
    rows = _week(seed, shorter_after=RELEASE)
    assert _latency_episodes(fresh, rows) == []
