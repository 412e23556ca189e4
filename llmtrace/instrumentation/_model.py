"""What a provider adapter hands to the shared core: a parsed request and a parsed response.

Adapters only translate SDK objects into these; everything that touches OpenTelemetry
lives in :mod:`llmtrace.instrumentation._core`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.util.types import AttributeValue

Part = dict[str, Any]
"""A GenAI-semconv message part, e.g. ``{"type": "text", "content": "hi"}``."""

Message = dict[str, Any]
"""``{"role": ..., "parts": [...], "name"?: ..., "finish_reason"?: ...}``."""


@dataclass(slots=True)
class Request:
    """One call as the app made it."""

    operation: str
    provider: str
    model: str | None
    stream: bool = False
    server_address: str | None = None
    server_port: int | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    system_instructions: list[Part] | None = None
    input_messages: list[Message] | None = None
    tool_definitions: list[dict[str, Any]] | None = None
    one_text_choice: bool = False
    """The call can only stream one choice of text (no tools, one completion): stream folds may read less."""
    priced_by_request_model: bool = False
    """Price by the requested model id before the response's model name (Bedrock: the id, with its region
    prefix, is what the call is billed under; the response body names only the base model)."""


@dataclass(slots=True)
class Usage:
    """Token counts with the conventions' meaning: input includes cache, output includes reasoning."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False


@dataclass(slots=True)
class Response:
    """What came back, from a complete response or an accumulated stream."""

    id: str | None = None
    model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    output_messages: list[Message] | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


class StreamAccumulator(Protocol):
    """Folds stream chunks into a :class:`Response`; one instance per stream.

    An accumulator may also have ``tail() -> Callable[[chunk], object]``: called once after the
    first chunk that carried output, it returns the fold for every later chunk (a leaner one for
    the stream's now known shape); without it, ``add`` folds every chunk. For sync streams it may
    also have ``follow(chunks, head=None, end=None) -> Iterator``: a generator that yields every
    chunk unchanged, folding each inline as it passes (a call per chunk, on caches the SDK's work
    between two chunks has made cold, cost ~10 µs per 50-chunk OpenAI stream, measured in one
    process). Given the core's ``head`` and ``end`` it is the whole stream, the one generator the
    app iterates (a second one resumed per chunk cost ~15 µs more per OpenAI stream): it starts
    with ``yield from _streams.lead(chunks, head)`` (the chunks up to the first output, folded and
    timed by the core), calls ``end("error", exc)`` and re-raises when the SDK's iteration raises
    (not on ``GeneratorExit``: closing ends the span elsewhere), and ``end("completed", None)`` when
    the chunks run out. Without them it folds chunks after that first output (tests). It must
    never raise for llmtrace's own failures: ``_streams.fold_or_stop`` reports one and says to
    stop folding.
    """

    def add(self, chunk: Any) -> bool:
        """Take one chunk; return True when it carried output (text, tool call) for time to first token."""
        ...

    def result(self, request: Request) -> Response:
        """The response so far (also called when the stream ended early)."""
        ...


def estimate_tokens(text_chars: int) -> int:
    """A rough token count for text of this length (about four characters per token)."""
    return math.ceil(text_chars / 4) if text_chars > 0 else 0


def text_part(content: str) -> Part:
    return {"type": "text", "content": content}


def tool_call_part(call_id: str | None, name: str | None, arguments: Any) -> Part:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}
