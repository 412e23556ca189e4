"""Worker processes that turn OTLP bodies into insert payloads (see :mod:`.decode`).

Processes, not threads: decoding is pure Python, and in the server process it would hold the
GIL against the event loop and the writer. Workers are spawned (never forked: the engine's
threads must not be copied), warmed up before the server answers, and replaced if one dies.
They exit on their own when the server process goes away, even after ``kill -9``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from llmtrace.server.decode import Prepared, prepare_request

__all__ = ["DecodePool", "WorkerLost", "default_workers"]


class WorkerLost(RuntimeError):
    """A worker process died while decoding (the request may be retried)."""


def default_workers() -> int:
    """One per core, at most four: the engine's insert threads need the CPU too."""
    return max(1, min(4, os.cpu_count() or 1))


def _worker_init(server_pid: int, overridden: tuple[tuple[str, str], ...]) -> None:
    import llmtrace.store.otlp_rows  # noqa: F401  (protobuf and the converter, imported once)
    from llmtrace.server.span_cost import leave_to_repricing

    leave_to_repricing(overridden)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops us

    threading.Thread(target=_exit_with_server, args=(server_pid,), daemon=True, name="llmtrace-watchdog").start()


def _exit_with_server(server_pid: int) -> None:
    """A worker whose server died (``kill -9`` leaves no chance to stop it) exits too."""
    while os.getppid() == server_pid:
        time.sleep(0.5)
    os._exit(0)


class DecodePool:
    def __init__(self, workers: int | None = None, overridden: tuple[tuple[str, str], ...] = ()) -> None:
        """``overridden``: the (provider, model) pairs with a stored price override, whose calls the
        workers leave unpriced for the re-pricing pass (they do not hold the overrides)."""
        self._workers = workers or default_workers()
        self._overridden = overridden
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            self._workers,
            mp_context=context,
            initializer=_worker_init,
            initargs=(os.getpid(), self._overridden),
        )
        for future in [pool.submit(os.getpid) for _ in range(self._workers)]:
            future.result(timeout=120)  # all workers up and imported before the first request
        return pool

    async def prepare(
        self, body: bytes, encoding: str | None, content_type: str, oldest_ns: int | None = None
    ) -> Prepared:
        """Raises what :func:`.decode.prepare_request` raises, or WorkerLost."""
        pool = self._pool
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, prepare_request, body, encoding, content_type, oldest_ns)
        except BrokenProcessPool as exc:
            if self._pool is pool:
                self._pool = await asyncio.to_thread(self._start)
            raise WorkerLost(f"a decoding worker died: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
