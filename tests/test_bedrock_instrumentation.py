"""The Bedrock adapter: the real boto3 ``bedrock-runtime`` client, SigV4-signed, over real HTTP against the fake
LLM's Bedrock endpoints (JSON, and AWS's binary event stream for the streaming operations)."""

from __future__ import annotations

import gc
import io
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EventStreamError
from botocore.stub import Stubber
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmtrace
from llmtrace import pricing
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.instrumentation import _bedrock_converse, _guard
from llmtrace.instrumentation import bedrock as adapter
from llmtrace.instrumentation._patching import LLMTraceWrapper
from tests.conftest import MEMORY_PROVIDER, run_script
from tests.provider_helpers import CONTENT_ATTRIBUTES, assert_recorded, content, recording, replaying

__all__ = ["replaying"]  # the shared fixture, one instance per module

# Prompt-cache points came to the Converse API after it first shipped (boto3 1.34.116, the oldest we test).
CACHE_POINTS = "cachePoint" in (
    botocore.session.get_session().get_service_model("bedrock-runtime").shape_for("SystemContentBlock").members
)
MODEL = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA = "amazon.nova-lite-v1:0"
HI = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                },
            }
        }
    ]
}


def client(fake: FakeLLM, **controls: str) -> Any:
    """A real bedrock-runtime client on the fake, no retries; ``controls`` become ``x-fake-*`` headers."""
    bedrock = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=fake.url,
        aws_access_key_id="AKIDFAKEFAKEFAKE",
        aws_secret_access_key="fake-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    headers = {f"x-fake-{name.replace('_', '-')}": value for name, value in controls.items()}
    if headers:

        def add_headers(request: Any, **_: Any) -> None:
            for name, value in headers.items():
                request.headers[name] = value

        bedrock.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
    return bedrock


def cost(model: str, usage: dict[str, int]) -> float | None:
    read, write = usage.get("cacheReadInputTokens", 0), usage.get("cacheWriteInputTokens", 0)
    tokens = pricing.TokenUsage(usage["inputTokens"] + read + write, usage["outputTokens"], read, write)
    return pricing.cost_usd("aws.bedrock", [model], tokens)


def text_of(response: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in response["output"]["message"]["content"])


# --- converse ----------------------------------------------------------------------------------


def test_converse_records_request_response_usage_and_cost(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).converse(
        modelId=MODEL,
        system=[{"text": "Answer briefly."}],
        messages=HI,
        inferenceConfig={"maxTokens": 200, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        additionalModelRequestFields={"top_k": 40},
    )

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION_NAME] == "chat"
    assert attrs[sc.PROVIDER_NAME] == "aws.bedrock"
    assert attrs[sc.REQUEST_MODEL] == MODEL
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(fake_llm.url.rsplit(":", 1)[1])
    assert attrs[sc.REQUEST_MAX_TOKENS] == 200
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert sc.REQUEST_STREAM not in attrs
    assert attrs[sc.RESPONSE_MODEL] == MODEL  # Converse names no model: Bedrock answered with the one asked for
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == response["usage"]["inputTokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response["usage"]["outputTokens"]
    assert attrs[sc.COST_STATUS] == "priced"
    assert attrs[sc.COST_USD] == pytest.approx(cost(MODEL, response["usage"]))
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Answer briefly."}]
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}
    ]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text_of(response)}], "finish_reason": "end_turn"}
    ]


def test_requests_are_signed_by_botocore(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).converse(modelId=NOVA, messages=HI)

    request = fake_llm.requests[-1]
    assert request["path"] == f"/model/{NOVA.replace(':', '%3A')}/converse"
    assert request["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDFAKEFAKEFAKE/")
    assert spans.one().attributes[sc.COST_STATUS] == "priced"


def test_max_tokens_stops_with_the_max_tokens_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).converse(modelId=NOVA, messages=HI, inferenceConfig={"maxTokens": 3})

    assert response["stopReason"] == "max_tokens"
    assert spans.one().attributes[sc.RESPONSE_FINISH_REASONS] == ("max_tokens",)
    assert spans.one().attributes[sc.USAGE_OUTPUT_TOKENS] == 3


