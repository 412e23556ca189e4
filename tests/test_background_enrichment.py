"""Span enrichment on llmtrace's worker thread: what the app's thread leaves for later must
still come out right, in order, on time, and never be lost."""

from __future__ import annotations

import contextlib
import json
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import llmtrace
from llmtrace import semconv as sc
from llmtrace.instrumentation import _worker
from tests.conftest import MEMORY_PROVIDER, SpanRecorder, run_script

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is ClickHouse?"}]


@pytest.fixture
def client(fake_llm: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


class EndedSignal(SpanProcessor):
    """Sets an event when a span ends: waiting on the worker without sleeping."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.thread_names: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.thread_names.append(threading.current_thread().name)
        self.ended.set()


@contextlib.contextmanager
def instrumented(*processors: SpanProcessor, sampler: Any = None) -> Iterator[TracerProvider]:
    """llmtrace on an app-owned provider with these processors, undone afterwards."""
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    for processor in processors:
        provider.add_span_processor(processor)
    llmtrace.instrument(tracer_provider=provider)
    try:
        yield provider
    finally:
        llmtrace.uninstrument()


def test_span_ends_at_the_call_end_not_when_the_worker_gets_to_it(client: openai.OpenAI, spans: SpanRecorder) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    returned_ns = time.time_ns()
    span = spans.one()  # ended by flush(), after returned_ns: a span ended "now" would fail below
    assert span.end_time is not None and span.start_time is not None
    assert span.start_time < span.end_time <= returned_ns
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0


def test_messages_appended_after_the_call_are_not_captured(client: openai.OpenAI, spans: SpanRecorder) -> None:
    messages = list(MESSAGES)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    messages.append({"role": "assistant", "content": reply.choices[0].message.content})  # the usual chat loop
    messages.append({"role": "user", "content": "And DuckDB?"})
    captured = json.loads(str(spans.one().attributes[sc.INPUT_MESSAGES]))
    assert [m["role"] for m in captured] == ["user"]


def test_the_worker_ends_spans_without_a_flush(client: openai.OpenAI) -> None:
    signal = EndedSignal()
    with instrumented(signal):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert signal.ended.wait(5.0), "the worker never ended the span"
        assert signal.thread_names == ["llmtrace-spans"]


def test_an_asleep_worker_is_woken_by_the_next_call(client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_worker, "_IDLE_ROUNDS", 0)  # sleep until woken after every drain
    signal = EndedSignal()
    with instrumented(signal):
        for _ in range(3):
            signal.ended.clear()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert signal.ended.wait(5.0)


def test_calls_whose_spans_others_ended_keep_the_worker_awake() -> None:
    worker = _worker.Worker()
    worker._thread = threading.current_thread()  # alive: submit() queues without starting a thread
    worker.submit(lambda first, second: None, None, None)
    worker.drain()  # flush() or the app's thread ran the job before the worker looked
    assert worker._round(idle=5) == 0  # calls are coming: no sleep, so no wake-up per call
    assert worker._round(idle=5) == 6  # none since: one more idle round towards sleep


def test_a_long_backlog_is_drained_by_the_app_thread_and_nothing_is_lost(
    client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_worker, "_WAKE_AT", 1)
    monkeypatch.setattr(_worker, "_MAX_BACKLOG", 1)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert _worker.worker.pending() == 0  # drained on this thread, at submit
    assert len(spans.finished) == 5


def test_stream_chunks_are_folded_in_order(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    output = json.loads(str(spans.one().attributes[sc.OUTPUT_MESSAGES]))
    assert output[0]["parts"][0]["content"] == text


def test_an_internal_error_in_background_is_raised_by_flush_in_strict_mode(
    client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forced failure in describe_request")

    monkeypatch.setenv("LLMTRACE_STRICT", "1")
    monkeypatch.setattr(adapter.Chat, "describe_request", broken)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # the app is unaffected
    assert result.choices[0].message.content
    with pytest.raises(RuntimeError, match="forced failure in describe_request"):
        llmtrace.flush()


def test_a_broken_request_reader_still_ends_the_span_with_the_response(
    client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.Chat, "describe_request", lambda *a, **k: 1 / 0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = spans.one()
    assert span.attributes[sc.REQUEST_MODEL] == "gpt-4o-mini"  # set at start, on the app thread
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0
    assert sc.INPUT_MESSAGES not in span.attributes


@pytest.mark.parametrize("how", ["force_flush", "shutdown"])
def test_the_apps_own_provider_flush_or_shutdown_finishes_queued_spans(client: openai.OpenAI, how: str) -> None:
    """Apps that flush OpenTelemetry the usual way, never calling llmtrace.flush(), lose nothing."""
    exporter = InMemorySpanExporter()
    with instrumented(BatchSpanProcessor(exporter)) as provider:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        getattr(provider, how)()
        (span,) = exporter.get_finished_spans()
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0
    assert "force_flush" not in vars(provider) and "shutdown" not in vars(provider)  # undone


def test_sampled_out_calls_cost_no_background_work(client: openai.OpenAI) -> None:
    """With a sampler that drops the call, nothing is read, folded or queued; the app is unaffected."""
    exporter = InMemorySpanExporter()
    with instrumented(SimpleSpanProcessor(exporter), sampler=ALWAYS_OFF):
        _worker.worker.drain()
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert reply.choices[0].message.content and text
        assert _worker.worker.pending() == 0
        assert llmtrace.flush()
        assert exporter.get_finished_spans() == ()


def test_background_off_ends_spans_on_the_calling_thread_before_the_call_returns(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMTRACE_BACKGROUND", "false")
    exporter, signal = InMemorySpanExporter(), EndedSignal()
    with instrumented(signal, SimpleSpanProcessor(exporter)):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        finished = exporter.get_finished_spans()  # no flush: already there
        assert len(finished) == 2 and all(s.attributes[sc.USAGE_OUTPUT_TOKENS] > 0 for s in finished)
        assert signal.thread_names == [threading.current_thread().name] * 2
        assert _worker.worker.pending() == 0


def _console_exported(fake_llm: Any) -> str:
    """A script's start: llmtrace on a provider printing its spans, an OpenAI client on the fake LLM."""
    return textwrap.dedent(
        f"""
        import openai, llmtrace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, BatchSpanProcessor
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        llmtrace.instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url={fake_llm.openai_base_url!r}, api_key="t", max_retries=0)
        """
    )


def test_spans_queued_at_exit_are_ended_and_exported(fake_llm: Any) -> None:
    """A script that makes one call and exits at once, without flush(): the exit handler finishes the span."""
    result = run_script(
        """
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        """,
        prelude=_console_exported(fake_llm),
    )
    assert result.returncode == 0, result.stderr
    assert '"gen_ai.usage.output_tokens"' in result.stdout


def test_a_stream_still_open_at_exit_is_ended_as_abandoned_and_exported(fake_llm: Any) -> None:
    """A script that reads one chunk of a stream, keeps the stream and exits: its span is still exported."""
    result = run_script(
        """
        hi = [{"role": "user", "content": "hi"}]
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=hi, stream=True)
        next(iter(stream))
        """,
        prelude=_console_exported(fake_llm),
    )
    assert result.returncode == 0, result.stderr
    assert '"llmtrace.stream.end": "abandoned"' in result.stdout


def test_a_forked_child_gets_its_own_worker(fake_llm: Any) -> None:
    """Pre-fork servers (gunicorn --preload): the parent's worker thread does not survive fork."""
    result = run_script(
        f"""
        import os, openai
        llmtrace.instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url={fake_llm.openai_base_url!r}, api_key="t", max_retries=0)
        hi = [{{"role": "user", "content": "hi"}}]
        ask = lambda: client.chat.completions.create(model="gpt-4o-mini", messages=hi)
        ask()
        pid = os.fork()
        if pid == 0:
            from llmtrace.instrumentation._worker import worker
            exporter.clear()
            ask()
            ok = llmtrace.flush() and len(exporter.get_finished_spans()) == 1 and worker._thread.is_alive()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        llmtrace.flush()
        print("child", os.waitstatus_to_exitcode(status), "parent", len(exporter.get_finished_spans()))
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0", "parent", "1"]


def test_many_threads_calling_at_once_get_one_complete_span_each(client: openai.OpenAI, spans: SpanRecorder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int) -> str:
        messages = [{"role": "user", "content": f"question {i}"}]
        if i % 2:
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content or ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(ask, range(64)))
    finished = spans.finished
    assert len(finished) == 64 and len({s.context.span_id for s in finished}) == 64
    by_question = {json.loads(str(s.attributes[sc.INPUT_MESSAGES]))[0]["parts"][0]["content"]: s for s in finished}
    for i, reply in enumerate(replies):
        span = by_question[f"question {i}"]
        output = json.loads(str(span.attributes[sc.OUTPUT_MESSAGES]))
        assert output[0]["parts"][0]["content"] == reply  # each span got its own call's answer
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0


async def test_concurrent_async_streams_keep_their_own_chunks(fake_llm: Any, spans: SpanRecorder) -> None:
    import asyncio

    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)

    async def ask(i: int) -> str:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"topic {i}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    replies = await asyncio.gather(*(ask(i) for i in range(20)))
    finished = spans.finished
    assert len(finished) == 20
    for span in finished:
        question = json.loads(str(span.attributes[sc.INPUT_MESSAGES]))[0]["parts"][0]["content"]
        output = json.loads(str(span.attributes[sc.OUTPUT_MESSAGES]))[0]["parts"][0]["content"]
        assert output == replies[int(question.split()[1])]
        assert span.attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert span.attributes[sc.USAGE_ESTIMATED] is True  # no include_usage: estimated, never altered


def test_a_dead_worker_is_replaced_and_its_queue_still_drains(fake_llm: Any) -> None:
    """If the worker thread ever dies, the next burst of work starts a new one; nothing waits forever."""
    result = run_script(
        f"""
        import openai
        from llmtrace.instrumentation import _worker
        llmtrace.instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url={fake_llm.openai_base_url!r}, api_key="t", max_retries=0)
        hi = [{{"role": "user", "content": "hi"}}]
        client.chat.completions.create(model="gpt-4o-mini", messages=hi)  # starts the worker
        worker = _worker.worker
        first = worker._thread

        def die() -> bool:
            raise SystemExit  # ends the thread the way an unforeseen fatal error would

        worker.drain = die
        worker._wake.set()
        first.join(5)
        del worker.drain
        _worker._WAKE_AT = 1  # the next call counts as a burst
        client.chat.completions.create(model="gpt-4o-mini", messages=hi)
        second = worker._thread
        ok = llmtrace.flush() and len(exporter.get_finished_spans()) == 2
        print(first.is_alive(), second is not first and second.is_alive(), ok)
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]
