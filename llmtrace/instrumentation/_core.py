"""The shared machinery: one span per LLM call, from request to last chunk.

Provider modules describe *what* to read (an :class:`Endpoint`); this module decides
*when*: span start with what samplers need, response or error, stream chunks with
time to first token, cost, content capture, and ending every span exactly once.
The app's thread pays only for the span start, the context switch and a queue append;
reading and pricing happen on the worker (:mod:`llmtrace.instrumentation._worker`).
Habit: the SDK call is never inside our guard; everything we add around it is.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.util.types import AttributeValue

from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.config import Settings
from llmtrace.instrumentation import _content
from llmtrace.instrumentation._direct import DirectSpan, DirectSpans
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._model import Request, Response, StreamAccumulator
from llmtrace.instrumentation._prompt_hash import add_prompt_hashes, current_variables
from llmtrace.instrumentation._worker import Inline, Worker
from llmtrace.instrumentation._worker import worker as default_worker

_SUPPRESS_KEY = otel_context.create_key("llmtrace-suppress")
_extra_attributes: contextvars.ContextVar[dict[str, AttributeValue] | None] = contextvars.ContextVar(
    "llmtrace_extra_attributes", default=None
)


class Endpoint:
    """How to read one SDK method's request and response; subclassed per API by provider modules.

    ``parse_request`` runs on the app's thread before the call and must stay cheap: it gives
    what the span starts with (samplers see it). Everything else (request attributes, content,
    the response) is read on llmtrace's worker thread.
    """

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        raise NotImplementedError

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Fill ``request`` with attributes and content (worker thread; ``kwargs`` is a snapshot)."""

    def parse_response(self, request: Request, result: Any) -> Response:
        raise NotImplementedError

    def new_stream(self, request: Request) -> StreamAccumulator:
        raise NotImplementedError

    def is_stream_result(self, request: Request, result: Any) -> bool:
        """Whether ``result`` is a stream to proxy (default: the request asked for one)."""
        return request.stream


class Runtime:
    """What every wrapper needs from ``instrument()``: the tracer, the settings and the worker."""

    def __init__(self, tracer: Tracer, settings: Settings) -> None:
        self.tracer = tracer
        self.settings = settings
        self.worker: Worker | Inline = default_worker if settings.background else Inline()
        self.direct = DirectSpans.for_tracer(tracer)  # None: every span takes the SDK path


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime | None:
    return _runtime


def suppressed(context: Context | None = None) -> bool:
    """True inside an instrumented call, so nested SDK calls (parse -> create, LiteLLM -> OpenAI) add no span."""
    return bool(otel_context.get_value(_SUPPRESS_KEY, context))


# OpenTelemetry's current context, read and set through its ContextVar when the runtime context is the
# default one: ``get_current`` / ``attach`` / ``detach`` are two Python calls each around that ContextVar.
def current_context() -> Context:
    """``otel_context.get_current()``."""
    runtime = otel_context._RUNTIME_CONTEXT
    if runtime.__class__ is ContextVarsRuntimeContext:
        return runtime._current_context.get()  # type: ignore[attr-defined,no-any-return]
    return otel_context.get_current()


def _attach(context: Context) -> object:
    runtime = otel_context._RUNTIME_CONTEXT
    if runtime.__class__ is ContextVarsRuntimeContext:
        return runtime._current_context.set(context)  # type: ignore[attr-defined]
    return otel_context.attach(context)


def _detach(token: object) -> None:
    runtime = otel_context._RUNTIME_CONTEXT
    if runtime.__class__ is ContextVarsRuntimeContext:
        try:
            runtime._current_context.reset(token)  # type: ignore[attr-defined]
            return
        except Exception:  # e.g. reset in another context: OpenTelemetry's detach logs it, as always
            pass
    otel_context.detach(token)  # type: ignore[arg-type]


@contextmanager
def extra_attributes(**attributes: AttributeValue | None) -> Iterator[None]:
    """Add attributes to every LLM span started inside the block (prompt name/version, user, session)."""
    merged = dict(_extra_attributes.get() or {})
    merged.update({k: v for k, v in attributes.items() if v is not None})
    token = _extra_attributes.set(merged)
    try:
        yield
    finally:
        _extra_attributes.reset(token)


