"""Reading request bodies safely: a size limit before and after decompression, and a budget
for all the bodies a port holds at once.

A gzip bomb (a few KiB that inflate to GiBs) is stopped while inflating, at the limit, not
after: decompression runs with ``max_length`` and fails as soon as there is more. The per-request
limit alone still lets N clients hold N times it (ten 100 MB bodies: +3 GB RSS); a
:class:`BodyBudget` refuses the bytes past a port's total, and the client is told to retry.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

__all__ = [
    "BodyBudget",
    "BodyError",
    "BodyTooLarge",
    "Reservation",
    "ServerBusy",
    "UnsupportedEncoding",
    "decompress",
    "read_body",
]


_STEP = 1 << 20


class BodyError(ValueError):
    """The body cannot be read as sent (corrupt compression)."""


class BodyTooLarge(BodyError):
    """The body, or what it decompresses to, is over the limit."""


class UnsupportedEncoding(BodyError):
    """A Content-Encoding this server does not speak."""


class ServerBusy(Exception):
    """The bodies being handled already fill the port's budget: retry later."""


class BodyBudget:
    """Bytes of request bodies (as received and as inflated) that one port holds at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def reservation(self) -> Reservation:
        return Reservation(self)


class Reservation:
    """One request's share of a :class:`BodyBudget`, given back by :meth:`release`."""

    def __init__(self, budget: BodyBudget | None) -> None:
        self._budget = budget
        self.size = 0

    def add(self, size: int) -> None:
        budget = self._budget
        if budget is None:
            return
        with budget._lock:
            if budget.used + size > budget.limit:
                raise ServerBusy(f"request bodies being handled fill the server's {budget.limit >> 20} MiB budget")
            budget.used += size
        self.size += size

    def release(self) -> None:
        if self._budget is not None and self.size:
            with self._budget._lock:
                self._budget.used -= self.size
            self.size = 0


# Past the limit, this much more of a body is still read (and dropped) before the refusal is sent.
DRAIN_BYTES = 64 << 20


async def read_body(chunks: AsyncIterator[bytes], limit: int, held: Reservation | None = None) -> bytes:
    """Collect a request body, refusing it as soon as it passes ``limit`` bytes (or ``held``'s budget).

    A refused body's rest is read and dropped (up to :data:`DRAIN_BYTES`, nothing kept) before the
    413 goes out: a server that answers and closes while the client is still sending resets the
    connection, and the client (an OTLP exporter) sees a network error it retries, not the 413 that
    tells it to stop (a fuzz test of 17 MiB got the reset once in CI)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            await _drop(chunks, DRAIN_BYTES)
            raise BodyTooLarge(f"request body is larger than {limit} bytes")
        if held is not None:
            held.add(len(chunk))
        parts.append(chunk)
    return b"".join(parts)


async def _drop(chunks: AsyncIterator[bytes], most: int) -> None:
    dropped = 0
    async for chunk in chunks:
        dropped += len(chunk)
        if dropped > most:
            return


class _Inflater(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def _zstd_inflater() -> _Inflater:
    try:
        from backports import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python >= 3.14
        from compression import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
    return zstd.ZstdDecompressor()  # type: ignore[no-any-return]


def _lz4_inflater() -> _Inflater:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()  # type: ignore[no-any-return]


def _inflate(data: bytes, limit: int, make: Callable[[], _Inflater], name: str, held: Reservation | None) -> bytes:
    """Inflate concatenated frames/members (clients compress block by block), 1 MiB at a time,
    stopping as soon as the output passes ``limit`` bytes: a bomb costs ``limit`` of memory,
    never its inflated size (and a legitimate body its size twice, at the final join)."""
    parts: list[bytes] = []
    size = 0
    rest = data
    while rest:
        inflater = make()
        pending = rest
        while True:
            try:
                chunk = inflater.decompress(pending, _STEP)
            except Exception as exc:  # zlib.error, ZstdError, RuntimeError (lz4): all mean corrupt input
                raise BodyError(f"body is not valid {name} data: {exc}") from None
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"body decompresses to more than {limit} bytes")
            if held is not None:
                held.add(len(chunk))
            parts.append(chunk)
            if inflater.eof:
                break
            pending = getattr(inflater, "unconsumed_tail", b"")  # zlib keeps unread input there
            if hasattr(inflater, "unconsumed_tail"):
                more = bool(chunk or pending)
            else:  # zstd, lz4: output may be pending inside the decompressor
                more = not getattr(inflater, "needs_input", True)
            if not more:
                raise BodyError(f"body is truncated {name} data")
        rest = inflater.unused_data
    return b"".join(parts)


_INFLATERS: dict[str, tuple[Callable[[], _Inflater], str]] = {
    "gzip": (lambda: zlib.decompressobj(31), "gzip"),
    "x-gzip": (lambda: zlib.decompressobj(31), "gzip"),
    "deflate": (lambda: zlib.decompressobj(15), "deflate"),
    "zstd": (_zstd_inflater, "zstd"),
    "lz4": (_lz4_inflater, "lz4 frame"),
}


def decompress(
    data: bytes,
    encoding: str | None,
    limit: int,
    allowed: frozenset[str] | None = None,
    held: Reservation | None = None,
) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, zstd, lz4 frame, identity) within ``limit``."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity", "none"):
        if len(data) > limit:
            raise BodyTooLarge(f"request body is larger than {limit} bytes")
        return data
    inflater = _INFLATERS.get(name)
    if inflater is None or (allowed is not None and name not in allowed):
        supported = sorted(allowed if allowed is not None else _INFLATERS)
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; use one of {supported}")
    make, label = inflater
    return _inflate(data, limit, make, label, held)
