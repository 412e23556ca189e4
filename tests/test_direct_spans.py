"""The direct span path (``llmtrace/instrumentation/_direct.py``): real SDKs against the fake LLM service.

Each call is made twice, once with only quiet span processors (the direct path: no SDK ``Span``) and
once with a processor that has an ``on_start`` (the SDK path), and the exported spans must agree in
every field the exporters read, but ids and times.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import llmtrace
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.instrumentation import _core, _direct
from llmtrace.store import span_rows
from llmtrace.store.span_rows import rows_from_spans

pytestmark = pytest.mark.skipif(
    _direct.DirectSpans.for_tracer(TracerProvider().get_tracer("probe")) is None,
    reason="this OpenTelemetry SDK predates the one the direct path mirrors: every span takes the SDK path",
)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is ClickHouse?"}]
# Values that differ call to call whatever the path: the fake service's reply ids, and times.
VARYING = {sc.RESPONSE_ID, sc.RESPONSE_TIME_TO_FIRST_CHUNK}


class StartWatcher(SpanProcessor):
    """A user's processor with an ``on_start`` (it could enrich spans there): forces the SDK path."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)


class Pipeline:
    def __init__(self, sdk_path: bool, sampler: Sampler | None = None, limits: SpanLimits | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler, span_limits=limits)
        self.watcher = StartWatcher()
        if sdk_path:
            self.provider.add_span_processor(self.watcher)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        llmtrace.flush()
        return list(self.exporter.get_finished_spans())


@contextmanager
def instrumented(pipeline: Pipeline, **options: Any) -> Iterator[Pipeline]:
    llmtrace.instrument(tracer_provider=pipeline.provider, **options)
    try:
        yield pipeline
    finally:
        llmtrace.uninstrument()


def direct_path_taken() -> bool:
    runtime = _core.get_runtime()
    assert runtime is not None
    return runtime.direct is not None and runtime.direct.usable()


