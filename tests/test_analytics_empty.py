"""A page's query over a window without calls returns the same columns as over one with calls.

clickhouse-connect gives a frame without columns for an empty result, and the analytics select
columns by name (chDB in-process keeps them, so this runs over HTTP against a real ``llmtrace
server``): the Overview page once crashed (`KeyError: None of [Index(['bucket', ...` in
`overview.timeseries`) when `llmtrace up --demo` rendered it while the history was being inserted
(the summary had counted calls; the series query, on other tables, found none). Demo history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import cost, frame, latency, overview, prompts, sessions, traces
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from tests.server_process import ServerProcess

END = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
WITH_CALLS = Filter.last(timedelta(days=1), now=END)
EMPTY = Filter.last(timedelta(days=1), now=END - timedelta(days=400))  # long before the history

QUERIES: dict[str, Callable[[Any, Filter], pd.DataFrame]] = {
    "overview.timeseries": overview.timeseries,
    "overview.breakdown": lambda c, f: overview.breakdown(c, f, "model"),
    "latency.by_model": latency.by_model,
    "latency.tokens_per_second": latency.tokens_per_second,
    "latency.histogram": latency.histogram,
    "latency.over_time": latency.over_time,
    "latency.slowest_calls": latency.slowest_calls,
    "cost.spend_by": lambda c, f: cost.spend_by(c, f, "user"),
    "cost.spend_per_day": cost.spend_per_day,
    "cost.most_expensive_calls": cost.most_expensive_calls,
    "cost.unpriced": cost.unpriced,
    "traces.list_traces": traces.list_traces,
    "sessions.listing": sessions.listing,
    "prompts.prompt_versions": prompts.prompt_versions,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = ServerProcess(tmp_path_factory.mktemp("empty_windows")).wait_ready()
    client = server.client()
    sql, params = scenarios.history_sql(5_000, 2, int(END.timestamp() * 1e9), seed=5)
    client.command(sql, parameters=params)
    yield client
    client.close()
    server.stop()


@pytest.mark.parametrize("name", list(QUERIES))
def test_an_empty_window_keeps_the_columns_of_a_full_one(store: Any, name: str) -> None:
    full = QUERIES[name](store, WITH_CALLS)
    empty = QUERIES[name](store, EMPTY)
    assert len(full) > 0, "the history must reach this query, else the comparison proves nothing"
    assert list(empty.columns) == list(full.columns)


def test_frame_of_no_rows_has_the_query_columns_with_bound_parameters(store: Any) -> None:
    df = frame(store, "SELECT toUInt64({n:UInt64}) AS calls, 'x' AS model WHERE 0", {"n": 3})
    assert df.empty and list(df.columns) == ["calls", "model"]


def test_frame_of_a_bad_query_still_raises(store: Any) -> None:
    with pytest.raises(Exception, match="no_such_table"):
        frame(store, "SELECT * FROM no_such_table")
