"""The direct span path: the call's span without an SDK ``Span`` object, when nothing could tell.

The OpenTelemetry SDK's ``Span`` does per span what a span with no ``on_start`` observers never
needs: a lock, bounded lists for events and links, attribute validation at start and again at
``set_attributes``, the processors' ``on_start`` and ``_on_ending`` hooks, and a ``ReadableSpan``
copy at ``end()``. When the provider is the SDK's ``TracerProvider`` and every span processor is of
a type known to do nothing in ``on_start`` / ``_on_ending`` (the SDK's batch and simple processors,
llmtrace's own, any that keeps the base class's no-op hooks), the app's thread takes only what must
be taken there (the parent, the provider's own sampler's decision, fresh ids from its id generator,
the start time) and makes a span with that context current during the call, so spans opened inside
(HTTP instrumentation) get the right parent. The worker then builds the finished ``ReadableSpan``
directly, with the provider's span limits applied as the SDK applies them, and hands it to the
provider's span processor's ``on_end``. Any other processor (one that enriches spans at start) keeps
the SDK path, and so does an SDK older than the one this mirrors (1.4x's ``start_span``).

The exported span is field for field the SDK path's (tests/test_direct_spans.py compares them).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
    _Span,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
)
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.util.types import AttributeValue

try:  # what the SDK's span-end metrics are when off (its default); older SDKs have none (and no direct path)
    from opentelemetry.sdk.trace import _tracer_metrics

    _NOOP_METRICS: Any = getattr(_tracer_metrics, "noop", None)
except ImportError:
    _NOOP_METRICS = None

# The SDK whose start_span this mirrors (1.4x: random trace-id flag, tracer configs and metrics);
# an SDK without these keeps the SDK path.
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", None)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_DEFAULT = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | (_RANDOM or 0))
_DEFAULT_RANDOM = TraceFlags(TraceFlags.DEFAULT | (_RANDOM or 0))
_UNSET = Status(StatusCode.UNSET)  # what an SDK span starts with
_LOCK = threading.Lock()  # a DirectSpan's SDK span: built once, seen by finish()
# The SDK release whose Span this mirrors field for field. 1.42-1.44 have the tracer's names below but
# order a key set twice and count dropped values otherwise (1.42 has no BoundedAttributes._set_items:
# the fallback raised and the span was lost), so older SDKs keep the SDK path.
_MIRRORS = (1, 45)
_SDK_VERSION = tuple(int(part) for part in re.findall(r"\d+", sdk_version)[:2])
# BatchSpanProcessor.on_end as the SDK releases the direct path mirrors have it: return unless the span's
# context is sampled, else hand the span to its batch processor's emit (read from the names it uses).
_BATCH_ON_END_NAMES = ("context", "trace_flags", "sampled", "_batch_processor", "emit")
_BATCH_ON_END_KNOWN = getattr(BatchSpanProcessor.on_end, "__code__", None) is not None and (
    BatchSpanProcessor.on_end.__code__.co_names == _BATCH_ON_END_NAMES
)
# ReadableSpan's parameters in the order finish() passes them (positionally: no keyword matching per span).
_READABLE_ARGS: tuple[str, ...] = ("name", "context", "parent", "resource", "attributes", "events", "links")
_READABLE_ARGS += ("kind", "instrumentation_info", "status", "start_time", "end_time", "instrumentation_scope")
_READABLE_KNOWN = ReadableSpan.__init__.__code__.co_varnames[1 : len(_READABLE_ARGS) + 1] == _READABLE_ARGS
_MIRRORED = ("_tracer_config", "_tracer_metrics", "_span_limits", "_instrumentation_scope", "id_generator", "sampler")

# Processor types whose on_start and _on_ending are known to do nothing, by exact type (a subclass
# may override either), with an optional test of the instance: llmtrace's own are added by the
# modules that define them. A test must stay true once true (the verdict is kept per processor tuple).
_QUIET_TYPES: dict[type, Callable[[Any], bool] | None] = {
    BatchSpanProcessor: None,
    SimpleSpanProcessor: None,
}


def register_quiet(cls: type, when: Callable[[Any], bool] | None = None) -> None:
    """Mark a span processor type as doing nothing in ``on_start`` and ``_on_ending`` (once ``when(it)``)."""
    _QUIET_TYPES[cls] = when


def _quiet(processor: Any) -> bool | None:
    """True: quiet for good; None: not yet (ask again); False: never. A type that keeps the base
    class's ``on_start`` and ``_on_ending`` (an app's processor with only ``on_end``) is quiet too."""
    cls = type(processor)
    if cls not in _QUIET_TYPES:
        inherited = cls.on_start is SpanProcessor.on_start
        return inherited and getattr(cls, "_on_ending", None) is getattr(SpanProcessor, "_on_ending", None)
    when = _QUIET_TYPES[cls]
    return True if when is None or when(processor) else None


class DirectSpans:
    """The direct path for one tracer; ``usable()`` says whether it may be taken now."""

    __slots__ = ("_checked", "_safe", "tracer")

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self._checked: object = None  # the processors tuple last checked (a new one after add_span_processor)
        self._safe = False

    @staticmethod
    def for_tracer(tracer: Any) -> DirectSpans | None:
        """The direct path for ``tracer``, or None when it cannot be taken (then always the SDK path)."""
        if type(tracer) is not Tracer or _RANDOM is None:  # another SDK, a proxy, a subclass, an older SDK
            return None
        if _SDK_VERSION < _MIRRORS or not _READABLE_KNOWN or not all(hasattr(tracer, name) for name in _MIRRORED):
            return None
        if type(tracer.span_processor) not in (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor):
            return None
        return DirectSpans(tracer)

    def usable(self) -> bool:
        """Whether this span may skip the SDK's ``Span`` (one identity check per call while nothing changed)."""
        tracer = self.tracer
        processors = tracer.span_processor._span_processors
        if processors is not self._checked:
            verdicts = [_quiet(p) for p in processors]
            self._safe = all(verdicts)
            if None not in verdicts:  # final: keep it until a processor is added
                self._checked = processors
        return self._safe and tracer._tracer_config.is_enabled

    def start(
        self, name: str, context: Context | None, attributes: dict[str, AttributeValue], start_ns: int
    ) -> DirectSpan:
        """What the SDK's ``Tracer.start_span`` decides, without its ``Span`` (mirrors SDK 1.x's code)."""
        tracer = self.tracer
        ids = tracer.id_generator
        parent: SpanContext | None = None
        if context is None or context.get(_SPAN_KEY) is not None:  # else no current span: a root span
            parent = get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        sampler = tracer.sampler
        static = _static_choice(sampler, parent)
        if static is not None:  # the SDK's default sampler: its decision without its ~12 Python calls
            decision = static
            kept, trace_state = attributes, None if parent is None else parent.trace_state
        else:
            sampling = sampler.should_sample(context, trace_id, name, SpanKind.CLIENT, attributes, ())
            decision, kept, trace_state = sampling.decision, sampling.attributes, sampling.trace_state
        if decision is Decision.RECORD_AND_SAMPLE:  # decision.is_sampled()
            flags = _SAMPLED_RANDOM if random_id else _SAMPLED
        else:
            flags = _DEFAULT_RANDOM if random_id else _DEFAULT
        span_context = SpanContext(
            trace_id, ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=trace_state
        )
        end_metrics = tracer._tracer_metrics.start_span(parent, decision)
        recorded = None if decision is Decision.DROP else kept
        sampled = decision is Decision.RECORD_AND_SAMPLE
        return DirectSpan(self, name, span_context, parent, recorded, start_ns, end_metrics, sampled)


