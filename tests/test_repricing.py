"""One cost engine: price overrides apply to stored calls too, and every window agrees afterwards.

Demo history (10 days, an unpriced fine-tune and genai-prices-priced models) goes into real chDB
through the materialized views; overrides re-price ``llm_calls`` and correct the rollups, so the
Cost figures of a 1-hour window (raw calls) and a 30-day one (hourly rollup) equal direct sums."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llmtrace import cli, pricing
from llmtrace.analytics import cost
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store import prices
from llmtrace.store.chdb_client import ChdbClient
from tests.conftest import kept_engine_overrides
from tests.server_process import ServerProcess, otlp_request, post_spans
from tests.test_anomaly_rollup import assert_rollup_is_its_view_over_every_call

END = datetime.now(timezone.utc).replace(second=0, microsecond=0)
GPT4O = {"provider": "openai", "model": "gpt-4o", "input_mtok": 1.0, "output_mtok": 2.0}
FINE_TUNE = {"model": "acme-support-ft", "input_mtok": 0.5, "output_mtok": 1.0}  # any provider
pytestmark = pytest.mark.usefixtures("engine_overrides")  # tests/conftest.py


def _fill(store: ChdbClient) -> ChdbClient:
    sql, params = scenarios.history_sql(6000, 10, int(END.timestamp()) * 10**9, seed=3)
    store.command(sql, parameters=params)
    return store


@pytest.fixture
def history(store: ChdbClient) -> ChdbClient:
    """The demo history in the test's own database, for tests that re-price it themselves."""
    return _fill(store)


_MINI_COSTS = "SELECT SpanId, CostUsd, PriceVersion FROM llm_calls WHERE RequestModel = 'gpt-4o-mini' ORDER BY SpanId"
_TRACES_MISMATCHED = """
    SELECT count() FROM (SELECT TraceId, sum(ifNull(CostUsd, 0)) AS cost, countIf(CostStatus = 'unpriced') AS u
                         FROM llm_calls GROUP BY TraceId) AS c
    INNER JOIN (SELECT TraceId, sum(CostUsd) AS cost, sum(UnpricedCalls) AS u FROM llm_traces GROUP BY TraceId) AS t
        ON t.TraceId = c.TraceId
    WHERE abs(t.cost - c.cost) > 1e-12 OR t.u != c.u"""


@dataclass
class Repricing:
    """A history after some re-pricing runs (``runs``, in order), with what it held before them."""

    store: ChdbClient
    runs: list[prices.Repriced]
    mini_before: list[tuple[Any, ...]]
    traces_mismatched_before: list[tuple[Any, ...]]


def _repriced(new_store: Callable[[], ChdbClient], *overrides: list[dict[str, Any]]) -> Repricing:
    """A new history re-priced once per ``overrides`` (the engine's overrides restored afterwards)."""
    store = _fill(new_store())
    mini, mismatched = store.query(_MINI_COSTS).result_rows, store.query(_TRACES_MISMATCHED).result_rows
    with kept_engine_overrides():
        runs = [prices.apply_prices(store, list(o)) for o in overrides]
    return Repricing(store, runs, mini, mismatched)


@pytest.fixture(scope="module")
def repriced(module_databases: Callable[[], ChdbClient]) -> Repricing:
    """History re-priced once with GPT4O and FINE_TUNE, shared by the tests that only read it afterwards."""
    return _repriced(module_databases, [GPT4O, FINE_TUNE])


@pytest.fixture(scope="module")
def gpt4o_repriced(module_databases: Callable[[], ChdbClient]) -> Repricing:
    """History re-priced once with GPT4O alone, shared by the tests that only read it afterwards."""
    return _repriced(module_databases, [GPT4O])


@pytest.fixture(scope="module")
def repriced_twice(module_databases: Callable[[], ChdbClient]) -> Repricing:
    """History re-priced with GPT4O, then with GPT4O at four times the price; read-only tests share it."""
    return _repriced(module_databases, [GPT4O], [{**GPT4O, "input_mtok": 4.0, "output_mtok": 8.0}])


def _windows() -> dict[str, Filter]:
    return {
        "1h": Filter(start=END - timedelta(hours=1), end=END + timedelta(minutes=1)),
        "30d": Filter(start=END - timedelta(days=30), end=END + timedelta(minutes=1)),
    }


