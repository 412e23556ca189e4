"""A weekly job's burst after a quiet weekend is judged on the same hours of the days before
(``HOURS_STAND_IN``).

A report runs every Monday at 08:00 (~250 calls in its first hour), a trickle on Tuesday to Thursday, and
almost nothing from Friday to Sunday. Its second Monday's first ten minutes run 9x slower. A rate's
baseline is the 24 hours before a window, and a window is judged only when they hold 20 trials: after
the weekend they hold a handful, so the slow burst was never judged (v14 seed 1408: 73 calls at 9x
missed), although the same hours of the Monday before hold hundreds of calls.
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

FIRST_MONDAY = datetime(2026, 11, 23, tzinfo=timezone.utc)
SECOND_RUN = FIRST_MONDAY + timedelta(days=7, hours=8)
END = SECOND_RUN + timedelta(hours=4)


def _calls_per_hour(at: datetime) -> float:
    if at.weekday() == 0 and at.hour == 8:
        return 250.0
    if 1 <= at.weekday() <= 3 and 7 <= at.hour < 18:
        return 15.0
    return 0.2


def _weeks(seed: int, slow: float = 1.0) -> list[tuple[object, ...]]:
    """Eight days of the report's calls (~20 s each, their answers 300-3,000 tokens); the ten minutes from
    ``SECOND_RUN`` at ``slow`` times the usual duration."""
    rng = np.random.default_rng(seed)
    ten_minutes = (SECOND_RUN, timedelta(minutes=10), slow)
    return slowed_calls(rng, FIRST_MONDAY, END, _calls_per_hour, (300, 3000), 0.3, ten_minutes)


def _latency_episodes(client: ChdbClient, rows: list[tuple[object, ...]]) -> list[Any]:
    return episodes(client, rows, "latency_p95_ms", END, days=7)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_slow_start_of_a_weekly_burst_after_a_quiet_weekend_is_found(fresh: ChdbClient, seed: int) -> None:
    rows = _weeks(seed, slow=9.0)
    quiet = [r for r in rows if SECOND_RUN - timedelta(days=1) <= _at(r) < SECOND_RUN]
    assert len(quiet) < 20  # the day before the burst cannot judge it alone
    found = _latency_episodes(fresh, rows)
    assert [e.start <= SECOND_RUN + timedelta(minutes=10) and e.end >= SECOND_RUN for e in found] == [True]


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_usual_weekly_burst_has_no_latency_episode(fresh: ChdbClient, seed: int) -> None:
    assert _latency_episodes(fresh, _weeks(seed)) == []


def _at(row: tuple[object, ...]) -> datetime:
    return datetime.fromtimestamp(int(row[0]) / 1e9, tz=timezone.utc)  # type: ignore[call-overload]