def _static_choice(sampler: Any, parent: SpanContext | None) -> Decision | None:
    """The decision of a ``ParentBased`` sampler whose delegate for this parent is a ``StaticSampler``
    (the SDK's default, ``parentbased_always_on``), as its ``should_sample`` makes it: the delegate's
    fixed decision, the sampler's attributes being the span's own and its trace state the parent's.
    None for any other sampler (exact types only: a subclass may decide otherwise)."""
    if sampler.__class__ is not ParentBased:
        return None
    if parent is None:
        chosen = sampler._root
    elif parent.is_remote:
        chosen = sampler._remote_parent_sampled if parent.trace_flags.sampled else sampler._remote_parent_not_sampled
    else:
        chosen = sampler._local_parent_sampled if parent.trace_flags.sampled else sampler._local_parent_not_sampled
    return chosen._decision if chosen.__class__ is StaticSampler else None  # type: ignore[no-any-return]


class DirectSpan(NonRecordingSpan):
    """The call's span while it runs: its context is current (children's parent); ``finish`` exports it.

    Nothing writes to it in llmtrace's own path. Anything else that does (``trace.get_current_span()``
    inside the call: an HTTP hook setting an attribute, adding an event, recording an exception,
    ending it) gets a real SDK span built on the spot with the same context, start and attributes
    (``on_start`` needs no call: every processor is quiet), and from then on the SDK's own code runs:
    ``finish`` sets the status and attributes on it and ends it, as the SDK path does.
    """

    __slots__ = (
        "_end_metrics",
        "_live",
        "_name",
        "_parent",
        "_sampled",
        "_sdk",
        "_spans",
        "_start_attributes",
        "_start_ns",
        "recording",
    )

    def __init__(
        self,
        spans: DirectSpans,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        start_attributes: Any,
        start_ns: int,
        end_metrics: Any,
        sampled: bool,
    ) -> None:
        self._context = context  # NonRecordingSpan.__init__, without the call
        self._spans = spans
        self._name = name
        self._parent = parent
        self._start_attributes = start_attributes
        self._start_ns = start_ns
        self._end_metrics = end_metrics
        self._sampled = sampled  # its context's sampled flag (what an exporting processor's on_end tests)
        self._sdk: Any = None  # the SDK span, once something other than llmtrace wrote to this one
        self._live = start_attributes is not None  # the sampler's decision; False once finished
        # Whether the sampler chose to record it: what llmtrace reads and finishes (a slot, not a
        # property: read twice per call on the app's thread)
        self.recording = start_attributes is not None

    def is_recording(self) -> bool:
        sdk = self._sdk
        return self._live if sdk is None else sdk.is_recording()

    def _writable(self) -> Any:
        """The SDK span behind this one, built at the first write from outside llmtrace; None when
        nothing is recorded (sampled out, or finished: the SDK path ignores writes then too)."""
        with _LOCK:
            if self._sdk is None and self._live:
                tracer = self._spans.tracer
                span = _Span(
                    name=self._name,
                    context=self._context,
                    parent=self._parent,
                    sampler=tracer.sampler,
                    resource=tracer.resource,
                    attributes=self._start_attributes,
                    span_processor=tracer.span_processor,
                    kind=SpanKind.CLIENT,
                    links=(),
                    instrumentation_info=tracer.instrumentation_info,
                    limits=tracer._span_limits,
                    instrumentation_scope=tracer._instrumentation_scope,
                    record_end_metrics=self._end_metrics,
                )
                span._start_time = self._start_ns  # start() would only add the processors' (quiet) on_start
                self._sdk = span
            return self._sdk

    def set_attributes(self, attributes: Any) -> None:
        if (span := self._writable()) is not None:
            span.set_attributes(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if (span := self._writable()) is not None:
            span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if (span := self._writable()) is not None:
            span.add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        if (span := self._writable()) is not None:
            span.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        if (span := self._writable()) is not None:
            span.update_name(name)

    def set_status(self, status: Any, description: str | None = None) -> None:
        if (span := self._writable()) is not None:
            span.set_status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        if (span := self._writable()) is not None:
            span.record_exception(exception, attributes, timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        if (span := self._writable()) is not None:
            span.end(end_time)

    def finish(self, attributes: dict[str, AttributeValue], status: Status | None, end_ns: int) -> None:
        """Export the finished span (worker thread); what ``set_status``, ``set_attributes`` and
        ``end`` do on an SDK span, in one step."""
        with _LOCK:
            span, self._live = self._sdk, False
        if span is not None:  # written to from outside: the SDK path's own calls, in its order
            if status is not None:
                span.set_status(status)
            span.set_attributes(attributes)
            span.end(end_time=end_ns)
            return
        tracer = self._spans.tracer
        limits = tracer._span_limits  # _bounded's quick case inline: one frame fewer on a call's cold caches
        maxlen = limits.max_span_attributes
        bounded: Any = _quick(self._start_attributes or {}, attributes, limits.max_span_attribute_length)
        if bounded is None or (maxlen is not None and len(bounded) > maxlen):
            bounded = _bounded(limits, self._start_attributes, attributes)
        if self._end_metrics is not _NOOP_METRICS:  # metrics off (the default): nothing to call
            self._end_metrics()
        readable = ReadableSpan(  # positional (the order of the SDK releases mirrored): no keyword matching
            self._name,
            self._context,
            self._parent,
            tracer.resource,
            bounded,
            (),  # events
            (),  # links
            SpanKind.CLIENT,
            tracer.instrumentation_info,
            _UNSET if status is None else status,
            self._start_ns,
            end_ns,
            tracer._instrumentation_scope,
        )
        processor = tracer.span_processor
        if processor.__class__ is SynchronousMultiSpanProcessor:  # its on_end is this loop: one frame fewer
            for each in processor._span_processors:
                if each.__class__ is BatchSpanProcessor and _BATCH_ON_END_KNOWN:
                    # its on_end, whose test of the context's sampled flag takes four frames on cold caches
                    if self._sampled:
                        each._batch_processor.emit(readable)
                else:
                    each.on_end(readable)
        else:
            processor.on_end(readable)


_PLAIN = frozenset((str, int, float, bool, bytes, type(None)))  # values the SDK keeps as they are (exact types)


def _quick(start: Any, attributes: dict[str, Any], max_len: int | None) -> dict[str, Any] | None:
    """``start`` then ``attributes`` as the SDK's cleaning leaves them, when it would only turn lists into
    tuples: non-empty string keys, values of the plain types or lists and tuples of them, strings within
    the length limit; a key set again moves to the end, as in ``BoundedAttributes``. None otherwise."""
    merged = {**start, **attributes}  # one C-level merge, then a loop that only checks (no dict writes)
    if len(merged) < len(start) + len(attributes):  # a key in both: BoundedAttributes moves it to the end
        merged = {key: value for key, value in start.items() if key not in attributes}
        merged.update(attributes)
    for key, value in merged.items():
        if key.__class__ is not str or not key:
            return None
        cls = value.__class__
        if cls is str:
            if max_len is not None and len(value) > max_len:
                return None
        elif cls is tuple or cls is list:
            for item in value:
                if item.__class__ not in _PLAIN or (
                    max_len is not None and item.__class__ is str and len(item) > max_len
                ):
                    return None
            if cls is list:
                merged[key] = tuple(value)  # an existing key: its value changes, the iteration stays valid
        elif cls not in _PLAIN:
            return None
    return merged


def _bounded(limits: Any, start: Any, attributes: dict[str, AttributeValue]) -> Mapping[str, AttributeValue]:
    """The span's attributes as the SDK's ``Span`` holds them after ``set_attributes`` and ``end()``.

    When the SDK's cleaning would only turn lists into tuples and nothing is over the count limit
    (every call llmtrace makes, in practice), a plain dict with the same keys, values and order: what
    ``ReadableSpan.attributes`` and ``dropped_attributes`` (0) give from it is what they give from the
    SDK's ``BoundedAttributes``, without building one (its checks and its lock) on a call's cold caches.
    Otherwise the SDK's own code runs (drops, truncation, its warnings).
    """
    maxlen, max_len = limits.max_span_attributes, limits.max_span_attribute_length
    merged = _quick(start or {}, attributes, max_len)
    if merged is not None and (maxlen is None or len(merged) <= maxlen):
        return merged
    bounded = BoundedAttributes(maxlen, start, immutable=False, max_value_len=max_len)
    bounded._set_items(attributes)
    bounded._immutable = True
    return bounded
