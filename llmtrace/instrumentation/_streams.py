"""Transparent proxies around SDK streams and raw responses.

A proxy behaves exactly like the object it wraps (``isinstance``, attributes, ``with``,
``close()``), observes each chunk, and ends the call's span exactly once: when the stream
is exhausted, closed, exits its ``with`` block, raises, or is garbage-collected unread.
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt

from llmtrace.instrumentation._core import Invocation
from llmtrace.instrumentation._guard import internal_error

StreamEnd = Callable[[str, BaseException | None], None]
"""``Invocation.end_stream``: how a stream ended ("completed", "error") and the SDK's exception."""


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, invocation: Invocation) -> None:
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_chunks = _sync_chunks(wrapped, invocation)
        _end_when_collected(self._self_chunks, invocation)

    def __iter__(self) -> Iterator[Any]:
        # A generator, not a per-chunk __next__ method: resuming it costs a fraction of a method call.
        return self._self_chunks  # type: ignore[no-any-return]

    def __next__(self) -> Any:
        return next(self._self_chunks)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_invocation.end_stream("closed")

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_invocation.end_stream("closed")


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, invocation: Invocation) -> None:
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_chunks = _async_chunks(wrapped, invocation)
        _end_when_collected(self._self_chunks, invocation)

    def __aiter__(self) -> AsyncIterator[Any]:
        # An async generator, not a per-chunk __anext__ coroutine method: far cheaper per chunk.
        return self._self_chunks  # type: ignore[no-any-return]

    async def __anext__(self) -> Any:
        return await self._self_chunks.__anext__()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_invocation.end_stream("closed")

    async def aclose(self) -> None:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            await closer()
        finally:
            self._self_invocation.end_stream("closed")

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_invocation.end_stream("closed")


def _ignore(chunk: Any) -> None:
    return None


def _later_fold(rest: Callable[[], Callable[[Any], object]]) -> Callable[[Any], object]:
    try:
        return rest()
    except Exception as exc:  # llmtrace's fault: keep streaming, stop folding
        internal_error("stream fold", exc)
        return _ignore


def fold_or_stop(fold: Callable[[Any], object], chunk: Any) -> bool:
    """``fold(chunk)`` for an accumulator's ``follow``; False when llmtrace's fold failed (reported):
    the caller then stops folding and passes the rest of the stream through untouched."""
    try:
        fold(chunk)
        return True
    except Exception as exc:
        internal_error("stream chunk", exc)
        return False


def follow_each(fold: Callable[[Any], object], chunks: Iterator[Any]) -> Iterator[Any]:
    """A ``follow`` that calls ``fold`` on each chunk, for shapes an accumulator's inline fold does not take."""
    for chunk in chunks:
        if not fold_or_stop(fold, chunk):
            yield chunk
            yield from chunks
            return
        yield chunk


def lead(chunks: Iterator[Any], head: Callable[[Any], bool]) -> Iterator[Any]:
    """The chunks up to the first that carries output, each given to ``head`` first (the core's fold, which
    times that one): how an accumulator's ``follow`` begins a whole stream."""
    for chunk in chunks:
        if head(chunk):
            yield chunk
            return
        yield chunk


def _sync_chunks(wrapped: Any, invocation: Invocation) -> Iterator[Any]:
    """The generator the app iterates: the accumulator's ``follow`` given the core's ``head`` and ``end_stream``
    (the whole stream in one generator, its fold inline: a generator resumed per chunk costs more on the
    caches the SDK's work between two chunks leaves than a warm timer shows), else :func:`_observe`."""
    try:
        head, rest = invocation.start_stream()
        follow = invocation.follower()
        if follow is not None:
            return follow(wrapped, head, invocation.end_stream)
    except Exception as exc:  # llmtrace's fault: the chunks pass unfolded, the span still ends
        internal_error("stream fold", exc)
        head, rest = _unfolded, _no_fold
    return _observe(wrapped, invocation, head, rest)


