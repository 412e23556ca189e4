"""Grouping spans: ``trace()``, ``@observe`` and ``@tool`` open a parent span around the app's own code.

LLM calls made inside become its children, so one request of the app is one trace. Each wrapper
keeps the wrapped function's signature, return value and exceptions (recorded on the span,
re-raised untouched); llmtrace's own failures go through the guard, never the app's code.
Without ``instrument()`` spans go to the global tracer provider (no-ops when there is none).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextlib import ExitStack
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llmtrace import config
from llmtrace import semconv as sc
from llmtrace.instrumentation import _content, _core
from llmtrace.instrumentation._guard import internal_error

F = TypeVar("F", bound=Callable[..., Any])

_default_settings: config.Settings | None = None
_settings_lock = threading.Lock()


def _settings() -> config.Settings:
    """instrument()'s settings, else the environment's (content capture, size, no redaction)."""
    runtime = _core.get_runtime()
    if runtime is not None:
        return runtime.settings
    global _default_settings
    with _settings_lock:
        if _default_settings is None:
            from llmtrace.instrumentation import PROVIDERS

            _default_settings = config.resolve(known_providers=list(PROVIDERS))
        return _default_settings


def tracer() -> otel_trace.Tracer:
    """instrument()'s tracer, else the global provider's (a no-op when the app set none)."""
    runtime = _core.get_runtime()
    if runtime is not None:
        return runtime.tracer
    from llmtrace._setup import __version__

    return otel_trace.get_tracer("llmtrace", __version__)


def content(name: str, value: Any) -> str | None:
    """``value`` as a content attribute (JSON, truncated, redacted), or None when content is off."""
    settings = _settings()
    if not settings.capture_content:
        return None
    return _content.encode(name, value, limit=settings.max_content_chars, redact=settings.redact)


class _Scope:
    """One span of app code: started once, made current per activation, ended exactly once."""

    __slots__ = ("_ended", "extra", "span")

    def __init__(self, name: str, attributes: dict[str, AttributeValue], extra: dict[str, AttributeValue]) -> None:
        self.extra = extra
        self._ended = False
        self.span: Span = otel_trace.INVALID_SPAN
        try:
            self.span = tracer().start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        except Exception as exc:
            internal_error("starting a grouping span", exc)

    def active(self) -> _Activation:
        """The span current (LLM calls inside become its children) and the extra attributes applied."""
        return _Activation(self)

    def set(self, name: str, value: AttributeValue | None) -> None:
        if value is None:
            return
        try:
            self.span.set_attribute(name, value)
        except Exception as exc:
            internal_error("grouping span attribute", exc)

    def end(self, exc: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.span.record_exception(exc)
                self.span.set_attribute(sc.ERROR_TYPE, _core.error_type(exc))
                self.span.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))
            self.span.end()
        except Exception as inner:
            internal_error("ending a grouping span", inner)


class _Activation:
    """Attach on enter, detach on exit; guarded, so a failure here never reaches the app's code."""

    __slots__ = ("_scope", "_stack")

    def __init__(self, scope: _Scope) -> None:
        self._scope = scope
        self._stack = ExitStack()

    def __enter__(self) -> None:
        try:
            token = otel_context.attach(otel_trace.set_span_in_context(self._scope.span))
            self._stack.callback(otel_context.detach, token)
            if self._scope.extra:
                self._stack.enter_context(_core.extra_attributes(**self._scope.extra))
        except Exception as exc:
            internal_error("activating a grouping span", exc)

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._stack.close()
        except Exception as exc:
            internal_error("deactivating a grouping span", exc)


class _Spec:
    """What a wrapper records: how to name the span, its attributes, and where inputs/outputs go."""

    def __init__(
        self,
        name: str,
        attributes: dict[str, AttributeValue] | None = None,
        extra: dict[str, AttributeValue] | None = None,
        input_attr: str | None = None,
        output_attr: str | None = None,
    ) -> None:
        self.name = name
        self.attributes = attributes or {}
        self.extra = extra or {}
        self.input_attr = input_attr
        self.output_attr = output_attr

    def open(self, fn: Callable[..., Any] | None = None, args: tuple[Any, ...] = (), kwargs: Any = None) -> _Scope:
        scope = _Scope(self.name, dict(self.attributes), self.extra)
        if self.input_attr is not None and fn is not None:
            try:
                scope.set(self.input_attr, content(self.input_attr, _arguments(fn, args, kwargs or {})))
            except Exception as exc:
                internal_error("capturing arguments", exc)
        return scope

    def output(self, scope: _Scope, result: Any) -> None:
        if self.output_attr is None:
            return
        try:
            scope.set(self.output_attr, content(self.output_attr, result))
        except Exception as exc:
            internal_error("capturing a result", exc)


def _arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name (``self``/``cls`` left out: they are not inputs)."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):  # the call itself will raise; record what was passed
        return {"args": list(args), **kwargs}
    return {k: v for k, v in bound.items() if k not in ("self", "cls")}


def wrap(fn: F, spec: _Spec) -> F:
    """``fn`` with a span around each call; sync, async, generator and async generator functions alike."""
    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = _wrap_async_gen(fn, spec)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _wrap_gen(fn, spec)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _wrap_async(fn, spec)
    else:
        wrapper = _wrap_sync(fn, spec)
    return functools.wraps(fn)(wrapper)  # type: ignore[return-value]  # __wrapped__ keeps the signature


