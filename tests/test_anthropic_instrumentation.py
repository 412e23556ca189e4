"""The Anthropic adapter: real ``anthropic`` clients over real HTTP against the fake LLM service."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import uuid
from typing import Any

import anthropic
import pydantic
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import RECORDED_DIR, FakeLLM
from llmtrace.instrumentation import _guard
from llmtrace.instrumentation import anthropic as adapter
from tests.provider_helpers import CONTENT_ATTRIBUTES, assert_recorded, content, recording

MODEL = "claude-sonnet-4-0"
SNAPSHOT = "claude-sonnet-4-20250514"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sync_client(fake: FakeLLM, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0, **options)


def async_client(fake: FakeLLM, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0, **options)


def ask(text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 200, "messages": [{"role": "user", "content": text}], **extra}


def assert_usage_matches(span: ReadableSpan, usage: Any) -> None:
    attrs = span.attributes
    cached = usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage.input_tokens + cached
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == usage.cache_read_input_tokens
    assert attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] == usage.cache_creation_input_tokens


def assert_ttft_within_span(span: ReadableSpan) -> None:
    ttft = span.attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK]
    assert isinstance(ttft, float)
    assert span.end_time is not None and span.start_time is not None
    assert 0 < ttft < (span.end_time - span.start_time) / 1e9


# --- create ------------------------------------------------------------------------------------


def test_create_records_request_parameters_response_and_usage(fake_llm: FakeLLM, spans: Any) -> None:
    message = sync_client(fake_llm).messages.create(
        **ask(),
        system="Answer briefly.",
        stop_sequences=["END"],
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},  # named arguments gone in anthropic 2.x
    )

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION_NAME] == "chat"
    assert attrs[sc.PROVIDER_NAME] == "anthropic"
    assert attrs[sc.REQUEST_MODEL] == MODEL
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_MAX_TOKENS] == 200
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40 and isinstance(attrs[sc.REQUEST_TOP_K], int)
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert sc.REQUEST_STREAM not in attrs
    assert attrs[sc.RESPONSE_ID] == message.id
    assert attrs[sc.RESPONSE_MODEL] == SNAPSHOT
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert_usage_matches(span, message.usage)


def test_create_records_system_input_and_output_content(fake_llm: FakeLLM, spans: Any) -> None:
    message = sync_client(fake_llm).messages.create(**ask("Hello there"), system="Answer briefly.")

    span = spans.one()
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Answer briefly."}]
    assert content(span, sc.INPUT_MESSAGES) == [{"role": "user", "parts": [{"type": "text", "content": "Hello there"}]}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": message.content[0].text}],
            "finish_reason": "end_turn",
        }
    ]


def test_system_given_as_blocks_becomes_one_part_per_block(fake_llm: FakeLLM, spans: Any) -> None:
    system = [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use French."}]
    sync_client(fake_llm).messages.create(**ask(), system=system)

    assert content(spans.one(), sc.SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are terse."},
        {"type": "text", "content": "Use French."},
    ]


def test_input_blocks_map_to_image_reasoning_tool_call_and_tool_response_parts(fake_llm: FakeLLM, spans: Any) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Weather where this cat lives?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather tool.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"}],
        },
    ]
    sync_client(fake_llm).messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[WEATHER_TOOL])

    assert content(spans.one(), sc.INPUT_MESSAGES) == [
        {
            "role": "user",
            "parts": [
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="},
                {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
                {"type": "text", "content": "Weather where this cat lives?"},
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Need the weather tool."},
                {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": "18C, sunny"}],
        },
    ]


async def test_async_create_records_the_same_attributes(fake_llm: FakeLLM, spans: Any) -> None:
    message = await async_client(fake_llm).messages.create(**ask(), extra_body={"temperature": 0.5})

    span = spans.one()
    assert span.name == f"chat {MODEL}"
    assert span.attributes[sc.REQUEST_TEMPERATURE] == 0.5
    assert span.attributes[sc.RESPONSE_ID] == message.id
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert_usage_matches(span, message.usage)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": message.content[0].text}]


def test_small_max_tokens_records_the_max_tokens_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    message = sync_client(fake_llm).messages.create(**{**ask(), "max_tokens": 3})

    assert message.stop_reason == "max_tokens"
    assert spans.one().attributes[sc.RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_beta_messages_create_is_traced_like_messages_create(fake_llm: FakeLLM, spans: Any) -> None:
    message = sync_client(fake_llm).beta.messages.create(**ask())

    span = spans.one()
    assert span.attributes[sc.RESPONSE_ID] == message.id
    assert_usage_matches(span, message.usage)


# --- tools and caching -------------------------------------------------------------------------


def test_tool_use_records_tool_definitions_and_the_tool_call(fake_llm: FakeLLM, spans: Any) -> None:
    message = sync_client(fake_llm).messages.create(**ask("Weather in Paris?"), tools=[WEATHER_TOOL])

    block = message.content[0]
    assert block.type == "tool_use"
    span = spans.one()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert content(span, sc.TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": WEATHER_TOOL["input_schema"],
        }
    ]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "finish_reason": "tool_use",
            "parts": [{"type": "tool_call", "id": block.id, "name": "get_weather", "arguments": block.input}],
        }
    ]


def test_streamed_tool_use_assembles_arguments_from_partial_json(fake_llm: FakeLLM, spans: Any) -> None:
    with sync_client(fake_llm).messages.stream(**ask("Weather in Paris?"), tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_message()

    block = final.content[0]
    parts = content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"]
    assert parts == [{"type": "tool_call", "id": block.id, "name": "get_weather", "arguments": block.input}]


def test_prompt_caching_counts_cache_writes_then_reads_in_input_tokens(fake_llm: FakeLLM, spans: Any) -> None:
    client = sync_client(fake_llm)
    system = [
        {
            "type": "text",
            "text": f"Long shared context {uuid.uuid4()} " * 40,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = client.messages.create(**ask(), system=system)
    second = client.messages.create(**ask(), system=system)

    write_span, read_span = spans.finished
    assert first.usage.cache_creation_input_tokens > 0 and second.usage.cache_read_input_tokens > 0
    assert_usage_matches(write_span, first.usage)
    assert_usage_matches(read_span, second.usage)
    assert read_span.attributes[sc.USAGE_INPUT_TOKENS] > second.usage.input_tokens


# --- stream=True -------------------------------------------------------------------------------


def test_sync_stream_records_ttft_and_output_tokens_from_message_delta(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(sync_client(fake_llm).messages.create(**ask(), stream=True))

    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    span = spans.one()
    attrs = span.attributes
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_ID] == start.message.id
    assert attrs[sc.RESPONSE_MODEL] == SNAPSHOT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens != start.message.usage.output_tokens
    assert attrs[sc.USAGE_INPUT_TOKENS] == start.message.usage.input_tokens
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.STREAM_END] == "completed"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]
    assert_ttft_within_span(span)


async def test_async_stream_records_ttft_and_output_tokens_from_message_delta(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await async_client(fake_llm).messages.create(**ask(), stream=True)
    events = [event async for event in stream]

    delta = next(e for e in events if e.type == "message_delta")
    span = spans.one()
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens
    assert span.attributes[sc.STREAM_END] == "completed"
    assert_ttft_within_span(span)


def test_breaking_out_of_a_stream_and_closing_it_ends_the_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = sync_client(fake_llm).messages.create(**ask(), stream=True, extra_headers={"x-fake-output-words": "40"})
    for event in stream:
        if event.type == "content_block_delta":
            break
    stream.close()
    stream.close()

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "closed"
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.RESPONSE_ID].startswith("msg_")


def test_an_abandoned_stream_ends_its_span_when_garbage_collected(fake_llm: FakeLLM, spans: Any) -> None:
    stream = sync_client(fake_llm).messages.create(**ask(), stream=True, extra_headers={"x-fake-output-words": "40"})
    next(iter(stream))
    assert spans.finished == []
    del stream
    gc.collect()

    assert spans.one().attributes[sc.STREAM_END] == "abandoned"


def test_an_error_event_midway_marks_the_span_error_and_reaches_the_app(fake_llm: FakeLLM, spans: Any) -> None:
    stream = sync_client(fake_llm).messages.create(
        **ask(), stream=True, extra_headers={"x-fake-stream-error-after": "2"}
    )
    received = []
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        for event in stream:
            received.append(event)
    stream.close()

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "anthropic.APIStatusError"
    assert span.attributes[sc.STREAM_END] == "error"
    text = "".join(e.delta.text for e in received if e.type == "content_block_delta")
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


def _message_start(message_id: str, usage: dict[str, int]) -> dict[str, Any]:
    """A raw stream's first event, as the API sends it."""
    message = {"id": message_id, "type": "message", "role": "assistant", "model": SNAPSHOT, "content": []}
    return {"type": "message_start", "message": {**message, "stop_reason": None, "stop_sequence": None, "usage": usage}}


