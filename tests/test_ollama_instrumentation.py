"""The Ollama adapter: the real ``ollama`` client over real HTTP against the fake LLM's Ollama API (NDJSON streams)."""

from __future__ import annotations

import gc
from typing import Any

import ollama
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

MODEL = "llama3.2"
HI = [{"role": "user", "content": "Why is the sky blue?"}]


def client(fake: FakeLLM, **headers: str) -> ollama.Client:
    return ollama.Client(host=fake.url, headers=fake_headers(**headers))


def async_client(fake: FakeLLM) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=fake.url)


def test_chat_records_options_response_and_ollama_token_counts(fake_llm: FakeLLM, spans: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *HI]
    options = {"temperature": 0.1, "top_p": 0.9, "top_k": 20, "num_predict": 100, "seed": 5, "stop": ["END"]}
    response = client(fake_llm).chat(MODEL, messages=messages, options=options)  # model given positionally

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert attrs[sc.PROVIDER_NAME] == "ollama"
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.1
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 20
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_SEED] == 5
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.RESPONSE_MODEL] == MODEL
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.prompt_eval_count
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert attrs[sc.COST_STATUS] == "unpriced"  # a local model: no price unless the app sets one
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Why is the sky blue?"}]}
    ]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": response.message.content}], "finish_reason": "stop"}
    ]


def test_a_price_set_by_the_app_gives_local_calls_a_cost(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pricing, "_overrides", {})  # the price is this test's only
    llmtrace.set_price("ollama", MODEL, input_per_mtok=1.0, output_per_mtok=2.0)
    response = client(fake_llm).chat(model=MODEL, messages=HI)

    attrs = spans.one().attributes
    expected = ((response.prompt_eval_count or 0) * 1.0 + (response.eval_count or 0) * 2.0) / 1e6
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(expected)


def test_num_predict_reached_records_the_length_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).chat(model=MODEL, messages=HI, options={"num_predict": 3})

    assert spans.one().attributes[sc.RESPONSE_FINISH_REASONS] == ("length",)


def test_tool_calls_and_tool_results_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).chat(model=MODEL, messages=HI, tools=[WEATHER_TOOL])
    calls = response.message.tool_calls or []
    history = [*HI, response.message, {"role": "tool", "content": "18C", "tool_name": "get_weather"}]
    client(fake_llm).chat(model=MODEL, messages=history, tools=[WEATHER_TOOL])

    first, second = spans.finished
    assert content(first, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    call_part = {"type": "tool_call", "id": None, "name": "get_weather", "arguments": dict(calls[0].function.arguments)}
    assert content(first, sc.OUTPUT_MESSAGES)[0]["parts"] == [call_part]
    assert [m["role"] for m in content(second, sc.INPUT_MESSAGES)] == ["user", "assistant", "tool"]
    assert content(second, sc.INPUT_MESSAGES)[2]["parts"][0]["response"] == "18C"


def test_generate_is_a_text_completion(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).generate(MODEL, "Why is the sky blue?", system="Be brief.")

    span = spans.one()
    assert span.name == f"text_completion {MODEL}"
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": response.response}]


def test_embed_records_dimensions_and_input_tokens(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).embed(MODEL, ["first text", "second"])

    attrs = spans.one().attributes
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == 8
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.prompt_eval_count


def test_module_functions_use_the_default_client_and_are_traced_once(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ollama._client, "_client", client(fake_llm)._client)  # the default client, at the fake
    ollama.chat(model=MODEL, messages=HI)
    ollama.generate(model=MODEL, prompt="hi")
    ollama.embed(model=MODEL, input="hi")

    assert [s.name for s in spans.finished] == [f"chat {MODEL}", f"text_completion {MODEL}", f"embeddings {MODEL}"]


async def test_async_chat_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    response = await async_client(fake_llm).chat(model=MODEL, messages=HI)

    attrs = spans.one().attributes
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert sc.REQUEST_STREAM not in attrs


# --- streams -----------------------------------------------------------------------------------


def test_chat_stream_records_ttft_text_and_counts_from_the_final_object(fake_llm: FakeLLM, spans: Any) -> None:
    chunks = list(client(fake_llm).chat(model=MODEL, messages=HI, stream=True))

    span = spans.one()
    attrs = span.attributes
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.USAGE_INPUT_TOKENS] == chunks[-1].prompt_eval_count
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    text = "".join(c.message.content or "" for c in chunks)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


async def test_async_generate_stream_is_traced(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await async_client(fake_llm).generate(model=MODEL, prompt="hi", stream=True)
    chunks = [chunk async for chunk in stream]

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count


def test_a_stream_left_early_ends_its_span_once_without_counts(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).chat(model=MODEL, messages=HI, stream=True)
    first = next(stream)
    stream.close()
    del stream
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "closed"
    assert sc.USAGE_OUTPUT_TOKENS not in attrs  # Ollama counts only on the final object
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first.message.content}]


def test_an_error_line_mid_stream_marks_the_span_and_reaches_the_app(fake_llm: FakeLLM, spans: Any) -> None:
    with pytest.raises(ollama.ResponseError):
        for _chunk in client(fake_llm, stream_error_after="2").chat(model=MODEL, messages=HI, stream=True):
            pass

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "ollama.ResponseError"
    assert span.attributes[sc.STREAM_END] == "error"


# --- errors, content off, lazy patching --------------------------------------------------------


@pytest.mark.parametrize("status", ["429", "500", "400"])
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(fake_llm: FakeLLM, spans: Any, status: str) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client(fake_llm, status=status).chat(model=MODEL, messages=HI)

    assert caught.value.status_code == int(status)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "ollama.ResponseError"


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        client(fake_llm).chat(model=MODEL, messages=[{"role": "system", "content": "secret"}, *HI])
        list(client(fake_llm).chat(model=MODEL, messages=HI, stream=True, tools=[WEATHER_TOOL]))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


@pytest.mark.parametrize("imported", ["before", "after"])
def test_module_functions_are_traced_once_whether_ollama_is_imported_before_or_after_instrument(
    fake_llm: FakeLLM, imported: str
) -> None:
    result = run_script(
        f"""
        import logging, sys
        logging.basicConfig(level=logging.WARNING)
        if {imported == "before"}:
            import ollama
        llmtrace.instrument(tracer_provider=provider)
        import ollama
        ollama.chat(model="{MODEL}", messages=[{{"role": "user", "content": "hi"}}])
        llmtrace.uninstrument()
        from llmtrace.instrumentation._patching import LLMTraceWrapper
        print([s.name for s in exporter.get_finished_spans()], isinstance(ollama.chat, LLMTraceWrapper))
        """,
        prelude=MEMORY_PROVIDER,
        OLLAMA_HOST=fake_llm.url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"['chat {MODEL}'] False"
    assert "already instrumented" not in result.stderr


@pytest.mark.parametrize("name", ["ollama_chat", "ollama_chat_stream"])
def test_replayed_real_ollama_replies_are_recorded_as_ollama_sent_them(
    replaying: FakeLLM, spans: Any, name: str
) -> None:
    record = recording(name)
    sent = record["request"]["json"]
    reply = client(replaying, replay=name).chat(**sent)
    if sent["stream"]:
        list(reply)

    assert_recorded(spans.one(), record["expected"])