def _wrap_sync(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = spec.open(fn, args, kwargs)
        try:
            with scope.active():
                result = fn(*args, **kwargs)
        except BaseException as exc:
            scope.end(exc)
            raise
        spec.output(scope, result)
        scope.end()
        return result

    return wrapper


def _wrap_async(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = spec.open(fn, args, kwargs)
        try:
            with scope.active():
                result = await fn(*args, **kwargs)
        except BaseException as exc:
            scope.end(exc)
            raise
        spec.output(scope, result)
        scope.end()
        return result

    return wrapper


def _wrap_gen(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    """The span lasts from the first ``next()`` to exhaustion, ``close()`` or an error; it is current only
    while the generator's own code runs, never leaked into the consumer between items."""

    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        scope = spec.open(fn, args, kwargs)
        try:
            with scope.active():
                inner = fn(*args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                try:
                    with scope.active():
                        item = inner.send(sent) if thrown is None else inner.throw(thrown)
                except StopIteration as stop:
                    result = stop.value
                    break
                sent, thrown = None, None
                try:
                    sent = yield item
                except GeneratorExit:
                    with scope.active():
                        inner.close()
                    raise
                except BaseException as exc:  # consumer's throw(): hand it to the wrapped generator
                    thrown = exc
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()
        return result

    return wrapper


def _wrap_async_gen(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        scope = spec.open(fn, args, kwargs)
        try:
            with scope.active():
                inner = fn(*args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                try:
                    with scope.active():
                        item = await (inner.asend(sent) if thrown is None else inner.athrow(thrown))
                except StopAsyncIteration:
                    break
                sent, thrown = None, None
                try:
                    sent = yield item
                except GeneratorExit:
                    with scope.active():
                        await inner.aclose()
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()

    return wrapper


class Trace:
    """``llmtrace.trace(...)``: a context manager (sync or async) and a decorator opening one parent span.

    Open blocks are kept per context (thread, asyncio task), so one ``trace(...)`` object may be
    entered by several threads or tasks at once.
    """

    def __init__(
        self,
        name: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        extra: dict[str, AttributeValue] = {}
        if user_id is not None:
            extra[sc.USER_ID] = str(user_id)
        if session_id is not None:
            extra[sc.SESSION_ID] = str(session_id)
        attributes: dict[str, AttributeValue] = {sc.LLMTRACE_SPAN_TYPE: "trace", **extra}
        for key, value in (metadata or {}).items():
            attributes[f"{sc.METADATA_PREFIX}{key}"] = _metadata_value(value)
        self._spec = _Spec(name, attributes, extra)

    def __call__(self, fn: F) -> F:
        return wrap(fn, self._spec)

    def __enter__(self) -> Span:
        scope = self._spec.open()
        activation = scope.active()
        activation.__enter__()
        _open_traces.set((*_open_traces.get(), (self, scope, activation)))
        return scope.span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _open_traces.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                _, scope, activation = stack[index]
                _open_traces.set(stack[:index] + stack[index + 1 :])
                activation.__exit__(exc_type, exc, tb)
                scope.end(exc)
                return

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


# The blocks of trace() objects entered and not yet exited in this context, innermost last.
_open_traces: contextvars.ContextVar[tuple[tuple[Trace, _Scope, _Activation], ...]] = contextvars.ContextVar(
    "llmtrace_open_traces", default=()
)


def _metadata_value(value: Any) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


@overload
def observe(fn: F, /) -> F: ...
@overload
def observe(*, name: str | None = None, capture: bool = True) -> Callable[[F], F]: ...
def observe(fn: F | None = None, /, *, name: str | None = None, capture: bool = True) -> F | Callable[[F], F]:
    """Decorate ``fn`` so each call is a span (named ``name`` or the function's qualified name), with its
    arguments and result as content when content capture is on (``capture=False`` keeps them off)."""

    def decorate(func: F) -> F:
        spec = _Spec(
            name or func.__qualname__,
            {sc.LLMTRACE_SPAN_TYPE: "observe"},
            input_attr=sc.LLMTRACE_INPUT if capture else None,
            output_attr=sc.LLMTRACE_OUTPUT if capture else None,
        )
        return wrap(func, spec)

    return decorate if fn is None else decorate(fn)


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...
def tool(fn: F | None = None, /, *, name: str | None = None, description: str | None = None) -> F | Callable[[F], F]:
    """Decorate a tool the model can call: each call is an ``execute_tool {name}`` span per the GenAI
    conventions, with its arguments and result when content capture is on."""

    def decorate(func: F) -> F:
        tool_name = name or func.__name__
        attributes: dict[str, AttributeValue] = {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.TOOL_NAME: tool_name,
            sc.TOOL_TYPE: "function",
        }
        doc = description if description is not None else inspect.getdoc(func)
        if doc:
            attributes[sc.TOOL_DESCRIPTION] = doc.strip().splitlines()[0]
        spec = _Spec(
            f"{sc.OP_EXECUTE_TOOL} {tool_name}",
            attributes,
            input_attr=sc.TOOL_CALL_ARGUMENTS,
            output_attr=sc.TOOL_CALL_RESULT,
        )
        return wrap(func, spec)

    return decorate if fn is None else decorate(fn)