RESULT = {"temperature": 18}


def test_tool_definitions_tool_use_and_tool_results_are_recorded(fake_llm: FakeLLM, spans: Any) -> None:
    bedrock = client(fake_llm)
    first = bedrock.converse(modelId=MODEL, messages=HI, toolConfig=WEATHER)
    call = first["output"]["message"]["content"][0]["toolUse"]
    result = {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"json": RESULT}]}}
    turns = [*HI, first["output"]["message"], {"role": "user", "content": [result]}]
    bedrock.converse(modelId=MODEL, messages=turns, toolConfig=WEATHER)

    calling, answering = spans.finished
    assert first["stopReason"] == "tool_use"
    assert calling.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert content(calling, sc.TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": WEATHER["tools"][0]["toolSpec"]["inputSchema"]["json"],
        }
    ]
    expected_call = {"type": "tool_call", "id": call["toolUseId"], "name": "get_weather", "arguments": call["input"]}
    assert content(calling, sc.OUTPUT_MESSAGES)[0]["parts"] == [expected_call]
    assert content(answering, sc.INPUT_MESSAGES)[1:] == [
        {"role": "assistant", "parts": [expected_call]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": call["toolUseId"], "response": RESULT}]},
    ]
    assert content(answering, sc.OUTPUT_MESSAGES)[0]["finish_reason"] == "end_turn"


def test_the_messages_recorded_are_those_sent_even_if_the_app_appends_right_after(
    fake_llm: FakeLLM, spans: Any
) -> None:
    messages = list(HI)
    response = client(fake_llm).converse(modelId=NOVA, messages=messages)
    messages.append(response["output"]["message"])

    assert [m["role"] for m in content(spans.one(), sc.INPUT_MESSAGES)] == ["user"]


@pytest.mark.skipif(not CACHE_POINTS, reason="this botocore's Converse API has no cachePoint blocks")
def test_cache_points_count_a_cache_write_then_reads_within_the_input_tokens(fake_llm: FakeLLM, spans: Any) -> None:
    system = [
        {"text": "You are a careful assistant for a long-running cache test. " * 40},
        {"cachePoint": {"type": "default"}},
    ]
    bedrock = client(fake_llm)
    writing = bedrock.converse(modelId=MODEL, system=system, messages=HI)
    reading = bedrock.converse(modelId=MODEL, system=system, messages=HI)

    first, second = (s.attributes for s in spans.finished)
    written = writing["usage"]["cacheWriteInputTokens"]
    assert written > 0 and reading["usage"]["cacheReadInputTokens"] == written
    assert first[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] == written and first[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert second[sc.USAGE_CACHE_READ_INPUT_TOKENS] == written
    assert second[sc.USAGE_INPUT_TOKENS] == reading["usage"]["inputTokens"] + written  # the conventions' count
    assert second[sc.COST_USD] == pytest.approx(cost(MODEL, reading["usage"]))
    assert second[sc.COST_USD] < first[sc.COST_USD]  # type: ignore[operator]
    assert content(spans.finished[0], sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": system[0]["text"]}]


@pytest.mark.parametrize(
    ("model_id", "recorded"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("eu.amazon.nova-micro-v1:0", "eu.amazon.nova-micro-v1:0"),
        ("meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        ),
    ],
)
def test_bedrock_model_ids_are_recorded_and_priced_as_billed(
    fake_llm: FakeLLM, spans: Any, model_id: str, recorded: str
) -> None:
    response = client(fake_llm).converse(modelId=model_id, messages=HI)

    attrs = spans.one().attributes
    assert attrs[sc.REQUEST_MODEL] == recorded
    assert attrs[sc.COST_USD] == pytest.approx(cost(recorded, response["usage"]))


def test_a_cross_region_profile_is_priced_apart_from_the_regional_id() -> None:
    tokens = pricing.TokenUsage(1000, 1000)
    regional = pricing.cost_usd("aws.bedrock", ["us.anthropic.claude-sonnet-4-5-20250929-v1:0"], tokens)
    worldwide = pricing.cost_usd("aws.bedrock", ["global.anthropic.claude-sonnet-4-5-20250929-v1:0"], tokens)

    assert regional is not None and worldwide is not None and regional > worldwide


APP_PROFILE = "arn:aws:bedrock:us-east-1:1:application-inference-profile/a1b2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("arn:aws:bedrock:eu-west-1::foundation-model/meta.llama3-8b-instruct-v1:0", "meta.llama3-8b-instruct-v1:0"),
        (APP_PROFILE, APP_PROFILE),
        ("arn:aws:bedrock:us-east-1:1:provisioned-model/xyz", "arn:aws:bedrock:us-east-1:1:provisioned-model/xyz"),
        ("", None),
        (None, None),
    ],
)  # fmt: skip
def test_model_ids_of_arns_are_the_id_they_end_with(value: Any, expected: str | None) -> None:
    assert adapter.model_id(value) == expected


# --- converse_stream ---------------------------------------------------------------------------


def test_converse_stream_records_ttft_text_usage_and_finish_reason(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).converse_stream(modelId=MODEL, messages=HI, inferenceConfig={"temperature": 0.5})
    events = list(response["stream"])

    span = spans.one()
    attrs = span.attributes
    usage = events[-1]["metadata"]["usage"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert span.name == f"chat {MODEL}"
    assert attrs[sc.REQUEST_STREAM] is True and attrs[sc.REQUEST_TEMPERATURE] == 0.5
    assert attrs[sc.STREAM_END] == "completed"
    assert span.end_time is not None and span.start_time is not None
    assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage["inputTokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
    assert attrs[sc.COST_USD] == pytest.approx(cost(MODEL, usage))
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "end_turn"}
    ]


def test_a_streamed_tool_use_is_assembled_from_its_deltas(fake_llm: FakeLLM, spans: Any) -> None:
    events = list(client(fake_llm).converse_stream(modelId=NOVA, messages=HI, toolConfig=WEATHER)["stream"])

    start = next(e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e)
    raw = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert content(spans.one(), sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": start["toolUseId"], "name": "get_weather", "arguments": json.loads(raw)}
            ],
            "finish_reason": "tool_use",
        }
    ]


