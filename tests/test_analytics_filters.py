"""The shared filter: windows, bind parameters, and the rollup-backed source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics.filters import Filter, options
from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner

# Recent (inside every TTL) and deliberately not on an hour boundary.
END = datetime.now(timezone.utc).replace(minute=37, second=21, microsecond=0) - timedelta(days=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('filters')}")
    apply_migrations(client_runner(client))
    sql, params = scenarios.history_sql(4000, 10, int(END.timestamp() * 1e9))
    client.command(sql, parameters=params)
    yield client
    client.close()


def direct(client: Any, f: Filter) -> tuple[int, int, float, int, int]:
    row = client.query(
        "SELECT count(), sum(IsError), sum(ifNull(CostUsd, 0)), countIf(CostStatus = 'unpriced'), sum(OutputTokens) "
        f"FROM llm_calls WHERE {f.where()}",
        parameters=f.params(),
    ).result_rows[0]
    return int(row[0]), int(row[1]), float(row[2]), int(row[3]), int(row[4])


def via_source(client: Any, f: Filter) -> tuple[int, int, float, int, int]:
    row = client.query(
        f"SELECT sum(Calls), sum(Errors), sum(CostUsd), sum(UnpricedCalls), sum(OutputTokens) FROM {f.source()}",
        parameters=f.params(),
    ).result_rows[0]
    return int(row[0]), int(row[1]), float(row[2]), int(row[3]), int(row[4])


def test_previous_window_has_the_same_length_and_ends_where_the_window_starts() -> None:
    f = Filter.last(timedelta(hours=24), now=END)
    assert f.previous().end == f.start
    assert f.previous().duration == f.duration


def test_naive_datetimes_are_taken_as_utc() -> None:
    f = Filter(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    assert f.start.tzinfo == timezone.utc


def test_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Filter(start=END, end=END - timedelta(hours=1))


def test_only_windows_longer_than_two_days_read_the_hourly_rollup() -> None:
    assert not Filter.last(timedelta(days=2), now=END).uses_rollup
    assert Filter.last(timedelta(days=2, minutes=1), now=END).uses_rollup


def test_rollup_windows_bucket_by_whole_hours() -> None:
    f = Filter.last(timedelta(days=3), now=END)
    assert f.params(step=1800)["step"] == 3600
    assert f.params(step=5400)["step"] == 3600


def test_dimension_choices_are_bound_as_array_parameters_not_formatted_into_sql() -> None:
    f = Filter.last(timedelta(hours=1), now=END, services=("it's-a-service",))
    assert f.params()["services"] == ["it's-a-service"]
    assert "it's" not in f.where() and "{services:Array(String)}" in f.where()


def test_short_window_source_equals_direct_sql(store: Any) -> None:
    f = Filter.last(timedelta(hours=36), now=END)
    assert via_source(store, f) == pytest.approx(direct(store, f))


def test_long_window_source_from_the_rollup_equals_direct_sql(store: Any) -> None:
    f = Filter.last(timedelta(days=7), now=END)
    assert via_source(store, f) == pytest.approx(direct(store, f))


def test_long_window_with_dimension_filters_equals_direct_sql(store: Any) -> None:
    f = Filter.last(timedelta(days=5), now=END, services=("support-bot",), environments=("production",))
    calls = via_source(store, f)
    assert calls[0] > 0
    assert calls == pytest.approx(direct(store, f))


def test_options_lists_the_values_seen_in_the_window(store: Any) -> None:
    seen = options(store, Filter.last(timedelta(days=7), now=END))
    assert seen["services"] == ["search-api", "summarizer", "support-bot"]
    assert scenarios.SWITCH_TO in seen["models"]
    assert seen["releases"] == ["v1.4.0", "v1.5.0"]
