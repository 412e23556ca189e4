"""A young series' first hours are held to the median of its first bars (``FIRST_BARS``).

A series' bar (the usual p90) is the median of its last hours' p90s, and exists once three hours of 3+
calls are behind it; calls before it were no trials at all. So a series born at 02:00 whose first
busy morning runs 4x slower from 08:00 had its first judged windows' baseline made of that slow hour's
own calls (v14 seed 1402: 27 calls at 4x, 9 hours after the first call, missed). Now the hours before
the first bar are held to the median of the series' first qualifying hours' p90s, and their calls are
its rates' first trials.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from llmtrace.store.chdb_client import ChdbClient
from tests.test_anomalies_per_token import episodes, slowed_calls
from tests.test_anomaly_rollup import fresh as _fresh
from tests.test_anomaly_rollup import store as _store  # one chDB directory a process: theirs
from tests.test_anomaly_rollup import store_url as _store_url

store, store_url, fresh = _store, _store_url, _fresh

BORN = datetime(2026, 12, 5, 2, tzinfo=timezone.utc)
SLOW_FROM = BORN + timedelta(hours=6, minutes=5)  # 08:05
SLOW_FOR = timedelta(minutes=45)
END = BORN + timedelta(hours=10)


def _calls_per_hour(at: datetime) -> float:
    """Night hours of 1-2 calls (no bar from them), then 5, 8 and 30 an hour from 07:00."""
    return {5: 5.0, 6: 8.0}.get(at.hour, 30.0 if at.hour >= 7 else 1.5)


def _first_hours(seed: int, slow: float = 1.0) -> list[tuple[object, ...]]:
    """A series' first ten hours (:func:`_calls_per_hour`), each call ~3 s; the 45 minutes
    from ``SLOW_FROM`` at ``slow`` times that."""
    rng = np.random.default_rng(seed)
    return slowed_calls(rng, BORN, END, _calls_per_hour, (150, 400), 0.35, (SLOW_FROM, SLOW_FOR, slow))


def _latency_episodes(client: ChdbClient, rows: list[tuple[object, ...]]) -> list[Any]:
    return episodes(client, rows, "latency_p95_ms", END, days=1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_young_series_slow_from_its_first_busy_hour_is_found(fresh: ChdbClient, seed: int) -> None:
    found = _latency_episodes(fresh, _first_hours(seed, slow=4.0))
    assert [e.start <= SLOW_FROM + SLOW_FOR and e.end >= SLOW_FROM for e in found] == [True]


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_young_series_usual_first_hours_have_no_latency_episode(fresh: ChdbClient, seed: int) -> None:
    assert _latency_episodes(fresh, _first_hours(seed)) == []
