"""The Cohere adapter: the real ``cohere`` SDK over real HTTP against the fake LLM's Cohere endpoints."""

from __future__ import annotations

import gc
import json
from typing import Any

import cohere
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.demo.fake_llm_cohere import TEMPLATE_TOKENS
from llmtrace.instrumentation import cohere as adapter
from llmtrace.instrumentation._sdk import get
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import (
    CONTENT_ATTRIBUTES,
    WEATHER_TOOL,
    assert_recorded,
    content,
    fake_headers,
    recording,
    replaying,
)

__all__ = ["replaying"]  # the shared fixture, one instance per module

MODEL = "command-a-03-2025"
HI = [{"role": "user", "content": "What is the capital of France?"}]


def client(fake: FakeLLM) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="test", base_url=fake.url)


def aclient(fake: FakeLLM) -> cohere.AsyncClientV2:
    return cohere.AsyncClientV2(api_key="test", base_url=fake.url)


def headers(**values: str) -> dict[str, Any]:
    """Per-request ``x-fake-*`` headers, as the SDK takes them."""
    return {"additional_headers": fake_headers(**values)}


def cost(input_tokens: int, output_tokens: int, model: str = MODEL) -> float | None:
    return pricing.cost_usd("cohere", [model], pricing.TokenUsage(input_tokens, output_tokens))


def test_chat_records_request_response_billed_usage_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *HI]
    response = client(fake_llm).chat(
        model=MODEL, messages=messages, temperature=0.2, p=0.9, k=40, max_tokens=100, seed=3, stop_sequences=["END"]
    )

    span = spans.one()
    attrs = span.attributes
    billed = response.usage.billed_units  # type: ignore[union-attr]
    assert billed is not None and billed.input_tokens and billed.output_tokens
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[sc.PROVIDER_NAME] == "cohere"
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_SEED] == 3
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.RESPONSE_ID] == response.id
    assert sc.RESPONSE_MODEL not in attrs  # Cohere's reply names no model
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)  # COMPLETE
    # billed units, not the raw counts that include Cohere's prompt template
    assert attrs[sc.USAGE_INPUT_TOKENS] == int(billed.input_tokens)
    assert response.usage.tokens.input_tokens == billed.input_tokens + TEMPLATE_TOKENS  # type: ignore[union-attr]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(billed.output_tokens)
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(cost(int(billed.input_tokens), int(billed.output_tokens)))
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": HI[0]["content"]}]}
    ]
    text = response.message.content[0].text  # type: ignore[index,union-attr]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


def test_max_tokens_finish_reason_is_length(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).chat(model=MODEL, messages=HI, max_tokens=3)

    assert response.finish_reason == "MAX_TOKENS"
    assert spans.one().attributes[sc.RESPONSE_FINISH_REASONS] == ("length",)


async def test_chat_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    response = await aclient(fake_llm).chat(model=MODEL, messages=HI)

    attrs = spans.one().attributes
    assert attrs[sc.RESPONSE_ID] == response.id
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(response.usage.billed_units.output_tokens)  # type: ignore[union-attr,arg-type]
    assert sc.REQUEST_STREAM not in attrs


def test_tool_calls_and_tool_results_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    first = client(fake_llm).chat(model=MODEL, messages=HI, tools=[WEATHER_TOOL])
    call = (first.message.tool_calls or [])[0]
    history = [
        *HI,
        {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": [call.dict()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    client(fake_llm).chat(model=MODEL, messages=history, tools=[WEATHER_TOOL])

    asked, answered = spans.finished
    assert asked.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert content(asked, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(asked, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "reasoning", "content": first.message.tool_plan},
        {
            "type": "tool_call",
            "id": call.id,
            "name": "get_weather",
            "arguments": json.loads(str(call.function.arguments)),
        },  # type: ignore[union-attr]
    ]
    assert content(answered, sc.INPUT_MESSAGES)[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call.id, "response": "18C"}],
    }
    assert answered.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop",)