def _direct(client: Any, f: Filter, what: str = "sum(ifNull(CostUsd, 0))") -> float:
    return float(
        client.query(f"SELECT {what} FROM llm_calls WHERE {f.where()}", parameters=f.params()).result_rows[0][0]
    )


def _assert_windows_agree(client: Any) -> None:
    for name, f in _windows().items():
        shown = cost.totals(client, f).iloc[0]
        assert shown["cost_usd"] == pytest.approx(_direct(client, f), rel=1e-9, abs=1e-12), name
        assert shown["unpriced_calls"] == _direct(client, f, "countIf(CostStatus = 'unpriced')"), name
        assert shown["priced_calls"] == _direct(client, f, "countIf(CostUsd IS NOT NULL)"), name
    assert _windows()["30d"].uses_rollup and not _windows()["1h"].uses_rollup


def test_an_override_reprices_history_and_1h_and_30d_windows_agree(repriced: Repricing) -> None:
    (done,) = repriced.runs
    assert done.calls > 500 and done.cost_after != done.cost_before
    _assert_windows_agree(repriced.store)


def test_overridden_calls_cost_their_tokens_at_the_override_price(gpt4o_repriced: Repricing) -> None:
    rows = gpt4o_repriced.store.query(
        "SELECT CostUsd, InputTokens / 1e6 * 1.0 + OutputTokens / 1e6 * 2.0 FROM llm_calls "
        "WHERE RequestModel = 'gpt-4o' AND TotalTokens > 0"
    ).result_rows
    assert rows and all(got == pytest.approx(want, rel=1e-12) for got, want in rows)


def test_unpriced_calls_of_a_model_given_a_price_become_priced_everywhere(history: ChdbClient) -> None:
    f = _windows()["30d"]
    assert cost.totals(history, f).iloc[0]["unpriced_calls"] > 0
    prices.apply_prices(history, [FINE_TUNE])
    assert cost.totals(history, f).iloc[0]["unpriced_calls"] == 0
    assert _direct(history, f, "countIf(RequestModel = 'acme-support-ft' AND CostUsd IS NULL AND TotalTokens > 0)") == 0


def test_models_without_an_override_keep_the_cost_priced_at_the_call(repriced: Repricing) -> None:
    assert repriced.mini_before
    assert repriced.store.query(_MINI_COSTS).result_rows == repriced.mini_before  # every call's own cost (version 0)


def test_failed_calls_without_usage_stay_without_a_cost(repriced: Repricing) -> None:
    no_cost = "countIf(CostStatus = 'no_usage' AND CostUsd IS NOT NULL)"
    assert _direct(repriced.store, _windows()["30d"], no_cost) == 0


def test_repricing_again_with_the_same_prices_changes_nothing(history: ChdbClient) -> None:
    prices.apply_prices(history, [GPT4O, FINE_TUNE])
    totals = {n: cost.totals(history, f).iloc[0]["cost_usd"] for n, f in _windows().items()}
    assert prices.apply_prices(history).calls == 0  # the stored overrides again
    assert {n: cost.totals(history, f).iloc[0]["cost_usd"] for n, f in _windows().items()} == pytest.approx(totals)


def test_a_second_price_change_corrects_the_rollups_again(repriced_twice: Repricing) -> None:
    history = repriced_twice.store  # re-priced with GPT4O, then at 4/8 $/Mtok: the newest override wins
    got = history.query(
        "SELECT sum(CostUsd), sum(InputTokens / 1e6 * 4.0 + OutputTokens / 1e6 * 8.0) FROM llm_calls "
        "WHERE RequestModel = 'gpt-4o' AND TotalTokens > 0"
    ).result_rows[0]
    assert got[0] == pytest.approx(got[1], rel=1e-12)
    _assert_windows_agree(history)


def test_the_anomaly_rollups_cost_bins_follow_each_repricing(repriced_twice: Repricing) -> None:
    """Each run moved its calls from their old cost bin to the new one (025's correction rows): the
    rollup equals its view over the re-priced calls, with no bin left over from the old prices."""
    history = repriced_twice.store
    assert history.query("SELECT count() FROM llm_anomaly_5m WHERE PriceVersion > 0").result_rows[0][0] > 0
    assert assert_rollup_is_its_view_over_every_call(history) > 100


