"""The calls the overhead benchmark makes: each SDK's real client over an in-process HTTP transport.

One :class:`Sdk` per provider says how to build its clients, make a completion or a 50-chunk
stream, and what any tool reporting output must read (each chunk's text, the reply's text and
usage). Bodies have the provider's real wire shapes, so the SDK's own parsing runs in full.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai

CHUNKS = 50
MESSAGES = [{"role": "user", "content": "Summarise the report."}]


def _http_library(sdk: Any) -> Any:
    """The HTTP library this SDK version is built on (httpx2 or httpx): its client must come from it."""
    base = sdk._base_client
    return getattr(base, "httpx2", None) or base.httpx


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
    return "".join(lines).encode()


def _openai_completion() -> bytes:
    usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    message = {"role": "assistant", "content": "A short summary of the report."}
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_1",
            "service_tier": "default",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {
                **usage,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    ).encode()


def _openai_stream() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> tuple[None, dict[str, Any]]:
        body: dict[str, Any] = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            body["usage"] = usage
        return None, body

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f"w{i} "}) for i in range(CHUNKS)]
    events += [
        chunk({}, "stop"),
        chunk({}, usage={"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 70}),
    ]
    return _sse(events) + b"data: [DONE]\n\n"


_CLAUDE = "claude-sonnet-4-5-20250929"
_USAGE = {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def _anthropic_message() -> bytes:
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": _CLAUDE,
            "content": [{"type": "text", "text": "A short summary of the report."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {**_USAGE, "output_tokens": 8},
        }
    ).encode()


def _anthropic_stream() -> bytes:
    start = {"id": "msg_bench", "type": "message", "role": "assistant", "model": _CLAUDE, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {**_USAGE, "output_tokens": 1}}  # fmt: skip
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
    ]
    events[1][1]["content_block"]["text"] = ""
    delta = {"type": "content_block_delta", "index": 0}
    events += [
        ("content_block_delta", {**delta, "delta": {"type": "text_delta", "text": f"w{i} "}}) for i in range(CHUNKS)
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": CHUNKS}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return _sse(events)


@dataclass(frozen=True)
class Sdk:
    """One provider's SDK as the benchmark drives it."""

    name: str
    module: Any
    completion: bytes
    stream: bytes
    kwargs: Callable[[bool], dict[str, Any]]
    resource: Callable[[Any], Any]  # client -> the object whose ``create`` is called
    chunk_text: Callable[[Any], str | None]  # what a tool reporting output reads from each chunk
    reply: Callable[[Any], Any]  # what it reads from a completion

    def handler(self, library: Any) -> Callable[[Any], Any]:
        def handle(request: Any) -> Any:
            if json.loads(request.content).get("stream"):
                return library.Response(200, content=self.stream, headers={"content-type": "text/event-stream"})
            return library.Response(200, content=self.completion, headers={"content-type": "application/json"})

        return handle

    def clients(self) -> tuple[Any, Any]:
        """A sync and an async client over an in-process transport serving this SDK's bodies."""
        library = _http_library(self.module)
        transport = library.MockTransport(self.handler(library))
        common = {"api_key": "bench", "max_retries": 0}
        if self.name == "openai":
            base = "https://api.openai.com/v1"
            return (
                openai.OpenAI(base_url=base, http_client=library.Client(transport=transport), **common),
                openai.AsyncOpenAI(base_url=base, http_client=library.AsyncClient(transport=transport), **common),
            )
        base = "https://api.anthropic.com"
        return (
            anthropic.Anthropic(base_url=base, http_client=library.Client(transport=transport), **common),
            anthropic.AsyncAnthropic(base_url=base, http_client=library.AsyncClient(transport=transport), **common),
        )

    def call(self, client: Any, stream: bool) -> Any:
        return self.resource(client).create(**self.kwargs(stream))


def _openai_kwargs(stream: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": stream}
    if stream:
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def _openai_text(chunk: Any) -> str | None:
    return chunk.choices[0].delta.content if chunk.choices else None


def _anthropic_text(event: Any) -> str | None:
    return event.delta.text if event.type == "content_block_delta" else None


OPENAI = Sdk(
    name="openai",
    module=openai,
    completion=_openai_completion(),
    stream=_openai_stream(),
    kwargs=_openai_kwargs,
    resource=lambda client: client.chat.completions,
    chunk_text=_openai_text,
    reply=lambda result: (result.choices[0].message.content, result.usage),
)
ANTHROPIC = Sdk(
    name="anthropic",
    module=anthropic,
    completion=_anthropic_message(),
    stream=_anthropic_stream(),
    kwargs=lambda stream: {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": MESSAGES, "stream": stream},
    resource=lambda client: client.messages,
    chunk_text=_anthropic_text,
    reply=lambda result: (result.content[0].text, result.usage),
)
SDKS = (OPENAI, ANTHROPIC)