def test_stream_records_ttft_text_finish_reason_and_usage_from_message_end(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(client(fake_llm).chat_stream(model=MODEL, messages=HI))

    span = spans.one()
    attrs = span.attributes
    end = events[-1]
    assert end.type == "message-end"
    billed = end.delta.usage.billed_units  # type: ignore[union-attr]
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.RESPONSE_ID] == events[0].id  # type: ignore[union-attr]
    assert attrs[sc.USAGE_INPUT_TOKENS] == int(billed.input_tokens)  # type: ignore[union-attr,arg-type]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(billed.output_tokens)  # type: ignore[union-attr,arg-type]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.COST_STATUS] == "priced"
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")  # type: ignore[union-attr]
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


def test_a_streamed_tool_call_is_assembled_from_its_deltas(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(client(fake_llm).chat_stream(model=MODEL, messages=HI, tools=[WEATHER_TOOL]))

    def delta(event: Any, *path: str) -> Any:  # cohere 5.11 leaves some deltas as dicts
        for name in path:
            event = get(event, name)
        return event

    call = next(delta(e, "delta", "message", "tool_calls") for e in events if e.type == "tool-call-start")
    pieces = [delta(e, "delta", "message", "tool_calls", "function", "arguments") for e in events]
    arguments = "".join(p for p, e in zip(pieces, events, strict=True) if e.type == "tool-call-delta")
    plan = "".join(delta(e, "delta", "message", "tool_plan") for e in events if e.type == "tool-plan-delta")
    span = spans.one()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "reasoning", "content": plan},
        {"type": "tool_call", "id": get(call, "id"), "name": "get_weather", "arguments": json.loads(arguments)},
    ]


async def test_stream_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    events = [event async for event in aclient(fake_llm).chat_stream(model=MODEL, messages=HI)]

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(events[-1].delta.usage.billed_units.output_tokens)  # type: ignore[union-attr,arg-type]


def test_a_stream_left_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).chat_stream(model=MODEL, messages=HI)
    for event in stream:
        if event.type == "content-delta":
            break
    del stream  # not close(): cohere 5.11's own generator swallows GeneratorExit, so its close() raises
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "abandoned"
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    assert sc.USAGE_OUTPUT_TOKENS not in attrs  # usage comes with message-end only


def test_a_stream_that_fails_mid_way_records_cohere_s_error_finish(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(
        client(fake_llm).chat_stream(model=MODEL, messages=HI, request_options=headers(stream_error_after="2"))
    )

    assert events[-1].delta.finish_reason == "ERROR"  # type: ignore[union-attr]
    attrs = spans.one().attributes
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("error",)
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"].count(" ") == 1  # two words streamed


def test_embed_records_billed_tokens_dimensions_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).embed(
        model="embed-v4.0", texts=["first", "second"], input_type="search_document", embedding_types=["float"]
    )

    attrs = spans.one().attributes
    tokens = int(response.meta.billed_units.input_tokens)  # type: ignore[union-attr,arg-type]
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.RESPONSE_ID] == response.id
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.embeddings.float_[0])  # type: ignore[index,union-attr]
    assert attrs[sc.REQUEST_ENCODING_FORMATS] == ("float",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == tokens
    assert attrs[sc.COST_USD] == pytest.approx(cost(tokens, 0, "embed-v4.0"))


async def test_embed_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    response = await aclient(fake_llm).embed(
        model="embed-v4.0", texts=["one"], input_type="search_query", embedding_types=["float"]
    )

    attrs = spans.one().attributes
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.embeddings.float_[0])  # type: ignore[index,union-attr]