def test_repricing_asks_the_same_engine_as_call_time_pricing(store: ChdbClient, make_otel_row: Any) -> None:
    """A call stored without a cost, for a model genai-prices knows, gets exactly pricing.cost_usd's price."""
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
             "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.usage.input_tokens": "120000",
             "gen_ai.usage.cache_read.input_tokens": "20000", "gen_ai.usage.output_tokens": "3000"}  # fmt: skip
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    store.insert("otel_traces", [make_otel_row(attrs)], column_names=OTEL_TRACES_COLUMNS)
    assert prices.reprice(store, []).calls == 1
    want = pricing.cost_usd("anthropic", ["claude-haiku-4-5"], pricing.TokenUsage(120000, 3000, 20000, 0))
    assert want is not None
    assert store.query("SELECT CostUsd FROM llm_calls").result_rows == [(pytest.approx(want, rel=1e-12),)]


def test_overrides_are_kept_and_reapplied_from_the_store(gpt4o_repriced: Repricing) -> None:
    stored = prices.stored_overrides(gpt4o_repriced.store)
    assert stored == [{**GPT4O, "cache_read_mtok": None, "cache_write_mtok": None}]


def test_migrate_with_a_prices_file_reprices_stored_calls(history: ChdbClient, store_url: str, tmp_path: Path,
                                                           capsys: Any) -> None:  # fmt: skip
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([FINE_TUNE]))
    assert cli.main(["migrate", "--url", store_url, "--prices-file", str(path)]) == 0
    assert "applied price overrides: re-priced" in capsys.readouterr().out
    _assert_windows_agree(history)
    assert _direct(history, _windows()["30d"], "countIf(CostStatus = 'unpriced')") == 0


@pytest.mark.parametrize(
    ("entries", "error"),
    [({"model": "m"}, "must hold a JSON list"), ([{"model": "m", "input_mtok": 1}], "lacks output_mtok"),
     ([{"model": "m", "input_mtok": -1, "output_mtok": 1}], "input_mtok must be a number >= 0"),
     ([{"model": "m", "input_mtok": "1", "output_mtok": 1}], "input_mtok must be a number >= 0")],
)  # fmt: skip
def test_a_bad_prices_file_is_refused_naming_the_entry(entries: Any, error: str, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=error):
        prices.read_overrides(path)


def _seed(data: Path, seed: int = 4) -> int:
    """Migrate ``data`` and load 3 days of demo history in a separate process (this one already
    hosts the module's chDB directory); returns the unpriced calls stored."""
    seeding = f"""
from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner
client = ChdbClient.open({str(data)!r})
apply_migrations(client_runner(client))
sql, params = scenarios.history_sql(3000, 3, {int(END.timestamp()) * 10**9}, seed={seed})
client.command(sql, parameters=params)
print(client.query("SELECT countIf(CostStatus = 'unpriced') FROM llm_calls").result_rows[0][0])
client.close()
"""
    return int(subprocess.run([sys.executable, "-c", seeding], capture_output=True, text=True, check=True).stdout)


def test_llmtrace_server_loads_a_prices_file_itself(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _seed(data) > 0
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([FINE_TUNE]))
    server = ServerProcess(data, args=("--prices-file", str(path))).wait_ready()
    try:
        assert "price overrides applied" in server.output
        client = server.client()
        assert client.query("SELECT countIf(CostStatus = 'unpriced') FROM llm_calls").result_rows == [(0,)]
        assert client.query("SELECT count() FROM model_prices WHERE Source = 'override'").result_rows == [(1,)]
    finally:
        assert server.stop() == 0


def test_set_price_in_the_app_applies_to_history_through_apply_prices(history: ChdbClient) -> None:
    pricing.set_price("openai", "gpt-4o", input_per_mtok=1.0, output_per_mtok=2.0)
    assert prices.set_price_overrides() == [{**GPT4O, "cache_read_mtok": 1.0, "cache_write_mtok": 1.0}]
    prices.apply_prices(history, prices.set_price_overrides())
    rows = history.query(
        "SELECT sum(CostUsd), sum(InputTokens / 1e6 * 1.0 + OutputTokens / 1e6 * 2.0) FROM llm_calls "
        "WHERE RequestModel = 'gpt-4o' AND TotalTokens > 0"
    ).result_rows[0]
    assert rows[0] == pytest.approx(rows[1], rel=1e-12)
    _assert_windows_agree(history)