def error_type(exc: BaseException) -> str:
    """Fully qualified class name as the conventions want it, e.g. ``openai.RateLimitError``."""
    cls = type(exc)
    module = cls.__module__ or ""
    if module == "builtins":
        return cls.__qualname__
    top = module.split(".", 1)[0]
    package = sys.modules.get(top)
    if package is not None and getattr(package, cls.__qualname__, None) is cls:
        return f"{top}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}" if module else cls.__qualname__ or "_OTHER"


def _snapshot(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as they were: apps often append the reply to ``messages`` right after
    the call, before the worker reads them (top-level lists are copied; their items are not)."""
    snapshot = kwargs.copy()
    for key, value in kwargs.items():  # a loop, not a comprehension: one Python frame fewer per call
        if value.__class__ is list:
            snapshot[key] = value.copy()
    return snapshot


class Invocation:
    """One LLM call in flight: owns its span and ends it exactly once.

    Public methods run on the app's thread and only record *that* something happened and when;
    the ``_job_*`` methods run later on the worker and turn it into attributes.
    """

    __slots__ = (
        "_acc",
        "_args",
        "_described",
        "_direct",
        "_ended",
        "_extra",
        "_first_chunk_ns",
        "_kwargs",
        "_start_ns",
        "_variables",
        "endpoint",
        "request",
        "runtime",
        "span",
        "token",
    )

    def __init__(
        self,
        runtime: Runtime,
        endpoint: Endpoint,
        request: Request,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        """``context``: the current context, when the caller has read it already (the span's parent)."""
        self.runtime = runtime
        self.endpoint = endpoint
        self.request = request
        self._args = args
        self._kwargs = _snapshot(kwargs) if kwargs else {}
        self._extra = _extra_attributes.get()
        self._variables = current_variables()
        self._described = False
        self._ended = False
        self._acc: StreamAccumulator | None = None
        self._first_chunk_ns: int | None = None
        self._start_ns = time.time_ns()
        direct = runtime.direct
        if direct is not None and direct.usable():  # no SDK Span: see _direct
            self.span: Span = direct.start(_span_name(request), context, _start_attributes(request), self._start_ns)
            self._direct: DirectSpan | None = self.span  # type: ignore[assignment]
        else:
            self._direct = None
            self.span = runtime.tracer.start_span(
                _span_name(request),
                context,
                kind=SpanKind.CLIENT,
                attributes=_start_attributes(request),
                start_time=self._start_ns,
            )
        self.token: object | None = None

    # --- the SDK call (app thread) --------------------------------------------
    def enter(self, context: Context | None = None) -> None:
        """Make our span current (children, propagation) and mark nested SDK calls as suppressed;
        ``context``: the current one, when the caller has it already."""
        parent = current_context() if context is None else context
        # what set_span_in_context then set_value build, in one copy of the parent
        self.token = _attach(Context({**parent, _SPAN_KEY: self.span, _SUPPRESS_KEY: True}))

    def exit(self) -> None:
        token = self.token
        if token is not None:
            self.token = None
            _detach(token)

    # --- outcomes (app thread: note the time, queue the rest) -----------------
    def finish(self, result: Any) -> None:
        """A complete (non-streaming) response arrived."""
        self._settle(self._job_finish, result)

    def fail(self, exc: BaseException) -> None:
        """The SDK raised: record it; the caller re-raises the SDK's exception untouched."""
        self._settle(self._job_fail, exc)

    def recording(self) -> bool:
        """Whether the span will be exported (the sampler's decision), so worth reading for."""
        direct = self._direct
        return self.span.is_recording() if direct is None else direct.recording

    def _settle(self, job: Callable[[Any, int], None], outcome: Any) -> None:
        if self._ended:
            return
        self._ended = True
        if self.recording():
            self.runtime.worker.submit(job, outcome, time.time_ns())
        else:  # sampled out: nothing will be exported, so nothing is read
            self.span.end()

    def start_stream(self) -> tuple[Callable[[Any], bool], Callable[[], Callable[[Any], object]]]:
        """Begin a stream; returns ``(head, rest)`` for the stream proxy, which folds chunks as they pass.

        ``head(chunk)`` is used until the first chunk that carries output, which it times (time to
        first token); then ``rest()`` gives the fold for every later chunk: the accumulator's
        ``tail()`` when it has one (a leaner fold, chosen once the stream's shape is known), else its
        ``add``. Chunks are folded here rather than queued: keeping them alive until the worker runs
        costs more in garbage collection than folding them does. The later fold is not guarded:
        the proxy is.
        """
        if not self.recording():
            return _skip, _skip_rest  # sampled out: chunks pass untouched
        acc = self._acc = self.endpoint.new_stream(self.request)
        add = acc.add

        def head(chunk: Any) -> bool:
            try:
                if add(chunk):
                    self._first_chunk_ns = time.time_ns()
                    return True
            except Exception as exc:
                internal_error("stream chunk", exc)
            return False

        def rest() -> Callable[[Any], object]:
            tail = getattr(acc, "tail", None)
            return add if tail is None else tail()  # type: ignore[no-any-return]

        return head, rest

    def follower(self) -> Callable[..., Iterator[Any]] | None:
        """The accumulator's ``follow`` (see ``StreamAccumulator``), its own generator for a whole sync
        stream, or None: then the proxy calls ``rest()``'s fold on every chunk. After ``start_stream()``."""
        return getattr(self._acc, "follow", None)

    def afollower(self) -> Callable[..., AsyncIterator[Any]] | None:
        """The accumulator's ``afollow``: :meth:`follower` for async streams."""
        return getattr(self._acc, "afollow", None)

    def end_stream(self, how: str, exc: BaseException | None = None) -> None:
        """The stream finished, was closed, abandoned, or raised; record what we have, once."""
        self._settle(self._job_end_stream, (how, exc))

    # --- jobs (worker thread) -------------------------------------------------
    def _job_finish(self, result: Any, end_ns: int) -> None:
        attributes = self._request_attributes()
        try:
            response = self.endpoint.parse_response(self.request, result)
            _add_response_attributes(attributes, self.runtime.settings, self.request, response)
        except Exception as exc:
            internal_error("parse_response", exc)
        self._end(attributes, end_ns)

    def _job_fail(self, exc: BaseException, end_ns: int) -> None:
        attributes = self._request_attributes()
        self._end(attributes, end_ns, exc)

    def _job_end_stream(self, outcome: tuple[str, BaseException | None], end_ns: int) -> None:
        how, exc = outcome
        attributes = self._request_attributes()
        try:
            attributes[sc.STREAM_END] = how
            if self._first_chunk_ns is not None:
                attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = (self._first_chunk_ns - self._start_ns) / 1e9
            if self._acc is not None:
                response = self._acc.result(self.request)
                _add_response_attributes(attributes, self.runtime.settings, self.request, response)
        except Exception as inner:
            internal_error("end_stream", inner)
        self._end(attributes, end_ns, exc)

    def _request_attributes(self) -> dict[str, AttributeValue]:
        """Request attributes and content, read from the call's arguments once."""
        try:
            if not self._described:
                self._described = True
                self.endpoint.describe_request(self.request, self._args, self._kwargs)
                self._args, self._kwargs = (), {}  # read once; a stream the app keeps need not pin them
            settings, request = self.runtime.settings, self.request
            attributes = dict(request.attributes)  # then the call's own, inline: one frame fewer on cold caches
            if request.stream:
                attributes[sc.REQUEST_STREAM] = True
            if settings.environment:
                attributes[sc.ENVIRONMENT] = settings.environment
            if settings.release:
                attributes[sc.RELEASE] = settings.release
            if self._extra:
                attributes.update(self._extra)
            add_prompt_hashes(attributes, request, self._variables)
            if settings.capture_content:
                _add_request_content(attributes, settings, request)
            return attributes
        except Exception as exc:
            internal_error("parse_request", exc)
            return {}

    def _end(self, attributes: dict[str, AttributeValue], end_ns: int, exc: BaseException | None = None) -> None:
        """Set everything in one pass through the SDK's attribute validation, then end at the captured time."""
        direct = self._direct
        if direct is not None:
            try:
                status = None
                if exc is not None:
                    attributes[sc.ERROR_TYPE] = error_type(exc)
                    status = Status(StatusCode.ERROR, str(exc)[:1000])
                direct.finish(attributes, status, end_ns)
            except Exception as inner:
                internal_error("span end", inner)
            return
        try:
            if exc is not None:
                attributes[sc.ERROR_TYPE] = error_type(exc)
                self.span.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))
            self.span.set_attributes(attributes)
        except Exception as inner:
            internal_error("span attributes", inner)
        try:
            self.span.end(end_time=end_ns)
        except Exception as inner:
            internal_error("span end", inner)