def test_a_stream_closed_early_ends_its_span_once_with_what_was_read(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm).converse_stream(modelId=NOVA, messages=HI)["stream"]
    events = iter(stream)
    next(events)  # messageStart
    first = next(events)["contentBlockDelta"]["delta"]["text"]
    stream.close()

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "closed"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first}]
    assert sc.RESPONSE_FINISH_REASONS not in span.attributes
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes  # usage comes last, and was never read


def test_a_stream_read_partially_and_dropped_ends_its_span_as_abandoned(fake_llm: FakeLLM, spans: Any) -> None:
    response = client(fake_llm).converse_stream(modelId=NOVA, messages=HI)
    for _event in response["stream"]:
        break
    del response, _event
    gc.collect()

    assert spans.one().attributes[sc.STREAM_END] == "abandoned"


def test_a_stream_never_read_still_ends_its_span(fake_llm: FakeLLM, spans: Any) -> None:
    client(fake_llm).converse_stream(modelId=NOVA, messages=HI)
    gc.collect()

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "abandoned"
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes


def test_an_error_mid_stream_marks_the_span_and_reaches_the_app(fake_llm: FakeLLM, spans: Any) -> None:
    stream = client(fake_llm, stream_error_after="2").converse_stream(modelId=NOVA, messages=HI)["stream"]
    seen = []
    with pytest.raises(EventStreamError) as caught:
        for event in stream:
            seen.append(event)

    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "botocore.exceptions.EventStreamError"
    assert span.attributes[sc.STREAM_END] == "error"
    assert len(content(span, sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"].split()) == 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [("429", "ThrottlingException"), ("500", "InternalServerException"), ("400", "ValidationException")],
)
@pytest.mark.parametrize(
    "operation", ["converse", "converse_stream", "invoke_model", "invoke_model_with_response_stream"]
)
def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, code: str, operation: str
) -> None:
    bedrock = client(fake_llm, status=status)
    call = getattr(bedrock, operation)
    arguments: dict[str, Any] = (
        {"messages": HI} if operation.startswith("converse") else {"body": json.dumps({"prompt": "hi"})}
    )
    with pytest.raises(ClientError) as caught:
        call(modelId="meta.llama3-8b-instruct-v1:0", **arguments)

    assert type(caught.value) is getattr(bedrock.exceptions, code)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(status)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"botocore.errorfactory.{code}"
    assert sc.USAGE_INPUT_TOKENS not in span.attributes