def fields(span: ReadableSpan) -> dict[str, Any]:
    """Everything the OTLP and ClickHouse exporters read from a span, ids and times left out."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    attributes = span.attributes or {}
    return {
        "name": span.name,
        "kind": span.kind,
        "status": (span.status.status_code, span.status.description),
        "attributes": [(k, type(v).__name__, "<varies>" if k in VARYING else v) for k, v in attributes.items()],
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "dropped_events": span.dropped_events,
        "links": list(span.links),
        "dropped_links": span.dropped_links,
        "resource": dict(span.resource.attributes),
        "resource_schema": span.resource.schema_url,
        "scope": span.instrumentation_scope,
        "flags": context.trace_flags,
        "trace_state": context.trace_state,
        "remote": context.is_remote,
        "parent": None if parent is None else (parent.trace_flags, parent.is_remote),
        "times": span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time,
    }


def openai_client(fake: FakeLLM, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0, **options)


def anthropic_client(fake: FakeLLM) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


def openai_chat(fake: FakeLLM) -> None:
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)


def openai_stream(fake: FakeLLM) -> None:
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    list(stream)


def openai_error(fake: FakeLLM) -> None:
    with pytest.raises(openai.RateLimitError):
        openai_client(fake).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-status": "429"}
        )


def openai_stream_error(fake: FakeLLM) -> None:
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-stream-error-after": "3"}
    )
    with pytest.raises(openai.APIError):
        list(stream)
    stream.close()


def openai_abandoned(fake: FakeLLM) -> None:
    stream = openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()


class Ratio(float):
    """A float subclass, as numpy's float64 is: the SDK keeps it, llmtrace's quick check does not know it."""


def openai_odd_attributes(fake: FakeLLM) -> None:
    """Attributes the SDK cleans, drops or moves: a key set again (it moves last), an empty key (dropped
    and counted), a list (made a tuple), a float subclass, a tuple of mixed plain values."""
    odd = {sc.REQUEST_MODEL: "set again", "": "no key", "app.list": ["x", "y"], "app.ratio": Ratio(0.5)}
    with _core.extra_attributes(**odd, **{"app.tuple": ("a", 1, 2.5, True)}):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stop=["END"])


def openai_moved_attribute(fake: FakeLLM) -> None:
    """Only plain values, one key set again: the quick path must move it last as the SDK does."""
    with _core.extra_attributes(**{sc.SERVER_ADDRESS: "set again", "app.tuple": ("a", 1, 2.5, True)}):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def anthropic_message(fake: FakeLLM) -> None:
    anthropic_client(fake).messages.create(model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES[1:])


def anthropic_stream(fake: FakeLLM) -> None:
    list(
        anthropic_client(fake).messages.create(
            model="claude-sonnet-4-0", max_tokens=100, messages=MESSAGES[1:], system="Be brief.", stream=True
        )
    )


CALLS: dict[str, Callable[[FakeLLM], None]] = {
    "openai chat": openai_chat,
    "openai stream": openai_stream,
    "openai error": openai_error,
    "openai stream error": openai_stream_error,
    "openai abandoned stream": openai_abandoned,
    "openai odd attributes": openai_odd_attributes,
    "openai moved attribute": openai_moved_attribute,
    "anthropic message": anthropic_message,
    "anthropic stream": anthropic_stream,
}


def run_both(call: Callable[[FakeLLM], None], fake: FakeLLM, **provider: Any) -> tuple[ReadableSpan, ReadableSpan]:
    """The call on the direct path, then on the SDK path: one exported span each."""
    out = []
    for sdk_path in (False, True):
        with instrumented(Pipeline(sdk_path, **provider)) as pipeline, llmtrace.attributes(user_id="u-1"):
            call(fake)
            assert direct_path_taken() is not sdk_path
            spans = pipeline.spans()
            assert len(spans) == 1, [s.name for s in spans]
            assert pipeline.watcher.started == ([spans[0].name] if sdk_path else [])
            out.append(spans[0])
    return out[0], out[1]


@pytest.mark.parametrize("name", list(CALLS))
def test_both_paths_export_the_same_span(fake_llm: FakeLLM, name: str) -> None:
    direct, sdk = run_both(CALLS[name], fake_llm)
    assert fields(direct) == fields(sdk)
    assert len(direct.attributes or {}) > 10  # the request, response and cost were read
    if "error" in name:
        assert direct.status.status_code.name == "ERROR"
    if name == "openai odd attributes":
        assert direct.dropped_attributes == 1  # the empty key
        assert (direct.attributes or {})["app.list"] == ("x", "y")
    if name == "openai moved attribute":
        keys = list(direct.attributes or {})
        assert keys.index(sc.SERVER_ADDRESS) > keys.index(sc.SERVER_PORT)  # set at start before the port, moved
    if "abandoned" in name:
        assert (direct.attributes or {})[sc.STREAM_END] == "abandoned"


def stored_attributes(span: ReadableSpan) -> dict[str, str]:
    """The span's ClickHouse row's attributes (``otel_traces.SpanAttributes``), varying ones left out."""
    attributes = rows_from_spans([span])[0][11]
    return {k: v for k, v in attributes.items() if k not in VARYING}


def test_both_paths_give_the_same_stored_attributes_and_json(fake_llm: FakeLLM) -> None:
    """The direct path hands over its attributes as a plain dict (the SDK path: ``BoundedAttributes``):
    the ClickHouse rows, read through ``span_rows``' shortcut for either, and ``to_json`` must agree."""
    direct, sdk = run_both(anthropic_stream, fake_llm)
    stored = [stored_attributes(span) for span in (direct, sdk)]
    assert stored[0] == stored[1]
    assert stored[0][sc.PROVIDER_NAME] == "anthropic" and sc.COST_USD in stored[0]
    assert span_rows.plain_attributes(direct) is not None  # read without the mapping's per-item calls
    as_json = [json.loads(span.to_json())["attributes"] for span in (direct, sdk)]
    assert {k: v for k, v in as_json[0].items() if k not in VARYING} == {
        k: v for k, v in as_json[1].items() if k not in VARYING
    }


def test_both_paths_apply_the_providers_span_limits_alike(fake_llm: FakeLLM) -> None:
    limits = SpanLimits(max_span_attributes=9, max_span_attribute_length=12)
    direct, sdk = run_both(openai_stream, fake_llm, limits=limits)
    assert fields(direct) == fields(sdk)
    assert direct.dropped_attributes > 0  # more than 9 were set: the oldest went, on both paths
    assert len(direct.attributes or {}) == 9
    assert all(len(v) <= 12 for v in (direct.attributes or {}).values() if isinstance(v, str))


