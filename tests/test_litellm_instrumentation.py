"""The LiteLLM adapter: real ``litellm`` calls over real HTTP against the fake LLM's OpenAI and Anthropic endpoints.

LiteLLM reaches OpenAI through the ``openai`` SDK, which llmtrace also patches: these tests count spans
to show each LiteLLM call still gives exactly one, naming the provider LiteLLM routed to.
"""

from __future__ import annotations

import gc
import json
import os
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM's bundled prices, not a download at import

import litellm
import openai

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import RECORDED_DIR, FakeLLM
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import CONTENT_ATTRIBUTES, WEATHER_TOOL, content, recording

GPT = "gpt-4o-mini"
CLAUDE = "claude-3-5-haiku-latest"
HI = [{"role": "user", "content": "What is the capital of France?"}]


def via_openai(fake: FakeLLM, **kwargs: Any) -> dict[str, Any]:
    return {"model": f"openai/{GPT}", "api_base": fake.openai_base_url, "api_key": "test", "messages": HI, **kwargs}


def via_anthropic(fake: FakeLLM, **kwargs: Any) -> dict[str, Any]:
    return {"model": f"anthropic/{CLAUDE}", "api_base": fake.url, "api_key": "test", "messages": HI, **kwargs}


def priced(provider: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    return pricing.cost_usd(provider, [model], pricing.TokenUsage(input_tokens, output_tokens))


def test_a_call_routed_through_the_openai_sdk_gives_one_span_not_two(fake_llm: FakeLLM, spans: Any) -> None:
    response = litellm.completion(**via_openai(fake_llm, temperature=0.3, max_tokens=50))
    openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test").chat.completions.create(model=GPT, messages=HI)

    routed, direct = spans.finished  # the openai patch is live: outside LiteLLM it records its own call
    assert direct.attributes[sc.OPENAI_API_TYPE] == "chat_completions"
    assert sc.OPENAI_API_TYPE not in routed.attributes  # LiteLLM's span, not the nested openai one
    attrs = routed.attributes
    assert routed.name == f"chat {GPT}" and routed.kind is SpanKind.CLIENT
    assert attrs[sc.PROVIDER_NAME] == "openai"
    assert attrs[sc.REQUEST_MODEL] == GPT  # without LiteLLM's provider prefix
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.3
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    assert attrs[sc.RESPONSE_ID] == response.id
    assert attrs[sc.RESPONSE_MODEL] == response.model
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    usage = response.usage  # type: ignore[attr-defined]
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert attrs[sc.COST_USD] == pytest.approx(priced("openai", GPT, usage.prompt_tokens, usage.completion_tokens))
    assert content(routed, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": response.choices[0].message.content}  # type: ignore[union-attr]
    ]


def test_an_anthropic_call_names_anthropic_and_is_priced_as_anthropic(fake_llm: FakeLLM, spans: Any) -> None:
    response = litellm.completion(**via_anthropic(fake_llm))

    attrs = spans.one().attributes
    usage = response.usage  # type: ignore[attr-defined]
    assert attrs[sc.PROVIDER_NAME] == "anthropic"
    assert attrs[sc.REQUEST_MODEL] == CLAUDE
    assert attrs[sc.RESPONSE_MODEL] == response.model
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(
        priced("anthropic", str(response.model), usage.prompt_tokens, usage.completion_tokens)
    )


def test_the_custom_llm_provider_argument_names_the_provider(fake_llm: FakeLLM, spans: Any) -> None:
    litellm.completion(**via_openai(fake_llm, model=GPT, custom_llm_provider="openai"))

    attrs = spans.one().attributes
    assert (attrs[sc.PROVIDER_NAME], attrs[sc.REQUEST_MODEL]) == ("openai", GPT)


def test_tool_calls_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    response = litellm.completion(**via_anthropic(fake_llm, tools=[WEATHER_TOOL]))

    call = response.choices[0].message.tool_calls[0]  # type: ignore[union-attr]
    span = spans.one()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"][-1] == {
        "type": "tool_call",
        "id": call.id,
        "name": "get_weather",
        "arguments": json.loads(call.function.arguments),
    }


def test_a_stream_through_the_openai_sdk_is_one_span_with_usage_and_ttft(fake_llm: FakeLLM, spans: Any) -> None:
    chunks = list(litellm.completion(**via_openai(fake_llm, stream=True, stream_options={"include_usage": True})))

    span = spans.one()
    attrs = span.attributes
    usage = next(c.usage for c in reversed(chunks) if getattr(c, "usage", None))  # type: ignore[attr-defined]
    assert attrs[sc.PROVIDER_NAME] == "openai"
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert sc.USAGE_ESTIMATED not in attrs
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # type: ignore[union-attr]
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


async def test_acompletion_streams_from_anthropic_into_one_span(fake_llm: FakeLLM, spans: Any) -> None:
    stream = await litellm.acompletion(**via_anthropic(fake_llm, stream=True))
    chunks = [chunk async for chunk in stream]  # type: ignore[union-attr]

    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER_NAME] == "anthropic"
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
    assert attrs[sc.USAGE_ESTIMATED] is True  # no include_usage: counted from the streamed chunks


