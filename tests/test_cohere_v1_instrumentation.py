"""Cohere's v1 ``Client``: ``chat_stream`` and ``embed`` through the real SDK, and real recorded streams replayed."""

from __future__ import annotations

import gc
from typing import Any

import cohere
import pytest
from opentelemetry.trace import StatusCode

from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from tests.provider_helpers import assert_recorded, content, fake_headers, recording, replaying

__all__ = ["replaying"]  # the shared fixture, one instance per module

MODEL = "command-r-08-2024"
EMBED_MODEL = "embed-english-v3.0"


def client(fake: FakeLLM) -> cohere.Client:
    return cohere.Client(api_key="test", base_url=fake.url)


def aclient(fake: FakeLLM) -> cohere.AsyncClient:
    return cohere.AsyncClient(api_key="test", base_url=fake.url)


def options(**values: str) -> dict[str, Any]:
    """Per-request ``x-fake-*`` headers, as the SDK takes them, and no retries."""
    return {"additional_headers": fake_headers(**values), "max_retries": 0}


def test_chat_stream_records_ttft_text_finish_reason_and_billed_usage(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(client(fake_llm).chat_stream(model=MODEL, message="Weather?", preamble="Be brief.", max_tokens=50))

    span = spans.one()
    attrs = span.attributes
    final = events[-1].response  # type: ignore[union-attr]
    billed = final.meta.billed_units
    assert span.name == f"chat {MODEL}"
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.RESPONSE_ID] == final.response_id
    assert attrs[sc.USAGE_INPUT_TOKENS] == int(billed.input_tokens)
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(billed.output_tokens)
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    assert attrs[sc.COST_USD] == pytest.approx(
        pricing.cost_usd("cohere", [MODEL], pricing.TokenUsage(int(billed.input_tokens), int(billed.output_tokens)))
    )
    text = "".join(e.text for e in events if e.event_type == "text-generation")  # type: ignore[union-attr]
    assert text == final.text
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


def test_a_streamed_tool_call_is_recorded_from_stream_end(fake_llm: FakeLLM, spans: Any) -> None:
    tool = {"name": "get_weather", "description": "Weather", "parameter_definitions": {"city": {"type": "str"}}}
    events = list(client(fake_llm).chat_stream(model=MODEL, message="Weather in Paris?", tools=[tool]))  # type: ignore[list-item]

    calls = next(e.tool_calls for e in events if e.event_type == "tool-calls-generation")  # type: ignore[union-attr]
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": None, "name": "get_weather", "arguments": calls[0].parameters}
    ]


async def test_chat_stream_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    events = [e async for e in aclient(fake_llm).chat_stream(model=MODEL, message="Hi")]

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(events[-1].response.meta.billed_units.output_tokens)  # type: ignore[union-attr]


def test_a_stream_left_early_ends_its_span_once_with_the_text_so_far(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).chat_stream(model=MODEL, message="Tell me a long story", request_options=options())
    first = ""
    for event in stream:
        if event.event_type == "text-generation":
            first = event.text  # type: ignore[union-attr]
            break
    del stream
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "abandoned"
    assert sc.USAGE_OUTPUT_TOKENS not in attrs  # usage comes with stream-end only
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first}]


@pytest.mark.parametrize(
    ("status", "error"), [("429", cohere.TooManyRequestsError), ("500", cohere.InternalServerError)]
)
def test_an_error_opening_a_stream_reaches_the_app_and_marks_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        list(client(fake_llm).chat_stream(model=MODEL, message="Hi", request_options=options(status=status)))

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"cohere.{error.__name__}"


def test_embed_records_billed_tokens_dimensions_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).embed(model=EMBED_MODEL, texts=["first", "second"], input_type="search_document")

    attrs = spans.one().attributes
    tokens = int(response.meta.billed_units.input_tokens)  # type: ignore[union-attr,arg-type]
    assert response.response_type == "embeddings_floats"  # v1's plain list of vectors
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.REQUEST_MODEL] == EMBED_MODEL
    assert attrs[sc.RESPONSE_ID] == response.id
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.embeddings[0]) == 1024  # type: ignore[arg-type]
    assert attrs[sc.USAGE_INPUT_TOKENS] == tokens > 0
    assert attrs[sc.COST_USD] == pytest.approx(tokens * 0.1 / 1e6)  # $0.10 per million (the price supplement)


def test_a_batched_embed_is_one_span_in_the_app_s_trace_with_every_batch_s_tokens(
    fake_llm: FakeLLM, spans: Any
) -> None:
    """The SDK sends 96 texts per request from a thread pool; the call is one span, under the app's span."""
    texts = [f"text number {i}" for i in range(200)]  # three requests
    before = len(fake_llm.requests)
    with spans.provider.get_tracer("app").start_as_current_span("app") as parent:
        response = client(fake_llm).embed(model=EMBED_MODEL, texts=texts, input_type="search_document")

    embeds = [s for s in spans.finished if s.name == f"embeddings {EMBED_MODEL}"]
    assert len(embeds) == 1 and [r["path"] for r in fake_llm.requests[before:]] == ["/v1/embed"] * 3
    assert embeds[0].parent is not None and embeds[0].parent.span_id == parent.get_span_context().span_id
    assert embeds[0].attributes[sc.USAGE_INPUT_TOKENS] == int(response.meta.billed_units.input_tokens) > 200  # type: ignore[union-attr,arg-type]


async def test_embed_async_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    response = await aclient(fake_llm).embed(model=EMBED_MODEL, texts=["one"], embedding_types=["float"])

    attrs = spans.one().attributes
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.embeddings.float_[0])  # type: ignore[union-attr,index]


def test_a_replayed_real_v2_stream_is_recorded_as_the_api_sent_it(replaying: FakeLLM, spans: Any) -> None:
    record = recording("cohere_stream")
    sent = record["request"]["json"]
    v2 = cohere.ClientV2(api_key="test", base_url=replaying.url)
    replay = options(replay="cohere_stream")
    list(v2.chat_stream(model=sent["model"], messages=sent["messages"], request_options=replay))  # type: ignore[arg-type]

    assert_recorded(spans.one(), record["expected"])
    assert spans.one().attributes[sc.STREAM_END] == "completed"


def test_a_replayed_real_v1_stream_is_recorded_as_the_api_sent_it(replaying: FakeLLM, spans: Any) -> None:
    record = recording("cohere_v1_stream")
    sent = record["request"]["json"]
    replay = options(replay="cohere_v1_stream")
    list(client(replaying).chat_stream(model=sent["model"], message=sent["message"], request_options=replay))  # type: ignore[arg-type]

    assert_recorded(spans.one(), record["expected"])
    assert spans.one().attributes[sc.STREAM_END] == "completed"