def test_stream_events_fold_thinking_and_text_and_take_usage_repeated_in_message_delta() -> None:
    events = pydantic.TypeAdapter(list[anthropic.types.RawMessageStreamEvent]).validate_python(
        [
            _message_start("msg_1", {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}),
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 42, "input_tokens": 12, "cache_read_input_tokens": 5},
            },
            {"type": "message_stop"},
        ]
    )
    folded = adapter.MessageEvents()
    carried = [folded.add(event) for event in events]
    response = folded.result(adapter.Messages().parse_request(None, (), ask()))

    assert carried == [False, False, True, True, False, False, True, False, False]
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cache_read_tokens) == (17, 42, 5)
    assert response.output_messages == [
        {
            "role": "assistant",
            "finish_reason": "end_turn",
            "parts": [
                {"type": "reasoning", "content": "Let me think."},
                {"type": "text", "content": "Hi"},
            ],
        }
    ]


# The block interleaved with the text: a tool call in every supported SDK; thinking where the SDK has it
# (anthropic 0.40, the oldest supported, has no thinking blocks). (start, deltas, the part it folds into)
_INTERLEAVED: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = {
    "tool_use": (
        {"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {}},
        [{"type": "input_json_delta", "partial_json": '{"q": '}, {"type": "input_json_delta", "partial_json": '"x"}'}],
        {"type": "tool_call", "id": "tu_1", "name": "lookup", "arguments": {"q": "x"}},
    ),
}
if hasattr(anthropic.types, "ThinkingBlock"):
    _INTERLEAVED["thinking"] = (
        {"type": "thinking", "thinking": "T:", "signature": ""},
        [{"type": "thinking_delta", "thinking": "a"}, {"type": "thinking_delta", "thinking": "b"}],
        {"type": "reasoning", "content": "T:ab"},
    )


@pytest.mark.parametrize("other", sorted(_INTERLEAVED))
def test_the_inline_fold_of_a_whole_stream_matches_the_event_by_event_fold(other: str) -> None:
    """``follow`` keeps the last delta's block between events and text blocks as their text alone: interleaved
    blocks, a start carrying text, a delta before its block's start and a dict event must fold as ``add`` does."""
    start, (first, second), part = _INTERLEAVED[other]
    events: list[Any] = pydantic.TypeAdapter(list[anthropic.types.RawMessageStreamEvent]).validate_python(
        [
            _message_start("msg_2", {"input_tokens": 7, "output_tokens": 1}),
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Pre"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "fix "}},
            {"type": "content_block_start", "index": 1, "content_block": start},
            {"type": "content_block_delta", "index": 1, "delta": first},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "and "}},
            {"type": "content_block_delta", "index": 1, "delta": second},
            {"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "orphan"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "more"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
            {"type": "message_stop"},
        ]
    )
    events.insert(-2, {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "dict"}})
    one_by_one, inline = adapter.MessageEvents(), adapter.MessageEvents()
    for event in events:
        one_by_one.add(event)
    passed = list(inline.follow(events, inline.add))
    in_async = adapter.MessageEvents()

    async def passed_async() -> list[Any]:
        async def source() -> Any:
            for event in events:
                yield event

        return [event async for event in in_async.afollow(source(), in_async.add, lambda how, exc: None)]

    request = adapter.Messages().parse_request(None, (), ask())

    assert passed == events == asyncio.run(passed_async())
    expected = one_by_one.result(request)
    assert inline.result(request) == expected == in_async.result(request)
    assert expected.output_messages[0]["parts"] == [
        {"type": "text", "content": "Prefix and more"},
        part,
        {"type": "text", "content": "dict"},
        {"type": "text", "content": "orphan"},
    ]
    assert (expected.usage.input_tokens, expected.usage.output_tokens) == (7, 9)


