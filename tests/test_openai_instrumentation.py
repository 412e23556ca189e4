"""The real openai SDK over real HTTP against the fake LLM service, spans asserted attribute by attribute."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from tests.conftest import SpanRecorder

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is ClickHouse?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def client(fake_llm: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def aclient(fake_llm: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


def chat_helpers(client: openai.OpenAI) -> Any:
    """``parse``/``stream`` live on ``chat.completions`` in new SDKs and on ``beta.chat.completions`` before 1.92."""
    return client.chat.completions if hasattr(client.chat.completions, "parse") else client.beta.chat.completions


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_chat_completion_span_has_request_response_usage_and_cost(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=200,
        top_p=0.9,
        seed=7,
        stop=["END"],
    )
    span = spans.one()
    a = attrs(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    assert a[sc.OPERATION_NAME] == "chat"
    assert a[sc.PROVIDER_NAME] == "openai"
    assert a[sc.REQUEST_MODEL] == "gpt-4o-mini"
    assert a[sc.REQUEST_TEMPERATURE] == 0.2
    assert a[sc.REQUEST_MAX_TOKENS] == 200
    assert a[sc.REQUEST_TOP_P] == 0.9
    assert a[sc.REQUEST_SEED] == 7
    assert a[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(a[sc.SERVER_PORT], int)
    assert a[sc.OPENAI_API_TYPE] == "chat_completions"
    assert a[sc.RESPONSE_ID] == result.id
    assert a[sc.RESPONSE_MODEL] == result.model
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert result.usage is not None
    assert a[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert a[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert a[sc.COST_STATUS] == "priced"
    expected = (result.usage.prompt_tokens * 0.15 + result.usage.completion_tokens * 0.6) / 1e6
    assert a[sc.COST_USD] == pytest.approx(expected)
    assert sc.REQUEST_STREAM not in a


def test_chat_content_is_captured_as_semconv_json(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(spans.one())
    assert json.loads(a[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(a[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is ClickHouse?"}]}
    ]
    output = json.loads(a[sc.OUTPUT_MESSAGES])
    assert output == [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [{"type": "text", "content": result.choices[0].message.content}],
        }
    ]


def test_tool_calls_are_recorded_in_definitions_and_output(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    a = attrs(spans.one())
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    definitions = json.loads(a[sc.TOOL_DEFINITIONS])
    assert definitions[0]["name"] == "get_weather"
    assert definitions[0]["parameters"]["required"] == ["city"]
    call = result.choices[0].message.tool_calls[0]
    part = json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]
    assert part == {
        "type": "tool_call",
        "id": call.id,
        "name": "get_weather",
        "arguments": json.loads(call.function.arguments),
    }


def test_tool_result_message_becomes_tool_call_response_part(client: openai.OpenAI, spans: SpanRecorder) -> None:
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=history, tools=TOOLS)
    messages = json.loads(attrs(spans.one())[sc.INPUT_MESSAGES])
    assert messages[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    assert messages[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}],
    }


def test_stream_with_usage_records_exact_tokens_and_time_to_first_chunk(
    client: openai.OpenAI, spans: SpanRecorder
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-output-words": "50"},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    span = spans.one()
    a = attrs(span)
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.USAGE_OUTPUT_TOKENS] == usage.completion_tokens == 50
    assert a[sc.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert sc.USAGE_ESTIMATED not in a
    assert a[sc.COST_STATUS] == "priced"
    duration = (span.end_time - span.start_time) / 1e9
    assert 0 < a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] <= duration
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert a[sc.STREAM_END] == "completed"


def test_stream_without_usage_gets_estimated_tokens_and_unchanged_chunks(
    client: openai.OpenAI, spans: SpanRecorder, fake_llm: Any
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "30"}
    )
    chunks = list(stream)
    a = attrs(spans.one())
    assert all(c.usage is None for c in chunks)
    assert "stream_options" not in fake_llm.requests[-1]["json"]  # the request was not altered
    assert a[sc.USAGE_OUTPUT_TOKENS] == 30
    assert a[sc.USAGE_INPUT_TOKENS] > 0
    assert a[sc.USAGE_ESTIMATED] is True
    assert a[sc.COST_STATUS] == "estimated"


def test_streamed_tool_call_is_reassembled(client: openai.OpenAI, spans: SpanRecorder) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True))
    a = attrs(spans.one())
    assert chunks
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    part = json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][-1]
    assert part["type"] == "tool_call" and part["name"] == "get_weather"
    assert isinstance(part["arguments"], dict)


async def test_async_chat_and_async_stream(aclient: openai.AsyncOpenAI, spans: SpanRecorder) -> None:
    result = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-output-words": "5"},
    )
    async for _ in stream:
        pass
    first, second = spans.finished
    assert attrs(first)[sc.RESPONSE_ID] == result.id
    assert attrs(second)[sc.USAGE_OUTPUT_TOKENS] == 5
    assert attrs(second)[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_with_raw_response_still_parses(client: openai.OpenAI, spans: SpanRecorder) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers.get("content-type", "").startswith("application/json")
    completion = raw.parse()
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert raw.parse() is completion
    assert attrs(spans.one())[sc.RESPONSE_ID] == completion.id


def test_with_streaming_response_records_parsed_result(client: openai.OpenAI, spans: SpanRecorder) -> None:
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        completion = response.parse()
    assert attrs(spans.one())[sc.RESPONSE_ID] == completion.id


def test_raw_response_stream_is_observed(client: openai.OpenAI, spans: SpanRecorder) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-output-words": "4"},
    )
    chunks = list(raw.parse())
    assert chunks
    assert attrs(spans.one())[sc.USAGE_OUTPUT_TOKENS] == 4


class Answer(BaseModel):
    title: str
    score: int


def test_chat_parse_returns_parsed_model_and_one_span(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = chat_helpers(client).parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    assert isinstance(result.choices[0].message.parsed, Answer)
    a = attrs(spans.one())
    assert a[sc.OUTPUT_TYPE] == "json"
    assert a[sc.RESPONSE_ID] == result.id


def test_chat_stream_helper_yields_events_and_one_span(client: openai.OpenAI, spans: SpanRecorder) -> None:
    with chat_helpers(client).stream(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-output-words": "6"}
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "content.delta" in kinds
    a = attrs(spans.one())
    assert a[sc.RESPONSE_ID] == final.id
    assert a[sc.USAGE_OUTPUT_TOKENS] == 6


def test_responses_create_records_usage_and_instructions(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = client.responses.create(model="gpt-4o-mini", input="Hello", instructions="Be kind.", max_output_tokens=300)
    a = attrs(spans.one())
    assert a[sc.OPENAI_API_TYPE] == "responses"
    assert a[sc.RESPONSE_ID] == result.id
    assert a[sc.REQUEST_MAX_TOKENS] == 300
    assert a[sc.USAGE_INPUT_TOKENS] == result.usage.input_tokens
    assert a[sc.USAGE_OUTPUT_TOKENS] == result.usage.output_tokens
    assert json.loads(a[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be kind."}]
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == result.output_text


def test_responses_stream_and_stream_helper(client: openai.OpenAI, spans: SpanRecorder) -> None:
    events = list(client.responses.create(model="gpt-4o-mini", input="Hello", stream=True))
    with client.responses.stream(model="gpt-4o-mini", input="Hello") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    first, second = spans.finished
    completed = next(e for e in events if e.type == "response.completed").response
    assert attrs(first)[sc.RESPONSE_ID] == completed.id
    assert attrs(first)[sc.USAGE_OUTPUT_TOKENS] == completed.usage.output_tokens
    assert attrs(first)[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs(second)[sc.RESPONSE_ID] == final.id


def test_responses_parse_returns_parsed_output(client: openai.OpenAI, spans: SpanRecorder) -> None:
    result = client.responses.parse(model="gpt-4o-mini", input="Hello", text_format=Answer)
    assert isinstance(result.output_parsed, Answer)
    assert attrs(spans.one())[sc.RESPONSE_ID] == result.id


def test_legacy_completions_and_embeddings(client: openai.OpenAI, spans: SpanRecorder) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=50)
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=16)
    text_span, embed_span = spans.finished
    assert text_span.name == "text_completion gpt-3.5-turbo-instruct"
    assert attrs(text_span)[sc.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
    assert embed_span.name == "embeddings text-embedding-3-small"
    assert attrs(embed_span)[sc.EMBEDDINGS_DIMENSION_COUNT] == len(embedding.data[0].embedding) == 16
    assert attrs(embed_span)[sc.USAGE_INPUT_TOKENS] == embedding.usage.prompt_tokens


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError), (400, openai.BadRequestError)],
)
def test_sdk_error_is_recorded_and_reraised_unchanged(
    client: openai.OpenAI, spans: SpanRecorder, status: int, exc_type: type[Exception]
) -> None:
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-status": str(status)}
        )
    assert type(info.value) is exc_type
    span = spans.one()
    assert span.status.status_code.name == "ERROR"
    assert attrs(span)[sc.ERROR_TYPE] == f"openai.{exc_type.__name__}"


def test_malformed_response_body_raises_the_sdk_error(client: openai.OpenAI, spans: SpanRecorder) -> None:
    with pytest.raises(Exception) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-malformed": "1"})
    assert not type(info.value).__module__.startswith("llmtrace")
    assert spans.one().status.status_code.name == "ERROR"


def test_stream_error_midway_ends_span_once_with_error(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-stream-error-after": "3"}
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    stream.close()
    span = spans.one()
    assert len(received) >= 1
    assert span.status.status_code.name == "ERROR"
    assert attrs(span)[sc.STREAM_END] == "error"


def test_break_then_close_ends_span_once(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "40"}
    )
    for i, _ in enumerate(stream):
        if i == 2:
            break
    assert spans.finished == []
    stream.close()
    stream.close()
    span = spans.one()
    assert attrs(span)[sc.STREAM_END] == "closed"
    assert attrs(span)[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_stream_in_with_block_exited_early_ends_span(client: openai.OpenAI, spans: SpanRecorder) -> None:
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    assert attrs(spans.one())[sc.STREAM_END] == "closed"


def test_abandoned_stream_is_ended_when_garbage_collected(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert attrs(spans.one())[sc.STREAM_END] == "abandoned"


def test_stream_proxy_is_transparent(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    list(stream)
    assert len(spans.finished) == 1


def test_internal_error_never_reaches_the_app(
    client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forced failure inside llmtrace")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.Chat, "parse_response", broken)
    monkeypatch.setattr(adapter.ChatStream, "add", broken)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert result.choices[0].message.content
    assert chunks
    assert len(spans.finished) == 2


@pytest.mark.parametrize("where", ["choosing the fold", "folding a chunk"])
def test_internal_error_in_the_later_fold_keeps_the_stream_and_ends_the_span(
    where: str, client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    def broken_tail(self: Any) -> Any:
        if where == "choosing the fold":
            raise RuntimeError("forced failure inside llmtrace")
        calls = iter(range(3))

        def fold(chunk: Any) -> None:
            if next(calls, None) is None:
                raise RuntimeError("forced failure inside llmtrace")
            adapter.ChatStream.add(self, chunk)

        return fold

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.TextChatStream, "tail", broken_tail)
    monkeypatch.setattr(adapter.TextChatStream, "follow", None)  # sync streams fold in follow(): here through tail()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "20"}
    )
    texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(texts) == 20
    a = attrs(spans.one())
    assert a[sc.STREAM_END] == "completed"
    folded = json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
    assert folded == "".join(texts[: 1 if where == "choosing the fold" else 4])  # what was folded before the fault


@pytest.mark.parametrize("general_fold", ["works", "fails"])
def test_the_inline_stream_fold_gives_chunks_it_cannot_read_to_the_general_fold_and_survives_its_failure(
    general_fold: str, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-output-words": "20"}
    )
    chunks = list(stream)

    def text(some: list[Any]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in some if c.choices)

    odd = chunks[5].model_dump()  # a dict: attribute reads fail, the general fold must take it
    add = adapter.ChatStream.add

    def add_failing_on_dicts(self: Any, chunk: Any) -> bool:
        if isinstance(chunk, dict) and general_fold == "fails":
            raise RuntimeError("forced failure inside llmtrace")
        return add(self, chunk)

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.ChatStream, "add", add_failing_on_dicts)
    fold, fed = adapter.TextChatStream(), [*chunks[:6], odd, *chunks[6:]]
    rest = iter(fed)
    head = 0
    for chunk in rest:  # the core's head: until the first text
        head += 1
        if fold.add(chunk):
            break
    assert list(fold.follow(rest)) == fed[head:]  # every chunk passed on, unchanged, in order
    folded = "".join(fold.text[0])
    if general_fold == "works":
        assert folded == text(chunks[:6]) + odd["choices"][0]["delta"]["content"] + text(chunks[6:])
    else:
        assert folded == text(chunks[:6])  # what was folded before the fault; the rest went by unfolded


def test_a_client_whose_base_url_is_changed_gets_the_new_server_on_its_next_spans(
    client: openai.OpenAI, spans: SpanRecorder, fake_llm: Any
) -> None:
    for _ in range(2):  # the first call learns where the client keeps its URL, the second reads it there
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.base_url = fake_llm.openai_base_url.replace("127.0.0.1", "localhost")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    _, first, second = spans.finished
    assert (attrs(first)[sc.SERVER_ADDRESS], attrs(second)[sc.SERVER_ADDRESS]) == ("127.0.0.1", "localhost")
    assert attrs(first)[sc.SERVER_PORT] == attrs(second)[sc.SERVER_PORT]


def test_internal_error_at_span_start_still_makes_the_call(
    client: openai.OpenAI, spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmtrace.instrumentation import openai as adapter

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(adapter.Chat, "parse_request", lambda *a, **k: 1 / 0)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.id.startswith("chatcmpl-")
    assert spans.finished == []


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://myres.openai.azure.com/openai/deployments/x", "azure.ai.openai"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.together.xyz/v1", "together_ai"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://localhost:8000/v1", "openai"),
        ("https://api.openai.com/v1", "openai"),
    ],
)
def test_provider_name_follows_the_base_url_host(base_url: str, provider: str) -> None:
    from llmtrace.instrumentation._sdk import server_of
    from llmtrace.instrumentation.openai import provider_for

    assert provider_for(*server_of(base_url)) == provider


def test_capture_content_off_records_no_content(fake_llm: Any) -> None:
    import llmtrace

    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, capture_content=False)
    try:
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    finally:
        llmtrace.uninstrument()
    a = attrs(rec.one())
    assert not {sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS} & set(a)
    assert a[sc.USAGE_OUTPUT_TOKENS] > 0


def test_content_is_truncated_and_redacted(fake_llm: Any) -> None:
    import llmtrace

    rec = SpanRecorder()
    llmtrace.instrument(
        tracer_provider=rec.provider,
        max_content_chars=10,
        redact=lambda name, text: text.replace("secret", "[REDACTED]"),
    )
    try:
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "secret " + "x" * 100}]
        )
    finally:
        llmtrace.uninstrument()
    content = json.loads(attrs(rec.one())[sc.INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert content.startswith("[REDACTED] xxx")
    assert "truncated 97 chars" in content


def test_unknown_model_is_unpriced_not_free(client: openai.OpenAI, spans: SpanRecorder) -> None:
    client.chat.completions.create(model="my-finetune-xyz", messages=MESSAGES)
    a = attrs(spans.one())
    assert a[sc.COST_STATUS] == "unpriced"
    assert sc.COST_USD not in a
    assert a[sc.USAGE_INPUT_TOKENS] > 0


def test_plain_for_loop_over_a_temporary_stream_completes_the_span(client: openai.OpenAI, spans: SpanRecorder) -> None:
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers={"x-fake-output-words": "7"}):  # fmt: skip
        assert spans.finished == []  # the span must not end while the loop runs
    a = attrs(spans.one())
    assert a[sc.STREAM_END] == "completed"
    assert a[sc.USAGE_OUTPUT_TOKENS] == 7
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


async def test_async_for_loop_over_a_temporary_stream_completes_the_span(
    aclient: openai.AsyncOpenAI, spans: SpanRecorder
) -> None:
    async for _ in await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        assert spans.finished == []
    assert attrs(spans.one())[sc.STREAM_END] == "completed"


def test_stream_dropped_before_iterating_is_ended_once(client: openai.OpenAI, spans: SpanRecorder) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    iterator = iter(stream)
    del stream, iterator
    gc.collect()
    assert attrs(spans.one())[sc.STREAM_END] == "abandoned"


def test_stream_of_two_choices_keeps_each_choice_apart(client: openai.OpenAI, spans: SpanRecorder) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2, stream=True))
    texts = {
        i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        for i in (0, 1)
    }
    a = attrs(spans.one())
    outputs = json.loads(a[sc.OUTPUT_MESSAGES])
    assert [m["parts"][0]["content"] for m in outputs] == [texts[0], texts[1]]
    assert texts[0] and texts[1] and texts[0] != texts[1]
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop", "stop")


def test_one_choice_stream_that_sends_two_choices_loses_neither(tmp_path: Any, spans: SpanRecorder) -> None:
    """A compatible server may put several choices in one chunk even when one was asked for (hand-written SSE)."""

    def chunk(choices: list[dict[str, Any]]) -> str:
        body = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
        return "data: " + json.dumps(body) + "\n\n"

    def choice(index: int, content: str | None, reason: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": {"content": content} if content else {}, "finish_reason": reason}

    body = (
        chunk([choice(0, "a")])
        + chunk([choice(0, "b"), choice(1, "x")])
        + chunk([choice(0, "c")])
        + chunk([choice(0, None, "stop"), choice(1, None, "length")])
        + "data: [DONE]\n\n"
    )
    record = {"status": 200, "content_type": "text/event-stream", "body": body}
    (tmp_path / "two_choices.json").write_text(json.dumps(record))
    with FakeLLM(recorded_dir=tmp_path) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, extra_headers={"x-fake-replay": "two_choices"}
        )
        assert len(list(stream)) == 4
    a = attrs(spans.one())
    assert [m["parts"][0]["content"] for m in json.loads(a[sc.OUTPUT_MESSAGES])] == ["abc", "x"]
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop", "length")


def test_streamed_refusal_is_recorded_as_a_refusal_part(tmp_path: Any, spans: SpanRecorder) -> None:
    """Structured outputs may stream a refusal instead of content (hand-written SSE in OpenAI's shape)."""

    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        body = {
            "id": "chatcmpl-r",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [choice],
        }
        return "data: " + json.dumps(body) + "\n\n"

    body = (
        chunk({"role": "assistant", "content": None, "refusal": ""})
        + chunk({"refusal": "I'm sorry, "})
        + chunk({"refusal": "I can't help with that."})
        + chunk({}, "stop")
        + "data: [DONE]\n\n"
    )
    (tmp_path / "refusal.json").write_text(
        json.dumps({"status": 200, "content_type": "text/event-stream", "body": body})
    )
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with FakeLLM(recorded_dir=tmp_path) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            response_format=schema,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-fake-replay": "refusal"},
        )
        assert len(list(stream)) == 4
    a = attrs(spans.one())
    [message] = json.loads(a[sc.OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "refusal", "content": "I'm sorry, I can't help with that."}]
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
