"""The demo's week of history has its daily shape right up to "now", at any time of day.

The history bends uniform times into a daily peak one UTC day at a time. Calls that the bend moved
past the window's end used to fall back to their unbent time, so the half hour before "now" stayed
empty at some times of day: `llmtrace up --demo` then showed `calls down` warnings at "now" on the
Anomalies page (observed 0 against ~30 expected) and a cliff at the right edge of every chart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner

CALLS = 60_000
DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)  # within TTL
ENDS = [DAY.replace(hour=h, minute=m, second=17) for h, m in ((2, 49), (8, 10), (14, 30), (20, 49))]
EDGE = timedelta(minutes=30)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    c = connect(f"chdb://{tmp_path_factory.mktemp('history_edges')}")
    apply_migrations(client_runner(c))
    yield c


def _calls(client: Any, start: datetime, end: datetime) -> int:
    return int(
        client.query(
            "SELECT count() FROM otel_traces WHERE ScopeName = {scope:String} AND ParentSpanId = ''"
            " AND Timestamp >= {start:DateTime64(6, 'UTC')} AND Timestamp < {end:DateTime64(6, 'UTC')}",
            parameters={"scope": scenarios.HISTORY_SCOPE, "start": start, "end": end},
        ).result_rows[0][0]
    )


@pytest.mark.parametrize("end", ENDS, ids=lambda e: e.strftime("%H:%M"))
def test_the_last_half_hour_has_the_pace_of_the_same_half_hour_a_day_earlier(client: Any, end: datetime) -> None:
    client.command("TRUNCATE TABLE otel_traces")
    sql, params = scenarios.history_sql(CALLS, 7, int(end.timestamp() * 1e9), seed=3)
    client.command(sql, parameters=params)
    last = _calls(client, end - EDGE, end)
    day_before = _calls(client, end - EDGE - timedelta(days=1), end - timedelta(days=1))
    assert day_before >= 40, "the comparison needs calls at this time of day"
    assert last >= 0.6 * day_before, (last, day_before)
    first_day = _calls(client, end - timedelta(days=7), end - timedelta(days=6))
    assert first_day >= 0.6 * _calls(client, end - timedelta(days=6), end - timedelta(days=5))