def test_v1_chat_records_preamble_history_usage_and_tool_calls(fake_llm: FakeLLM, spans: Any) -> None:
    v1 = cohere.Client(api_key="test", base_url=fake_llm.url)
    history = [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello!"}]
    reply = v1.chat(model="command-r-08-2024", message="Weather?", preamble="Be brief.", chat_history=history)  # type: ignore[arg-type]
    tool = {"name": "get_weather", "description": "Weather", "parameter_definitions": {"city": {"type": "str"}}}
    called = v1.chat(model="command-r-08-2024", message="Weather in Paris?", tools=[tool])  # type: ignore[list-item]

    first, second = spans.finished
    assert first.attributes[sc.RESPONSE_ID] == reply.response_id
    assert first.attributes[sc.USAGE_OUTPUT_TOKENS] == int(reply.meta.billed_units.output_tokens)  # type: ignore[union-attr,arg-type]
    assert first.attributes[sc.COST_STATUS] == "priced"
    assert content(first, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert [m["role"] for m in content(first, sc.INPUT_MESSAGES)] == ["user", "assistant", "user"]
    assert content(first, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": reply.text}]
    call = (called.tool_calls or [])[0]
    assert content(second, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": None, "name": "get_weather", "arguments": call.parameters}
    ]


def test_the_v2_client_of_a_v1_client_is_traced_once(fake_llm: FakeLLM, spans: Any) -> None:
    cohere.Client(api_key="test", base_url=fake_llm.url).v2.chat(model=MODEL, messages=HI)

    assert spans.one().name == f"chat {MODEL}"


@pytest.mark.parametrize(
    ("status", "error"),
    [("429", cohere.TooManyRequestsError), ("500", cohere.InternalServerError), ("400", cohere.BadRequestError)],
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        client(fake_llm).chat(model=MODEL, messages=HI, request_options={**headers(status=status), "max_retries": 0})

    assert caught.value.status_code == int(status)  # type: ignore[attr-defined]
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"cohere.{error.__name__}"


def test_an_error_opening_a_stream_is_raised_while_iterating_and_marks_the_span(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).chat_stream(
        model=MODEL, messages=HI, request_options={**headers(status="429"), "max_retries": 0}
    )
    with pytest.raises(cohere.TooManyRequestsError):
        list(stream)

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "error"
    assert attrs[sc.ERROR_TYPE] == "cohere.TooManyRequestsError"


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        client(fake_llm).chat(model=MODEL, messages=[{"role": "system", "content": "secret"}, *HI])
        list(client(fake_llm).chat_stream(model=MODEL, messages=HI, tools=[WEATHER_TOOL]))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


@pytest.mark.parametrize("name", ["cohere_chat", "cohere_tool_call"])
def test_a_replayed_real_response_is_recorded_as_the_api_sent_it(replaying: FakeLLM, spans: Any, name: str) -> None:
    record = recording(name)
    sent = record["request"]["json"]
    kwargs = {k: sent[k] for k in ("model", "messages", "tools") if k in sent}
    client(replaying).chat(**kwargs, request_options=headers(replay=name))

    expected = record["expected"]
    span = spans.one()
    assert_recorded(span, expected)
    assert sc.USAGE_CACHE_READ_INPUT_TOKENS not in span.attributes  # cached_tokens counts raw, not billed, tokens
    if "tool_call" in expected:
        assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"][-1] == {"type": "tool_call", **expected["tool_call"]}


def test_raw_token_counts_are_used_when_nothing_is_billed() -> None:
    usage = {"tokens": {"input_tokens": 496.0, "output_tokens": 11.0}, "cached_tokens": 256}
    counted = adapter.usage_of(usage)
    assert (counted.input_tokens, counted.output_tokens, counted.cache_read_tokens) == (496, 11, 256)


def test_instrument_does_not_import_cohere_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = sorted(m for m in sys.modules if m.startswith("cohere"))
        import cohere
        client = cohere.ClientV2(api_key="t", base_url={fake_llm.url!r})
        client.chat(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        llmtrace.uninstrument()
        client.chat(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        print(before, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"[] ['chat {MODEL}']"  # cohere 5.x imports sagemaker, which logs
