"""Falls are also judged over 30 minutes (``FALL_SCALES``), not only 5, 15, 60 and 180.

An API at ~70 calls an hour by day loses 90% of its calls for 30 minutes. Its 15-minute windows hold
~2 calls against ~17 (a Poisson score of ~4.5, under the bar of 5) and its hour dilutes the drop with
30 usual minutes; the 30-minute window that holds it scores over 5. v15 held such outages (a service's
upstream, a model's feature flag: 20-40 minutes, a fifth of the usual calls) that no scale saw.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from llmtrace.analytics import anomalies_scan
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner
from tests.test_anomalies_per_token import _row, episodes, poisson_hours
from tests.test_anomaly_rollup import fresh as _fresh
from tests.test_anomaly_rollup import store as _store  # one chDB directory a process: theirs
from tests.test_anomaly_rollup import store_url as _store_url

store, store_url, fresh = _store, _store_url, _fresh

START = datetime(2026, 11, 23, tzinfo=timezone.utc)
DROP = START + timedelta(days=4, hours=14, minutes=10)
MINUTES = 30
END = DROP + timedelta(hours=3)
SEEDS = range(5, 13)


def _per_hour(at: datetime) -> float:
    return 70.0 if 8 <= at.hour < 20 else 25.0


def _calls(seed: int, kept: float = 0.1) -> list[tuple[object, ...]]:
    """Four days and a half of the API's calls; ``kept`` of them during the drop."""
    rng = np.random.default_rng(seed)
    rows = []
    for at in poisson_hours(rng, START, END, _per_hour):
        if DROP <= at < DROP + timedelta(minutes=MINUTES) and rng.uniform() > kept:
            continue
        rows.append(_row(at, int(rng.uniform(100, 600)), float(rng.uniform(800, 3000))))
    return rows


def _falls(client: ChdbClient, rows: list[tuple[object, ...]]) -> list[Any]:
    return [e for e in episodes(client, rows, "calls", END, days=5) if e.direction == "down"]


def _found(falls: list[Any]) -> bool:
    return any(e.start <= DROP + timedelta(minutes=MINUTES) and e.end >= DROP for e in falls)


@contextmanager
def _database(store: Any, store_url: str) -> Iterator[ChdbClient]:
    """What the ``fresh`` fixture gives, once per seed within one test."""
    name = f"falls_{uuid.uuid4().hex[:8]}"
    store.command(f"CREATE DATABASE {name}")
    client = ChdbClient.open(store_url.removeprefix("chdb://"), database=name)
    try:
        apply_migrations(client_runner(client))
        yield client
    finally:
        client.close()
        store.command(f"DROP DATABASE {name} SYNC")


def _weeks_found(store: Any, store_url: str) -> int:
    found = 0
    for seed in SEEDS:
        with _database(store, store_url) as client:
            found += _found(_falls(client, _calls(seed)))
    return found


def test_a_30_minute_fall_is_found_in_most_weeks(store: Any, store_url: str) -> None:
    assert _weeks_found(store, store_url) >= 7


def test_without_the_30_minute_windows_most_of_those_falls_are_missed(
    store: Any, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above measures the scales, not a fall any scale would see."""
    monkeypatch.setattr(anomalies_scan, "FALL_SCALES", anomalies_scan.SCALES)
    assert _weeks_found(store, store_url) <= 5


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_same_weeks_without_the_drop_have_no_fall(fresh: ChdbClient, seed: int) -> None:
    assert _falls(fresh, _calls(seed, kept=1.0)) == []
