"""The Mistral adapter: the real ``mistralai`` SDK over real HTTP against the fake LLM's Mistral endpoints."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.instrumentation import mistral as adapter
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import CONTENT_ATTRIBUTES, WEATHER_TOOL, assert_recorded, content, recording, replaying

__all__ = ["replaying"]  # the shared fixture, one instance per module

try:  # mistralai >= 2
    from mistralai.client import Mistral
    from mistralai.client.errors import SDKError

    SDK_TRACES = True
except ImportError:  # mistralai 1.x
    from mistralai import Mistral  # type: ignore[attr-defined,no-redef]
    from mistralai.models import SDKError  # type: ignore[no-redef]

    SDK_TRACES = False

MODEL = "mistral-small-latest"
HI = [{"role": "user", "content": "What is the capital of France?"}]


def client(fake: FakeLLM) -> Mistral:
    return Mistral(api_key="test", server_url=fake.mistral_url)


def failing_client(fake: FakeLLM, status: str) -> Mistral:
    """A client whose requests ask the fake for HTTP ``status`` (headers set on its HTTP client: every version)."""
    http_client = type(client(fake).sdk_configuration.client)  # httpx or httpx2, as this SDK uses
    headers = {"x-fake-status": status} if status else {}
    return Mistral(api_key="test", server_url=fake.mistral_url, client=http_client(headers=headers))


def test_complete_records_request_response_usage_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *HI]
    response = client(fake_llm).chat.complete(
        model=MODEL, messages=messages, temperature=0.2, top_p=0.9, max_tokens=100, random_seed=3, stop=["END"]
    )

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[sc.PROVIDER_NAME] == "mistral_ai"
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_SEED] == 3
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.RESPONSE_ID] == response.id
    assert attrs[sc.RESPONSE_MODEL] == MODEL
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    tokens = pricing.TokenUsage(input_tokens=response.usage.prompt_tokens or 0,
                                output_tokens=response.usage.completion_tokens or 0)  # fmt: skip
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(pricing.cost_usd("mistral_ai", [MODEL], tokens))
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


async def test_complete_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    response = await client(fake_llm).chat.complete_async(model=MODEL, messages=HI)

    attrs = spans.one().attributes
    assert attrs[sc.RESPONSE_ID] == response.id
    assert sc.REQUEST_STREAM not in attrs


def test_tool_calls_with_arguments_as_text_or_object_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).chat.complete(model=MODEL, messages=HI, tools=[WEATHER_TOOL])
    call = (response.choices[0].message.tool_calls or [])[0]
    asked = {"id": call.id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    history = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": [asked]},
        {"role": "tool", "content": "18C", "tool_call_id": call.id, "name": "get_weather"},
    ]
    client(fake_llm).chat.complete(model=MODEL, messages=history, tools=[WEATHER_TOOL])

    first, second = spans.finished
    assert first.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert content(first, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(first, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {
            "type": "tool_call",
            "id": call.id,
            "name": "get_weather",
            "arguments": json.loads(str(call.function.arguments)),
        }
    ]
    tool_call = {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "Paris"}}
    tool_response = {"type": "tool_call_response", "id": call.id, "response": "18C"}
    assert content(second, sc.INPUT_MESSAGES)[1:] == [
        {"role": "assistant", "parts": [tool_call]},
        {"role": "tool", "parts": [tool_response], "name": "get_weather"},
    ]


def test_thinking_chunks_become_reasoning_parts() -> None:
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Paris, surely."}]},
        {"type": "text", "text": "Paris."},
    ]
    assert adapter._content_parts(content) == [
        {"type": "reasoning", "content": "Paris, surely."},
        {"type": "text", "content": "Paris."},
    ]


def test_stream_records_ttft_text_and_usage_from_the_last_chunk(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(client(fake_llm).chat.stream(model=MODEL, messages=HI))

    span = spans.one()
    attrs = span.attributes
    usage = events[-1].data.usage
    assert usage is not None
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.COST_STATUS] == "priced"
    text = "".join(str(e.data.choices[0].delta.content or "") for e in events if e.data.choices)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


async def test_stream_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await client(fake_llm).chat.stream_async(model=MODEL, messages=HI)
    events = [event async for event in stream]

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == events[-1].data.usage.completion_tokens  # type: ignore[union-attr]


def test_a_stream_closed_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).chat.stream(model=MODEL, messages=HI)
    for _event in stream:
        break
    stream.close()  # an EventStream (mistralai >= 2) or a generator (1.x): both close
    del stream
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "closed"
    assert sc.USAGE_OUTPUT_TOKENS not in attrs  # usage comes with the last chunk only


def test_embeddings_record_tokens_dimensions_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).embeddings.create(model="mistral-embed", inputs=["first", "second"])

    attrs = spans.one().attributes
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.data[0].embedding or [])
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[sc.COST_STATUS] == "priced"


async def test_embeddings_create_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    await client(fake_llm).embeddings.create_async(model="mistral-embed", inputs="one")

    assert spans.one().attributes[sc.OPERATION_NAME] == "embeddings"


@pytest.mark.parametrize("status", ["429", "500", "400"])
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(fake_llm: FakeLLM, spans: Any, status: str) -> None:
    with pytest.raises(SDKError) as caught:
        failing_client(fake_llm, status).chat.complete(model=MODEL, messages=HI)

    assert caught.value.status_code == int(status)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    error_type = str(span.attributes[sc.ERROR_TYPE])  # mistralai.SDKError (1.x) or its module path (>= 2)
    assert error_type.startswith("mistralai.") and error_type.endswith(".SDKError")


@pytest.mark.skipif(not SDK_TRACES, reason="mistralai < 2 opens no spans of its own")
def test_the_sdks_own_genai_span_stands_aside_inside_ours(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mistralai opens its own GenAI span per request when opted in to the global provider: make ours global.
    monkeypatch.setenv("MISTRAL_SDK_TELEMETRY", "global")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", spans.provider)
    client(fake_llm).chat.complete(model=MODEL, messages=HI)
    list(client(fake_llm).chat.stream(model=MODEL, messages=HI))
    llmtrace.uninstrument()
    client(fake_llm).chat.complete(model=MODEL, messages=HI)  # the SDK's span is back once we are gone

    assert [s.instrumentation_scope.name for s in spans.finished] == ["llmtrace", "llmtrace", "mistralai_sdk_tracer"]


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        client(fake_llm).chat.complete(model=MODEL, messages=[{"role": "system", "content": "secret"}, *HI])
        list(client(fake_llm).chat.stream(model=MODEL, messages=HI, tools=[WEATHER_TOOL]))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_a_replayed_real_response_is_recorded_as_the_api_sent_it(replaying: FakeLLM, spans: Any) -> None:
    record = recording("mistral_chat")
    mistral = failing_client(replaying, "")  # headers on its HTTP client: mistralai 1.x takes none per call
    mistral.sdk_configuration.client.headers["x-fake-replay"] = "mistral_chat"
    sent = record["request"]["json"]
    mistral.chat.complete(model=sent["model"], messages=sent["messages"])

    assert_recorded(spans.one(), record["expected"])


def test_instrument_does_not_import_mistralai_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = sorted(m for m in sys.modules if m.startswith("mistralai"))
        try:
            from mistralai.client import Mistral
        except ImportError:
            from mistralai import Mistral
        client = Mistral(api_key="t", server_url={fake_llm.mistral_url!r})
        client.chat.complete(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        llmtrace.uninstrument()
        client.chat.complete(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        print(before, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[] ['chat {MODEL}']"