# --- messages.stream() helper ------------------------------------------------------------------


def test_stream_helper_text_stream_and_final_message_are_unchanged_and_traced(fake_llm: FakeLLM, spans: Any) -> None:
    with sync_client(fake_llm).messages.stream(**ask()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert isinstance(stream, anthropic.MessageStream)
    assert final.content[0].text == text
    span = spans.one()
    assert span.attributes[sc.REQUEST_STREAM] is True
    assert span.attributes[sc.RESPONSE_ID] == final.id
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert span.attributes[sc.STREAM_END] == "completed"
    assert_usage_matches(span, final.usage)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]
    assert_ttft_within_span(span)


def test_stream_helper_until_done_ends_the_span_inside_the_with_block(fake_llm: FakeLLM, spans: Any) -> None:
    with sync_client(fake_llm).messages.stream(**ask()) as stream:
        stream.until_done()
        assert spans.one().attributes[sc.STREAM_END] == "completed"

    assert len(spans.finished) == 1


def test_leaving_the_stream_helper_block_early_ends_the_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    with sync_client(fake_llm).messages.stream(**ask(), extra_headers={"x-fake-output-words": "40"}) as stream:
        first = next(iter(stream.text_stream))

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "closed"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first}]


def test_stream_helper_that_fails_to_connect_records_the_error(fake_llm: FakeLLM, spans: Any) -> None:
    manager = sync_client(fake_llm).messages.stream(**ask(), extra_headers={"x-fake-status": "429"})
    with pytest.raises(anthropic.RateLimitError), manager:
        pass

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "anthropic.RateLimitError"