def test_an_internal_error_leaves_the_app_result_intact_and_ends_the_span(
    fake_llm: FakeLLM, spans: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(body: Any, response_id: Any = None) -> Any:
        raise RuntimeError("adapter bug")

    monkeypatch.setenv("LLMTRACE_STRICT", "0")
    monkeypatch.setattr(_guard, "_reported", set())
    monkeypatch.setattr(_bedrock_converse, "response", broken)
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        response = client(fake_llm).converse(modelId=NOVA, messages=HI)

    assert text_of(response).startswith("Echo:")
    span = spans.one()
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes and span.attributes[sc.REQUEST_MODEL] == NOVA
    assert "your application is unaffected" in caplog.text


# --- invoke_model: the model families' own bodies ------------------------------------------------

FAMILIES = {
    "anthropic": (
        "anthropic.claude-3-haiku-20240307-v1:0",
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "temperature": 0.3,
         "system": "Be brief.", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
        "chat", "end_turn",
    ),
    "nova": (
        NOVA,
        {"schemaVersion": "messages-v1", "system": [{"text": "Be brief."}], "messages": HI,
         "inferenceConfig": {"max_new_tokens": 100, "temperature": 0.3}},
        "chat", "end_turn",
    ),
    "titan": (
        "amazon.titan-text-express-v1",
        {"inputText": "What is the capital of France?",
         "textGenerationConfig": {"maxTokenCount": 100, "temperature": 0.3}},
        "text_completion", "FINISH",
    ),
    "llama": (
        "meta.llama3-1-70b-instruct-v1:0",
        {"prompt": "What is the capital of France?", "max_gen_len": 100, "temperature": 0.3},
        "text_completion", "stop",
    ),
    "mistral": (
        "mistral.mistral-7b-instruct-v0:2",
        {"prompt": "<s>[INST] What is the capital of France? [/INST]", "max_tokens": 100, "temperature": 0.3},
        "text_completion", "stop",
    ),
    "mistral_chat": (
        "mistral.mistral-large-2407-v1:0",
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "What is the capital of France?"}],
         "max_tokens": 100, "temperature": 0.3},
        "chat", "stop",
    ),
    "cohere": (
        "cohere.command-r-v1:0",
        {"message": "What is the capital of France?", "preamble": "Be brief.", "max_tokens": 100, "temperature": 0.3},
        "chat", "COMPLETE",
    ),
}  # fmt: skip


