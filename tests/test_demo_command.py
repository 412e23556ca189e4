"""``llmtrace demo`` end to end: real SDKs -> fake LLM -> OTLP -> ``llmtrace server`` -> llm_calls.

The stored rows are compared with the plan the demo played, so every planned call, error,
stream, tool call and timestamp must arrive as planned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmtrace.demo import scenarios
from llmtrace.demo.command import run_demo
from llmtrace.store.client import connect
from tests.server_process import free_ports

ROOT = Path(__file__).resolve().parents[1]
END_NS = (time.time_ns() // 10**9 - 3600) * 10**9
CALLS, DAYS, SEED = 300, 7, 11
PLAN = scenarios.plan(CALLS, DAYS, END_NS, SEED)
PLANNED = [(r, c) for r in PLAN for c in r.calls]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    otlp, http = free_ports(2)
    argv = [
        sys.executable,
        "-m",
        "llmtrace.cli",
        "server",
        "--data-dir",
        str(tmp_path_factory.mktemp("demo")),
        "--otlp-port",
        str(otlp),
        "--http-port",
        str(http),
    ]
    server = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/ping", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "llmtrace server did not start"
                time.sleep(0.2)
        made = run_demo(f"http://127.0.0.1:{otlp}", CALLS, DAYS, SEED, end_ns=END_NS)
        assert made == len(PLANNED)
        client = connect(f"http://127.0.0.1:{http}")
        yield client
        client.close()
    finally:
        server.terminate()
        server.wait(30)


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(client.query(sql).result_rows)


def test_every_planned_call_is_stored_as_one_llm_call(store: Any) -> None:
    assert rows(store, "SELECT count() FROM llm_calls") == [(len(PLANNED),)]


def test_each_request_is_one_trace_under_a_server_span_at_its_planned_time(store: Any) -> None:
    starts = rows(
        store, "SELECT toUnixTimestamp64Nano(Timestamp) FROM otel_traces WHERE SpanKind = 'Server' ORDER BY 1"
    )
    assert [s for (s,) in starts] == [r.start_ns for r in PLAN]
    assert rows(store, "SELECT uniqExact(TraceId) FROM llm_calls") == [(len(PLAN),)]


def test_calls_last_as_long_as_planned(store: Any) -> None:
    stored = sorted(d for (d,) in rows(store, "SELECT DurationUs FROM llm_calls"))
    planned = sorted(int(c.duration_ms * 1000) for _, c in PLANNED)
    assert stored == pytest.approx(planned, abs=1)


def test_service_environment_release_and_prompt_come_from_the_plan(store: Any) -> None:
    stored = Counter(
        {
            tuple(k): n
            for *k, n in rows(
                store, "SELECT ServiceName, Environment, Release, PromptVersion, count() FROM llm_calls GROUP BY ALL"
            )
        }
    )
    assert stored == Counter((r.service, r.environment, r.release, r.prompt_version) for r, _ in PLANNED)


def test_failed_calls_are_errors_with_the_sdk_exception_type(store: Any) -> None:
    stored = Counter(dict(rows(store, "SELECT ErrorType, count() FROM llm_calls WHERE IsError GROUP BY ErrorType")))
    planned = Counter(
        scenarios.ERROR_TYPES[scenarios.MODELS[c.model].provider][c.status != 429] for _, c in PLANNED if c.status
    )
    assert planned and stored == planned


def test_streamed_calls_carry_the_planned_time_to_first_token(store: Any) -> None:
    stored = sorted(t for (t,) in rows(store, "SELECT TtftUs FROM llm_calls WHERE TtftUs IS NOT NULL"))
    planned = sorted(int(c.ttft_ms * 1000) for _, c in PLANNED if c.stream and not c.status)
    assert planned and stored == pytest.approx(planned, abs=1)


def test_tool_calls_reach_the_store(store: Any) -> None:
    planned = sum(1 for _, c in PLANNED if c.offer_tools and not c.status)
    assert planned and rows(store, "SELECT sum(HasToolCalls) FROM llm_calls") == [(planned,)]


def test_the_custom_model_is_unpriced_and_the_others_priced(store: Any) -> None:
    status = dict(
        rows(
            store,
            "SELECT RequestModel, groupUniqArray(CostStatus) FROM llm_calls WHERE NOT IsError GROUP BY RequestModel",
        )
    )
    assert status.pop("acme-support-ft") == ["unpriced"]
    assert all(value == ["priced"] for value in status.values())


def test_the_demo_command_refuses_a_call_count_below_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", "demo", "--calls", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2 and "--calls" in done.stderr
