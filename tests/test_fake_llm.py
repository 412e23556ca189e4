"""The fake LLM service, driven by the real openai and anthropic SDKs over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from llmtrace.demo.fake_llm import RECORDED_DIR, FakeLLM

ROOT = Path(__file__).resolve().parents[1]
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    },
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}},
]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", **CHAT_TOOLS[0]["function"], "strict": True}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": CHAT_TOOLS[0]["function"]["parameters"]}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def oai(fake: FakeLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aoai(fake: FakeLLM) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def ant(fake: FakeLLM) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aant(fake: FakeLLM) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def words(n: int) -> dict[str, str]:
    return {"x-fake-output-words": str(n)}


def post_raw(fake: FakeLLM, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(fake.url + path, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- OpenAI chat completions ---------------------------------------------------------------


def test_chat_completion_answers_with_dated_model_echo_text_and_usage(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o-mini", messages=user("Hello there friend"))
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.system_fingerprint and result.system_fingerprint.startswith("fp_")
    assert result.service_tier == "default"
    assert result.choices[0].message.content.startswith("Echo: Hello there friend")
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.completion_tokens == len(result.choices[0].message.content.split())
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert result.usage.completion_tokens_details.reasoning_tokens == 0


def test_same_prompt_gets_the_same_reply(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4o", messages=user("determinism please"))
    second = oai.chat.completions.create(model="gpt-4o", messages=user("determinism please"))
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_unknown_model_names_are_echoed_back(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="my-local-model", messages=user("hi"))
    assert result.model == "my-local-model"


def test_chat_stream_sends_one_chunk_per_word_and_no_usage_unless_asked(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=user("hi"), stream=True, extra_headers=words(7)))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 7
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)


def test_chat_stream_ends_with_a_usage_chunk_when_include_usage_is_set(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=user("hi"),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=words(5),
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_with_n_returns_that_many_choices(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o", messages=user("pick"), n=3, extra_headers=words(4))
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert result.usage is not None and result.usage.completion_tokens == 12


def test_chat_parse_fills_a_pydantic_model_from_the_schema(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.parse(model="gpt-4o", messages=user("who?"), response_format=Person)
    parsed = result.choices[0].message.parsed
    assert isinstance(parsed, Person)
    assert isinstance(parsed.age, int)


def test_chat_with_tools_calls_the_first_tool_with_schema_valid_arguments(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o", messages=user("weather?"), tools=CHAT_TOOLS)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}


def test_chat_after_a_tool_result_answers_with_text(oai: openai.OpenAI) -> None:
    messages = [
        *user("weather?"),
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    result = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=CHAT_TOOLS)
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.tool_calls is None


def test_chat_streamed_tool_call_arrives_as_incremental_argument_deltas(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model="gpt-4o", messages=user("weather?"), tools=CHAT_TOOLS, stream=True)
    chunks = [c for c in stream if c.choices]
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert first.id.startswith("call_") and first.function.name == "get_weather"
    pieces = [c.choices[0].delta.tool_calls[0].function.arguments for c in chunks[1:-1]]
    assert len(pieces) > 1
    assert set(json.loads("".join(pieces))) == {"city", "days"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_stream_helper_accumulates_the_tool_call(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(model="gpt-4o", messages=user("weather?"), tools=CHAT_TOOLS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_chat_small_max_tokens_truncates_with_finish_reason_length(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o", messages=user("long please"), max_completion_tokens=3)
    assert result.choices[0].finish_reason == "length"
    assert len(result.choices[0].message.content.split()) == 3
    assert result.usage is not None and result.usage.completion_tokens == 3


def test_reasoning_models_report_reasoning_tokens(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="o4-mini", messages=user("think"), extra_headers=words(10))
    assert result.model == "o4-mini-2025-04-16"
    assert result.usage is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 64
    assert result.usage.completion_tokens == 74


def test_repeated_long_prompt_reports_cached_tokens(oai: openai.OpenAI) -> None:
    long_prompt = f"{uuid.uuid4()} " + "lorem ipsum dolor sit amet " * 250
    first = oai.chat.completions.create(model="gpt-4o", messages=user(long_prompt))
    second = oai.chat.completions.create(model="gpt-4o", messages=user(long_prompt))
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens


async def test_async_chat_stream_works(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.chat.completions.create(
        model="gpt-4o", messages=user("async"), stream=True, extra_headers=words(3)
    )
    texts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == "Echo: async " + texts[2].strip()


# --- OpenAI Responses API ---------------------------------------------------------------------


def test_responses_create_returns_text_and_usage(oai: openai.OpenAI) -> None:
    result = oai.responses.create(model="gpt-4o-mini", input="Tell me things", extra_headers=words(6))
    assert result.id.startswith("resp_")
    assert result.status == "completed"
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.output_text.startswith("Echo: Tell me things")
    assert len(result.output_text.split()) == 6
    assert result.usage is not None and result.usage.output_tokens == 6
    assert result.usage.total_tokens == result.usage.input_tokens + 6


def test_responses_stream_emits_the_real_event_sequence(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4o", input="hi", stream=True, extra_headers=words(2)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.usage.output_tokens == 2


def test_responses_stream_helper_gives_the_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-5", input="hi", extra_headers=words(4)) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(deltas)
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 64


def test_responses_parse_fills_a_pydantic_model(oai: openai.OpenAI) -> None:
    result = oai.responses.parse(model="gpt-4o", input="who?", text_format=Person)
    assert isinstance(result.output_parsed, Person)


def test_responses_with_function_tools_returns_a_function_call_item(oai: openai.OpenAI) -> None:
    result = oai.responses.create(model="gpt-4o", input="weather?", tools=RESPONSES_TOOLS)
    call = result.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    assert set(json.loads(call.arguments)) == {"city", "days"}


def test_responses_after_function_output_answers_with_text(oai: openai.OpenAI) -> None:
    items = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    result = oai.responses.create(model="gpt-4o", input=items, tools=RESPONSES_TOOLS)
    assert result.output[0].type == "message"


def test_responses_small_max_output_tokens_is_incomplete(oai: openai.OpenAI) -> None:
    result = oai.responses.create(model="gpt-4o", input="long", max_output_tokens=2)
    assert result.status == "incomplete"
    assert result.incomplete_details is not None and result.incomplete_details.reason == "max_output_tokens"


# --- OpenAI legacy completions and embeddings --------------------------------------------------


def test_legacy_completion_streams_text_completion_chunks(oai: openai.OpenAI) -> None:
    chunks = list(oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say", stream=True, max_tokens=50))
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks).startswith("Echo: Say")
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_legacy_completion_defaults_to_sixteen_tokens(oai: openai.OpenAI) -> None:
    result = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say", extra_headers=words(30))
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 16


def test_embeddings_are_deterministic_unit_vectors_of_the_requested_dimension(oai: openai.OpenAI) -> None:
    first = oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=16)
    again = oai.embeddings.create(model="text-embedding-3-small", input="a", dimensions=16)
    vector = first.data[0].embedding
    assert len(vector) == 16 and len(first.data) == 2
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-3
    assert again.data[0].embedding == vector


def test_embeddings_honour_float_and_base64_encodings(fake: FakeLLM) -> None:
    as_float = json.loads(post_raw(fake, "/v1/embeddings", b'{"model":"m","input":"x","encoding_format":"float"}')[1])
    as_b64 = json.loads(post_raw(fake, "/v1/embeddings", b'{"model":"m","input":"x","encoding_format":"base64"}')[1])
    decoded = struct.unpack("<8f", base64.b64decode(as_b64["data"][0]["embedding"]))
    assert decoded == pytest.approx(as_float["data"][0]["embedding"], rel=1e-6)


# --- Anthropic messages -----------------------------------------------------------------------


def test_message_create_answers_with_text_and_usage(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="claude-sonnet-4-0", max_tokens=100, messages=user("Hi there"))
    assert message.id.startswith("msg_01")
    assert message.model == "claude-sonnet-4-20250514"
    assert message.content[0].text.startswith("Echo: Hi there")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(message.content[0].text.split())
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0


def test_message_stream_helper_gives_text_stream_and_final_message(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="claude-x", max_tokens=100, messages=user("Hi"), extra_headers=words(9)) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) == 9
    assert final.content[0].text == "".join(pieces)
    assert final.usage.output_tokens == 9


def test_message_stream_emits_the_real_event_sequence(ant: anthropic.Anthropic) -> None:
    stream = ant.messages.create(model="c", max_tokens=100, messages=user("Hi"), stream=True, extra_headers=words(2))
    events = list(stream)
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0].message.usage.output_tokens == 1
    assert events[5].delta.stop_reason == "end_turn" and events[5].usage.output_tokens == 2


def test_message_with_tools_answers_with_tool_use(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="c", max_tokens=100, messages=user("weather?"), tools=ANTHROPIC_TOOLS)
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_01")
    assert set(block.input) == {"city", "days"}


def test_message_streamed_tool_use_arrives_as_input_json_deltas(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="c", max_tokens=100, messages=user("weather?"), tools=ANTHROPIC_TOOLS) as s:
        kinds = {e.delta.type for e in s if e.type == "content_block_delta"}
        final = s.get_final_message()
    assert kinds == {"input_json_delta"}
    assert set(final.content[0].input) == {"city", "days"}


def test_message_after_tool_result_answers_with_text(ant: anthropic.Anthropic) -> None:
    messages = [
        *user("weather?"),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]
    message = ant.messages.create(model="c", max_tokens=100, messages=messages, tools=ANTHROPIC_TOOLS)
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"


def test_message_small_max_tokens_stops_with_max_tokens(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="c", max_tokens=3, messages=user("long"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_prompt_caching_writes_then_reads_the_marked_prefix(ant: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": f"{uuid.uuid4()} " + "rules " * 400, "cache_control": {"type": "ephemeral"}}]
    first = ant.messages.create(model="c", max_tokens=10, system=system, messages=user("one"))
    second = ant.messages.create(model="c", max_tokens=10, system=system, messages=user("one"))
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens < first.usage.cache_creation_input_tokens


async def test_async_message_stream_works(aant: anthropic.AsyncAnthropic) -> None:
    async with aant.messages.stream(model="c", max_tokens=50, messages=user("Hi"), extra_headers=words(4)) as s:
        pieces = [p async for p in s.text_stream]
        final = await s.get_final_message()
    assert len(pieces) == 4 and final.usage.output_tokens == 4


# --- Errors and controls ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_forced_status_raises_the_openai_sdk_error(oai: openai.OpenAI, status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        oai.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_headers={"x-fake-status": str(status)})
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert set(info.value.body) == {"message", "type", "param", "code"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_forced_status_raises_the_anthropic_sdk_error(
    ant: anthropic.Anthropic, status: int, error: type[Exception], kind: str
) -> None:
    with pytest.raises(error) as info:
        ant.messages.create(model="c", max_tokens=5, messages=user("hi"), extra_headers={"x-fake-status": str(status)})
    assert info.value.body["error"]["type"] == kind  # type: ignore[attr-defined]


def test_rate_limits_say_retry_at_once_so_sdk_retries_are_instant(fake: FakeLLM) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    before = len(fake.requests)
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_headers={"x-fake-status": "429"})
    assert len(fake.requests) - before == 3
    assert time.perf_counter() - started < 0.5


def test_openai_stream_error_after_n_chunks_raises_api_error(oai: openai.OpenAI) -> None:
    received: list[str] = []
    stream = oai.chat.completions.create(
        model="gpt-4o", messages=user("hi"), stream=True, extra_headers={"x-fake-stream-error-after": "3"}
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 3


def test_stream_error_after_more_chunks_than_the_reply_has_still_fails_the_stream(oai: openai.OpenAI) -> None:
    headers = {"x-fake-stream-error-after": "100", **words(3)}
    stream = oai.chat.completions.create(model="gpt-4o", messages=user("hi"), stream=True, extra_headers=headers)
    with pytest.raises(openai.APIError):
        list(stream)


def test_responses_stream_error_raises_api_error(oai: openai.OpenAI) -> None:
    headers = {"x-fake-stream-error-after": "1"}
    with (
        pytest.raises(openai.APIError),
        oai.responses.stream(model="gpt-4o", input="hi", extra_headers=headers) as s,
    ):
        for _ in s:
            pass


def test_anthropic_stream_error_after_n_chunks_raises_overloaded(ant: anthropic.Anthropic) -> None:
    received: list[str] = []
    headers = {"x-fake-stream-error-after": "2"}
    stream = ant.messages.stream(model="c", max_tokens=50, messages=user("hi"), extra_headers=headers)
    with pytest.raises(anthropic.APIStatusError) as info, stream as s:
        received.extend(s.text_stream)
    assert len(received) == 2
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_malformed_body_makes_the_openai_sdk_raise(oai: openai.OpenAI) -> None:
    with pytest.raises(ValueError):
        oai.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_headers={"x-fake-malformed": "1"})


def test_malformed_stream_makes_the_anthropic_sdk_raise(ant: anthropic.Anthropic) -> None:
    headers = {"x-fake-malformed": "1"}
    with pytest.raises(ValueError):
        list(ant.messages.create(model="c", max_tokens=5, messages=user("hi"), stream=True, extra_headers=headers))


def test_unknown_path_is_a_404_in_the_provider_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="no such endpoint"):
        oai.models.list()


def test_invalid_json_body_is_a_400(fake: FakeLLM) -> None:
    status, body = post_raw(fake, "/v1/messages", b"{not json", {"anthropic-version": "2023-06-01"})
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_bad_control_header_is_a_400_naming_the_header(fake: FakeLLM) -> None:
    status, body = post_raw(fake, "/v1/chat/completions", b"{}", {"x-fake-output-words": "many"})
    assert status == 400 and b"x-fake-output-words" in body


def test_latency_header_delays_the_reply(oai: openai.OpenAI) -> None:
    started = time.perf_counter()
    oai.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_headers={"x-fake-latency-ms": "150"})
    assert time.perf_counter() - started >= 0.15


def test_chunk_delay_header_paces_each_streamed_chunk(oai: openai.OpenAI) -> None:
    headers = {"x-fake-chunk-delay-ms": "30", **words(4)}
    started = time.perf_counter()
    list(oai.chat.completions.create(model="gpt-4o", messages=user("hi"), stream=True, extra_headers=headers))
    assert time.perf_counter() - started >= 0.12


def test_every_request_is_recorded_with_headers_and_json(fake: FakeLLM, oai: openai.OpenAI) -> None:
    marker = str(uuid.uuid4())
    oai.chat.completions.create(model="gpt-4o", messages=user(marker), extra_headers={"x-trace-me": "yes"})
    request = next(r for r in reversed(fake.requests) if r["json"] and marker in json.dumps(r["json"]))
    assert request["method"] == "POST" and request["path"] == "/v1/chat/completions"
    assert request["headers"]["x-trace-me"] == "yes"
    assert request["json"]["model"] == "gpt-4o"


# --- Recorded real traffic ------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return json.loads((RECORDED_DIR / f"{name}.json").read_text())


def _observe_openai_chat(oai: openai.OpenAI, ant: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    r = oai.chat.completions.create(model="gpt-5", messages=user("Say hello"), extra_headers=h)
    u = r.usage
    return {
        "response_model": r.model,
        "response_id": r.id,
        "input_tokens": u.prompt_tokens,
        "output_tokens": u.completion_tokens,
        "reasoning_tokens": u.completion_tokens_details.reasoning_tokens,
        "finish_reason": r.choices[0].finish_reason,
        "output_text": r.choices[0].message.content,
    }


def _observe_openai_chat_stream(oai: openai.OpenAI, ant: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    chunks = list(oai.chat.completions.create(model="gpt-4", messages=user("x"), stream=True, extra_headers=h))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    u = chunks[-1].usage
    return {
        "response_model": chunks[0].model,
        "response_id": chunks[0].id,
        "input_tokens": u.prompt_tokens,
        "output_tokens": u.completion_tokens,
        "finish_reason": chunks[-2].choices[0].finish_reason,
        "output_text": "".join(texts),
        "content_chunks": len(texts),
    }


def _observe_azure_openai_chat_stream(oai: openai.OpenAI, _: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=user("x"), stream=True, extra_headers=h))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    return {
        "response_model": chunks[-1].model,
        "response_id": chunks[-1].id,
        "finish_reason": chunks[-1].choices[0].finish_reason,
        "output_text": "".join(texts),
        "content_chunks": len(texts),
        "empty_id_chunks": sum(1 for c in chunks if c.id == ""),  # Azure's content-filter chunk comes first
    }


def _observe_openai_responses_stream(oai: openai.OpenAI, ant: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    with oai.responses.stream(model="gpt-4o-mini", input="x", extra_headers=h) as s:
        deltas = [e for e in s if e.type == "response.output_text.delta"]
        r = s.get_final_response()
    return {
        "response_model": r.model,
        "response_id": r.id,
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "finish_reason": r.status,
        "output_text": r.output_text,
        "content_chunks": len(deltas),
    }


def _observe_anthropic_message(oai: openai.OpenAI, ant: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    m = ant.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=user("x"), extra_headers=h)
    u = m.usage
    total_input = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
    return {
        "response_model": m.model,
        "response_id": m.id,
        "input_tokens": total_input,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "output_tokens": u.output_tokens,
        "finish_reason": m.stop_reason,
    }


def _observe_anthropic_stream(oai: openai.OpenAI, ant: anthropic.Anthropic, h: dict[str, str]) -> dict[str, Any]:
    with ant.messages.stream(
        model="claude-sonnet-4-20250514", max_tokens=100, messages=user("x"), extra_headers=h
    ) as s:
        text = "".join(s.text_stream)
        m = s.get_final_message()
    u = m.usage
    total_input = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
    return {
        "response_model": m.model,
        "response_id": m.id,
        "input_tokens": total_input,
        "output_tokens": u.output_tokens,
        "finish_reason": m.stop_reason,
        "output_text": text,
    }


OBSERVERS: dict[str, Callable[[openai.OpenAI, anthropic.Anthropic, dict[str, str]], dict[str, Any]]] = {
    "openai_chat": _observe_openai_chat,
    "openai_chat_stream": _observe_openai_chat_stream,
    "azure_openai_chat_stream": _observe_azure_openai_chat_stream,
    "openai_responses_stream": _observe_openai_responses_stream,
    "anthropic_message": _observe_anthropic_message,
    "anthropic_stream": _observe_anthropic_stream,
}


def test_every_recording_has_an_observer() -> None:
    assert {p.stem for p in RECORDED_DIR.glob("*.json")} == set(OBSERVERS)


@pytest.mark.parametrize("name", sorted(OBSERVERS))
def test_replayed_recording_reads_back_as_recorded_through_the_sdk(
    name: str, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    expected = _load(name)["expected"]
    observed = OBSERVERS[name](oai, ant, {"x-fake-replay": name})
    shared = [k for k in observed if k in expected]
    assert len(shared) >= 6
    assert {k: observed[k] for k in shared} == {k: expected[k] for k in shared}


@pytest.mark.parametrize("name", sorted(OBSERVERS))
def test_replay_serves_the_recorded_body_byte_for_byte(name: str, fake: FakeLLM) -> None:
    record = _load(name)
    status, body = post_raw(fake, record["request"]["path"], b"{}", {"x-fake-replay": name})
    assert status == record["status"]
    assert body.decode() == record["body"]


def test_replay_of_an_unknown_name_is_a_400_that_names_it(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="no recording 'nope'"):
        oai.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_headers={"x-fake-replay": "nope"})


# --- Lifecycle ----------------------------------------------------------------------------------


def test_binding_a_taken_port_says_which_port(fake: FakeLLM) -> None:
    port = int(fake.url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        FakeLLM(port=port).start()


def test_url_before_start_explains_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = FakeLLM().url


def test_module_main_serves_until_interrupted() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "llmtrace.demo.fake_llm", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "fake LLM did not come up"
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