def _reply_text(family: str, body: dict[str, Any]) -> str:
    """The answer's text, read from the body the app got, the family's own way."""
    if family == "anthropic":
        return str(body["content"][0]["text"])
    if family == "nova":
        return text_of(body)
    if family == "titan":
        return str(body["results"][0]["outputText"])
    if family == "llama":
        return str(body["generation"])
    if family == "mistral":
        return str(body["outputs"][0]["text"])
    if family == "mistral_chat":
        return str(body["choices"][0]["message"]["content"])
    return str(body["text"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_invoke_model_records_each_familys_body(fake_llm: FakeLLM, spans: Any, family: str) -> None:
    model, request, operation, reason = FAMILIES[family]
    response = client(fake_llm).invoke_model(modelId=model, body=json.dumps(request))
    body = json.loads(response["body"].read())  # the app reads the body as usual, after llmtrace did

    headers = response["ResponseMetadata"]["HTTPHeaders"]
    span = spans.one()
    attrs = span.attributes
    assert span.name == f"{operation} {model}"
    assert attrs[sc.OPERATION_NAME] == operation
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100 and attrs[sc.REQUEST_TEMPERATURE] == 0.3
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == int(headers["x-amzn-bedrock-input-token-count"])
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(headers["x-amzn-bedrock-output-token-count"])
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": _reply_text(family, body)}]
    assert content(span, sc.INPUT_MESSAGES)[-1]["role"] == "user"
    assert "capital of France" in json.dumps(content(span, sc.INPUT_MESSAGES))
    if family in ("anthropic", "nova", "cohere", "mistral_chat"):
        assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    if family == "anthropic":
        assert attrs[sc.RESPONSE_ID] == body["id"] and attrs[sc.RESPONSE_MODEL] == body["model"]
    tokens = pricing.TokenUsage(attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS])  # type: ignore[arg-type]
    assert attrs.get(sc.COST_USD) == pytest.approx(pricing.cost_usd("aws.bedrock", [model], tokens))
    assert attrs[sc.COST_STATUS] == "priced"  # Cohere and Mistral Large 2407 on Bedrock: llmtrace's price supplement


def test_the_body_the_app_reads_is_the_body_bedrock_sent(fake_llm: FakeLLM, spans: Any) -> None:
    model, request, _, _ = FAMILIES["llama"]
    response = client(fake_llm).invoke_model(modelId=model, body=json.dumps(request))
    lines = list(response["body"].iter_lines())

    raw = b"".join(lines)
    assert json.loads(raw)["generation"].startswith("Echo:")
    assert len(raw) == int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    assert response["body"].read() == b""  # consumed once, as a StreamingBody is
    assert spans.one().attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]


