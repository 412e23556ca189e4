"""Spend by user and the unpriced table from the per-user hourly rollup (schema 022) equal direct SQL.

Demo history goes into real chDB through the materialized views. Windows are off the hour, so the
page reads whole hours from ``llm_users_1h`` and the partial hours at both edges from ``llm_calls``;
every sidebar filter is tried, and the figures stay equal after re-pricing corrects the rollup."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import cost
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store import prices
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, schema_files

END = datetime.now(timezone.utc).replace(second=0, microsecond=0)
GPT4O = {"provider": "openai", "model": "gpt-4o", "input_mtok": 1.0, "output_mtok": 2.0}
FINE_TUNE = {"model": "acme-support-ft", "input_mtok": 0.5, "output_mtok": 1.0}  # any provider
# Off the hour at both ends: a day (raw edges + hours) and a week.
DAY = Filter(END - timedelta(days=1, minutes=17), END - timedelta(hours=2, minutes=41))
WEEK = Filter(END - timedelta(days=7, minutes=17), END - timedelta(minutes=3))
# Filter field -> llm_calls column: every sidebar filter.
SIDEBAR = {"services": "ServiceName", "environments": "Environment", "releases": "Release",
           "providers": "Provider", "models": "RequestModel", "users": "UserId", "sessions": "SessionId"}  # fmt: skip
pytestmark = pytest.mark.usefixtures("engine_overrides")  # tests/conftest.py

_DIRECT = """
    SELECT UserId AS user, count() AS calls, countIf(CostStatus = 'unpriced') AS unpriced_calls,
           countIf(CostUsd IS NOT NULL) AS priced_calls,
           if(priced_calls = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd,
           sum(InputTokens) AS input_tokens, sum(OutputTokens) AS output_tokens
    FROM llm_calls WHERE {where} GROUP BY user ORDER BY user"""


_DIRECT_UNPRICED = """
    SELECT Provider AS provider, RequestModel AS model, if(CostStatus = 'no_usage', 'failed', 'no price') AS reason,
           count() AS unpriced_calls
    FROM llm_calls WHERE {where} AND CostUsd IS NULL
    GROUP BY provider, model, reason ORDER BY reason DESC, unpriced_calls DESC, model, provider"""


def _fill(store: ChdbClient) -> ChdbClient:
    sql, params = scenarios.history_sql(6000, 10, int(END.timestamp()) * 10**9, seed=5)
    store.command(sql, parameters=params)
    return store


@pytest.fixture(scope="module")
def history(module_store: ChdbClient) -> ChdbClient:
    """The demo history, shared by the tests that only read it."""
    return _fill(module_store)


@pytest.fixture
def own_history(store: ChdbClient) -> ChdbClient:
    """The same history in a database of the test's own, for tests that truncate or re-price it."""
    return _fill(store)


def direct(client: Any, f: Filter) -> list[dict[str, Any]]:
    return client.query_df(_DIRECT.format(where=f.where()), parameters=f.params()).to_dict("records")


def shown(client: Any, f: Filter) -> list[dict[str, Any]]:
    table = cost.spend_by(client, f, "user", limit=100_000).sort_values("user")
    return table[["user", *cost.SPEND_COLUMNS[:4], "input_tokens", "output_tokens"]].to_dict("records")


def assert_equal_to_direct_sql(client: Any, f: Filter) -> None:
    got, want = shown(client, f), direct(client, f)
    assert [r["user"] for r in got] == [r["user"] for r in want] and want
    for g, w in zip(got, want, strict=True):
        for column in ("calls", "unpriced_calls", "priced_calls", "input_tokens", "output_tokens"):
            assert g[column] == w[column], (g["user"], column)
        if w["cost_usd"] is None or math.isnan(w["cost_usd"]):
            assert math.isnan(g["cost_usd"]), g["user"]  # "n/a", never $0
        else:
            assert g["cost_usd"] == pytest.approx(w["cost_usd"], rel=1e-9, abs=1e-12), g["user"]


def assert_unpriced_equal_to_direct_sql(client: Any, f: Filter) -> None:
    want = client.query_df(_DIRECT_UNPRICED.format(where=f.where()), parameters=f.params()).to_dict("records")
    got = cost.unpriced(client, f)
    assert list(got.columns) == ["provider", "model", "reason", "unpriced_calls"]
    assert got.to_dict("records") == want


def most_common(client: Any, column: str, f: Filter) -> str:
    sql = f"SELECT {column} FROM llm_calls WHERE {f.where()} GROUP BY {column} ORDER BY count() DESC, 1 LIMIT 1"
    return str(client.query(sql, parameters=f.params()).result_rows[0][0])


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day", "week"])
def test_spend_by_user_equals_a_direct_group_by_over_llm_calls(history: ChdbClient, f: Filter) -> None:
    assert_equal_to_direct_sql(history, f)


def test_the_rollup_answers_whole_hours_and_llm_calls_only_the_edges(own_history: ChdbClient) -> None:
    rolled = own_history.query("SELECT sum(Calls), count() FROM llm_users_1h").result_rows[0]
    assert rolled[0] == own_history.query("SELECT count() FROM llm_calls").result_rows[0][0] == 6000
    assert rolled[1] < 6000  # a row per hour, keys and user, not per call
    # A week whose partial hours lie in the demo's busiest hour (17:10-18:00 UTC, then 17:00-17:50):
    # WEEK's edges are minutes of whatever hour the run starts at, and at night they held no call.
    peak = (END - timedelta(hours=1)).replace(hour=17, minute=0)
    peak -= timedelta(days=1) if peak > END - timedelta(hours=1) else timedelta(0)
    week = Filter(peak - timedelta(days=7) + timedelta(minutes=10), peak + timedelta(minutes=50))
    first, last = week.start + timedelta(minutes=50), peak
    at_edges = Filter(week.start, first), Filter(last, week.end)
    own_history.command("TRUNCATE TABLE llm_users_1h")  # with the rollup gone only the edges' calls remain
    edges = sum(r["calls"] for r in shown(own_history, week))
    assert edges == sum(r["calls"] for f in at_edges for r in direct(own_history, f))
    assert 0 < edges < sum(r["calls"] for r in direct(own_history, week)) / 20


@pytest.mark.parametrize("field", list(SIDEBAR))
def test_every_sidebar_filter_gives_the_direct_sql_figures(history: ChdbClient, field: str) -> None:
    value = most_common(history, SIDEBAR[field], WEEK)
    f = Filter(WEEK.start, WEEK.end, **{field: (value,)})
    assert_equal_to_direct_sql(history, f)


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day", "week"])
def test_the_unpriced_table_equals_direct_sql(history: ChdbClient, f: Filter) -> None:
    assert {"no price", "failed"} <= set(cost.unpriced(history, f)["reason"])
    assert_unpriced_equal_to_direct_sql(history, f)


@pytest.mark.parametrize("field", list(SIDEBAR))
def test_every_sidebar_filter_gives_the_direct_unpriced_table(history: ChdbClient, field: str) -> None:
    value = most_common(history, SIDEBAR[field], WEEK)
    assert_unpriced_equal_to_direct_sql(history, Filter(WEEK.start, WEEK.end, **{field: (value,)}))


def test_several_filters_at_once_give_the_direct_sql_figures(history: ChdbClient) -> None:
    f = Filter(DAY.start, DAY.end, services=("search-api", "summarizer"), environments=("production",),
               users=(most_common(history, "UserId", DAY), "user-0"))  # fmt: skip
    assert_equal_to_direct_sql(history, f)
    assert_unpriced_equal_to_direct_sql(history, f)


def test_a_filter_matching_nothing_gives_an_empty_table(history: ChdbClient) -> None:
    assert cost.spend_by(history, Filter(WEEK.start, WEEK.end, users=("nobody",)), "user").empty


def test_repricing_corrects_the_per_user_rollup(own_history: ChdbClient) -> None:
    before = {r["user"]: r["cost_usd"] for r in shown(own_history, WEEK)}
    done = prices.apply_prices(own_history, [GPT4O, FINE_TUNE])
    assert done.calls > 500
    assert {r["user"]: r["cost_usd"] for r in shown(own_history, WEEK)} != before
    for f in (DAY, WEEK, Filter(WEEK.start, WEEK.end, models=("acme-support-ft",))):
        assert_equal_to_direct_sql(own_history, f)
    assert sum(r["unpriced_calls"] for r in shown(own_history, WEEK)) == 0  # the fine-tune is priced now
    assert set(cost.unpriced(own_history, WEEK)["reason"]) == {"failed"}  # calls without usage stay unpriced
    assert_unpriced_equal_to_direct_sql(own_history, WEEK)
    assert_unpriced_equal_to_direct_sql(own_history, DAY)


def test_a_second_price_change_corrects_it_again(own_history: ChdbClient) -> None:
    prices.apply_prices(own_history, [GPT4O])
    second = prices.apply_prices(own_history, [{**GPT4O, "input_mtok": 4.0, "output_mtok": 8.0}])
    assert_equal_to_direct_sql(own_history, WEEK)
    versions = own_history.query("SELECT DISTINCT PriceVersion FROM llm_users_1h ORDER BY 1").result_rows
    assert [v for (v,) in versions] == [0, second.version - 1, second.version]


def test_recovery_adds_the_missing_user_corrections_once(own_history: ChdbClient) -> None:
    """A run that died before the per-user corrections: recovery adds exactly those, and only once."""
    done = prices.apply_prices(own_history, [GPT4O, FINE_TUNE])
    version = {"v": done.version}
    own_history.command("DELETE FROM llm_users_1h WHERE PriceVersion = {v:UInt32}", parameters=version)
    assert shown(own_history, WEEK) != direct(own_history, WEEK)
    assert prices.recover(own_history) > 0
    assert prices.recover(own_history) == 0
    assert_equal_to_direct_sql(own_history, WEEK)
    assert_unpriced_equal_to_direct_sql(own_history, WEEK)


def test_the_migration_backfills_stored_calls_with_their_price_versions(empty_store: ChdbClient) -> None:
    """022 applied to a store with history and a re-priced call set: the backfill holds the calls' current
    cost and their version, so re-pricing's recovery adds nothing to the new rollup."""
    files = schema_files()
    older = [p for p in files if p.name < "022"]
    run = client_runner(empty_store)
    apply_migrations(run, files=older)
    sql, params = scenarios.history_sql(3000, 5, int(END.timestamp()) * 10**9, seed=6)
    empty_store.command(sql, parameters=params)
    # As a re-pricing run before 022 left it: costs rewritten and stamped with version 1.
    empty_store.command(
        "ALTER TABLE llm_calls UPDATE PrevCostUsd = CostUsd, PrevCostStatus = CostStatus, CostUsd = 0.01, "
        "CostStatus = 'priced', PriceVersion = 1 WHERE RequestModel = 'acme-support-ft' AND TotalTokens > 0",
        settings={"mutations_sync": 2},
    )
    assert apply_migrations(run, files=files) == [p.name for p in files if p.name >= "022"]
    stamped = "SELECT countIf(PriceVersion = 1), count() FROM llm_users_1h"
    assert 0 < empty_store.query(stamped).result_rows[0][0] < empty_store.query(stamped).result_rows[0][1]
    before = empty_store.query("SELECT count() FROM llm_users_1h").result_rows[0][0]
    prices.recover(empty_store)  # adds the 1m/1h corrections the unfinished run lacked; none here
    assert empty_store.query("SELECT count() FROM llm_users_1h").result_rows[0][0] == before
    window = Filter(END - timedelta(days=5, minutes=7), END - timedelta(minutes=3))
    assert_equal_to_direct_sql(empty_store, window)
    assert_unpriced_equal_to_direct_sql(empty_store, window)
    assert apply_migrations(run, files=files) == []  # the backfill is not repeated


def test_spend_by_session_still_reads_llm_calls(history: ChdbClient) -> None:
    table = cost.spend_by(history, WEEK, "session", limit=100_000)
    assert table["calls"].sum() == sum(r["calls"] for r in direct(history, WEEK))
