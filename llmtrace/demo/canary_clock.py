"""A simulated clock for a canary player: latencies exactly as the fake LLM's knobs say.

Played through the real SDK, a release's latency is real wall time: the fake sleeps, and on a
busy machine every sleep and every wake-up of the reading thread adds scheduling delay (tens of
ms per call under load 15, far more in the tail). A check that a release is slower by ~50 ms per
call at p95 then holds only when the machine is quiet. With ``simulated``, the player's process
reads time from :class:`SimulatedClock` instead (``time.time_ns``, which llmtrace's
instrumentation reads at a call's start, its first chunk and its end): the fake answers at once,
and :class:`PacedTransport` advances the clock, in the SDK's own thread, by the request's
``x-fake-latency-ms`` when the reply arrives and by ``x-fake-chunk-delay-ms`` before each
streamed content event reaches the SDK. Everything else stays real: the SDK, HTTP, llmtrace's
spans, OTLP and the server. The same requests then always measure the same latencies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx

__all__ = ["PacedTransport", "SimulatedClock"]

_KNOBS = ("x-fake-latency-ms", "x-fake-chunk-delay-ms")


class SimulatedClock:
    """Nanoseconds since the epoch that advance only when told (starting at the real time)."""

    def __init__(self, start_ns: int | None = None) -> None:
        self._now = time.time_ns() if start_ns is None else start_ns
        self._lock = threading.Lock()

    def time_ns(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: float) -> None:
        with self._lock:
            self._now += round(ms * 1e6)

    def install(self) -> None:
        """Make this process's ``time.time_ns`` read this clock (for a dedicated player process)."""
        time.time_ns = self.time_ns


class PacedTransport(httpx.BaseTransport):
    """An httpx transport that takes the fake's delay knobs off the request and plays them on
    the clock instead: the latency when the reply arrives, a chunk delay before each content event."""

    def __init__(self, clock: SimulatedClock, inner: httpx.BaseTransport | None = None) -> None:
        self.clock = clock
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        latency, chunk = (float(request.headers.get(k) or 0) for k in _KNOBS)
        for knob in _KNOBS:
            request.headers[knob] = "0"  # the fake answers at once; the clock does the waiting
        response = self.inner.handle_request(request)
        self.clock.advance(latency)
        if chunk > 0 and response.headers.get("content-type", "").startswith("text/event-stream"):
            assert isinstance(response.stream, httpx.SyncByteStream)
            response.stream = _PacedStream(response.stream, self.clock, chunk)
        return response

    def close(self) -> None:
        self.inner.close()


class _PacedStream(httpx.SyncByteStream):
    """Server-sent events one at a time, the clock advanced before each one carrying content."""

    def __init__(self, inner: httpx.SyncByteStream, clock: SimulatedClock, chunk_ms: float) -> None:
        self.inner, self.clock, self.chunk_ms = inner, clock, chunk_ms

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        for data in self.inner:
            pending += data
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                if _has_content(event):
                    self.clock.advance(self.chunk_ms)
                yield event + b"\n\n"
        if pending:
            yield pending

    def close(self) -> None:
        self.inner.close()


def _has_content(event: bytes) -> bool:
    """True for a chat-completion chunk whose delta carries text (what the fake paces)."""
    payload = event.removeprefix(b"data: ").strip()
    if not payload.startswith(b"{"):
        return False
    try:
        choices = json.loads(payload).get("choices") or []
    except ValueError:
        return False
    return any((c.get("delta") or {}).get("content") for c in choices)