def test_stream_helper_that_is_never_entered_makes_no_request_and_no_span(fake_llm: FakeLLM, spans: Any) -> None:
    before = len(fake_llm.requests)
    sync_client(fake_llm).messages.stream(**ask())

    assert len(fake_llm.requests) == before
    assert spans.finished == []


async def test_async_stream_helper_text_stream_and_final_message_are_traced(fake_llm: FakeLLM, spans: Any) -> None:
    async with async_client(fake_llm).messages.stream(**ask()) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()

    assert isinstance(stream, anthropic.AsyncMessageStream)
    assert final.content[0].text == text
    span = spans.one()
    assert span.attributes[sc.RESPONSE_ID] == final.id
    assert span.attributes[sc.STREAM_END] == "completed"
    assert_usage_matches(span, final.usage)
    assert_ttft_within_span(span)


async def test_leaving_the_async_stream_helper_block_early_ends_the_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    async with async_client(fake_llm).messages.stream(**ask(), extra_headers={"x-fake-output-words": "40"}) as stream:
        async for _ in stream:
            break

    assert spans.one().attributes[sc.STREAM_END] == "closed"


# --- raw responses -----------------------------------------------------------------------------


def test_with_raw_response_returns_the_raw_response_and_records_the_message(fake_llm: FakeLLM, spans: Any) -> None:
    raw = sync_client(fake_llm).messages.with_raw_response.create(**ask())
    message = raw.parse()

    assert raw.http_response.status_code == 200
    assert isinstance(message, anthropic.types.Message)
    span = spans.one()
    assert span.attributes[sc.RESPONSE_ID] == message.id
    assert_usage_matches(span, message.usage)


async def test_async_with_raw_response_records_the_message(fake_llm: FakeLLM, spans: Any) -> None:
    raw = await async_client(fake_llm).messages.with_raw_response.create(**ask())
    parsed = raw.parse()  # a coroutine on anthropic >= 0.50, the message itself before
    message = await parsed if inspect.isawaitable(parsed) else parsed

    assert spans.one().attributes[sc.RESPONSE_ID] == message.id


# --- errors and the guard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("429", anthropic.RateLimitError),
        ("500", anthropic.InternalServerError),
        ("529", getattr(anthropic, "OverloadedError", anthropic.InternalServerError)),  # 529 class since 0.50
        ("400", anthropic.BadRequestError),
    ],
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        sync_client(fake_llm).messages.create(**ask(), extra_headers={"x-fake-status": status})

    assert type(caught.value) is error
    assert caught.value.status_code == int(status)  # type: ignore[attr-defined]
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"anthropic.{error.__name__}"
    assert sc.RESPONSE_ID not in span.attributes


