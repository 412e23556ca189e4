"""``llmtrace up --demo``'s fast path: the week in bulk through the server's ClickHouse HTTP interface,
then live requests through the real SDKs (against the in-process fake LLM service) into its OTLP port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmtrace.demo import live_shape, scenarios
from llmtrace.demo.command import SCOPE, demo_requests
from llmtrace.demo.live import WEEK_S, live_rate, load_history, run_live
from llmtrace.store.client import connect
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
HISTORY_CALLS = 400
LIVE_REQUESTS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("live") / "data").wait_ready()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def loaded(server: ServerProcess) -> dict[str, Any]:
    """History loaded, then a few live requests played; what each step reported."""
    before_ns = time.time_ns()
    history = load_history(server.http_url, HISTORY_CALLS, end_ns=before_ns)
    played = time.time_ns()
    calls = run_live(server.otlp_url, rate=50, requests=LIVE_REQUESTS)  # returns after its spans are flushed
    return {"history": history, "end_ns": before_ns, "played_ns": played, "after_ns": time.time_ns(), "calls": calls}


def rows(server: ServerProcess, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    client = connect(server.http_url)
    try:
        return [tuple(r) for r in client.query(sql, parameters=params).result_rows]
    finally:
        client.close()


def test_the_history_is_the_requested_number_of_calls_over_the_week_before_now(
    server: ServerProcess, loaded: dict[str, Any]
) -> None:
    assert loaded["history"] == HISTORY_CALLS
    sql = """SELECT count(), min(toUnixTimestamp64Nano(Timestamp)), max(toUnixTimestamp64Nano(Timestamp))
             FROM otel_traces WHERE ScopeName = {scope:String}"""
    [(count, first, last)] = rows(server, sql, scope=scenarios.HISTORY_SCOPE)
    assert count == HISTORY_CALLS
    assert loaded["end_ns"] - WEEK_S * 10**9 <= first < last < loaded["end_ns"] + 5 * 10**9  # children start later


def test_the_history_reaches_llm_calls_the_rollups_and_the_trace_table(
    server: ServerProcess, loaded: dict[str, Any]
) -> None:
    history = "TraceId IN (SELECT TraceId FROM otel_traces WHERE ScopeName = {scope:String})"
    [(calls,)] = rows(server, f"SELECT count() FROM llm_calls WHERE {history}", scope=scenarios.HISTORY_SCOPE)
    [(traces,)] = rows(
        server, f"SELECT uniqExact(TraceId) FROM llm_traces WHERE {history}", scope=scenarios.HISTORY_SCOPE
    )
    [(rolled,)] = rows(server, "SELECT sum(Calls) FROM llm_calls_1h")
    assert (calls, traces) == (HISTORY_CALLS, HISTORY_CALLS // 2)
    assert rolled == HISTORY_CALLS + loaded["calls"]


def test_live_requests_are_real_sdk_traces_timed_when_they_were_sent(
    server: ServerProcess, loaded: dict[str, Any]
) -> None:
    sql = """SELECT count(), min(toUnixTimestamp64Nano(Timestamp)), max(toUnixTimestamp64Nano(Timestamp))
             FROM otel_traces WHERE ScopeName = {scope:String} AND ParentSpanId = ''"""
    [(requests, first, last)] = rows(server, sql, scope=SCOPE)
    assert requests == LIVE_REQUESTS
    assert loaded["played_ns"] <= first <= last <= loaded["after_ns"]
    live = "TraceId IN (SELECT TraceId FROM otel_traces WHERE ScopeName = {scope:String})"
    [(calls, scores)] = rows(
        server, f"SELECT (SELECT count() FROM llm_calls WHERE {live}), (SELECT count() FROM llm_scores WHERE {live})",
        scope=SCOPE,
    )  # fmt: skip
    assert calls == loaded["calls"] >= LIVE_REQUESTS
    assert scores >= LIVE_REQUESTS  # every live request is scored "helpful", as the played demo's are


def test_live_traffic_comes_after_the_story_with_its_lasting_changes(
    server: ServerProcess, loaded: dict[str, Any]
) -> None:
    for i in range(200):
        request = live_shape.request_at(loaded["after_ns"], f"live:test:{i}")
        assert request.release == scenarios.RELEASES[-1]
        assert all(call.model != scenarios.SWITCH_FROM for call in request.calls)
        assert request.prompt_version == ("4" if request.service == "summarizer" else "2")


def test_demo_requests_counts_bulk_and_played_traces(server: ServerProcess, loaded: dict[str, Any]) -> None:
    assert demo_requests(server.http_url) == HISTORY_CALLS // 2 + LIVE_REQUESTS


def test_the_live_rate_is_the_history_s_pace_without_a_floor() -> None:
    # two calls a request; the floor of 0.2 requests/s it once had was 4-5x a 30,000-call week
    assert live_rate(10) == pytest.approx(5 / WEEK_S)
    assert live_rate(WEEK_S * 6) == pytest.approx(3.0)


def test_live_mode_refuses_a_rate_that_is_not_positive() -> None:
    argv = [sys.executable, "-m", "llmtrace.cli", "demo", "--live", "--rate", "0", "--endpoint", "http://127.0.0.1:9"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "--rate must be > 0" in done.stderr


def test_a_history_offset_must_keep_traces_whole() -> None:
    with pytest.raises(ValueError, match="must be even"):
        scenarios.history_sql(10, 7, time.time_ns(), offset=3)


def test_stopping_the_background_traffic_waits_for_its_last_spans(tmp_path: Path) -> None:
    """``llmtrace up`` stops the demo's players before its server: each flushes on SIGTERM, and
    :func:`stop_background` waits for that, so every call a player says it made is stored."""
    from llmtrace.demo.live import in_background, stop_background

    server = ServerProcess(tmp_path / "data").wait_ready()
    try:
        argv = [sys.executable, "-m", "llmtrace.cli", "demo", "--live", "--rate", "20", "--endpoint", server.otlp_url]
        player = in_background(subprocess.Popen(argv, stderr=subprocess.PIPE, text=True))
        count = "SELECT count() FROM llm_calls"
        deadline = time.monotonic() + 120
        while rows(server, count)[0][0] < 10 and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the store for the first flushed calls, not a synchronisation sleep
        stop_background()
        assert player.returncode is not None  # stopped and waited for
        told = player.stderr.read() if player.stderr else ""
        sent = [line for line in told.splitlines() if line.strip().endswith("; stopped")]
        assert sent and "could not export" not in told, told
        made = int(sent[-1].split(" requests, ")[1].split(" LLM calls")[0].replace(",", ""))
        assert made >= 10 and rows(server, count)[0][0] == made
    finally:
        server.stop()