def _async_chunks(wrapped: Any, invocation: Invocation) -> AsyncIterator[Any]:
    """:func:`_sync_chunks` for async streams: the accumulator's ``afollow``, else :func:`_aobserve`."""
    try:
        head, rest = invocation.start_stream()
        afollow = invocation.afollower()
        if afollow is not None:
            return afollow(wrapped, head, invocation.end_stream)
    except Exception as exc:
        internal_error("stream fold", exc)
        head, rest = _unfolded, _no_fold
    return _aobserve(wrapped, invocation, head, rest)


def _unfolded(chunk: Any) -> bool:
    return False


def _no_fold() -> Callable[[Any], object]:
    return _ignore


def _observe(
    wrapped: Any, invocation: Invocation, head: Callable[[Any], bool], rest: Callable[[], Callable[[Any], object]]
) -> Iterator[Any]:
    """Yield the SDK's chunks, folding each; holds no reference to the proxy (no cycle to delay collection)."""
    try:
        chunks = iter(wrapped)
        for chunk in chunks:
            if head(chunk):
                yield chunk
                break
            yield chunk
        tail = _later_fold(rest)
        for chunk in chunks:
            try:
                tail(chunk)
            except Exception as exc:  # llmtrace's fault, not the app's: stop folding, keep streaming
                internal_error("stream chunk", exc)
                tail = _ignore
            yield chunk
    except GeneratorExit:
        raise  # closed or collected: close() or the finaliser ends the span
    except BaseException as exc:
        invocation.end_stream("error", exc)
        raise
    invocation.end_stream("completed")


async def _aobserve(
    wrapped: Any, invocation: Invocation, head: Callable[[Any], bool], rest: Callable[[], Callable[[Any], object]]
) -> AsyncIterator[Any]:
    """The async twin of :func:`_observe`."""
    try:
        chunks = aiter(wrapped)
        async for chunk in chunks:
            if head(chunk):
                yield chunk
                break
            yield chunk
        tail = _later_fold(rest)
        async for chunk in chunks:
            try:
                tail(chunk)
            except Exception as exc:
                internal_error("stream chunk", exc)
                tail = _ignore
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        invocation.end_stream("error", exc)
        raise
    invocation.end_stream("completed")


# Streams whose chunk generator is alive, by a weak reference to it: a weakref's callback runs only
# while the weakref itself is alive, so this holds them (``weakref.finalize`` does the same, at ~3x the cost).
_watched: dict[weakref.ref[Any], Invocation] = {}


def _end_when_collected(chunks: Any, invocation: Invocation) -> None:
    """End the span when the chunk generator is garbage-collected, i.e. when neither the proxy
    nor a running ``for`` loop holds it, or at interpreter exit. (Not the proxy's ``__del__``: in
    ``for c in client...create(stream=True)`` the proxy is dropped as soon as the loop starts.)"""
    if not _exit_registered:
        _at_exit_once()
    _watched[weakref.ref(chunks, _collected)] = invocation


def _collected(ref: weakref.ref[Any]) -> None:
    invocation = _watched.pop(ref, None)
    if invocation is not None and not invocation._ended:  # a finished stream's generator: nothing to end
        _abandon(invocation)


_exit_registered = False


def _at_exit_once() -> None:
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_abandon_all)


def _abandon_all() -> None:
    """At exit, streams still open end as abandoned (as ``weakref.finalize`` did), and their spans are
    finished here: the worker's own exit drain may already have run."""
    while _watched:
        _, invocation = _watched.popitem()
        _abandon(invocation)
    with contextlib.suppress(Exception):
        from llmtrace.instrumentation._worker import worker

        worker.drain()


def _abandon(invocation: Invocation) -> None:
    try:
        invocation.end_stream("abandoned")
    except Exception as exc:  # runs inside the garbage collector: never raise
        with contextlib.suppress(Exception):
            internal_error("stream finaliser", exc)