def test_llmtrace_server_keeps_repricing_new_calls_while_an_override_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps([{"provider": "openai", "model": "gpt-4o-mini", "input_mtok": 1000, "output_mtok": 2000}])
    )
    server = ServerProcess(tmp_path / "data", args=("--prices-file", str(path), "--reprice-every", "0.5")).wait_ready()
    try:
        assert post_spans(server, otlp_request(20).SerializeToString())[0] == 200  # no cost on these spans
        client = server.client()
        want = sum((10 + i) * 1000 / 1e6 + 5 * 2000 / 1e6 for i in range(20))
        sql = (
            "SELECT (SELECT count() FROM llm_calls), (SELECT countIf(CostUsd IS NULL) FROM llm_calls), "
            "(SELECT sum(CostUsd) FROM llm_calls), (SELECT sum(CostUsd) FROM llm_calls_1h), "
            "(SELECT sum(UnpricedCalls) FROM llm_calls_1h)"
        )
        deadline, got = time.monotonic() + 60, None
        while time.monotonic() < deadline:  # the server's next re-pricing run, within half a second
            got = client.query(sql).result_rows[0]
            if got[:2] == (20, 0) and got[4] == 0:  # calls re-priced, then the rollups corrected
                break
            time.sleep(0.2)
        assert got is not None and got[:2] == (20, 0) and got[4] == 0
        assert got[2] == pytest.approx(want, rel=1e-9) and got[3] == pytest.approx(want, rel=1e-9)
    finally:
        assert server.stop() == 0


# ---- crash safety: a run killed between the llm_calls update and the rollup corrections ----------

_DIE_BEFORE = """
import sys
from llmtrace.store import prices
from llmtrace.store.chdb_client import ChdbClient
client = ChdbClient.open(sys.argv[1])
command = client.command
def dying(sql, *args, **kwargs):
    if sql.lstrip().startswith("INSERT INTO " + sys.argv[2]):
        print("about to correct", sys.argv[2], flush=True)
        sys.stdin.read()  # SIGKILLed here by the test
    return command(sql, *args, **kwargs)
client.command = dying
prices.apply_prices(client, sys.argv[3])
"""

_SUMS_SQL = (
    "SELECT (SELECT sum(ifNull(CostUsd, 0)) FROM llm_calls), (SELECT sum(CostUsd) FROM llm_calls_1m), "
    "(SELECT sum(CostUsd) FROM llm_calls_1h), (SELECT countIf(CostStatus = 'unpriced') FROM llm_calls), "
    "(SELECT sum(UnpricedCalls) FROM llm_calls_1m), (SELECT sum(UnpricedCalls) FROM llm_calls_1h), "
    "(SELECT sum(CostUsd) FROM llm_traces)"
)
_SUMS = """
import sys
from llmtrace.store.chdb_client import ChdbClient
print(ChdbClient.open(sys.argv[1]).query(sys.argv[2]).result_rows[0])
"""


def _sums(data: Path) -> tuple[float, ...]:
    out = subprocess.run(
        [sys.executable, "-c", _SUMS, str(data), _SUMS_SQL], capture_output=True, text=True, check=True
    )
    return tuple(float(v) for v in out.stdout.strip().strip("()").split(","))


