"""The direct span path: the call's span without an SDK ``Span`` object, when nothing could tell.

The OpenTelemetry SDK's ``Span`` does per span what a span with no ``on_start`` observers never
needs: a lock, bounded lists for events and links, attribute validation at start and again at
``set_attributes``, the processors' ``on_start`` and ``_on_ending`` hooks, and a ``ReadableSpan``
copy at ``end()``. When the provider is the SDK's ``TracerProvider`` and every span processor is of a
type known to do nothing in ``on_start`` / ``_on_ending`` (the SDK's batch and simple processors,
llmtrace's own), the app's thread takes only what must be taken there (the parent, the provider's
own sampler's decision, fresh ids from its id generator, the start time) and makes a non-recording
span with that context current during the call, so spans opened inside (HTTP instrumentation) get
the right parent. The worker then builds the finished ``ReadableSpan`` directly, with the
provider's span limits applied as the SDK applies them, and hands it to the provider's span
processor's ``on_end``. Any other processor (one that enriches spans at start) keeps the SDK path.

The exported span is field for field the SDK path's (tests/test_direct_spans.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    TraceFlags,
    get_current_span,
)
from opentelemetry.util.types import AttributeValue

# The SDK whose start_span this mirrors (1.4x: random trace-id flag, tracer configs and metrics);
# an SDK without these keeps the SDK path.
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", None)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_DEFAULT = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | (_RANDOM or 0))
_DEFAULT_RANDOM = TraceFlags(TraceFlags.DEFAULT | (_RANDOM or 0))
_MIRRORED = ("_tracer_config", "_tracer_metrics", "_span_limits", "_instrumentation_scope", "id_generator", "sampler")

# Processor types whose on_start and _on_ending are known to do nothing, by exact type (a subclass
# may override either), with an optional test of the instance: llmtrace's own are added by the
# modules that define them. A test must stay true once true (the verdict is kept per processor tuple).
_QUIET_TYPES: dict[type, Callable[[Any], bool] | None] = {
    BatchSpanProcessor: None,
    SimpleSpanProcessor: None,
    SpanProcessor: None,
}


def register_quiet(cls: type, when: Callable[[Any], bool] | None = None) -> None:
    """Mark a span processor type as doing nothing in ``on_start`` and ``_on_ending`` (once ``when(it)``)."""
    _QUIET_TYPES[cls] = when


def _quiet(processor: Any) -> bool | None:
    """True: quiet for good; None: not yet (ask again); False: never."""
    cls = type(processor)
    if cls not in _QUIET_TYPES:
        return False
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
        if not all(hasattr(tracer, name) for name in _MIRRORED):
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
        parent: SpanContext | None = get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        sampling = tracer.sampler.should_sample(context, trace_id, name, SpanKind.CLIENT, attributes, ())
        decision = sampling.decision
        if decision.is_sampled():
            flags = _SAMPLED_RANDOM if random_id else _SAMPLED
        else:
            flags = _DEFAULT_RANDOM if random_id else _DEFAULT
        span_context = SpanContext(
            trace_id, ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=sampling.trace_state
        )
        end_metrics = tracer._tracer_metrics.start_span(parent, decision)
        return DirectSpan(
            self, name, span_context, parent, sampling.attributes if decision.is_recording() else None,
            start_ns, end_metrics,
        )  # fmt: skip


class DirectSpan(NonRecordingSpan):
    """The call's span while it runs: its context is current (children's parent); ``finish`` exports it.

    ``is_recording()`` is False, as for any span nobody may write to: llmtrace fills it on the worker.
    """

    __slots__ = ("_end_metrics", "_name", "_parent", "_spans", "_start_attributes", "_start_ns", "recording")

    def __init__(
        self,
        spans: DirectSpans,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        start_attributes: Any,
        start_ns: int,
        end_metrics: Any,
    ) -> None:
        super().__init__(context)
        self._spans = spans
        self._name = name
        self._parent = parent
        self._start_attributes = start_attributes
        self._start_ns = start_ns
        self._end_metrics = end_metrics
        self.recording = start_attributes is not None  # the sampler's decision: whether anything is exported

    def finish(self, attributes: dict[str, AttributeValue], status: Status | None, end_ns: int) -> None:
        """Export the finished span (worker thread); what ``set_status``, ``set_attributes`` and
        ``end`` do on an SDK span, in one step."""
        tracer = self._spans.tracer
        bounded = _bounded(tracer._span_limits, self._start_attributes, attributes)
        self._end_metrics()
        span = ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=tracer.resource,
            attributes=bounded,
            kind=SpanKind.CLIENT,
            instrumentation_info=tracer.instrumentation_info,
            instrumentation_scope=tracer._instrumentation_scope,
            start_time=self._start_ns,
            end_time=end_ns,
            **({"status": status} if status is not None else {}),
        )
        tracer.span_processor.on_end(span)


_PLAIN = frozenset((str, int, float, bool, bytes, type(None)))  # values the SDK keeps as they are (exact types)


def _quick(start: Any, attributes: dict[str, AttributeValue], max_len: int | None) -> dict[str, Any] | None:
    """``start`` then ``attributes`` as the SDK's cleaning leaves them, when it would only turn lists into
    tuples: non-empty string keys, values of the plain types or lists and tuples of them, strings within
    the length limit; a key set again moves to the end, as in ``BoundedAttributes``. None otherwise."""
    merged: dict[str, Any] = {}
    for source in (start, attributes):
        for key, value in source.items():
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
                    value = tuple(value)
            elif cls not in _PLAIN:
                return None
            merged.pop(key, None)
            merged[key] = value
    return merged


def _bounded(limits: Any, start: Any, attributes: dict[str, AttributeValue]) -> BoundedAttributes:
    """The span's attributes as the SDK's ``Span`` holds them after ``set_attributes`` and ``end()``.

    When the SDK's cleaning would only turn lists into tuples and nothing is over the count limit
    (every call llmtrace makes, in practice), the mapping is built directly: same keys, values and
    order. Otherwise the SDK's own code runs (drops, truncation, its warnings).
    """
    maxlen, max_len = limits.max_span_attributes, limits.max_span_attribute_length
    merged = _quick(start or {}, attributes, max_len)
    if merged is not None and (maxlen is None or len(merged) <= maxlen):
        bounded = BoundedAttributes(maxlen, None, immutable=True, max_value_len=max_len)
        bounded._dict = merged
        return bounded
    bounded = BoundedAttributes(maxlen, start, immutable=False, max_value_len=max_len)
    bounded._set_items(attributes)
    bounded._immutable = True
    return bounded
