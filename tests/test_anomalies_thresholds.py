"""The per-call bars of anomalies_sql: a nightly job is held to its own hours, not to its trickle's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from llmtrace.analytics import anomalies_sql, frame
from llmtrace.analytics.filters import sql_time

pytest_plugins = ["tests.conftest_store"]

# a week ago at midnight (inside the store's TTL); every time below is fixed from it
START = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)


def _calls(store: Any, rows: list[tuple[datetime, int]]) -> None:
    values = ", ".join(
        f"('{t:%Y-%m-%d %H:%M:%S}', 'digest', 'claude-haiku-4-5', 'prod', 'anthropic', {ms * 1000}, 200, 0)"
        for t, ms in rows
    )
    store.command(
        "INSERT INTO llm_calls (Timestamp, ServiceName, RequestModel, Environment, Provider, DurationUs, "
        f"OutputTokens, IsError) VALUES {values}"
    )


def test_a_nightly_job_is_held_to_its_own_runs_not_to_the_trickle_between_them(store: Any) -> None:
    """Ten 1-second calls at 02:00 every night; between runs a trickle of quick 100 ms calls, one
    an hour, of which only two hours (on the fourth day) hold the 3 calls an hour's bar needs. The
    bar for the fifth night's run is the median of the last qualifying hours up to a week back
    (four runs, two trickle hours): the run's own level, so its calls are not above it. Judged
    against the last 24 hours only (a run and the two trickle hours), all ten were above a 100 ms bar."""
    rows = []
    for day in range(5):
        night = START + timedelta(days=day, hours=2)
        rows += [(night + timedelta(minutes=m), 1000 + 10 * m) for m in range(10)]
        for hour in range(3, 24):
            busy = day == 3 and hour in (10, 16)
            rows += [(START + timedelta(days=day, hours=hour, minutes=m), 100) for m in range(3 if busy else 1)]
    _calls(store, rows)
    params = {
        "hist_start": sql_time(START),
        "judge_end": sql_time(START + timedelta(days=5)),
    }
    counts = frame(store, anomalies_sql.counts_sql(("service",), "", 3600), params)
    stamps = pd.to_datetime(counts["b"], utc=True)
    fifth = counts[stamps == START + timedelta(days=4, hours=2)].iloc[0]
    assert fifth["lat_n"] == 10  # judged: a bar exists
    assert fifth["lat_x"] <= 1  # and the run is not above it
