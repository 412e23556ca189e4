"""Shared fixtures: the local fake LLM service and an in-memory span pipeline around instrument()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtrace
from llmtrace.demo.fake_llm import FakeLLM

pytest_plugins = ["tests.conftest_store", "tests.chdb_spans"]  # chDB store fixtures, instrument_into

# The suite runs on 2 xdist workers, one module at a time each (pyproject: -n 2 --dist loadfile
# --no-loadscope-reorder). These modules spend the most time in child processes (canary players, `llmtrace up
# --demo`, Chromium, servers restarted): started first, they overlap each other and the short modules
# fill the end, instead of one worker running them alone at the end. Order only: every module stays isolated.
SLOW_FIRST = (
    "test_compare_canary_sdk.py",
    "test_dashboard_browser.py",
    "test_repricing.py",
    "test_startup.py",
    "test_readme.py",
    "test_up.py",
)  # Not test_server_faults.py: its 80 ms KILL cadence starved under the canary's 6 players (failed once at load ~20).


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the :data:`SLOW_FIRST` modules to the front, in that order; the rest keep their order."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


class SpanRecorder:
    """Finished spans of one test, plus the provider they came through."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def finished(self) -> list[ReadableSpan]:
        """Spans ended so far, after llmtrace's worker has finished the ones it holds (as flush() does)."""
        llmtrace.flush()
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.finished
        assert len(spans) == 1, f"expected exactly one span, got {[s.name for s in spans]}"
        return spans[0]


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    """A span recorder with llmtrace instrumenting into it; undone after the test."""
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider)
    try:
        yield rec
    finally:
        llmtrace.uninstrument()


@pytest.fixture
def spans(recorder: SpanRecorder) -> SpanRecorder:
    """Alias kept for readability in tests that only read spans."""
    return recorder


MEMORY_PROVIDER = """\
import llmtrace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
"""
"""Prelude for ``run_script``: a tracer provider whose spans land in ``exporter`` (nothing instrumented yet)."""


def run_script(code: str, *, prelude: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``prelude`` + dedented ``code`` in a fresh interpreter, without this run's OTEL_/LLMTRACE_/pytest env."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "PYTEST"))}
    full_env.update(env)
    script = prelude + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=full_env, timeout=60)


@contextmanager
def kept_engine_overrides() -> Iterator[None]:
    """Re-pricing installs overrides in this process's engine (as set_price): undo them on exit."""
    from llmtrace import pricing

    saved = dict(pricing._overrides)
    try:
        yield
    finally:
        pricing._overrides.clear()
        pricing._overrides.update(saved)


@pytest.fixture
def engine_overrides() -> Iterator[None]:
    """:func:`kept_engine_overrides` around each test."""
    with kept_engine_overrides():
        yield