def _skip(chunk: Any) -> bool:
    return True


def _skip_rest() -> Callable[[Any], object]:
    return _skip


def _span_name(request: Request) -> str:
    return f"{request.operation} {request.model}" if request.model else request.operation


def _start_attributes(request: Request) -> dict[str, AttributeValue]:
    """Attributes samplers must see: set at span start."""
    attrs: dict[str, AttributeValue] = {
        sc.OPERATION_NAME: request.operation,
        sc.PROVIDER_NAME: request.provider,
    }
    if request.model:
        attrs[sc.REQUEST_MODEL] = request.model
    if request.server_address:
        attrs[sc.SERVER_ADDRESS] = request.server_address
    if request.server_port:
        attrs[sc.SERVER_PORT] = request.server_port
    return attrs


def _add_request_content(attrs: dict[str, AttributeValue], settings: Settings, request: Request) -> None:
    """The request's content attributes, written into ``attrs`` (one dict per job: fewer objects on
    the cold caches a call's end leaves). None from ``encode``: the app's redact failed, left off."""
    limit, redact, encode = settings.max_content_chars, settings.redact, _content.encode
    if request.system_instructions:  # three tests, not a loop over a tuple of pairs built per call
        text = encode(sc.SYSTEM_INSTRUCTIONS, request.system_instructions, limit=limit, redact=redact)
        if text is not None:
            attrs[sc.SYSTEM_INSTRUCTIONS] = text
    if request.input_messages:
        text = encode(sc.INPUT_MESSAGES, request.input_messages, limit=limit, redact=redact)
        if text is not None:
            attrs[sc.INPUT_MESSAGES] = text
    if request.tool_definitions:
        text = encode(sc.TOOL_DEFINITIONS, request.tool_definitions, limit=limit, redact=redact)
        if text is not None:
            attrs[sc.TOOL_DEFINITIONS] = text