def test_an_internal_error_leaves_the_app_result_intact_and_ends_the_span(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any, request: Any, result: Any) -> Any:
        raise RuntimeError("adapter bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(_guard, "_reported", set())
    monkeypatch.setattr(adapter.Messages, "parse_response", broken)
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        message = sync_client(fake_llm).messages.create(**ask())

    assert isinstance(message, anthropic.types.Message) and message.content[0].text.startswith("Echo:")
    span = spans.one()
    assert span.attributes[sc.REQUEST_MODEL] == MODEL
    assert sc.RESPONSE_ID not in span.attributes
    assert "your application is unaffected" in caplog.text


def test_an_internal_error_in_the_stream_accumulator_leaves_every_event_to_the_app(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, event: Any) -> bool:
        raise RuntimeError("adapter bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.MessageEvents, "add", broken)
    with sync_client(fake_llm).messages.stream(**ask()) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "end_turn"
    assert spans.one().attributes[sc.STREAM_END] == "completed"


# --- content capture, one span per call, uninstrument ------------------------------------------


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        client = sync_client(fake_llm)
        client.messages.create(**ask(), system="secret system", tools=[WEATHER_TOOL])
        with client.messages.stream(**ask(), system="secret system") as stream:
            stream.until_done()
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_anthropic_native_spans_are_suppressed_so_each_call_has_exactly_one_span(fake_llm: FakeLLM, spans: Any) -> None:
    client = sync_client(fake_llm, open_telemetry={"tracer_provider": spans.provider})
    client.messages.create(**ask())
    list(client.messages.create(**ask(), stream=True))
    with client.messages.stream(**ask()) as stream:
        stream.until_done()

    assert [(s.name, s.instrumentation_scope.name) for s in spans.finished] == [(f"chat {MODEL}", "llmtrace")] * 3


async def test_async_native_spans_are_suppressed_too(fake_llm: FakeLLM, spans: Any) -> None:
    client = async_client(fake_llm, open_telemetry={"tracer_provider": spans.provider})
    await client.messages.create(**ask())
    async with client.messages.stream(**ask()) as stream:
        await stream.until_done()

    assert [s.instrumentation_scope.name for s in spans.finished] == ["llmtrace", "llmtrace"]


def test_requests_carry_the_llmtrace_span_as_trace_context(fake_llm: FakeLLM, spans: Any) -> None:
    client = sync_client(fake_llm, open_telemetry={"tracer_provider": spans.provider})
    client.messages.create(**ask(), extra_headers={"x-test-id": "traceparent-check"})

    sent = next(r for r in fake_llm.requests if r["headers"].get("x-test-id") == "traceparent-check")
    context = spans.one().context
    assert sent["headers"]["traceparent"].split("-")[1:3] == [
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    ]


def test_after_uninstrument_the_sdk_spans_and_methods_are_back(fake_llm: FakeLLM, spans: Any) -> None:
    client = sync_client(fake_llm, open_telemetry={"tracer_provider": spans.provider})
    client.messages.create(**ask())
    llmtrace.uninstrument()
    client.messages.create(**ask())
    with client.messages.stream(**ask()) as stream:
        stream.until_done()

    scopes = [s.instrumentation_scope.name for s in spans.finished]
    assert scopes == ["llmtrace", "com.anthropic.sdk.python", "com.anthropic.sdk.python"]
    assert type(client.messages.stream(**ask())) is anthropic.lib.streaming.MessageStreamManager


# --- recorded real traffic ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["anthropic_message", "anthropic_stream"])
def test_replayed_real_responses_are_recorded_as_the_api_sent_them(fake_llm: FakeLLM, spans: Any, name: str) -> None:
    record = recording(name, RECORDED_DIR)
    result = sync_client(fake_llm).messages.create(**record["request"]["json"], extra_headers={"x-fake-replay": name})
    if record["request"]["json"].get("stream"):
        list(result)

    expected = record["expected"]
    assert_recorded(spans.one(), expected)
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == expected["cache_read_input_tokens"]
    assert attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] == expected["cache_creation_input_tokens"]