def _end_abandoned(proxy: Any) -> None:
    """A stream dropped without being finished or closed still gets its span ended."""
    try:
        invocation = proxy._self_invocation
    except Exception:  # half-constructed proxy
        return
    try:
        invocation.end_stream("abandoned")
    except Exception as exc:  # never raise from __del__
        with contextlib.suppress(Exception):
            internal_error("stream finaliser", exc)


def wrap_stream(result: Any, invocation: Invocation, asynchronous: bool | None = None) -> Any:
    """Proxy a sync or async SDK stream.

    A stream iterable both ways (LiteLLM's ``CustomStreamWrapper``) is proxied the way it was asked
    for: ``asynchronous`` says whether a sync or an async method returned it (None: async if it can be).
    """
    is_async = hasattr(result, "__anext__") or hasattr(result, "__aiter__")
    if is_async and asynchronous is False and (hasattr(result, "__next__") or hasattr(result, "__iter__")):
        is_async = False
    return AsyncStreamProxy(result, invocation) if is_async else SyncStreamProxy(result, invocation)


class RawResponseProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """``with_raw_response`` / ``with_streaming_response`` results: the span ends when ``parse()`` tells us
    the outcome, or when the response is closed unread."""

    def __init__(self, wrapped: Any, invocation: Invocation) -> None:
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_parsed: dict[int, Any] = {}

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        try:
            known = self._self_parsed.get(id(parsed))
            if known is not None:
                return known
            observed = observe_result(self._self_invocation, parsed, allow_raw=False)
            self._self_parsed[id(parsed)] = observed
            return observed
        except Exception as exc:
            internal_error("raw response parse", exc)
            return parsed

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_invocation.end_stream("closed")

    def __del__(self) -> None:
        _end_abandoned(self)


class AsyncRawResponseProxy(RawResponseProxy):
    async def parse(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parsed = await self.__wrapped__.parse(*args, **kwargs)
        try:
            known = self._self_parsed.get(id(parsed))
            if known is not None:
                return known
            observed = observe_result(self._self_invocation, parsed, allow_raw=False)
            self._self_parsed[id(parsed)] = observed
            return observed
        except Exception as exc:
            internal_error("raw response parse", exc)
            return parsed

    async def close(self) -> None:  # type: ignore[override]
        try:
            await self.__wrapped__.close()
        finally:
            self._self_invocation.end_stream("closed")


_raw_response_types: dict[type, bool] = {}


def _is_raw_response(result: Any) -> bool:
    """``with_raw_response`` results; decided once per class (``hasattr`` on a pydantic model costs µs)."""
    cls = type(result)
    known = _raw_response_types.get(cls)
    if known is None:
        known = _raw_response_types[cls] = hasattr(result, "http_response") and callable(getattr(result, "parse", None))
    return known


def observe_result(
    invocation: Invocation, result: Any, *, allow_raw: bool = True, asynchronous: bool | None = None
) -> Any:
    """Hand the app's result back, proxied when it is a stream or a raw response (``asynchronous``: see
    :func:`wrap_stream`)."""
    if allow_raw and _is_raw_response(result):
        if not invocation.request.stream and _body_already_read(result):
            # with_raw_response: the body is read and parse() caches, so the app's own parse()
            # later returns this very object; the span can end now, even if the app never parses.
            invocation.finish(result.parse())
            return result
        is_async = type(result).__name__.startswith("Async") or _has_async_parse(result)
        return (AsyncRawResponseProxy if is_async else RawResponseProxy)(result, invocation)
    if invocation.endpoint.is_stream_result(invocation.request, result):
        return wrap_stream(result, invocation, asynchronous)
    invocation.finish(result)
    return result


def _body_already_read(result: Any) -> bool:
    if _has_async_parse(result):
        return False
    if type(result).__name__ == "LegacyAPIResponse":
        return True
    return bool(getattr(getattr(result, "http_response", None), "is_closed", False))


def _has_async_parse(result: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(result, "parse", None))
