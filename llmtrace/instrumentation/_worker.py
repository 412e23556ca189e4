"""Span enrichment off the app's thread.

The app's thread only starts the span, times the call (folding stream chunks as they pass)
and queues what came back; one daemon thread then reads the request and the response,
encodes content, prices the call, sets the attributes and ends the span at the captured
end time. Jobs run in submission order under one lock, whoever drains the queue: the
worker, ``flush()``, the exit handler, or an app thread when the backlog is too long.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from llmtrace.instrumentation._guard import internal_error, strict

Job = Callable[[Any, Any], None]

_INTERVAL_S = 0.05  # while calls are happening; short enough that queued responses rarely outlive a young GC
_IDLE_ROUNDS = 20  # wake-ups with nothing to do (one second) before the worker sleeps until the next call
_WAKE_AT = 512  # queued jobs that wake the worker early
_MAX_BACKLOG = 100_000  # beyond this the submitting thread drains: memory stays bounded, nothing is dropped


class Worker:
    def __init__(self) -> None:
        self._jobs: deque[tuple[Job, Any, Any]] = deque()
        self._lock = threading.RLock()  # re-entrant: a job whose exporter submits again must not deadlock
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._asleep = False
        self._submitted = False  # jobs came since the worker last looked (whoever ran them)
        self._start_lock = threading.Lock()
        self._errors: list[BaseException] = []

    def submit(self, job: Job, first: Any, second: Any) -> None:
        """Queue ``job(first, second)``; hot path, a few hundred nanoseconds."""
        jobs = self._jobs
        jobs.append((job, first, second))
        self._submitted = True
        if self._asleep or len(jobs) >= _WAKE_AT or self._thread is None:
            self._kick()

    def _kick(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        if len(self._jobs) >= _MAX_BACKLOG:
            self.drain()
        else:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            first = self._thread is None
            thread = threading.Thread(target=self._run, name="llmtrace-spans", daemon=True)
            thread.start()
            self._thread = thread
        if first:
            # Registered now, after the app's TracerProvider exists: exit handlers run last-in first-out,
            # so queued spans end before the provider shuts down and exports them.
            atexit.register(self.drain)

    def _run(self) -> None:
        idle = 0
        while True:
            if idle < _IDLE_ROUNDS:
                self._wake.wait(_INTERVAL_S)
            else:  # nothing for a while: sleep until submit() wakes us (no timer ticking in an idle app)
                self._asleep = True
                if not self._jobs:
                    self._wake.wait()
                self._asleep = False
            self._wake.clear()
            try:
                idle = self._round(idle)
            except Exception as exc:  # never let the worker die: spans would wait for the backlog limit
                self._failed(exc)

    def _round(self, idle: int) -> int:
        """Run what is queued; the idle rounds so far. Idle means no calls, not "nothing left for me":
        when flush() or the app's thread ran the jobs, calls are still coming, and a sleeping worker
        would cost each of them a wake-up (a thread switch)."""
        busy, self._submitted = self._submitted, False
        return 0 if self.drain() or busy else idle + 1

    def drain(self) -> bool:
        """Run every queued job now, on the calling thread; returns whether there was anything to do."""
        with self._lock:
            busy = bool(self._jobs)
            jobs = self._jobs
            while jobs:
                try:
                    job, first, second = jobs.popleft()
                except IndexError:
                    break
                try:
                    job(first, second)
                except BaseException as exc:
                    self._failed(exc)
        return busy

    def _failed(self, exc: BaseException) -> None:
        if strict():
            self._errors.append(exc)  # re-raised by the next flush(): tests see llmtrace's bugs
            return
        internal_error("span enrichment", exc)

    def raise_pending(self) -> None:
        """Strict mode: raise the first internal error a background job hit since the last call."""
        if self._errors:
            first = self._errors[0]
            self._errors.clear()
            raise first

    def pending(self) -> int:
        return len(self._jobs)

    def _after_fork(self) -> None:
        """In a forked child the thread is gone and the queue belongs to the parent's spans."""
        self._jobs = deque()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._thread = None
        self._asleep = False
        self._submitted = False


worker = Worker()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: worker._after_fork())


class Inline:
    """``LLMTRACE_BACKGROUND=false``: each job runs at once on the thread that submits it.

    Less CPU in all (no hand-over between threads, nothing kept alive for the worker), but the
    app's thread pays for reading, pricing and ending every span.
    """

    def submit(self, job: Job, first: Any, second: Any) -> None:
        try:
            job(first, second)
        except Exception as exc:
            internal_error("span enrichment", exc)