async def test_acompletion_through_the_async_openai_sdk_is_one_span(fake_llm: FakeLLM, spans: Any) -> None:
    response = await litellm.acompletion(**via_openai(fake_llm))

    attrs = spans.one().attributes
    assert attrs[sc.RESPONSE_ID] == response.id
    assert sc.REQUEST_STREAM not in attrs


def test_a_stream_left_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    stream = litellm.completion(**via_openai(fake_llm, stream=True))
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:  # the first chunk only says the role
            break
    del stream, chunk
    gc.collect()

    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "abandoned"
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs


def test_embedding_records_tokens_dimensions_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    model = "text-embedding-3-small"
    response = litellm.embedding(
        model=f"openai/{model}", input=["first", "second"], api_base=fake_llm.openai_base_url, api_key="test"
    )

    attrs = spans.one().attributes
    assert attrs[sc.OPERATION_NAME] == "embeddings"
    assert (attrs[sc.PROVIDER_NAME], attrs[sc.REQUEST_MODEL]) == ("openai", model)
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == len(response.data[0]["embedding"])
    assert attrs[sc.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens  # type: ignore[union-attr]
    assert attrs[sc.COST_STATUS] == "priced"


async def test_aembedding_is_one_span(fake_llm: FakeLLM, spans: Any) -> None:
    await litellm.aembedding(
        model="openai/text-embedding-3-small", input="one", api_base=fake_llm.openai_base_url, api_key="test"
    )

    assert spans.one().attributes[sc.OPERATION_NAME] == "embeddings"


@pytest.mark.parametrize(
    ("status", "error"),
    # a 500 is InternalServerError in LiteLLM 1.110, APIError in 1.60: both are openai.APIError
    [("429", litellm.RateLimitError), ("500", openai.APIError), ("400", litellm.BadRequestError)],
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_one_span(
    fake_llm: FakeLLM, spans: Any, status: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        litellm.completion(**via_openai(fake_llm, extra_headers={"x-fake-status": status}, max_retries=0))

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert type(caught.value).__module__.startswith("litellm.")
    assert span.attributes[sc.ERROR_TYPE] == f"litellm.{type(caught.value).__name__}"


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        litellm.completion(**via_anthropic(fake_llm, messages=[{"role": "system", "content": "secret"}, *HI]))
        list(litellm.completion(**via_openai(fake_llm, stream=True, tools=[WEATHER_TOOL])))
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_instrument_does_not_import_litellm_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = sorted(m for m in sys.modules if m.startswith("litellm"))
        import litellm
        call = dict(model="openai/{GPT}", api_base={fake_llm.openai_base_url!r}, api_key="t",
                    messages=[{{"role": "user", "content": "hi"}}])
        litellm.completion(**call)
        llmtrace.uninstrument()
        litellm.completion(**call)
        print(before, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"[] ['chat {GPT}']"


@pytest.mark.parametrize(
    ("name", "route", "provider"),
    [
        ("openai_chat", "openai", "openai"),
        ("openai_chat_stream", "openai", "openai"),
        ("anthropic_message", "anthropic", "anthropic"),
    ],
)
def test_real_recorded_replies_replayed_through_litellm_give_one_span_as_the_api_sent_them(
    fake_llm: FakeLLM, spans: Any, name: str, route: str, provider: str
) -> None:
    record = recording(name, RECORDED_DIR)
    sent, expected = record["request"]["json"], record["expected"]
    base = fake_llm.openai_base_url if route == "openai" else fake_llm.url
    stream = bool(sent.get("stream"))
    reply = litellm.completion(
        model=f"{route}/{sent['model']}", api_base=base, api_key="test", messages=sent["messages"],
        max_tokens=sent.get("max_tokens"), stream=stream, stream_options=sent.get("stream_options"),
        extra_headers={"x-fake-replay": name},
    )  # fmt: skip
    model = expected["response_model"]
    if stream:
        chunks = list(reply)  # type: ignore[arg-type]
        # LiteLLM's chunks show the requested model; newer LiteLLM keeps the provider's aside (1.60 does not)
        if "provider_response_model" not in getattr(chunks[0], "_hidden_params", {}):
            model = sent["model"]

    attrs = spans.one().attributes  # LiteLLM's, not the openai SDK's underneath
    assert attrs[sc.PROVIDER_NAME] == provider
    assert attrs[sc.RESPONSE_MODEL] == model
    if provider == "anthropic":  # LiteLLM gives Anthropic replies an id of its own; the message id is lost
        assert str(attrs[sc.RESPONSE_ID]).startswith("chatcmpl-") and attrs[sc.RESPONSE_ID] == reply.id  # type: ignore[union-attr]
    else:
        assert attrs[sc.RESPONSE_ID] == expected["response_id"]
    assert attrs[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert attrs[sc.COST_STATUS] == "priced"
