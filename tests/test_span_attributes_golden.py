"""Every attribute of a span, byte for byte, as the code before the per-call speed-ups set it.

The real openai and anthropic SDKs call an in-process transport serving fixed wire bodies (tools,
tool calls, cache counts, non-ASCII text, sampling parameters, prompt variables, a stream without
usage, an unpriced model, content past the length limit). Each span's attributes, minus the one
timing value, are compared with ``fixtures/span_attributes_golden.json``, recorded by running this
module with the code of commit 7cb4f54 (``python -m tests.test_span_attributes_golden``): a faster
enrichment path must set exactly the same keys, types and values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtrace
from llmtrace import semconv as sc

GOLDEN = Path(__file__).parent / "fixtures" / "span_attributes_golden.json"
_TIMING = {sc.RESPONSE_TIME_TO_FIRST_CHUNK}  # wall-clock dependent: checked for presence only


def _sse(events: list[tuple[str | None, dict[str, Any]]], done: bool = False) -> bytes:
    lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def _openai_body(model: str) -> bytes:
    message = {
        "role": "assistant",
        "content": "Voilà — 天气 is fine.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Zürich"}'}}
        ],
    }
    return json.dumps(
        {
            "id": "chatcmpl-golden",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "system_fingerprint": "fp_golden",
            "service_tier": "default",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 17,
                "total_tokens": 137,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        }
    ).encode()


def _openai_stream(usage: bool) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        body = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
        return None, {**body, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in ("Grüß ", "dich, ", "wörld ", "✓")]
    events.append(chunk({}, "stop"))
    if usage:
        tail = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
        events.append((None, {**tail, "choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 4}}))
    return _sse(events, done=True)


def _anthropic_body() -> bytes:
    return json.dumps(
        {
            "id": "msg_golden",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "text", "text": "Looking it up — un momento."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Kraków"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 40,
                "cache_creation_input_tokens": 10,
                "cache_read_input_tokens": 200,
                "output_tokens": 22,
            },
        }
    ).encode()


def _anthropic_stream() -> bytes:
    usage = {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
    start = {"id": "msg_s", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
             "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
    delta = {"type": "content_block_delta", "index": 0}
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]  # fmt: skip
    events += [("content_block_delta", {**delta, "delta": {"type": "text_delta", "text": t}}) for t in ("Ça ", "va ✓")]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return _sse(events)


def _http_library(sdk: Any) -> Any:
    base = sdk._base_client
    return getattr(base, "httpx2", None) or base.httpx


def _openai_client(body: bytes, stream: bool) -> openai.OpenAI:
    library = _http_library(openai)
    kind = "text/event-stream" if stream else "application/json"
    transport = library.MockTransport(
        lambda request: library.Response(200, content=body, headers={"content-type": kind})
    )
    return openai.OpenAI(
        base_url="https://api.openai.com/v1",
        api_key="k",
        max_retries=0,
        http_client=library.Client(transport=transport),
    )


def _anthropic_client(body: bytes, stream: bool) -> anthropic.Anthropic:
    library = _http_library(anthropic)
    kind = "text/event-stream" if stream else "application/json"
    transport = library.MockTransport(
        lambda request: library.Response(200, content=body, headers={"content-type": kind})
    )
    return anthropic.Anthropic(
        base_url="https://api.anthropic.com",
        api_key="k",
        max_retries=0,
        http_client=library.Client(transport=transport),
    )


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
CHAT = [
    {"role": "system", "content": "You are terse. Answer in the user's language."},
    {"role": "user", "content": "Weather in Zürich for Ana?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c0", "type": "function", "function": {"name": "weather", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c0", "content": "sunny, 21°C"},
    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}], "name": "ana"},
]


def _openai_chat() -> None:
    client = _openai_client(_openai_body("gpt-4o-mini-2024-07-18"), False)
    with llmtrace.prompt("weather", 3, variables={"who": "Ana"}), llmtrace.attributes(user_id="u1", session_id="s1"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=CHAT,
            tools=TOOLS,
            temperature=0.25,
            top_p=0.9,
            max_tokens=300,
            seed=7,
            stop=["END", "STOP"],
            frequency_penalty=0.5,
            presence_penalty=0.0,
            response_format={"type": "json_object"},
            service_tier="default",
        )


def _openai_unpriced() -> None:
    client = _openai_client(_openai_body("no-such-model-x"), False)
    client.chat.completions.create(model="no-such-model-x", messages=[{"role": "user", "content": "x" * 5000}])


def _openai_stream_usage() -> None:
    client = _openai_client(_openai_stream(True), True)
    messages = [{"role": "developer", "content": "Be kind."}, {"role": "user", "content": "Grüße?"}]
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    ):
        pass


def _openai_stream_estimated() -> None:
    client = _openai_client(_openai_stream(False), True)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=CHAT[:2], stream=True, temperature=1):
        pass


def _anthropic_message() -> None:
    client = _anthropic_client(_anthropic_body(), False)
    with llmtrace.prompt("lookup"):
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=512,
            system="You look things up.",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "Weather in Kraków?"}]},
                {"role": "assistant", "content": "Checking."},
                {"role": "user", "content": "Please."},
            ],
            tools=[{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
            extra_body={"temperature": 0.3, "top_k": 40},  # newer SDKs dropped them from the signature
            stop_sequences=["\n\nHuman:"],
        )


def _anthropic_stream_call() -> None:
    client = _anthropic_client(_anthropic_stream(), True)
    system = [{"type": "text", "text": "Short answers."}]
    messages = [{"role": "user", "content": "Ça va ?"}]
    for _ in client.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, system=system, messages=messages, stream=True
    ):
        pass


SCENARIOS: dict[str, Callable[[], None]] = {
    "openai chat": _openai_chat,
    "openai unpriced": _openai_unpriced,
    "openai stream with usage": _openai_stream_usage,
    "openai stream estimated": _openai_stream_estimated,
    "anthropic message": _anthropic_message,
    "anthropic stream": _anthropic_stream_call,
}


def _encoded(value: Any) -> str:
    """Type and value exactly (``repr``: 1 vs 1.0 vs True, tuple vs str)."""
    return repr(value)


def record() -> dict[str, dict[str, str]]:
    """Each scenario's span attributes (timing ones as ``<present>``), content capture on."""
    out: dict[str, dict[str, str]] = {}
    for name, scenario in SCENARIOS.items():
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        llmtrace.instrument(
            tracer_provider=provider, capture_content=True, max_content_chars=4000, environment="test", release="r1"
        )
        try:
            scenario()
            llmtrace.flush()
        finally:
            llmtrace.uninstrument()
        (span,) = exporter.get_finished_spans()
        attributes = dict(span.attributes or {})
        out[name] = {
            key: "<present>" if key in _TIMING else _encoded(value) for key, value in sorted(attributes.items())
        }
        out[name]["<span name>"] = span.name
    return out


@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[str, dict[str, str]]]:
    yield record()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_span_attributes_are_byte_for_byte_the_golden_ones(recorded: dict[str, dict[str, str]], scenario: str) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert recorded[scenario] == golden[scenario]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    target.write_text(json.dumps(record(), indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
