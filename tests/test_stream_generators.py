"""The accumulators' whole-stream generators (``follow`` / ``afollow``): the one generator the app iterates.

Real SDKs over HTTP against the fake LLM service. Each test checks what the app sees (every chunk, in order,
unchanged) and what the span gets (text, end, error), for sync and async streams of OpenAI and Anthropic.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from llmtrace import semconv as sc
from llmtrace.instrumentation import anthropic as anthropic_adapter
from llmtrace.instrumentation import openai as openai_adapter
from tests.conftest import SpanRecorder

MESSAGES = [{"role": "user", "content": "Say something."}]


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def output_text(span: Any) -> str:
    return "".join(part["content"] for part in json.loads(attrs(span)[sc.OUTPUT_MESSAGES])[0]["parts"])


def openai_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_async_openai_stream_folds_every_chunk_and_ends_once(fake_llm: Any, spans: SpanRecorder) -> None:
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "30"}
    )
    chunks = [chunk async for chunk in stream]
    span = spans.one()
    assert output_text(span) == openai_text(chunks) and len(openai_text(chunks).split()) == 30
    assert attrs(span)[sc.STREAM_END] == "completed"
    assert attrs(span)[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs(span)[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


async def test_async_openai_stream_error_midway_ends_the_span_once_with_the_error(
    fake_llm: Any, spans: SpanRecorder
) -> None:
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-stream-error-after": "3"}
    )
    received = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            received.append(chunk)
    await stream.close()
    span = spans.one()
    assert received
    assert span.status.status_code.name == "ERROR"
    assert attrs(span)[sc.STREAM_END] == "error"


async def test_async_openai_fold_gives_chunks_it_cannot_read_to_the_general_fold(fake_llm: Any) -> None:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "20"}
        )
    )
    odd = chunks[5].model_dump()  # a dict: attribute reads fail, the general fold must take it
    fed = [*chunks[:6], odd, *chunks[6:]]

    async def source() -> Any:
        for chunk in fed:
            yield chunk

    fold, ends, firsts = openai_adapter.TextChatStream(), [], []

    def head(chunk: Any) -> bool:
        if fold.add(chunk):
            firsts.append(chunk)
            return True
        return False

    passed = [c async for c in fold.afollow(source(), head, lambda how, exc: ends.append((how, exc)))]
    assert passed == fed  # every chunk passed on, unchanged, in order
    assert firsts == [chunks[1]] and ends == [("completed", None)]
    assert "".join(fold.text[0]) == openai_text(chunks[:6]) + odd["choices"][0]["delta"]["content"] + openai_text(
        chunks[6:]
    )


def test_sync_openai_stream_folds_every_chunk(fake_llm: Any, spans: SpanRecorder) -> None:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "30"}
    )
    chunks = list(stream)
    span = spans.one()
    assert output_text(span) == openai_text(chunks) and len(openai_text(chunks).split()) == 30
    assert attrs(span)[sc.STREAM_END] == "completed"


async def test_async_anthropic_stream_folds_every_event_and_an_error_midway_ends_it(
    fake_llm: Any, spans: SpanRecorder
) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0)
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": MESSAGES}
    stream = await client.messages.create(**ask, stream=True, extra_headers={"x-fake-output-words": "25"})
    events = [event async for event in stream]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    done = spans.one()
    assert output_text(done) == text and len(text.split()) == 25
    assert attrs(done)[sc.STREAM_END] == "completed"
    assert (
        attrs(done)[sc.USAGE_OUTPUT_TOKENS] == next(e for e in events if e.type == "message_delta").usage.output_tokens
    )

    stream = await client.messages.create(**ask, stream=True, extra_headers={"x-fake-stream-error-after": "3"})
    with pytest.raises(anthropic.APIError):
        async for _ in stream:
            pass
    failed = [s for s in spans.finished if s is not done and attrs(s)[sc.STREAM_END] != "completed"]
    assert len(failed) == 1 and attrs(failed[0])[sc.STREAM_END] == "error"
    assert failed[0].status.status_code.name == "ERROR"


def test_a_broken_whole_stream_generator_leaves_the_stream_to_the_core(
    fake_llm: Any, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, *args: Any) -> Any:
        raise RuntimeError("forced failure inside llmtrace")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(anthropic_adapter.MessageEvents, "follow", broken)
    client = anthropic.Anthropic(base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0)
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": MESSAGES}
    events = list(client.messages.create(**ask, stream=True, extra_headers={"x-fake-output-words": "10"}))
    assert sum(e.type == "content_block_delta" for e in events) == 10  # the app's stream is whole
    assert attrs(spans.one())[sc.STREAM_END] == "completed"  # the span still ends