@pytest.fixture
def cut_off_server() -> Iterator[str]:
    """A local HTTP server whose 200 reply promises a longer body than it sends before hanging up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += connection.recv(65536)
            reply = b'{"generation": "Echo: cut'
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 200\r\n\r\n" + reply)  # fmt: skip

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    thread.join(10)
    listener.close()


def test_an_invoke_body_cut_off_mid_read_is_an_error_raised_by_the_call(cut_off_server: str, spans: Any) -> None:
    bedrock = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=cut_off_server,
                           aws_access_key_id="a", aws_secret_access_key="b",
                           config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    model, request, _, _ = FAMILIES["llama"]
    with pytest.raises(BotoCoreError) as caught:
        bedrock.invoke_model(modelId=model, body=json.dumps(request))

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"botocore.exceptions.{type(caught.value).__name__}"
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes


def test_a_file_object_body_is_sent_untouched_and_the_span_has_usage(fake_llm: FakeLLM, spans: Any) -> None:
    model, request, _, _ = FAMILIES["titan"]
    response = client(fake_llm).invoke_model(modelId=model, body=io.BytesIO(json.dumps(request).encode()))

    assert json.loads(response["body"].read())["results"][0]["outputText"].startswith("Echo:")
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_INPUT_TOKENS] > 0 and sc.INPUT_MESSAGES not in attrs  # type: ignore[operator]


def test_anthropic_tool_definitions_and_tool_use_are_recorded_from_the_native_body(
    fake_llm: FakeLLM, spans: Any
) -> None:
    tool = {"name": "get_weather", "description": "Current weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
    request = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "tools": [tool], "messages": "Paris?"}
    request["messages"] = [{"role": "user", "content": "Weather in Paris?"}]
    body = json.loads(client(fake_llm).invoke_model(modelId=MODEL, body=json.dumps(request))["body"].read())

    span = spans.one()
    use = body["content"][0]
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": use["id"], "name": "get_weather", "arguments": use["input"]}
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)


@pytest.mark.parametrize(
    ("model", "request_body", "dimensions"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": "What is the capital of France?", "dimensions": 256}, 256),
        ("cohere.embed-english-v3", {"texts": ["capital of France", "of Spain"], "input_type": "search_query"}, 1024),
    ],
)  # fmt: skip
def test_embedding_models_record_embeddings_with_input_tokens_and_dimensions(
    fake_llm: FakeLLM, spans: Any, model: str, request_body: dict[str, Any], dimensions: int
) -> None:
    response = client(fake_llm).invoke_model(modelId=model, body=json.dumps(request_body))
    body = json.loads(response["body"].read())

    span = spans.one()
    attrs = span.attributes
    tokens = int(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"])
    vector = body["embedding"] if "embedding" in body else body["embeddings"][0]
    assert span.name == f"embeddings {model}" and attrs[sc.OPERATION_NAME] == "embeddings"
    assert attrs[sc.USAGE_INPUT_TOKENS] == tokens and sc.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == dimensions == len(vector)
    assert not set(CONTENT_ATTRIBUTES) & set(attrs)
    priced = pricing.cost_usd("aws.bedrock", [model], pricing.TokenUsage(tokens, 0))
    assert attrs.get(sc.COST_USD) == pytest.approx(priced)


def test_mistral_chat_tool_calls_are_recorded_with_their_arguments_parsed(fake_llm: FakeLLM, spans: Any) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
    request = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [tool]}
    response = client(fake_llm).invoke_model(modelId="mistral.mistral-large-2407-v1:0", body=json.dumps(request))
    call = json.loads(response["body"].read())["choices"][0]["message"]["tool_calls"][0]

    span = spans.one()
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "get_weather"
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": call["id"], "name": "get_weather",
                       "arguments": json.loads(call["function"]["arguments"])}],
            "finish_reason": "tool_calls",
        }
    ]  # fmt: skip


@pytest.mark.parametrize("family", list(FAMILIES))
def test_invoke_model_with_response_stream_records_each_familys_chunks(
    fake_llm: FakeLLM, spans: Any, family: str
) -> None:
    model, request, operation, reason = FAMILIES[family]
    response = client(fake_llm).invoke_model_with_response_stream(modelId=model, body=json.dumps(request))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]

    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    span = spans.one()
    attrs = span.attributes
    assert span.name == f"{operation} {model}"
    assert attrs[sc.REQUEST_STREAM] is True and attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == metrics["inputTokenCount"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == metrics["outputTokenCount"]
    text = content(span, sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"]
    assert text.startswith("Echo: What is the capital of France?") or text.startswith("Echo: <s>[INST]")
    assert len(text.split()) == metrics["outputTokenCount"]


def test_an_invoke_stream_closed_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    model, request, _, _ = FAMILIES["llama"]
    stream = client(fake_llm).invoke_model_with_response_stream(modelId=model, body=json.dumps(request))["body"]
    first = json.loads(next(iter(stream))["chunk"]["bytes"])
    stream.close()

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "closed"
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": first["generation"]}]


def test_an_error_mid_invoke_stream_marks_the_span(fake_llm: FakeLLM, spans: Any) -> None:
    model, request, _, _ = FAMILIES["anthropic"]
    bedrock = client(fake_llm, stream_error_after="1")
    stream = bedrock.invoke_model_with_response_stream(modelId=model, body=json.dumps(request))["body"]
    with pytest.raises(EventStreamError):
        list(stream)

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "error" and span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.USAGE_INPUT_TOKENS] > 0  # type: ignore[operator]  # from message_start


# --- other AWS calls, content off, lazy patching -----------------------------------------------


def test_other_aws_operations_pass_through_without_a_span(spans: Any) -> None:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::1:user/x", "UserId": "x"}
        )
        identity = sts.get_caller_identity()

    assert identity["Account"] == "123456789012"
    assert spans.finished == []


def test_bedrock_control_plane_calls_are_not_traced(fake_llm: FakeLLM, spans: Any) -> None:
    control = boto3.client("bedrock", region_name="us-east-1", endpoint_url=fake_llm.url,
                           aws_access_key_id="a", aws_secret_access_key="b")  # fmt: skip
    with Stubber(control) as stub:
        stub.add_response("list_foundation_models", {"modelSummaries": []})
        assert control.list_foundation_models()["modelSummaries"] == []

    assert spans.finished == []


def test_content_capture_off_records_no_content(fake_llm: FakeLLM) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmtrace.instrument(tracer_provider=provider, capture_content=False)
    try:
        bedrock = client(fake_llm)
        bedrock.converse(modelId=NOVA, system=[{"text": "secret"}], messages=HI, toolConfig=WEATHER)
        list(bedrock.converse_stream(modelId=NOVA, messages=HI)["stream"])
        model, request, _, _ = FAMILIES["anthropic"]
        bedrock.invoke_model(modelId=model, body=json.dumps(request))["body"].read()
    finally:
        llmtrace.uninstrument()

    finished = exporter.get_finished_spans()
    assert len(finished) == 3
    for span in finished:
        assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes)


def test_instrument_does_not_import_botocore_and_patches_it_when_the_app_does(fake_llm: FakeLLM) -> None:
    result = run_script(
        f"""
        import sys
        llmtrace.instrument(tracer_provider=provider)
        before = sorted(m for m in sys.modules if m.startswith(("boto3", "botocore")))
        import boto3
        bedrock = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url={fake_llm.url!r},
                               aws_access_key_id="a", aws_secret_access_key="b")
        bedrock.converse(modelId="{NOVA}", messages=[{{"role": "user", "content": [{{"text": "hi"}}]}}])
        llmtrace.uninstrument()
        from botocore.client import BaseClient
        from llmtrace.instrumentation._patching import LLMTraceWrapper
        restored = not isinstance(vars(BaseClient)["_make_api_call"], LLMTraceWrapper)
        print(before, restored, [s.name for s in exporter.get_finished_spans()])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[] True ['chat {NOVA}']"


