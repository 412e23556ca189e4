"""llmtrace.trace / @observe / @tool: the real openai SDK against the fake LLM service, spans in memory."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import semconv as sc
from tests.conftest import SpanRecorder

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(fake_llm: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aclient(fake_llm: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_trace_context_manager_parents_llm_calls_and_tags_user_and_session(
    client: openai.OpenAI, spans: SpanRecorder
) -> None:
    with llmtrace.trace("answer", user_id="u1", session_id="s1", metadata={"tenant": "acme", "n": 3}):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    root, first, second, outside = sorted(spans.finished, key=lambda s: (s.name != "answer", s.start_time))
    assert root.kind == SpanKind.INTERNAL and root.parent is None
    assert attrs(root) == {
        sc.LLMTRACE_SPAN_TYPE: "trace",
        sc.USER_ID: "u1",
        sc.SESSION_ID: "s1",
        "llmtrace.metadata.tenant": "acme",
        "llmtrace.metadata.n": 3,
    }
    for call in (first, second):
        assert call.context.trace_id == root.context.trace_id
        assert parent_of(call) == root.context.span_id
        assert (attrs(call)[sc.USER_ID], attrs(call)[sc.SESSION_ID]) == ("u1", "s1")
    assert outside.context.trace_id != root.context.trace_id and sc.USER_ID not in attrs(outside)


def test_nested_observe_and_tool_give_a_tree(client: openai.OpenAI, spans: SpanRecorder) -> None:
    @llmtrace.tool
    def get_weather(city: str) -> dict[str, Any]:
        """Weather for a city."""
        return {"city": city, "temp": 21}

    @llmtrace.observe(name="plan")
    def plan(question: str, *, depth: int = 1) -> str:
        get_weather("Paris")
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        return "done"

    @llmtrace.trace("request")
    def handle() -> str:
        return plan("weather?", depth=2)

    assert handle() == "done"
    named = by_name(spans.finished)
    root, step, tool, call = (
        named["request"],
        named["plan"],
        named["execute_tool get_weather"],
        named["chat gpt-4o-mini"],
    )
    assert parent_of(step) == root.context.span_id
    assert parent_of(tool) == step.context.span_id and parent_of(call) == step.context.span_id
    assert {s.context.trace_id for s in named.values()} == {root.context.trace_id}
    assert json.loads(attrs(step)[sc.LLMTRACE_INPUT]) == {"question": "weather?", "depth": 2}
    assert json.loads(attrs(step)[sc.LLMTRACE_OUTPUT]) == "done"
    assert tool.kind == SpanKind.INTERNAL
    assert attrs(tool) == {
        sc.OPERATION_NAME: "execute_tool",
        sc.TOOL_NAME: "get_weather",
        sc.TOOL_TYPE: "function",
        sc.TOOL_DESCRIPTION: "Weather for a city.",
        sc.TOOL_CALL_ARGUMENTS: '{"city":"Paris"}',
        sc.TOOL_CALL_RESULT: '{"city":"Paris","temp":21}',
    }


def test_decorators_keep_signature_name_and_docstring() -> None:
    def f(a: int, b: str = "x", *args: Any, c: float, **kw: Any) -> str:
        """Doc."""
        return b

    for decorated in (llmtrace.observe(f), llmtrace.observe(name="n")(f), llmtrace.tool(f), llmtrace.trace("t")(f)):
        assert inspect.signature(decorated) == inspect.signature(f)
        assert (decorated.__name__, decorated.__doc__) == ("f", "Doc.")


def test_exceptions_are_recorded_and_reraised_untouched(spans: SpanRecorder) -> None:
    error = KeyError("missing")

    @llmtrace.observe
    def boom() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        boom()
    assert caught.value is error
    span = spans.one()
    assert span.name.endswith("boom")
    assert span.status.status_code == StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "KeyError"
    assert [e.name for e in span.events] == ["exception"]


def test_trace_context_manager_records_an_exception_and_lets_it_through(spans: SpanRecorder) -> None:
    with pytest.raises(ValueError, match="bad"), llmtrace.trace("t"):
        raise ValueError("bad")
    assert spans.one().status.status_code == StatusCode.ERROR


def test_content_off_leaves_arguments_and_results_out(fake_llm: Any) -> None:
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, capture_content=False)
    try:
        llmtrace.tool(lambda x: x * 2)(4)
        llmtrace.observe(lambda x: x)(1)
    finally:
        llmtrace.uninstrument()
    for span in rec.finished:
        assert not set(attrs(span)) & {
            sc.TOOL_CALL_ARGUMENTS,
            sc.TOOL_CALL_RESULT,
            sc.LLMTRACE_INPUT,
            sc.LLMTRACE_OUTPUT,
        }


def test_content_is_truncated_and_redacted_like_llm_content() -> None:
    rec = SpanRecorder()
    seen: list[str] = []

    def redact(name: str, text: str) -> str:
        seen.append(name)
        return text.replace("secret", "***")

    llmtrace.instrument(tracer_provider=rec.provider, max_content_chars=10, redact=redact)
    try:
        llmtrace.observe(lambda text: "secret " + text)("a" * 50)
    finally:
        llmtrace.uninstrument()
    span = rec.one()
    assert json.loads(attrs(span)[sc.LLMTRACE_INPUT]) == {"text": "a" * 10 + "…[truncated 40 chars]"}
    assert json.loads(attrs(span)[sc.LLMTRACE_OUTPUT]).startswith("*** aaa")
    assert seen == [sc.LLMTRACE_INPUT, sc.LLMTRACE_OUTPUT]


def test_generator_span_covers_iteration_and_is_not_current_between_items(
    client: openai.OpenAI, spans: SpanRecorder
) -> None:
    from opentelemetry import trace

    @llmtrace.observe
    def tokens(n: int) -> Iterator[int]:
        for i in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            yield i
        return None

    seen = []
    for item in tokens(2):
        seen.append((item, trace.get_current_span().get_span_context().is_valid))
    assert seen == [(0, False), (1, False)]
    named = spans.finished
    gen = next(s for s in named if s.name.endswith("tokens"))
    calls = [s for s in named if s.name == "chat gpt-4o-mini"]
    assert len(calls) == 2 and all(parent_of(c) == gen.context.span_id for c in calls)
    assert gen.end_time is not None and gen.end_time >= max(c.end_time or 0 for c in calls)


def test_generator_closed_early_ends_its_span_once_without_error(spans: SpanRecorder) -> None:
    closed = []

    @llmtrace.trace("gen")
    def numbers() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    gen = numbers()
    assert next(gen) == 1
    gen.close()
    span = spans.one()
    assert closed == [True] and span.status.status_code == StatusCode.UNSET


def test_generator_send_and_throw_reach_the_wrapped_generator(spans: SpanRecorder) -> None:
    @llmtrace.observe
    def echo() -> Iterator[Any]:
        received = None
        while True:
            try:
                received = yield received
            except ValueError:
                received = "caught"

    gen = echo()
    next(gen)
    assert gen.send("x") == "x"
    assert gen.throw(ValueError("v")) == "caught"
    gen.close()
    assert len(spans.finished) == 1


def test_generator_error_is_recorded_and_reraised(spans: SpanRecorder) -> None:
    @llmtrace.observe
    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(failing())
    assert spans.one().status.status_code == StatusCode.ERROR


def test_async_function_and_async_trace_parent_async_calls(aclient: openai.AsyncOpenAI, spans: SpanRecorder) -> None:
    @llmtrace.observe
    async def step() -> str:
        r = await aclient.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        return r.id

    async def main() -> str:
        async with llmtrace.trace("async-request", user_id="u2"):
            return await step()

    response_id = asyncio.run(main())
    named = by_name(spans.finished)
    root, step_span, call = (
        named["async-request"],
        next(s for s in named.values() if s.name.endswith("step")),
        named["chat gpt-4o-mini"],
    )
    assert parent_of(step_span) == root.context.span_id and parent_of(call) == step_span.context.span_id
    assert attrs(call)[sc.USER_ID] == "u2"
    assert json.loads(attrs(step_span)[sc.LLMTRACE_OUTPUT]) == response_id


def test_async_generator_parents_calls_and_ends_on_exhaustion(aclient: openai.AsyncOpenAI, spans: SpanRecorder) -> None:
    @llmtrace.trace("agen")
    async def stream(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            yield i

    async def main() -> list[int]:
        return [i async for i in stream(2)]

    assert asyncio.run(main()) == [0, 1]
    named = spans.finished
    root = next(s for s in named if s.name == "agen")
    calls = [s for s in named if s.name == "chat gpt-4o-mini"]
    assert len(calls) == 2 and all(parent_of(c) == root.context.span_id for c in calls)


def test_async_exception_is_reraised_untouched(spans: SpanRecorder) -> None:
    error = ConnectionError("down")

    @llmtrace.tool(name="fetch")
    async def fetch() -> None:
        raise error

    with pytest.raises(ConnectionError) as caught:
        asyncio.run(fetch())
    assert caught.value is error
    span = spans.one()
    assert span.name == "execute_tool fetch" and attrs(span)[sc.ERROR_TYPE] == "ConnectionError"


def test_without_instrument_spans_go_to_the_global_provider_or_nowhere() -> None:
    from tests.conftest import MEMORY_PROVIDER, run_script

    script = """
        @llmtrace.observe
        def f(x):
            return x + 1
        assert f(1) == 2  # no provider at all: no-op spans, same result
        from opentelemetry import trace
        trace.set_tracer_provider(provider)
        with llmtrace.trace("t", user_id="u"):
            assert f(2) == 3
        print(sorted(s.name for s in exporter.get_finished_spans()))
    """
    result = run_script(script, prelude=MEMORY_PROVIDER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['f', 't']"


def test_an_internal_failure_is_logged_and_the_function_still_runs(
    monkeypatch: pytest.MonkeyPatch, spans: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    from llmtrace import grouping
    from llmtrace.instrumentation import _guard

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("llmtrace bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(_guard, "_reported", set())  # logged once per site: start from none
    monkeypatch.setattr(grouping, "content", broken)

    @llmtrace.tool
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    assert spans.one().name == "execute_tool add"
    assert "your application is unaffected" in caplog.text


def test_internal_failures_are_raised_in_strict_mode(monkeypatch: pytest.MonkeyPatch, spans: SpanRecorder) -> None:
    from llmtrace import grouping

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("llmtrace bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "1")
    monkeypatch.setattr(grouping, "content", broken)
    with pytest.raises(RuntimeError, match="llmtrace bug"):
        llmtrace.observe(lambda: 1)()


def test_one_trace_object_entered_by_several_threads_gives_one_span_each(spans: SpanRecorder) -> None:
    import threading

    shared = llmtrace.trace("shared")
    entered = threading.Barrier(4)

    def work() -> None:
        with shared:
            entered.wait(5)  # all four blocks open at once
            llmtrace.observe(name="inner")(lambda: None)()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = spans.finished
    roots = {s.context.span_id for s in finished if s.name == "shared"}
    inner = [s for s in finished if s.name == "inner"]
    assert len(roots) == 4 and len(inner) == 4
    assert {parent_of(s) for s in inner} == roots