@pytest.mark.parametrize("parent", ["remote sampled", "local sampled", "remote unsampled, root always on"])
def test_the_default_samplers_shortcut_decides_as_the_sampler_does(fake_llm: FakeLLM, parent: str) -> None:
    """The direct path decides ParentBased-over-static samplers without calling them: same flags, trace
    state, parent and attributes as the SDK path, which calls the sampler."""
    from opentelemetry.trace import TraceState

    from llmtrace.instrumentation._direct import _static_choice

    sampled = TraceFlags(TraceFlags.SAMPLED if "unsampled" not in parent else TraceFlags.DEFAULT)
    context = SpanContext(
        0xABC, 0xDEF, is_remote=parent.startswith("remote"), trace_flags=sampled,
        trace_state=TraceState([("vendor", "v1")]),
    )  # fmt: skip
    sampler = ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
    assert _static_choice(sampler, context) is not None  # the shortcut is what the direct path takes here
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(context)))
    try:
        direct, sdk = run_both(openai_stream, fake_llm, sampler=sampler)
    finally:
        otel_context.detach(token)
    assert fields(direct) == fields(sdk)
    direct_context = direct.get_span_context()
    assert direct_context is not None and direct_context.trace_id == 0xABC
    assert direct_context.trace_state == TraceState([("vendor", "v1")])
    assert direct_context.trace_flags.sampled


def test_a_processor_added_after_instrument_with_an_on_start_turns_the_sdk_path_on(fake_llm: FakeLLM) -> None:
    pipeline = Pipeline(sdk_path=False)
    with instrumented(pipeline):
        openai_chat(fake_llm)
        assert direct_path_taken()
        pipeline.provider.add_span_processor(pipeline.watcher)
        openai_chat(fake_llm)
        assert not direct_path_taken()
        assert pipeline.watcher.started == ["chat gpt-4o-mini"]
        assert len(pipeline.spans()) == 2


class EndOnly(SpanProcessor):
    """An app's processor that only looks at finished spans: nothing at start, so the direct path holds."""

    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def test_a_processor_with_only_on_end_keeps_the_direct_path_and_gets_the_span(fake_llm: FakeLLM) -> None:
    pipeline = Pipeline(sdk_path=False)
    end_only = EndOnly()
    pipeline.provider.add_span_processor(end_only)
    with instrumented(pipeline):
        openai_stream(fake_llm)
        assert direct_path_taken()
        exported = pipeline.spans()
    assert len(exported) == 1
    assert end_only.ended == exported  # the very ReadableSpan every processor got


def test_a_span_opened_inside_the_call_is_a_child_of_the_calls_span(fake_llm: FakeLLM) -> None:
    """An HTTP-level span (here the app's own, from an httpx event hook) has the call's span as parent."""
    pipeline = Pipeline(sdk_path=False)
    inner_tracer = pipeline.provider.get_tracer("http")

    def hook(request: Any) -> None:
        inner_tracer.start_span("POST", attributes={"in.call": True}).end()

    http = openai.DefaultHttpxClient(event_hooks={"request": [hook]})
    with instrumented(pipeline), inner_tracer.start_as_current_span("request handler") as outer:
        list(
            openai_client(fake_llm, http_client=http).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
        )
        assert direct_path_taken()
    spans = {s.name: s for s in pipeline.spans()}
    call, inner = spans["chat gpt-4o-mini"], spans["POST"]
    assert call.parent is not None and call.parent.span_id == outer.get_span_context().span_id
    assert call.context.trace_id == outer.get_span_context().trace_id
    assert inner.parent is not None and inner.parent.span_id == call.context.span_id
    assert inner.context.trace_id == call.context.trace_id
    assert call.context.span_id not in (outer.get_span_context().span_id, inner.context.span_id)


