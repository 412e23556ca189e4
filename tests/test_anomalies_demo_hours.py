"""``llmtrace up --demo``'s week, started at different hours of the day: every scripted incident is
an episode of its own service in ``anomalies --since 7d`` with the default grouping.

The incidents sit a fixed number of hours before the demo's start, so the hour it starts at moves
them across the demo's daily peak and trough, and with them what else is going on around them.
Started at 17:00, 19:00 or 21:00 UTC, the error burst was reported for the whole app (``all``)
and the model switch for the provider (``openai``), not for ``support-bot``. The history is the
one ``up --demo`` writes (:func:`scenarios.history_sql`, 30,000 calls), on fixed hours of
yesterday, so the answer does not depend on when the test runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import anomalies
from llmtrace.analytics.anomalies import AnomalyReport
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient

pytest_plugins = ["tests.conftest_store"]

UP_DEMO_CALLS = 30_000  # `llmtrace up --demo`'s default --demo-calls
YESTERDAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
HOURS = (9, 17, 19, 21)  # 17, 19 and 21 failed before; 9 passed
INCIDENTS = (  # (episode kind, metric, direction, series the episode must name)
    ("error_burst", "error_rate", "up", {"service": "support-bot"}),
    ("latency_spike", "latency_p95_ms", "up", {"service": "search-api"}),
    ("prompt_change", "cost_per_call_usd", "up", {"service": "summarizer"}),
    ("model_switch", "calls", "down", {"service": "support-bot", "model": "gpt-4o"}),
)


@pytest.fixture(scope="module")
def reports(module_databases: Callable[[], ChdbClient]) -> dict[int, tuple[datetime, AnomalyReport]]:
    out = {}
    for hour in HOURS:
        end = YESTERDAY.replace(hour=hour)
        client = module_databases()
        sql, params = scenarios.history_sql(UP_DEMO_CALLS, 7, int(end.timestamp() * 1e9))
        client.command(sql, parameters=params)
        out[hour] = end, anomalies.detect(client, Filter.last(timedelta(days=7), now=end), now=end)
    return out


def _window(kind: str, end: datetime) -> tuple[datetime, datetime]:
    episode = next(e for e in scenarios.EPISODES if e.kind == kind)
    start, stop = scenarios.episode_window(episode, int(end.timestamp() * 1e9), 7)
    return datetime.fromtimestamp(start / 1e9, timezone.utc), datetime.fromtimestamp(stop / 1e9, timezone.utc)


@pytest.mark.parametrize("hour", HOURS)
@pytest.mark.parametrize(("kind", "metric", "direction", "series"), INCIDENTS, ids=[i[0] for i in INCIDENTS])
def test_each_incident_is_an_episode_of_its_own_service(
    reports: dict[int, tuple[datetime, AnomalyReport]],
    hour: int,
    kind: str,
    metric: str,
    direction: str,
    series: dict[str, str],
) -> None:
    end, report = reports[hour]
    start, stop = _window(kind, end)
    near = min(stop, start + timedelta(hours=3)) + timedelta(minutes=30)
    found = [
        a for a in report.find(metric, kind="episode", **series)
        if a.direction == direction and a.end > start and a.start < near
    ]  # fmt: skip
    elsewhere: list[Any] = [
        (a.series, round(a.score, 1))
        for a in report.episodes()
        if a.metric == metric and a.direction == direction and a.end > start and a.start < near
    ]
    assert found, f"{kind} of {series} missing at a start of {end:%H:%M}; at other levels: {elsewhere}"


@pytest.mark.parametrize("hour", HOURS)
def test_no_incident_is_reported_twice(reports: dict[int, tuple[datetime, AnomalyReport]], hour: int) -> None:
    """Not as a series and again as one of its environments or models (search-api's slowdown was
    also a gemini staging episode that started 45 minutes into it)."""
    episodes = reports[hour][1].episodes()
    for a in episodes:
        twins = [
            b.summary for b in episodes if b is not a and b.metric == a.metric and b.direction == a.direction
            and b.start < a.end and a.start < b.end and all(b.series.get(k) == v for k, v in a.series.items())
        ]  # fmt: skip
        assert not twins, (a.summary, twins)
