"""The Groq adapter: the real ``groq`` SDK over real HTTP against the fake LLM's Groq endpoint."""

from __future__ import annotations

import gc
import json
from typing import Any

import groq
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import CONTENT_ATTRIBUTES, WEATHER_TOOL, assert_recorded, content, recording, replaying

__all__ = ["replaying"]  # the shared fixture, one instance per module

MODEL = "llama-3.3-70b-versatile"


def sync_client(fake: FakeLLM) -> groq.Groq:
    return groq.Groq(base_url=fake.url, api_key="test", max_retries=0)


def async_client(fake: FakeLLM) -> groq.AsyncGroq:
    return groq.AsyncGroq(base_url=fake.url, api_key="test", max_retries=0)


def ask(text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def expected_cost(prompt: int, completion: int) -> float | None:
    return pricing.cost_usd("groq", [MODEL], pricing.TokenUsage(input_tokens=prompt, output_tokens=completion))


def test_create_records_the_openai_mapping_under_the_groq_provider(fake_llm: FakeLLM, spans: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    completion = sync_client(fake_llm).chat.completions.create(
        model=MODEL,
        messages=messages,
        temperature=0.3,
        max_tokens=100,
        seed=3,  # type: ignore[arg-type]
    )

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[sc.PROVIDER_NAME] == "groq"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.3
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_SEED] == 3
    assert attrs[sc.RESPONSE_ID] == completion.id
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert completion.usage is not None
    assert attrs[sc.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(
        expected_cost(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    )
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": completion.choices[0].message.content}
    ]


async def test_async_create_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    completion = await async_client(fake_llm).chat.completions.create(**ask())

    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER_NAME] == "groq"
    assert attrs[sc.RESPONSE_ID] == completion.id


def test_stream_takes_usage_from_x_groq_on_the_final_chunk(fake_llm: FakeLLM, spans: Any) -> None:
    chunks = list(sync_client(fake_llm).chat.completions.create(**ask(), stream=True))

    final = chunks[-1].x_groq
    assert final is not None and final.usage is not None and chunks[-1].usage is None
    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert attrs[sc.USAGE_INPUT_TOKENS] == final.usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == final.usage.completion_tokens
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.COST_STATUS] == "priced"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


async def test_async_stream_with_include_usage_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await async_client(fake_llm).chat.completions.create(
        **ask(),
        stream=True,
        extra_body={"stream_options": {"include_usage": True}},  # not a named argument in groq
    )
    chunks = [chunk async for chunk in stream]

    attrs = spans.one().attributes
    assert chunks[-1].usage is not None
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert attrs[sc.STREAM_END] == "completed"


def test_a_streamed_tool_call_is_assembled_with_usage_from_x_groq(fake_llm: FakeLLM, spans: Any) -> None:
    chunks = list(sync_client(fake_llm).chat.completions.create(**ask("Weather?"), tools=[WEATHER_TOOL], stream=True))

    final = chunks[-1].x_groq
    attrs = spans.one().attributes
    assert final is not None and final.usage is not None
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == final.usage.completion_tokens
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"][0]["name"] == "get_weather"


def test_a_stream_closed_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = sync_client(fake_llm).chat.completions.create(**ask(), stream=True)
    for _chunk in stream:
        break
    stream.close()
    del stream
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "closed"
    assert sc.RESPONSE_FINISH_REASONS not in attrs


def test_tool_calls_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    completion = sync_client(fake_llm).chat.completions.create(**ask("Weather in Paris?"), tools=[WEATHER_TOOL])

    call = (completion.choices[0].message.tool_calls or [])[0]
    span = spans.one()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": json.loads(call.function.arguments)}
    ]


@pytest.mark.parametrize(
    ("status", "error"),
    [("429", groq.RateLimitError), ("500", groq.InternalServerError), ("400", groq.BadRequestError)],
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        sync_client(fake_llm).chat.completions.create(**ask(), extra_headers={"x-fake-status": status})

    assert type(caught.value) is error
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"groq.{error.__name__}"


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        client = sync_client(fake_llm)
        client.chat.completions.create(**ask(), tools=[WEATHER_TOOL])
        list(client.chat.completions.create(**ask(), stream=True))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_a_replayed_real_response_is_recorded_as_the_api_sent_it(replaying: FakeLLM, spans: Any) -> None:
    record = recording("groq_chat")
    sync_client(replaying).chat.completions.create(
        **record["request"]["json"], extra_headers={"x-fake-replay": "groq_chat"}
    )

    assert_recorded(spans.one(), record["expected"])


def test_instrument_does_not_import_groq_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = "groq" in sys.modules
        import groq
        client = groq.Groq(base_url={fake_llm.url!r}, api_key="t", max_retries=0)
        client.chat.completions.create(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        llmtrace.uninstrument()
        client.chat.completions.create(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        print(before, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"False ['chat {MODEL}']"


def test_with_raw_response_returns_the_raw_response_and_records_the_completion(fake_llm: FakeLLM, spans: Any) -> None:
    raw = sync_client(fake_llm).chat.completions.with_raw_response.create(**ask())
    completion = raw.parse()

    assert raw.http_response.status_code == 200
    assert spans.one().attributes[sc.RESPONSE_ID] == completion.id


def test_an_error_mid_stream_marks_the_span_and_reaches_the_app(fake_llm: FakeLLM, spans: Any) -> None:
    stream = sync_client(fake_llm).chat.completions.create(
        **ask(), stream=True, extra_headers={"x-fake-stream-error-after": "2"}
    )
    with pytest.raises(groq.APIError):
        for _chunk in stream:
            pass

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.STREAM_END] == "error"