@pytest.mark.parametrize("killed_before", ["llm_calls_1m", "llm_calls_1h"])
def test_a_run_killed_before_its_rollup_corrections_is_finished_at_server_start(
    killed_before: str, tmp_path: Path
) -> None:
    """A real process re-pricing is SIGKILLed after the llm_calls update, before the first (1m) or
    the second (1h) rollup's corrections; the server's start finishes the run, adding no row twice."""
    data = tmp_path / "data"
    _seed(data)
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([GPT4O, FINE_TUNE]))
    run = subprocess.Popen([sys.executable, "-c", _DIE_BEFORE, str(data), killed_before, str(path)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert run.stdout is not None and run.stdout.readline().startswith("about to correct")
    finally:
        run.kill()
        run.wait(timeout=60)
    calls, per_minute, per_hour, unpriced, _, unpriced_1h, _ = _sums(data)
    assert per_hour != pytest.approx(calls, rel=1e-9) and unpriced_1h > unpriced == 0  # left off by the kill
    if killed_before == "llm_calls_1h":
        assert per_minute == pytest.approx(calls, rel=1e-9)  # the 1m corrections had landed
    server = ServerProcess(data).wait_ready()  # no prices file: the start recovers the stored run
    try:
        got = server.client().query(_SUMS_SQL)
        calls, per_minute, per_hour, unpriced, unpriced_1m, unpriced_1h, per_trace = got.result_rows[0]
        assert per_minute == pytest.approx(calls, rel=1e-9) and per_hour == pytest.approx(calls, rel=1e-9)
        assert per_trace == pytest.approx(calls, rel=1e-9)
        assert unpriced == unpriced_1m == unpriced_1h == 0
    finally:
        assert server.stop() == 0


def test_recovery_after_a_finished_run_adds_no_rows(history: ChdbClient) -> None:
    prices.apply_prices(history, [GPT4O, FINE_TUNE])
    rows = ", ".join(f"(SELECT count() FROM {table})" for table in ("llm_calls_1m", "llm_calls_1h", "llm_anomaly_5m"))
    rows = f"SELECT {rows}"
    before = history.query(rows).result_rows
    assert prices.recover(history) == 0
    assert prices.recover(history) == 0
    assert history.query(rows).result_rows == before
    _assert_windows_agree(history)


def test_corrections_carry_their_runs_price_version(repriced_twice: Repricing) -> None:
    first, second = repriced_twice.runs
    versions = repriced_twice.store.query("SELECT DISTINCT PriceVersion FROM llm_calls_1h ORDER BY 1").result_rows
    assert [v for (v,) in versions] == [0, first.version, second.version] and second.version == first.version + 1


def test_the_trace_list_shows_each_traces_new_cost(repriced: Repricing) -> None:
    """llm_traces (the Traces page) keeps each trace's cost at insert; re-pricing adds its difference."""
    assert repriced.traces_mismatched_before == [(0,)]
    (done,) = repriced.runs
    assert done.calls > 500
    assert repriced.store.query(_TRACES_MISMATCHED).result_rows == [(0,)]
    listed = "SELECT countIf(Calls > 0), count() FROM llm_traces WHERE PriceVersion = {v:UInt32}"
    history = repriced.store
    assert history.query(listed, parameters={"v": done.version}).result_rows[0][0] == 0  # corrections list no trace


def test_a_call_stored_without_a_cost_is_priced_with_no_override(store: ChdbClient) -> None:
    """Behind a Collector nothing prices another tool's call at ingest: it is stored unpriced, and a
    re-pricing run without any override (``migrate --prices-file`` with ``[]``, the server's periodic
    run) prices it with the engine; a call that came with its own cost keeps it."""
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
    from tests.conftest_store import otel_row

    foreign = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": "1000", "gen_ai.usage.output_tokens": "100",
    }  # fmt: skip
    own = {**foreign, "gen_ai.usage.cost": "0.5"}
    rows = [otel_row(foreign, span_id="00000000000000f1"), otel_row(own, span_id="00000000000000f2")]
    store.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    sql = "SELECT SpanId, CostUsd, CostStatus FROM llm_calls ORDER BY SpanId"
    assert store.query(sql).result_rows == [("00000000000000f1", None, "unpriced"), ("00000000000000f2", 0.5, "priced")]
    with kept_engine_overrides():
        done = prices.reprice(store, [])
    want = pricing.tokens_cost_usd("openai", ["", "gpt-4o-mini"], 1000, 100, 0, 0)
    assert done.calls == 1 and want is not None
    got = store.query(sql).result_rows
    assert got[0][0] == "00000000000000f1" and got[0][1] == pytest.approx(want, rel=1e-12) and got[0][2] == "priced"
    assert got[1] == ("00000000000000f2", 0.5, "priced")
    hourly = store.query("SELECT sum(CostUsd), sum(UnpricedCalls) FROM llm_calls_1h").result_rows[0]
    assert hourly[0] == pytest.approx(0.5 + want, rel=1e-12) and hourly[1] == 0
