"""``llmtrace up --demo`` in seconds: the week of history in bulk, then live traffic through the SDKs.

The week is generated, so it is written in one ``INSERT ... SELECT`` (:func:`scenarios.history_sql`)
through the store's ClickHouse HTTP interface: the materialized views and rollups do their real
work and the dashboard has a populated week a second or two later. Then ``llmtrace demo --live``
runs in the background and keeps sending requests at the time they happen, through the real
openai, anthropic, boto3 and google-genai SDKs instrumented by llmtrace (the same player as
``llmtrace demo``), with a progress line, until ``llmtrace up`` stops. Its requests continue the
week: drawn and paced as the history is for that hour (:mod:`llmtrace.demo.live_shape`), so the
Anomalies page sees normal traffic, not an incident, where the week ends.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from typing import Any, TextIO

from llmtrace.demo import live_shape, scenarios

__all__ = ["in_background", "live_rate", "load_history", "run_live", "start_live", "stop_background"]

WEEK_S = live_shape.WEEK_S
STOP_TIMEOUT_S = 10.0  # a player's flush on SIGTERM
REPORT_EVERY_S = 60.0  # progress line interval when not on a terminal


def load_history(query_url: str, calls: int, end_ns: int | None = None, seed: int = 7) -> int:
    """Insert a week of demo history ending at ``end_ns`` (default now): ``calls`` LLM calls.
    Returns the LLM calls the store holds afterwards from it."""
    from llmtrace.store.client import connect

    client = connect(query_url, send_receive_timeout=600)
    try:
        rows = calls + calls % 2  # two spans per trace
        sql, params = scenarios.history_sql(rows, 7, end_ns or time.time_ns(), seed)
        client.command(sql, parameters=params, settings={"max_execution_time": 0})
        return rows
    finally:
        client.close()


def live_rate(calls: int) -> float:
    """Requests per second of live traffic after a week of ``calls``: the week's daily mean (two
    calls a request). No floor: faster than the week is a ``calls up`` anomaly on every series."""
    return live_shape.mean_rate(calls)


def start_live(otlp_url: str, rate: float, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``llmtrace demo --live`` in the background; it stops with :func:`stop_background` (or at
    exit), or when this process is gone (it watches its parent)."""
    argv = [sys.executable, "-m", "llmtrace.cli", "demo", "--live", "--rate", f"{rate:g}", "--endpoint", otlp_url]
    return in_background(subprocess.Popen(argv, env=env))


_BACKGROUND: list[subprocess.Popen[bytes]] = []
_STOP_AT_EXIT = threading.Event()  # set once stop_background is registered with atexit


def in_background(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Demo traffic ``process``, stopped by :func:`stop_background` (or at exit)."""
    if not _STOP_AT_EXIT.is_set():
        _STOP_AT_EXIT.set()
        atexit.register(stop_background)
    _BACKGROUND.append(process)
    return process


def stop_background() -> None:
    """Stop the demo's traffic and wait for its last spans: ``llmtrace up`` calls it before it
    stops the server, which would otherwise refuse the players' final exports."""
    processes = [p for p in _BACKGROUND if p.poll() is None]
    _BACKGROUND.clear()
    for process in processes:
        process.terminate()  # each flushes its spans on SIGTERM, all at once
    for process in processes:
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_live(
    endpoint: str,
    rate: float,
    seed: int = 7,
    requests: int | None = None,
    out: TextIO = sys.stderr,
    stop: threading.Event | None = None,
) -> int:
    """Play requests timed now through the real SDKs, ``rate`` per second on the day's mean and
    following the history's daily profile (:func:`live_shape.rate_at`), until ``stop`` is set (or
    ``requests`` have been sent, or the parent process is gone); a request under way is finished
    and every span flushed before it returns. Returns the LLM calls made."""
    from llmtrace.demo.command import sdk_pipeline

    stop = stop or threading.Event()
    parent = os.getppid()
    progress = _LiveProgress(out)
    with sdk_pipeline(endpoint) as player:
        next_at = time.monotonic()
        while not stop.is_set() and (requests is None or progress.requests < requests):
            now_ns = time.time_ns()
            request = live_shape.request_at(now_ns, f"live:{seed}:{progress.requests}")
            player.play(request)
            progress.sent(len(request.calls))
            if os.getppid() != parent:
                break
            next_at += 1 / live_shape.rate_at(now_ns, rate)
            pause = next_at - time.monotonic()
            if pause > 0 and (requests is None or progress.requests < requests):
                stop.wait(pause)  # pacing live traffic (a stop ends the pause), not synchronisation
    progress.finish()
    return progress.calls


class _LiveProgress:
    """One line, rewritten in place on a terminal; a line a minute otherwise (and the first at once)."""

    def __init__(self, out: Any) -> None:
        self.out, self.requests, self.calls = out, 0, 0
        self.started = time.monotonic()
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._reported = -REPORT_EVERY_S

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.calls / elapsed
        return f"live demo traffic: {self.requests:,} requests, {self.calls:,} LLM calls sent ({rate:.1f}/s)"

    def sent(self, calls: int) -> None:
        self.requests += 1
        self.calls += calls
        now = time.monotonic() - self.started
        if self.tty:
            self.out.write("\r  " + self.line())
            self.out.flush()
        elif now - self._reported >= REPORT_EVERY_S:
            print("  " + self.line(), file=self.out, flush=True)
            self._reported = now

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
        print("  " + self.line() + "; stopped", file=self.out, flush=True)