def test_writes_to_the_current_span_inside_the_call_land_on_both_paths_alike(fake_llm: FakeLLM) -> None:
    """An HTTP hook writing to ``trace.get_current_span()`` (our span): recording, and its attribute,
    event, exception and name are exported as the SDK path exports them; llmtrace's own attributes
    still come after, and the span is ended once."""
    seen: list[bool] = []

    def hook(request: Any) -> None:
        span = trace.get_current_span()
        seen.append(span.is_recording())
        span.set_attribute("app.hook", ["a", "b"])
        span.set_attribute(sc.REQUEST_MODEL, "from the hook")  # set again by nobody: stays as the hook left it
        span.add_event("hook", {"n": 1}, timestamp=1)
        span.record_exception(ValueError("noted"), timestamp=2)

    def call(fake: FakeLLM) -> None:
        client = openai_client(fake, http_client=openai.DefaultHttpxClient(event_hooks={"request": [hook]}))
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        assert not trace.get_current_span().is_recording()

    direct, sdk = run_both(call, fake_llm)
    assert seen == [True, True]
    assert fields(direct) == fields(sdk)
    attributes = direct.attributes or {}
    assert attributes["app.hook"] == ("a", "b")
    assert attributes[sc.REQUEST_MODEL] == "from the hook"
    assert attributes[sc.STREAM_END] == "completed"
    assert [e.name for e in direct.events] == ["hook", "exception"]
    assert [e.timestamp for e in direct.events] == [1, 2]


def test_a_span_ended_from_inside_the_call_is_exported_once_on_both_paths(fake_llm: FakeLLM) -> None:
    def hook(request: Any) -> None:
        trace.get_current_span().end()

    def call(fake: FakeLLM) -> None:
        openai_client(
            fake, http_client=openai.DefaultHttpxClient(event_hooks={"request": [hook]})
        ).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    direct, sdk = run_both(call, fake_llm)
    assert fields(direct) == fields(sdk)
    assert sc.RESPONSE_MODEL not in (direct.attributes or {})  # ended before the reply: the SDK ignores later writes


@pytest.mark.parametrize("how", ["always off", "unsampled parent"])
def test_sampled_out_calls_export_nothing_and_the_app_is_unaffected(fake_llm: FakeLLM, how: str) -> None:
    sampler = ALWAYS_OFF if how == "always off" else ParentBased(ALWAYS_ON)
    pipeline = Pipeline(sdk_path=False, sampler=sampler)
    inner_tracer = pipeline.provider.get_tracer("http")
    seen: list[SpanContext] = []

    def hook(request: Any) -> None:
        span = inner_tracer.start_span("POST")
        seen.append(span.get_span_context())
        span.end()

    parent = NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    token = otel_context.attach(trace.set_span_in_context(parent)) if how == "unsampled parent" else None
    try:
        with instrumented(pipeline):
            client = openai_client(fake_llm, http_client=openai.DefaultHttpxClient(event_hooks={"request": [hook]}))
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
            assert direct_path_taken()
    finally:
        if token is not None:
            otel_context.detach(token)
    assert reply.choices[0].message.content
    assert len(chunks) > 2
    assert pipeline.spans() == []
    assert len(seen) == 2 and not any(s.trace_flags.sampled for s in seen)
    if how == "unsampled parent":
        assert all(s.trace_id == 0x1234 for s in seen)


def test_llmtraces_own_pipeline_takes_the_sdk_path_until_its_exporter_is_built(fake_llm: FakeLLM) -> None:
    """``_PrepareOnFirstSpan`` builds the exporter in ``on_start``: the first span must go through it."""
    from llmtrace import _setup
    from llmtrace.exporters.lazy import LazySpanExporter

    built: list[InMemorySpanExporter] = []

    def build() -> InMemorySpanExporter:
        built.append(InMemorySpanExporter())
        return built[-1]

    lazy = LazySpanExporter(build)
    pipeline = Pipeline(sdk_path=False)
    pipeline.provider.add_span_processor(_setup._PrepareOnFirstSpan(lazy))
    pipeline.provider.add_span_processor(SimpleSpanProcessor(lazy))
    with instrumented(pipeline):
        runtime = _core.get_runtime()
        assert runtime is not None and runtime.direct is not None
        assert not runtime.direct.usable()
        openai_chat(fake_llm)  # the SDK path: on_start builds the exporter on this thread
        assert len(built) == 1
        assert runtime.direct.usable()
        openai_chat(fake_llm)  # the direct path
        direct, sdk = pipeline.spans()
    assert fields(direct) == fields(sdk)
    assert len(built[0].get_finished_spans()) == 2


