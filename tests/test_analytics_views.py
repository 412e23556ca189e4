"""Overview, cost and latency figures equal direct SQL on llm_calls (real chDB)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import cost, latency, overview
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner

END = datetime.now(timezone.utc).replace(minute=12, second=5, microsecond=0) - timedelta(hours=1)
DAY = Filter.last(timedelta(days=1), now=END)
WEEK = Filter.last(timedelta(days=7), now=END)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('views')}")
    apply_migrations(client_runner(client))
    sql, params = scenarios.history_sql(6000, 14, int(END.timestamp() * 1e9))
    client.command(sql, parameters=params)
    yield client
    client.close()


def scalar(client: Any, sql: str, f: Filter) -> Any:
    return client.query(f"{sql} FROM llm_calls WHERE {f.where()}", parameters=f.params()).result_rows[0][0]


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day-raw", "week-rollup"])
def test_summary_equals_direct_sql(store: Any, f: Filter) -> None:
    row = overview.summary(store, f).iloc[0]
    assert row["calls"] == scalar(store, "SELECT count()", f)
    assert row["errors"] == scalar(store, "SELECT sum(IsError)", f)
    assert row["cost_usd"] == pytest.approx(scalar(store, "SELECT sum(CostUsd)", f))
    assert row["unpriced_calls"] == scalar(store, "SELECT countIf(CostStatus = 'unpriced')", f)
    assert row["tokens"] == scalar(store, "SELECT sum(InputTokens + OutputTokens)", f)


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day-raw", "week-rollup"])
def test_latency_percentiles_are_within_two_percent_of_exact_quantiles(store: Any, f: Filter) -> None:
    row = overview.summary(store, f).iloc[0]
    exact = scalar(store, "SELECT quantilesExact(0.5, 0.95)(DurationUs)", f)
    assert row["p50_ms"] == pytest.approx(exact[0] / 1000, rel=0.02)
    assert row["p95_ms"] == pytest.approx(exact[1] / 1000, rel=0.02)


def test_summary_of_an_empty_window_has_zero_calls_and_no_percentiles(store: Any) -> None:
    row = overview.summary(store, Filter.last(timedelta(hours=1), now=END + timedelta(days=30))).iloc[0]
    assert row["calls"] == 0
    assert math.isnan(row["cost_usd"]) and math.isnan(row["p95_ms"])


def test_previous_row_covers_the_window_before(store: Any) -> None:
    both = overview.summary_with_previous(store, DAY)
    assert both.loc["previous", "calls"] == scalar(store, "SELECT count()", DAY.previous())


def test_timeseries_covers_every_bucket_and_sums_to_the_total(store: Any) -> None:
    series = overview.timeseries(store, WEEK)
    assert series["calls"].sum() == scalar(store, "SELECT count()", WEEK)
    assert series["bucket"].is_monotonic_increasing
    step = (series["bucket"].iloc[1] - series["bucket"].iloc[0]).total_seconds()
    assert len(series) == pytest.approx(WEEK.duration.total_seconds() / step, abs=1)


def test_breakdown_by_model_sums_to_the_total(store: Any) -> None:
    table = overview.breakdown(store, WEEK, "model")
    assert table["calls"].sum() == scalar(store, "SELECT count()", WEEK)
    assert list(table["calls"]) == sorted(table["calls"], reverse=True)


def test_service_filter_keeps_only_that_service(store: Any) -> None:
    f = Filter.last(timedelta(days=7), now=END, services=("summarizer",))
    table = overview.breakdown(store, f, "service")
    assert list(table["service"]) == ["summarizer"]


def test_unknown_breakdown_is_refused_with_the_choices(store: Any) -> None:
    with pytest.raises(ValueError, match="provider"):
        overview.breakdown(store, DAY, "colour")


def test_store_counts_reports_spans_and_calls(store: Any) -> None:
    assert overview.store_counts(store) == {"spans": 6000, "calls": 6000}


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day-raw", "week-rollup"])
def test_cost_totals_equal_direct_sql(store: Any, f: Filter) -> None:
    row = cost.totals(store, f).iloc[0]
    assert row["cost_usd"] == pytest.approx(scalar(store, "SELECT sum(CostUsd)", f))
    assert row["priced_calls"] == scalar(store, "SELECT countIf(CostUsd IS NOT NULL)", f)


def test_unpriced_calls_are_counted_apart_and_add_nothing_to_spend(store: Any) -> None:
    f = Filter.last(timedelta(days=7), now=END, models=("acme-support-ft",))
    row = cost.totals(store, f).iloc[0]
    assert row["unpriced_calls"] == scalar(store, "SELECT countIf(CostStatus = 'unpriced')", f) > 0
    assert row["priced_calls"] == 0
    assert math.isnan(row["cost_usd"])  # shown as "n/a", never as $0


def test_unpriced_table_names_models_without_a_price_apart_from_failed_calls(store: Any) -> None:
    table = cost.unpriced(store, WEEK)
    assert table.loc[table["reason"] == "no price", "model"].tolist() == ["acme-support-ft"]
    no_price = table.loc[table["reason"] == "no price", "unpriced_calls"].sum()
    assert no_price == cost.totals(store, WEEK)["unpriced_calls"].iloc[0]


def test_projected_month_scales_the_window_spend_to_thirty_days(store: Any) -> None:
    row = cost.totals(store, WEEK).iloc[0]
    assert row["projected_month_usd"] == pytest.approx(row["cost_usd"] * 30 / 7)


def test_a_window_reaching_into_the_future_projects_from_its_elapsed_part(store: Any) -> None:
    now = datetime.now(timezone.utc)
    row = cost.totals(store, Filter(start=now - timedelta(days=1), end=now + timedelta(days=1))).iloc[0]
    assert row["projected_month_usd"] == pytest.approx(row["cost_usd"] * 30, rel=1e-3)


def test_spend_by_user_matches_direct_sql(store: Any) -> None:
    table = cost.spend_by(store, WEEK, "user", limit=1000)
    assert table["cost_usd"].sum() == pytest.approx(scalar(store, "SELECT sum(CostUsd)", WEEK))
    assert table["calls"].sum() == scalar(store, "SELECT count()", WEEK)


@pytest.mark.parametrize("dimension", cost.DIMENSIONS)
def test_spend_by_any_dimension_has_shares_summing_to_one(store: Any, dimension: str) -> None:
    table = cost.spend_by(store, WEEK, dimension, limit=1000)
    assert table["share"].sum() == pytest.approx(1.0)


def test_spend_per_day_sums_to_the_total(store: Any) -> None:
    per_day = cost.spend_per_day(store, WEEK, "service")
    assert per_day["cost_usd"].sum() == pytest.approx(scalar(store, "SELECT sum(CostUsd)", WEEK))
    # A 7-day window not on midnight touches 8 UTC days, but one of the end days may hold no call yet
    # (just after midnight UTC the window's last day is minutes long): count the days that have calls.
    days_with_calls = scalar(store, "SELECT uniqExact(toDate(Timestamp, 'UTC'))", WEEK)
    assert days_with_calls in (7, 8)
    assert per_day["day"].nunique() == days_with_calls


def test_most_expensive_calls_come_first(store: Any) -> None:
    table = cost.most_expensive_calls(store, WEEK, limit=5)
    assert table["cost_usd"].iloc[0] == pytest.approx(scalar(store, "SELECT max(CostUsd)", WEEK))
    assert list(table["cost_usd"]) == sorted(table["cost_usd"], reverse=True)


def test_latency_by_model_median_is_close_to_the_exact_median(store: Any) -> None:
    f = Filter.last(timedelta(days=7), now=END, models=("gpt-4o-mini",))
    row = latency.by_model(store, f).iloc[0]
    assert row["p50_ms"] == pytest.approx(scalar(store, "SELECT quantileExact(0.5)(DurationUs)", f) / 1000, rel=0.02)


def test_histogram_counts_every_call_once(store: Any) -> None:
    assert latency.histogram(store, WEEK)["calls"].sum() == scalar(store, "SELECT count()", WEEK)


def test_ttft_histogram_counts_only_calls_with_a_first_token_time(store: Any) -> None:
    counted = latency.histogram(store, WEEK, "ttft")["calls"].sum()
    assert counted == scalar(store, "SELECT countIf(TtftUs IS NOT NULL)", WEEK)


def test_slowest_calls_come_first(store: Any) -> None:
    table = latency.slowest_calls(store, DAY, limit=5)
    assert table["duration_ms"].iloc[0] == scalar(store, "SELECT max(DurationUs)", DAY) / 1000
    assert list(table["duration_ms"]) == sorted(table["duration_ms"], reverse=True)
    assert set(table["stream"]) <= {"yes", "no"} and set(table["status"]) <= {"ok", "error"}


def test_tokens_per_second_ignores_calls_without_output(store: Any) -> None:
    table = latency.tokens_per_second(store, WEEK)
    assert table["calls"].sum() == scalar(store, "SELECT countIf(OutputTokensPerSecond > 0)", WEEK)


def test_latency_over_time_shows_the_scripted_spike(store: Any) -> None:
    # The whole service (one row per model and hour): the slowdown hits every model of search-api, and one
    # model alone has ~4 calls an hour, none at all in the spike's hours at 3 of 24 times of day.
    f = Filter.last(timedelta(days=7), now=END, services=("search-api",))
    trend = latency.over_time(store, f, step=3600)
    worst = trend.loc[trend["p50_ms"].idxmax(), "bucket"]
    spike = next(e for e in scenarios.EPISODES if e.kind == "latency_spike")
    spike_start_ns, spike_end_ns = scenarios.episode_window(spike, int(END.timestamp() * 1e9), days=14)
    # The worst hour is one the spike covers (which one depends on the hour the test runs at).
    assert spike_start_ns / 1e9 - 3600 < worst.timestamp() < spike_end_ns / 1e9


def test_histogram_of_a_window_off_the_hour_equals_direct_sql(store: Any) -> None:
    """Whole hours come from the hourly histogram rollup, the partial hours at both edges from raw calls."""
    f = Filter(WEEK.start + timedelta(minutes=17), WEEK.end - timedelta(hours=3, minutes=41))
    for metric, column in (("duration", "DurationUs"), ("ttft", "TtftUs")):
        sql = f"""
            SELECT RequestModel AS model, pow(10, floor(log10(greatest({column}, 1) / 1000) * 10) / 10) AS bin_ms,
                   count() AS calls
            FROM llm_calls WHERE {f.where()} AND {column} IS NOT NULL
            GROUP BY model, bin_ms ORDER BY model, bin_ms"""
        direct = store.query_df(sql, parameters=f.params())
        got = latency.histogram(store, f, metric)
        assert len(got) > 5
        assert got[["model", "bin_ms", "calls"]].to_dict("records") == direct.to_dict("records"), metric


@pytest.mark.parametrize("limit", [1, 20, 500])
def test_slowest_calls_are_the_top_durations_of_direct_sql(store: Any, limit: int) -> None:
    """Exactly the top durations of a direct query, over a window off the hour with a service filter."""
    f = Filter(WEEK.start + timedelta(minutes=17), WEEK.end - timedelta(hours=3, minutes=41), services=("search-api",))
    sql = f"SELECT DurationUs / 1000 AS d FROM llm_calls WHERE {f.where()} ORDER BY DurationUs DESC LIMIT {limit}"
    direct = list(store.query_df(sql, parameters=f.params())["d"])
    assert len(direct) == limit
    assert list(latency.slowest_calls(store, f, limit=limit)["duration_ms"]) == direct
