"""The Google Gen AI adapter: the real ``google-genai`` client over real HTTP against the fake LLM's Gemini API."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.demo.fake_llm_gemini import CACHED_CONTENT_TOKENS, THOUGHT_TOKENS
from llmtrace.instrumentation import _guard
from llmtrace.instrumentation import google_genai as adapter
from llmtrace.instrumentation._patching import LLMTraceWrapper
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import CONTENT_ATTRIBUTES, content, recording, replaying
from tests.provider_helpers import fake_headers as fake_control_headers

__all__ = ["replaying"]  # the shared fixture, one instance per module

MODEL = "gemini-2.0-flash"
THINKING_MODEL = "gemini-2.5-flash"

SDK_READS_GEMINI_IDS = "responseId" in inspect.getsource(genai.models._GenerateContentResponse_from_mldev)
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather for a city.",
            parameters={"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
        )
    ]
)


_clients: list[genai.Client] = []  # a collected Client closes its HTTP client, even under `client(...).models`


def client(fake: FakeLLM, **options: Any) -> genai.Client:
    _clients.append(genai.Client(api_key="test", http_options={"base_url": fake.url}, **options))
    return _clients[-1]


def vertex_client(fake: FakeLLM) -> genai.Client:
    _clients.append(genai.Client(vertexai=True, api_key="test", http_options={"base_url": fake.url}))
    return _clients[-1]


def fake_headers(**headers: str) -> dict[str, Any]:
    return {"http_options": {"headers": fake_control_headers(**headers)}}


def cost_of(model: str, response: types.GenerateContentResponse) -> float | None:
    usage = response.usage_metadata
    assert usage is not None
    tokens = pricing.TokenUsage(
        input_tokens=usage.prompt_token_count or 0,
        output_tokens=(usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
        cache_read_tokens=usage.cached_content_token_count or 0,
    )
    return pricing.cost_usd("gcp.gemini", [model], tokens)


# --- generate_content --------------------------------------------------------------------------


def test_generate_content_records_request_parameters_response_usage_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    config = types.GenerateContentConfig(
        temperature=0.2, top_p=0.9, top_k=40, max_output_tokens=200, stop_sequences=["END"], seed=7
    )
    response = client(fake_llm).models.generate_content(model=MODEL, contents="What is the capital?", config=config)

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"generate_content {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION_NAME] == "generate_content"
    assert attrs[sc.PROVIDER_NAME] == "gcp.gemini"
    assert attrs[sc.REQUEST_MODEL] == MODEL
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40 and isinstance(attrs[sc.REQUEST_TOP_K], int)
    assert attrs[sc.REQUEST_MAX_TOKENS] == 200
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.REQUEST_SEED] == 7
    assert sc.REQUEST_STREAM not in attrs
    assert attrs.get(sc.RESPONSE_ID) == response.response_id  # None where the SDK does not read it (< 1.2x)
    assert attrs[sc.RESPONSE_MODEL] == response.model_version == MODEL
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert response.usage_metadata is not None
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.usage_metadata.prompt_token_count
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response.usage_metadata.candidates_token_count
    assert sc.USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(cost_of(MODEL, response))


def test_system_instruction_input_and_output_are_recorded_as_messages(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).models.generate_content(
        model=MODEL, contents="Hello there", config={"system_instruction": "Answer briefly."}
    )

    span = spans.one()
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Answer briefly."}]
    assert content(span, sc.INPUT_MESSAGES) == [{"role": "user", "parts": [{"type": "text", "content": "Hello there"}]}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": response.text}], "finish_reason": "stop"}
    ]


def test_a_models_prefix_is_dropped_from_the_model_name(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).models.generate_content(model=f"models/{MODEL}", contents="hi")

    span = spans.one()
    assert span.name == f"generate_content {MODEL}"
    assert span.attributes[sc.COST_STATUS] == "priced"


def test_thinking_tokens_are_reasoning_and_count_as_output(fake_llm: FakeLLM, spans: Any) -> None:
    config = {"thinking_config": {"include_thoughts": True}}
    response = client(fake_llm).models.generate_content(model=THINKING_MODEL, contents="Think first", config=config)

    attrs = spans.one().attributes
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count == THOUGHT_TOKENS
    assert attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == THOUGHT_TOKENS
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == (usage.candidates_token_count or 0) + THOUGHT_TOKENS
    assert attrs[sc.COST_USD] == pytest.approx(cost_of(THINKING_MODEL, response))
    parts = content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text"]


def test_cached_content_tokens_are_cache_reads_within_input_tokens(fake_llm: FakeLLM, spans: Any) -> None:
    config = {"cached_content": "cachedContents/abc123"}
    response = client(fake_llm).models.generate_content(model=MODEL, contents="Use the cache", config=config)

    attrs = spans.one().attributes
    assert response.usage_metadata is not None
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == CACHED_CONTENT_TOKENS
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.usage_metadata.prompt_token_count > CACHED_CONTENT_TOKENS
    uncached = pricing.cost_usd("gcp.gemini", [MODEL], pricing.TokenUsage(attrs[sc.USAGE_INPUT_TOKENS], 1))  # type: ignore[arg-type]
    assert attrs[sc.COST_USD] == pytest.approx(cost_of(MODEL, response))
    assert uncached is not None and attrs[sc.COST_USD] < uncached


def test_a_json_response_mime_type_records_the_json_output_type(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).models.generate_content(
        model=MODEL, contents="hi", config={"response_mime_type": "application/json"}
    )

    assert spans.one().attributes[sc.OUTPUT_TYPE] == "json"


def test_max_output_tokens_maps_to_the_length_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).models.generate_content(model=MODEL, contents="hi", config={"max_output_tokens": 3})

    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert spans.one().attributes[sc.RESPONSE_FINISH_REASONS] == ("length",)


@pytest.mark.parametrize(
    ("gemini", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "other"), (None, "")],
)  # fmt: skip
def test_finish_reasons_take_the_conventions_values(gemini: str | None, expected: str) -> None:
    reason = types.FinishReason(gemini) if gemini else None
    assert adapter._finish_reason(reason) == expected


def test_function_declarations_and_the_function_call_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    response = client(fake_llm).models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)

    span = spans.one()
    call = response.function_calls[0] if response.function_calls else None
    assert call is not None and call.name == "get_weather"
    assert content(span, sc.TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
        }
    ]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": None, "name": "get_weather", "arguments": call.args}],
            "finish_reason": "stop",
        }
    ]


def test_function_responses_and_model_turns_map_to_tool_and_assistant_messages(fake_llm: FakeLLM, spans: Any) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
        types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"result": "18C"})],
        ),
    ]
    client(fake_llm).models.generate_content(model=MODEL, contents=contents, config={"tools": [WEATHER]})

    assert content(spans.one(), sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": None, "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": None, "response": {"result": "18C"}}]},
    ]


def test_inline_images_and_file_uris_become_blob_and_uri_parts(fake_llm: FakeLLM, spans: Any) -> None:
    contents = [
        "What is in these?",
        types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png"),
        types.Part.from_uri(file_uri="gs://bucket/cat.jpg", mime_type="image/jpeg"),
    ]
    client(fake_llm).models.generate_content(model=MODEL, contents=contents)

    assert content(spans.one(), sc.INPUT_MESSAGES) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is in these?"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw=="},
                {"type": "uri", "modality": "image", "mime_type": "image/jpeg", "uri": "gs://bucket/cat.jpg"},
            ],
        }
    ]


def test_automatic_function_calling_records_one_span_per_request(fake_llm: FakeLLM, spans: Any) -> None:
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return "18C and sunny"

    response = client(fake_llm).models.generate_content(
        model=MODEL, contents="Weather in Paris?", config={"tools": [get_weather]}
    )

    first, second = spans.finished
    assert response.text and response.text.startswith("Echo:")
    assert content(first, sc.OUTPUT_MESSAGES)[0]["parts"][0]["type"] == "tool_call"
    assert content(first, sc.TOOL_DEFINITIONS) == [
        {"type": "function", "name": "get_weather", "description": "Current weather for a city."}
    ]
    assert content(second, sc.INPUT_MESSAGES)[-1]["role"] == "tool"
    assert content(second, sc.OUTPUT_MESSAGES)[0]["parts"][0]["type"] == "text"
    assert all(s.attributes[sc.COST_STATUS] == "priced" for s in (first, second))


async def test_async_generate_content_records_the_same_attributes(fake_llm: FakeLLM, spans: Any) -> None:
    response = await client(fake_llm).aio.models.generate_content(
        model=MODEL, contents="hi async", config={"temperature": 0.5}
    )

    span = spans.one()
    assert span.name == f"generate_content {MODEL}"
    assert span.attributes[sc.REQUEST_TEMPERATURE] == 0.5
    assert span.attributes.get(sc.RESPONSE_ID) == response.response_id
    assert response.usage_metadata is not None
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == response.usage_metadata.candidates_token_count


def test_vertex_ai_clients_are_named_gcp_vertex_ai_and_priced(fake_llm: FakeLLM, spans: Any) -> None:
    vertex_client(fake_llm).models.generate_content(model=MODEL, contents="hi vertex")

    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[sc.REQUEST_MODEL] == MODEL
    assert attrs[sc.COST_STATUS] == "priced"
    assert fake_llm.requests[-1]["path"] == f"/v1beta1/publishers/google/models/{MODEL}:generateContent"


def test_vertex_ai_with_project_location_and_credentials_is_gcp_vertex_ai(fake_llm: FakeLLM, spans: Any) -> None:
    from google.oauth2.credentials import Credentials

    vertex = genai.Client(
        vertexai=True,
        project="my-project",
        location="us-central1",
        credentials=Credentials(token="test-token"),  # a fixed token: no refresh, no network
        http_options={"base_url": fake_llm.url},
    )
    _clients.append(vertex)
    chunks = list(vertex.models.generate_content_stream(model=MODEL, contents="hi vertex"))

    attrs = spans.one().attributes
    assert fake_llm.requests[-1]["path"] == (
        f"/v1beta1/projects/my-project/locations/us-central1/publishers/google/models/{MODEL}:streamGenerateContent"
    )
    assert attrs[sc.PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[sc.REQUEST_MODEL] == MODEL
    assert chunks[-1].usage_metadata is not None
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].usage_metadata.candidates_token_count


# --- streams -----------------------------------------------------------------------------------


def test_stream_records_ttft_text_usage_and_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    chunks = list(client(fake_llm).models.generate_content_stream(model=THINKING_MODEL, contents="Stream please"))

    span = spans.one()
    attrs = span.attributes
    final = chunks[-1].usage_metadata
    assert final is not None and len(chunks) > 3
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs.get(sc.RESPONSE_ID) == chunks[0].response_id
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == final.prompt_token_count
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == (final.candidates_token_count or 0) + THOUGHT_TOKENS
    assert attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == THOUGHT_TOKENS
    assert attrs[sc.COST_STATUS] == "priced"
    text = "".join(c.text or "" for c in chunks)
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


async def test_async_stream_records_ttft_and_usage(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await client(fake_llm).aio.models.generate_content_stream(model=MODEL, contents="Stream async")
    chunks = [chunk async for chunk in stream]

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert chunks[-1].usage_metadata is not None
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].usage_metadata.candidates_token_count


def test_a_stream_left_early_ends_its_span_once_with_what_was_read(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).models.generate_content_stream(model=MODEL, contents="Stop early")
    first = next(iter(stream))
    stream.close()
    del stream
    gc.collect()

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "abandoned"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first.text}]
    assert sc.RESPONSE_FINISH_REASONS not in span.attributes


async def test_an_async_stream_left_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await client(fake_llm).aio.models.generate_content_stream(model=MODEL, contents="Stop early")
    async for _chunk in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    # The SDK's own generators around ours are dropped, not closed: the event loop finalises them.
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()

    assert spans.one().attributes[sc.STREAM_END] == "abandoned"


@pytest.mark.skipif(
    """startswith('{"error":')""" not in inspect.getsource(genai._api_client),
    reason="this google-genai does not raise on an error event mid-stream",
)
def test_an_error_mid_stream_marks_the_span_and_reaches_the_app(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).models.generate_content_stream(
        model=MODEL, contents="fail soon", config=fake_headers(stream_error_after="2")
    )
    with pytest.raises(errors.ServerError):
        for _chunk in stream:
            pass

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "google.genai.errors.ServerError"
    assert span.attributes[sc.STREAM_END] == "error"


# --- chats -------------------------------------------------------------------------------------


def test_chat_send_message_and_send_message_stream_are_traced_with_the_history(fake_llm: FakeLLM, spans: Any) -> None:
    chat = client(fake_llm).chats.create(model=MODEL)
    chat.send_message("First question")
    list(chat.send_message_stream("Second question"))

    first, second = spans.finished
    assert first.name == second.name == f"generate_content {MODEL}"
    assert sc.REQUEST_STREAM not in first.attributes and second.attributes[sc.REQUEST_STREAM] is True
    assert [m["role"] for m in content(second, sc.INPUT_MESSAGES)] == ["user", "assistant", "user"]


async def test_async_chat_send_message_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    chat = client(fake_llm).aio.chats.create(model=MODEL)
    await chat.send_message("Hello async chat")

    assert spans.one().attributes[sc.OPERATION_NAME] == "generate_content"


# --- embeddings --------------------------------------------------------------------------------


def test_embed_content_records_dimensions_without_usage_on_the_gemini_api(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).models.embed_content(model="gemini-embedding-001", contents=["a", "b"])

    span = spans.one()
    assert span.name == "embeddings gemini-embedding-001"
    assert span.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 8
    assert sc.USAGE_INPUT_TOKENS not in span.attributes  # the Gemini API reports none
    assert sc.COST_USD not in span.attributes


def test_vertex_embed_content_sums_token_counts(fake_llm: FakeLLM, spans: Any) -> None:
    response = vertex_client(fake_llm).models.embed_content(
        model="text-embedding-005", contents=["one two three four", "five"], config={"output_dimensionality": 4}
    )

    attrs = spans.one().attributes
    assert response.embeddings is not None
    assert attrs[sc.PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == 4
    assert attrs[sc.USAGE_INPUT_TOKENS] == sum(e.statistics.token_count for e in response.embeddings)  # type: ignore[misc,union-attr]


async def test_async_embed_content_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    await client(fake_llm).aio.models.embed_content(model="gemini-embedding-001", contents="a")

    assert spans.one().attributes[sc.OPERATION_NAME] == "embeddings"


def test_count_tokens_is_not_patched(recorder: Any) -> None:
    assert not isinstance(vars(genai.models.Models)["count_tokens"], LLMTraceWrapper)
    assert not isinstance(vars(genai.models.AsyncModels)["count_tokens"], LLMTraceWrapper)
    assert isinstance(vars(genai.models.Models)["_generate_content"], LLMTraceWrapper)


# --- errors, the guard, content off ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"), [("429", errors.ClientError), ("500", errors.ServerError), ("400", errors.ClientError)]
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[errors.APIError]
) -> None:
    with pytest.raises(error) as caught:
        client(fake_llm).models.generate_content(model=MODEL, contents="hi", config=fake_headers(status=status))

    assert type(caught.value) is error and caught.value.code == int(status)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"google.genai.errors.{error.__name__}"
    assert sc.RESPONSE_ID not in span.attributes


async def test_async_http_errors_mark_the_span(fake_llm: FakeLLM, spans: Any) -> None:
    with pytest.raises(errors.ClientError):
        await client(fake_llm).aio.models.generate_content(
            model=MODEL, contents="hi", config=fake_headers(status="429")
        )

    assert spans.one().attributes[sc.ERROR_TYPE] == "google.genai.errors.ClientError"


def test_an_internal_error_leaves_the_app_result_intact_and_ends_the_span(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any, request: Any, result: Any) -> Any:
        raise RuntimeError("adapter bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(_guard, "_reported", set())
    monkeypatch.setattr(adapter.GenerateContent, "parse_response", broken)
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        response = client(fake_llm).models.generate_content(model=MODEL, contents="hi")

    assert isinstance(response, types.GenerateContentResponse) and (response.text or "").startswith("Echo:")
    assert sc.RESPONSE_ID not in spans.one().attributes
    assert "your application is unaffected" in caplog.text


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        gemini = client(fake_llm)
        gemini.models.generate_content(model=MODEL, contents="secret", config={"system_instruction": "secret"})
        list(gemini.models.generate_content_stream(model=MODEL, contents="secret", config={"tools": [WEATHER]}))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_instrument_does_not_import_google_genai_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = "google.genai" in sys.modules
        from google import genai
        gemini = genai.Client(api_key="t", http_options={{"base_url": {fake_llm.url!r}}})
        gemini.models.generate_content(model="{MODEL}", contents="hi")
        llmtrace.uninstrument()
        from llmtrace.instrumentation._patching import LLMTraceWrapper
        restored = not isinstance(vars(genai.models.Models)["_generate_content"], LLMTraceWrapper)
        print(before, restored, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"False True ['generate_content {MODEL}']"


# --- recorded real traffic ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gemini_generate", "gemini_stream"])
def test_replayed_real_responses_are_recorded_as_the_api_sent_them(replaying: FakeLLM, spans: Any, name: str) -> None:
    record = recording(name)
    sent = record["request"]["json"]
    config = {
        "system_instruction": sent.get("systemInstruction", {}).get("parts", [{}])[0].get("text"),
        **fake_headers(replay=name),
    }
    gemini = client(replaying)
    contents = sent["contents"][0]["parts"][0]["text"]
    if name.endswith("stream"):
        chunks = gemini.models.generate_content_stream(model="gemini-2.5-flash", contents=contents, config=config)
        first, *_rest = list(chunks)  # the whole stream
        response_id = first.response_id
    else:
        response_id = gemini.models.generate_content(
            model="gemini-2.5-flash", contents=contents, config=config
        ).response_id

    expected = record["expected"]
    attrs = spans.one().attributes
    assert attrs[sc.RESPONSE_MODEL] == expected["response_model"]
    assert attrs.get(sc.RESPONSE_ID) == response_id == (expected["response_id"] if SDK_READS_GEMINI_IDS else None)
    assert attrs[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == expected["reasoning_tokens"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (expected["finish_reason"],)


def test_other_parts_are_named_by_their_field() -> None:
    code = types.Part(executable_code=types.ExecutableCode(code="print(1)", language=types.Language.PYTHON))

    assert adapter._part(code) == {"type": "executable_code", "content": code.executable_code}
    assert adapter._part({"code_execution_result": {"output": "1"}}) == {
        "type": "code_execution_result",
        "content": {"output": "1"},
    }
