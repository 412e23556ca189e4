"""Ollama-shaped endpoints of the fake LLM: ``POST /api/chat``, ``/api/generate``, ``/api/embed``, ``/api/embeddings``.

Follows Ollama's REST API: a reply is one JSON object with ``done: true``, ``done_reason``,
``prompt_eval_count`` / ``eval_count`` and the ``*_duration`` fields in nanoseconds; with
``"stream": true`` (Ollama's server default, the Python client's ``stream=True``) it is
newline-delimited JSON (``application/x-ndjson``), one object per piece with ``done: false``, then a
final object with the counts. Tool calls arrive whole in ``message.tool_calls`` (arguments as an
object). Errors are ``{"error": "..."}`` with the HTTP status, also as an NDJSON line mid-stream.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from llmtrace.demo.fake_llm_common import (
    Context,
    Frame,
    JsonReply,
    Reply,
    SseReply,
    count_tokens,
    dumps,
    json_reply,
    reply_words,
    sample_from_schema,
    seed_of,
    unit_vector,
    word_chunks,
)

NDJSON = "application/x-ndjson"
_ERRORS = {
    400: "invalid request (the fake LLM was asked for a 400)",
    404: "model 'unknown' not found, try pulling it first",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    return json_reply(status, {"error": message or _ERRORS.get(status, f"HTTP {status}")})


def stream_error_frame(_position: int) -> Frame:
    """The error line Ollama writes when a stream fails after it started."""
    return Frame(dumps({"error": "an error was encountered while running the model: unexpected EOF"}) + b"\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _stats(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "total_duration": 5_000_000 + 20_000_000 * output_tokens,
        "load_duration": 1_000_000,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 100_000 * prompt_tokens,
        "eval_count": output_tokens,
        "eval_duration": 20_000_000 * output_tokens,
    }


def _limit(body: dict[str, Any]) -> int | None:
    value = (body.get("options") or {}).get("num_predict")
    return value if isinstance(value, int) and value >= 0 else None


def _words(prompt: str, body: dict[str, Any], ctx: Context) -> tuple[list[str], str]:
    pieces = word_chunks(reply_words(prompt, ctx.controls.output_words))
    limit = _limit(body)
    if limit is not None and len(pieces) > limit:
        return pieces[:limit], "length"
    return pieces, "stop"


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    messages = body.get("messages") or []
    tools = [t.get("function") or {} for t in body.get("tools") or []]
    if not tools or (messages and messages[-1].get("role") == "tool"):
        return None
    arguments = sample_from_schema(tools[0].get("parameters") or {"type": "object"})
    function = {"index": 0, "name": tools[0].get("name"), "arguments": arguments}
    return {"id": "call_" + format(seed_of(json.dumps(messages)), "08x"), "function": function}


def _reply(body: dict[str, Any], pieces: list[str], final: dict[str, Any], message: bool) -> Reply:
    """The whole reply, or NDJSON: one object per piece, then the final one with the counts."""
    head = {"model": body.get("model", ""), "created_at": _now()}

    def piece(text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": text}} if message else {"response": text}

    if body.get("stream") is False:
        whole = piece("".join(pieces))
        if message and "tool_calls" in final:
            whole["message"]["tool_calls"] = final.pop("tool_calls")
        return json_reply(200, {**head, **whole, **final})
    frames = [Frame(dumps({**head, **piece(p), "done": False}) + b"\n", content=True) for p in pieces]
    last = piece("")
    if message and "tool_calls" in final:
        last["message"]["tool_calls"] = final.pop("tool_calls")
        frames.append(Frame(dumps({**head, **last, "done": False}) + b"\n", content=True))
        last = piece("")
    frames.append(Frame(dumps({**head, **last, **final}) + b"\n"))
    return SseReply(frames, content_type=NDJSON)


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    messages = body.get("messages") or []
    prompt_tokens = sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages)
    if body.get("tools"):
        prompt_tokens += count_tokens(json.dumps(body["tools"]))
    call = _tool_call(body)
    if call is not None:
        output = count_tokens(json.dumps(call["function"]))
        final = {"done": True, "done_reason": "stop", **_stats(prompt_tokens, output), "tool_calls": [call]}
        return _reply(body, [], final, True)
    last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    pieces, reason = _words(last_user, body, ctx)
    return _reply(body, pieces, {"done": True, "done_reason": reason, **_stats(prompt_tokens, len(pieces))}, True)


def generate(body: dict[str, Any], ctx: Context) -> Reply:
    prompt = str(body.get("prompt") or "")
    prompt_tokens = count_tokens(str(body.get("system") or "")) + count_tokens(prompt) + 4
    pieces, reason = _words(prompt, body, ctx)
    final = {"done": True, "done_reason": reason, "context": [1, 2, 3], **_stats(prompt_tokens, len(pieces))}
    return _reply(body, pieces, final, False)


def embed(body: dict[str, Any], ctx: Context) -> Reply:
    raw = body.get("input", "")
    texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
    dims = int(body.get("dimensions") or 8)
    tokens = sum(count_tokens(t) for t in texts)
    obj = {
        "model": body.get("model", ""),
        "embeddings": [unit_vector(t, dims) for t in texts],
        "total_duration": 14_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": tokens,
    }
    return json_reply(200, obj)


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    """The deprecated single-prompt endpoint: no token count."""
    return json_reply(200, {"embedding": unit_vector(str(body.get("prompt", "")), 8)})
