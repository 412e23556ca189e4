"""What ingest did since the server started, for ``GET /status`` on the OTLP port and the logs.

Counts are spans. ``accepted`` = acknowledged with 2xx (logged in the WAL); ``stored`` =
verified in ``otel_traces``; ``rejected`` by kind: refused before acknowledging (the client was
told: 400 or an OTLP partial success) or quarantined after (kept in ``rejected/``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["IngestStats"]


class IngestStats:
    """Thread-safe counters shared by the receiver (event loop) and the writer thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.stored = 0
        self.batches = 0
        self.quarantined_parts = 0
        self.rejected: dict[str, int] = {}
        self.refused_requests = 0  # whole requests answered 400 (malformed, or no storable span)
        self.last_rejection = ""
        self.failing_since: float | None = None
        self.last_error = ""

    def add_accepted(self, spans: int) -> None:
        with self._lock:
            self.accepted += spans

    def add_stored(self, spans: int) -> None:
        with self._lock:
            self.stored += spans

    def add_batch(self) -> None:
        with self._lock:
            self.batches += 1

    def add_rejected(self, kind: str, spans: int, reason: str) -> None:
        with self._lock:
            self.rejected[kind] = self.rejected.get(kind, 0) + spans
            self.last_rejection = f"{kind}: {reason}"[:500]
            if kind in ("refused_by_database", "missing_after_insert"):
                self.quarantined_parts += 1

    def add_refused(self, reason: str) -> None:
        with self._lock:
            self.refused_requests += 1
            self.last_rejection = f"invalid_request: {reason}"[:500]

    def set_failing(self, failing: bool, error: str = "") -> None:
        with self._lock:
            if not failing:
                self.failing_since = None
            elif self.failing_since is None:
                self.failing_since = time.time()
            if error:
                self.last_error = error[:500]

    def snapshot(self, backlog: int) -> dict[str, Any]:
        with self._lock:
            failing = self.failing_since
            return {
                "accepted_spans": self.accepted,
                "stored_spans": self.stored,
                "backlog_spans": backlog,
                "rejected_spans": sum(self.rejected.values()),
                "rejected_by_kind": dict(self.rejected),
                "refused_requests": self.refused_requests,
                "last_rejection": self.last_rejection,
                "batches": self.batches,
                "failing_since": None if failing is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failing)),
                "last_error": self.last_error,
            }
