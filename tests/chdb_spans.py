"""llmtrace instrumented straight into a chDB test store (the direct ClickHouse exporter, span by span),
so tests read what the real SDKs and decorators produced through the real materialized views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import llmtrace
from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient


def _instrument(store: ChdbClient, **settings: object) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ClickHouseSpanExporter(client=store)))
    llmtrace.instrument(tracer_provider=provider, **{"service_name": "agent-app", **settings})


@contextmanager
def instrumented_into(store: ChdbClient, **settings: object) -> Iterator[None]:
    """instrument() exporting into ``store`` inside the block (for module-scoped data); undone after it."""
    _instrument(store, **settings)
    try:
        yield
    finally:
        llmtrace.uninstrument()


@pytest.fixture
def instrument_into() -> Iterator[Callable[..., None]]:
    """``instrument_into(store, **settings)``: instrument() exporting into ``store``; undone after the test."""
    yield _instrument
    llmtrace.uninstrument()
