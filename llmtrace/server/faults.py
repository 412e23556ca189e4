"""Fault injection for the durability tests, off unless its environment variable is set.

``LLMTRACE_FAULT_KILL_INSERTS_MS=N``: every N ms a thread inside the server runs
``KILL QUERY`` against the writer's INSERTs on its own engine handle, the fault issue #10 caused
from a read-only HTTP client. The query port may refuse KILL; this keeps the writer's defence
(row counts, retry under the same deduplication token) testable all the same.

``LLMTRACE_FAULT_STOP_FILE=PATH``: the killing stops once PATH exists, so a test can end the fault
and then check that everything acknowledged is stored (on a busy machine every INSERT outlasts a
short interval, and a fault that never stops cancels every retry for ever).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from llmtrace.server.engine import Engine

__all__ = ["start_from_env"]

logger = logging.getLogger(__name__)
_KILL = "KILL QUERY WHERE query LIKE 'INSERT INTO otel_traces%' ASYNC"


def start_from_env(engine: Engine) -> None:
    interval = os.environ.get("LLMTRACE_FAULT_KILL_INSERTS_MS")
    if not interval:
        return
    logger.warning("fault injection: killing the writer's INSERTs every %s ms", interval)
    stop_file = os.environ.get("LLMTRACE_FAULT_STOP_FILE") or None
    threading.Thread(target=_kill_inserts, args=(engine, float(interval) / 1000, stop_file), daemon=True).start()


def _kill_inserts(engine: Engine, seconds: float, stop_file: str | None = None) -> None:
    killed = 0
    while True:
        time.sleep(seconds)
        if stop_file is not None and os.path.exists(stop_file):
            logger.warning("fault injection: stopped (%s exists) after %d killed INSERT(s)", stop_file, killed)
            return
        try:
            with engine.handle() as conn:
                hit = conn.query(_KILL, "TabSeparated").bytes().count(b"\n")
        except Exception:  # the engine is shutting down
            return
        if hit:
            killed += hit
            logger.warning("fault injection: KILL QUERY hit %d INSERT(s), %d so far", hit, killed)
