"""Anthropic-shaped endpoint of the fake LLM: ``POST /v1/messages``, streamed or not.

Follows the real Messages API: ``msg_01...`` ids, usage with cache counters, ``tool_use``
blocks, ``max_tokens`` stops and the streaming event sequence (``message_start`` ...
``message_stop``) that ``client.messages.stream()`` accumulates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmtrace.demo.fake_llm_common import (
    Context,
    Frame,
    JsonReply,
    Reply,
    SseReply,
    count_tokens,
    json_reply,
    new_id,
    reply_words,
    sample_from_schema,
    sse_frame,
    text_chunks,
    word_chunks,
)

_SNAPSHOTS = {
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
}
_ERRORS = {
    400: ("invalid_request_error", "Invalid request (the fake LLM was asked for a 400)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def response_headers() -> dict[str, str]:
    return {
        "request-id": new_id("req_011C", 20),
        "anthropic-organization-id": "00000000-0000-4000-8000-fake11m00000",
    }


def error_body(status: int, message: str | None = None, kind: str | None = None) -> dict[str, Any]:
    default_kind, default_message = _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
    error = {"type": kind or default_kind, "message": message or default_message or f"HTTP {status}"}
    return {"type": "error", "error": error, "request_id": new_id("req_011C", 20)}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    """Anthropic's error JSON; ``retry-after-ms`` makes SDK retries instant."""
    headers = response_headers()
    if status == 429 or status >= 500:
        headers |= {"retry-after": "0", "retry-after-ms": "1"}
    return json_reply(status, error_body(status, message), headers)


def stream_error_frame(_position: int) -> Frame:
    """The mid-stream ``event: error`` Anthropic sends when overloaded; the SDK raises on it."""
    return sse_frame(error_body(529, kind="overloaded_error"), event="error")


@dataclass
class _Segment:
    text: str
    cached: bool  # carries ``cache_control``: the cacheable prefix ends here


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return json.dumps(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        return content if isinstance(content, str) else " ".join(_block_text(b) for b in content)
    return ""


def _blocks(content: Any) -> list[Any]:
    return [content] if isinstance(content, str) else list(content or [])


def _segments(body: dict[str, Any]) -> list[_Segment]:
    """The prompt in cache order (tools, system, messages), one segment per block."""
    segments = [
        _Segment(json.dumps({k: v for k, v in t.items() if k != "cache_control"}), "cache_control" in t)
        for t in body.get("tools") or []
    ]
    for block in _blocks(body.get("system")):
        segments.append(_Segment(_block_text(block), isinstance(block, dict) and "cache_control" in block))
    for message in body.get("messages") or []:
        for block in _blocks(message.get("content")):
            segments.append(_Segment(_block_text(block), isinstance(block, dict) and "cache_control" in block))
    return segments


def _input_usage(body: dict[str, Any], ctx: Context) -> dict[str, int]:
    """Input tokens split like the real API: uncached input, cache writes, cache reads."""
    segments = _segments(body)
    tokens = [count_tokens(s.text) for s in segments]
    overhead = 3 * len(body.get("messages") or [])
    last_cached = max((i for i, s in enumerate(segments) if s.cached), default=-1)
    prefix = sum(tokens[: last_cached + 1])
    usage = {"input_tokens": sum(tokens) + overhead - prefix, "cache_creation_input_tokens": 0}
    usage["cache_read_input_tokens"] = 0
    if last_cached >= 0:
        key = json.dumps([body.get("model"), [s.text for s in segments[: last_cached + 1]]])
        bucket = "cache_read_input_tokens" if ctx.cache.seen_before(key) else "cache_creation_input_tokens"
        usage[bucket] = prefix
    return usage


def _chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    # Client tools carry an input_schema; server tools (web search, ...) are not answered with tool_use.
    tools: list[dict[str, Any]] = [t for t in body.get("tools") or [] if "input_schema" in t]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in _blocks(last.get("content"))):
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
    return tools[0]


@dataclass
class _Planned:
    block: dict[str, Any]  # the finished content block
    pieces: list[str]  # text deltas or partial_json deltas
    stop_reason: str
    output_tokens: int


def _plan(body: dict[str, Any], ctx: Context) -> _Planned:
    tool = _chosen_tool(body)
    if tool is not None:
        arguments = sample_from_schema(tool.get("input_schema") or {"type": "object"})
        pieces = text_chunks(json.dumps(arguments))
        block = {
            "type": "tool_use",
            "id": new_id("toolu_01", 22),
            "name": tool.get("name"),
            "input": arguments,
        }
        return _Planned(block, pieces, "tool_use", len(pieces) + count_tokens(str(tool.get("name"))) + 4)
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    last_user = " ".join(_block_text(b) for b in _blocks(users[-1].get("content"))) if users else ""
    pieces = word_chunks(reply_words(last_user, ctx.controls.output_words))
    limit = body.get("max_tokens")
    stop = "end_turn"
    if isinstance(limit, int) and len(pieces) > limit:
        pieces, stop = pieces[:limit], "max_tokens"
    return _Planned({"type": "text", "text": "".join(pieces)}, pieces, stop, len(pieces))


def messages(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/messages``: a text or ``tool_use`` block with the real usage counters."""
    planned = _plan(body, ctx)
    input_usage = _input_usage(body, ctx)
    usage = {
        **input_usage,
        "cache_creation": {
            "ephemeral_5m_input_tokens": input_usage["cache_creation_input_tokens"],
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": planned.output_tokens,
        "service_tier": "standard",
    }
    model = str(body.get("model", ""))
    message = {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": _SNAPSHOTS.get(model, model),
        "content": [planned.block],
        "stop_reason": planned.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    if body.get("stream"):
        return SseReply(_frames(message, planned), response_headers())
    return json_reply(200, message, response_headers())


def _frames(message: dict[str, Any], planned: _Planned) -> list[Frame]:
    def event(kind: str, content: bool = False, **fields: Any) -> Frame:
        return sse_frame({"type": kind, **fields}, event=kind, content=content)

    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    first_block = (
        {**planned.block, "input": {}} if planned.block["type"] == "tool_use" else {"type": "text", "text": ""}
    )
    delta_kind = "input_json_delta" if planned.block["type"] == "tool_use" else "text_delta"
    delta_key = "partial_json" if delta_kind == "input_json_delta" else "text"
    frames = [
        event("message_start", message=start),
        event("content_block_start", index=0, content_block=first_block),
        event("ping"),
    ]
    frames += [
        event("content_block_delta", True, index=0, delta={"type": delta_kind, delta_key: piece})
        for piece in planned.pieces
    ]
    final_usage = {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
    frames += [
        event("content_block_stop", index=0),
        event(
            "message_delta",
            delta={"stop_reason": message["stop_reason"], "stop_sequence": None},
            usage={**final_usage, "output_tokens": usage["output_tokens"]},
        ),
        event("message_stop"),
    ]
    return frames
