"""An exporter built on first use, so ``instrument()`` does not pay for importing it.

An exporter can pull in many modules (the direct ClickHouse one its HTTP client). ``prepare()``
builds it on the app's thread when the first span starts (``llmtrace._setup._PrepareOnFirstSpan``):
never on the BatchSpanProcessor's thread, where those imports would race the app's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class LazySpanExporter(SpanExporter):
    def __init__(self, factory: Callable[[], SpanExporter]) -> None:
        self._factory = factory
        self._exporter: SpanExporter | None = None
        self._lock = threading.Lock()
        self.failed_spans = 0
        """Spans in batches the destination refused or never got (counted, never silent)."""

    @property
    def exporter(self) -> SpanExporter:
        if self._exporter is None:
            with self._lock:
                if self._exporter is None:
                    self._exporter = self._factory()
        return self._exporter

    def prepare(self) -> None:
        """Build the exporter now, on the calling thread."""
        self.exporter  # noqa: B018 - the property builds it

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed_spans += len(spans)
        return result

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis) if self._exporter is not None else True
