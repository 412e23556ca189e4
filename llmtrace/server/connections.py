"""Bounded connections for both ports: slow clients are cut off, idle ones make room.

uvicorn (h11) has no header or body timeout: its keep-alive timer is cancelled by any byte, so
a client trickling one byte every 5 s held a socket forever, and ~20k of them exhausted the
file descriptors until ``/ping`` stopped answering. This protocol adds, per connection:

- a request must arrive (request line and headers) within ``header_seconds`` of the
  connection opening or of the previous response;
- its body must arrive within ``body_seconds`` of its headers;
- at most ``max_connections`` are open per port: over that, the oldest connection that is
  not in the middle of a request is closed to make room (so a health check gets through a
  crowd of slow clients), else the new one is.

A connection cut off mid-body reaches the app as a client disconnect; :func:`quiet_disconnects`
turns that into one log line instead of uvicorn's ~35-line traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "guarded_protocol", "quiet_disconnects"]

logger = logging.getLogger("llmtrace.server")
_SWEEP_SECONDS = 1.0


@dataclass
class ConnectionLimits:
    max_connections: int = 4096
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    closed_slow: int = field(default=0, init=False)
    evicted: int = field(default=0, init=False)
    _logged: tuple[int, int, float] = field(default=(0, 0, 0.0), init=False)

    def report(self, port: str, now: float) -> None:
        """One log line per 10 s at most about connections closed for slowness or for room."""
        slow, evicted, at = self._logged
        if now - at < 10 or (slow, evicted) == (self.closed_slow, self.evicted):
            return
        logger.warning(
            "%s port: closed %d connection(s) too slow to send a request (headers > %g s or body > %g s)"
            " and %d idle one(s) to stay under %d open connections",
            port, self.closed_slow - slow, self.header_seconds, self.body_seconds, self.evicted - evicted,
            self.max_connections,
        )  # fmt: skip
        self._logged = (self.closed_slow, self.evicted, now)


def guarded_protocol(limits: ConnectionLimits, port: str = "HTTP") -> type[H11Protocol]:
    """An h11 protocol class enforcing ``limits`` (one class per port: the limits are its own)."""

    class GuardedH11Protocol(H11Protocol):
        _open: ClassVar[set[GuardedH11Protocol]] = set()
        # Connections waiting for a request, longest-waiting first; entries whose client has
        # since started a request are skipped when met (amortised O(1) per new connection).
        _idle: ClassVar[OrderedDict[GuardedH11Protocol, None]] = OrderedDict()
        _sweeper: ClassVar[asyncio.TimerHandle | None] = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._since = time.monotonic()  # of waiting for headers, or of reading the body
            self._cycle_seen: Any = None
            cls = type(self)
            cls._open.add(self)
            cls._idle[self] = None  # last in line: evicted itself only if no other is idle
            if cls._sweeper is None:
                cls._sweeper = self.loop.call_later(_SWEEP_SECONDS, cls._sweep, self.loop)
            if len(cls._open) > limits.max_connections:
                cls._make_room(self)

        def connection_lost(self, exc: Exception | None) -> None:
            type(self)._open.discard(self)
            type(self)._idle.pop(self, None)
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            self._since = time.monotonic()
            type(self)._idle[self] = None
            type(self)._idle.move_to_end(self)
            super().on_response_complete()

        def _waiting_for_request(self) -> bool:
            return self.conn.their_state is h11.IDLE

        def _overdue(self, now: float) -> bool:
            if self._waiting_for_request():
                return now - self._since > limits.header_seconds
            if self.conn.their_state is h11.SEND_BODY:
                if self.cycle is not self._cycle_seen:  # a new request: its body clock starts now
                    self._cycle_seen, self._since = self.cycle, now
                return now - self._since > limits.body_seconds
            return False

        @classmethod
        def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
            now = time.monotonic()
            for conn in [c for c in cls._open if c._overdue(now)]:
                limits.closed_slow += 1
                conn._close()
            limits.report(port, now)
            cls._sweeper = loop.call_later(_SWEEP_SECONDS, cls._sweep, loop) if cls._open else None

        @classmethod
        def _make_room(cls, newcomer: GuardedH11Protocol) -> None:
            """Close the connection idle longest (the newcomer itself if none is idle)."""
            while cls._idle:
                victim, _ = cls._idle.popitem(last=False)
                if victim._waiting_for_request() and not victim.transport.is_closing():
                    limits.evicted += 1
                    victim._close()
                    return
            limits.evicted += 1
            newcomer._close()

        def _close(self) -> None:
            """Free the socket now; a request in progress sees a client disconnect."""
            type(self)._open.discard(self)
            type(self)._idle.pop(self, None)
            self.transport.abort()

    return GuardedH11Protocol


def quiet_disconnects(app: ASGIApp, port: str) -> ASGIApp:
    """Log a client that went away mid-request as one line, not a traceback."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except (ClientDisconnect, ConnectionError) as exc:
            client = scope.get("client") or ("?", 0)
            logger.warning(
                "%s port: client %s:%s went away before its request to %s was complete (%s)",
                port, client[0], client[1], scope.get("path", "?"), type(exc).__name__,
            )  # fmt: skip

    return wrapped