def test_make_api_call_is_patched_while_instrumented(recorder: Any) -> None:
    from botocore.client import BaseClient

    assert isinstance(vars(BaseClient)["_make_api_call"], LLMTraceWrapper)


# --- recorded real traffic ---------------------------------------------------------------------

JSON_RECORDINGS = [
    "bedrock_invoke_anthropic", "bedrock_invoke_llama", "bedrock_invoke_cohere_r", "bedrock_invoke_mistral",
    "bedrock_invoke_titan", "bedrock_invoke_nova", "bedrock_converse_tool_call",
    pytest.param("bedrock_converse_prompt_caching", marks=pytest.mark.skipif(
        not CACHE_POINTS, reason="this botocore drops the cache counters from Converse's usage")),
]  # fmt: skip
STREAM_RECORDINGS = ["bedrock_converse_stream", "bedrock_invoke_stream_anthropic", "bedrock_invoke_stream_titan"]


def _replay(replaying: FakeLLM, name: str) -> tuple[dict[str, Any], Any]:
    """Send the recorded request to the fake, which answers with the recorded response."""
    record = recording(name)
    model, operation = record["request"]["path"].split("/")[2:4]
    model = model.replace("%3A", ":")
    sent = record["request"]["json"]
    bedrock = client(replaying, replay=name)
    if operation == "converse":
        return record, bedrock.converse(modelId=model, **sent)
    if operation == "converse-stream":
        return record, list(bedrock.converse_stream(modelId=model, **sent)["stream"])
    if operation == "invoke":
        return record, bedrock.invoke_model(modelId=model, body=json.dumps(sent))["body"].read()
    return record, list(bedrock.invoke_model_with_response_stream(modelId=model, body=json.dumps(sent))["body"])


@pytest.mark.parametrize("name", JSON_RECORDINGS + STREAM_RECORDINGS)
def test_replayed_real_responses_are_recorded_as_bedrock_sent_them(replaying: FakeLLM, spans: Any, name: str) -> None:
    record, _ = _replay(replaying, name)

    expected = record["expected"]
    assert_recorded(spans.one(), expected)
    attrs = spans.one().attributes
    assert attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS) == expected.get(
        "cache_read_tokens", attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS)
    )
    parts = content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"]
    if "text" in expected:
        assert parts[0] == {"type": "text", "content": expected["text"]}
    for part, (call_id, name_, arguments) in zip(parts[1:], expected.get("tool_calls", []), strict=True):
        assert part == {"type": "tool_call", "id": call_id, "name": name_, "arguments": arguments}


def test_a_replayed_invalid_model_error_is_a_validation_exception_on_the_span(replaying: FakeLLM, spans: Any) -> None:
    with pytest.raises(ClientError) as caught:
        _replay(replaying, "bedrock_converse_invalid_model")

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"] == "The provided model identifier is invalid."
    span = spans.one()
    assert span.attributes[sc.ERROR_TYPE] == "botocore.errorfactory.ValidationException"
    assert span.status.description == str(caught.value)