@pytest.mark.parametrize("release", [None, (1, 42), (1, 44)])
def test_an_sdk_before_the_mirrored_release_keeps_the_sdk_path(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch, release: tuple[int, int] | None
) -> None:
    """1.42 lacks ``BoundedAttributes._set_items`` (the direct path's fallback raised and lost the span);
    1.43-1.44 order a key set twice and count dropped values otherwise: those keep the SDK path
    (``None``: this SDK, which takes the direct path)."""
    if release is not None:
        monkeypatch.setattr(_direct, "_SDK_VERSION", release)
    started: list[str] = []
    real = _direct.DirectSpans.start

    def spy(self: _direct.DirectSpans, name: str, *args: Any) -> _direct.DirectSpan:
        started.append(name)
        return real(self, name, *args)

    monkeypatch.setattr(_direct.DirectSpans, "start", spy)
    pipeline = Pipeline(sdk_path=False)
    with instrumented(pipeline):
        openai_chat(fake_llm)
        (span,) = pipeline.spans()
    assert span.name == "chat gpt-4o-mini" and span.attributes
    assert started == ([] if release is not None else ["chat gpt-4o-mini"])


def test_threads_calling_while_a_processor_is_added_lose_no_span(fake_llm: FakeLLM) -> None:
    """8 threads, chat and streams through one client, while the app adds a processor with an
    ``on_start`` half-way: every call exported once and whole, whichever path it took, and the
    processor saw every span started after it was added (no span slipped past it on the direct path)."""
    threads, each = 8, 24
    pipeline = Pipeline(sdk_path=False)
    watcher = StartWatcher()
    done = [0]
    lock, halfway, go = threading.Lock(), threading.Event(), threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(client: openai.OpenAI) -> None:
        try:
            go.wait()
            for i in range(each):
                if i % 2:
                    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                else:
                    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
                with lock:
                    done[0] += 1
                    if done[0] == threads * each // 2:
                        halfway.set()
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    with instrumented(pipeline):
        client = openai_client(fake_llm)
        workers = [threading.Thread(target=work, args=(client,)) for _ in range(threads)]
        for t in workers:
            t.start()
        halfway.wait(120)
        pipeline.provider.add_span_processor(watcher)
        added_at = done[0]
        for t in workers:
            t.join(120)
        spans = pipeline.spans()
    assert not errors
    assert len(spans) == threads * each
    assert len({s.get_span_context().span_id for s in spans}) == threads * each
    assert all(s.attributes and s.attributes.get(sc.RESPONSE_MODEL) for s in spans)
    # calls started after the processor was added went through its on_start (a few in flight may have too)
    assert threads * each - added_at - threads <= len(watcher.started) <= threads * each - added_at + threads


class RecordOnly(Sampler):
    """Records every span without sampling it: processors get it, exporting ones drop it."""

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None, *rest: Any
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return "RecordOnly"


@pytest.mark.parametrize("record_only", [False, True])
def test_a_batch_processor_exports_sampled_calls_only_on_both_paths(fake_llm: FakeLLM, record_only: bool) -> None:
    """The direct path hands a batch processor's queue the span itself (its on_end's sampled test known
    from the start): the same spans exported as on the SDK path, none when the sampler only records."""
    seen = []
    for sdk_path in (False, True):
        exporter, end_only = InMemorySpanExporter(), EndOnly()
        provider = TracerProvider(sampler=RecordOnly() if record_only else None)
        if sdk_path:
            provider.add_span_processor(StartWatcher())
        provider.add_span_processor(end_only)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        llmtrace.instrument(tracer_provider=provider)
        try:
            anthropic_stream(fake_llm)
            assert direct_path_taken() is not sdk_path
        finally:
            llmtrace.uninstrument()
        llmtrace.flush()
        provider.force_flush()
        assert len(end_only.ended) == 1  # every processor got the recorded span
        seen.append(([fields(s) for s in exporter.get_finished_spans()], fields(end_only.ended[0])))
        provider.shutdown()
    assert seen[0] == seen[1]
    assert len(seen[0][0]) == (0 if record_only else 1)