def _add_response_attributes(
    attrs: dict[str, AttributeValue], settings: Settings, request: Request, response: Response
) -> None:
    """The response's attributes, cost and output content, written into ``attrs`` (the job's one dict:
    no second dict to build and merge on the cold caches a stream's end leaves)."""
    attrs.update(response.attributes)
    if response.id:
        attrs[sc.RESPONSE_ID] = response.id
    if response.model:
        attrs[sc.RESPONSE_MODEL] = response.model
    if response.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = response.finish_reasons
    usage = response.usage
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    if input_tokens is not None:
        attrs[sc.USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        attrs[sc.USAGE_OUTPUT_TOKENS] = output_tokens
    if usage.cache_read_tokens is not None:
        attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens is not None:
        attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    if usage.estimated:
        attrs[sc.USAGE_ESTIMATED] = True
    if input_tokens is not None or output_tokens is not None:  # the cost, inline (cold caches: no frame)
        models = (request.model, response.model) if request.priced_by_request_model else (response.model, request.model)
        counts = (input_tokens or 0, output_tokens or 0, usage.cache_read_tokens or 0, usage.cache_write_tokens or 0)
        model = models[0] or models[1]
        cost = pricing.quick_cost(request.provider, model, *counts) if model else None
        if cost is None:
            cost = pricing.tokens_cost_usd(request.provider, models, *counts)
        if cost is None:
            attrs[sc.COST_STATUS] = sc.COST_UNPRICED
        else:
            attrs[sc.COST_USD] = cost
            attrs[sc.COST_STATUS] = sc.COST_ESTIMATED if usage.estimated else sc.COST_PRICED
    if settings.capture_content and response.output_messages:
        text = _content.encode(
            sc.OUTPUT_MESSAGES, response.output_messages, limit=settings.max_content_chars, redact=settings.redact
        )
        if text is not None:
            attrs[sc.OUTPUT_MESSAGES] = text
