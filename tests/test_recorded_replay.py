"""Real recorded OpenAI API traffic replayed through the real SDK: the span must say what the recording says."""

from __future__ import annotations

import json
from typing import Any

import openai

from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import RECORDED_DIR
from tests.conftest import SpanRecorder
from tests.provider_helpers import recording


def fixture(name: str) -> dict[str, Any]:
    return recording(name, RECORDED_DIR)


def replay(fake_llm: Any, name: str) -> Any:
    recorded = fixture(name)
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    body = dict(recorded["request"]["json"])
    body.pop("stream_options", None)
    extra = {"x-fake-replay": name}
    if recorded["request"]["path"].endswith("/responses"):
        return client.responses.create(**body, extra_headers=extra)
    return client.chat.completions.create(**body, extra_headers=extra)


def test_recorded_chat_completion(fake_llm: Any, spans: SpanRecorder) -> None:
    expected = fixture("openai_chat")["expected"]
    replay(fake_llm, "openai_chat")
    a = spans.one().attributes
    assert a[sc.RESPONSE_MODEL] == expected["response_model"]
    assert a[sc.RESPONSE_ID] == expected["response_id"]
    assert a[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert a[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert a[sc.USAGE_REASONING_OUTPUT_TOKENS] == expected["reasoning_tokens"]
    assert a[sc.RESPONSE_FINISH_REASONS] == (expected["finish_reason"],)
    assert a[sc.OPENAI_RESPONSE_SERVICE_TIER] == expected["service_tier"]
    assert a[sc.COST_STATUS] == "priced"


def test_recorded_chat_stream(fake_llm: Any, spans: SpanRecorder) -> None:
    expected = fixture("openai_chat_stream")["expected"]
    list(replay(fake_llm, "openai_chat_stream"))
    a = spans.one().attributes
    assert a[sc.RESPONSE_MODEL] == expected["response_model"]
    assert a[sc.RESPONSE_ID] == expected["response_id"]
    assert a[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert a[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert a[sc.RESPONSE_FINISH_REASONS] == (expected["finish_reason"],)
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == expected["output_text"]


def test_recorded_azure_stream_takes_id_and_model_after_the_content_filter_chunk(
    fake_llm: Any, spans: SpanRecorder
) -> None:
    """Azure opens a stream with a prompt-filter chunk whose id and model are empty."""
    expected = fixture("azure_openai_chat_stream")["expected"]
    list(replay(fake_llm, "azure_openai_chat_stream"))
    a = spans.one().attributes
    assert a[sc.RESPONSE_MODEL] == expected["response_model"]
    assert a[sc.RESPONSE_ID] == expected["response_id"]
    assert a[sc.RESPONSE_FINISH_REASONS] == (expected["finish_reason"],)
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == expected["output_text"]
    assert a[sc.USAGE_OUTPUT_TOKENS] == expected["content_chunks"]  # no usage chunk: estimated, one per chunk
    assert a[sc.USAGE_ESTIMATED] is True


def test_recorded_responses_stream(fake_llm: Any, spans: SpanRecorder) -> None:
    expected = fixture("openai_responses_stream")["expected"]
    list(replay(fake_llm, "openai_responses_stream"))
    a = spans.one().attributes
    assert a[sc.RESPONSE_MODEL] == expected["response_model"]
    assert a[sc.RESPONSE_ID] == expected["response_id"]
    assert a[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert a[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)  # status "completed" in Chat Completions' vocabulary
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == expected["output_text"]
