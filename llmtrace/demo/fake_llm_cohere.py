"""Cohere-shaped endpoints of the fake LLM: ``POST /v2/chat``, ``/v2/embed`` and the v1 ``/v1/chat``.

Follows Cohere's v2 API: a chat reply is ``{id, finish_reason, message: {role, content: [{type, text}],
tool_plan?, tool_calls?}, usage: {billed_units, tokens}}`` with Cohere's upper-case finish reasons
(``COMPLETE``, ``MAX_TOKENS``, ``TOOL_CALL``...). ``billed_units`` counts what is charged; ``tokens``
also counts the prompt template Cohere wraps around the messages, so its input is larger. With
``"stream": true`` the reply is SSE, each event named by its ``type``: ``message-start``,
``content-start``, ``content-delta``..., ``content-end`` (or ``tool-plan-delta``...,
``tool-call-start``, ``tool-call-delta``..., ``tool-call-end``), then ``message-end`` carrying the
finish reason and usage. Tool-call arguments are a JSON string; a tool call's id is
``{name}_{hex}``. Errors are ``{"id": ..., "message": ...}`` with the HTTP status; a stream that
fails mid-way ends with ``message-end`` and ``finish_reason: ERROR``, as Cohere's do.

v1's ``/v1/chat`` answers ``{response_id, generation_id, text, finish_reason, tool_calls?,
chat_history, meta: {billed_units, tokens}}``; tool calls are ``{name, parameters}`` objects. Streamed,
it sends JSON lines (``application/stream+json``): ``stream-start`` with the generation id,
``text-generation`` pieces (or one ``tool-calls-generation``), then ``stream-end`` whose ``response`` is
the whole reply. v1's ``/v1/embed`` answers ``embeddings_floats`` (a list of vectors) unless
``embedding_types`` are asked for.
Point the ``cohere`` SDK's ``base_url`` at ``FakeLLM.url``.
"""

from __future__ import annotations

import json
import uuid
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
    sse_frame,
    text_chunks,
    unit_vector,
    word_chunks,
)

V1_STREAM = "application/stream+json"  # what Cohere's v1 streams are served as
TEMPLATE_TOKENS = 66  # what ``usage.tokens.input_tokens`` adds over the billed input: Cohere's prompt template
_ERRORS = {
    400: "invalid request: the fake LLM was asked for a 400",
    401: "invalid api token",
    404: "model 'unknown' not found, make sure the correct model ID was used",
    429: "You are using a Trial key, which is limited to 10 API calls / minute.",
    500: "internal server error, this has been reported to our developers",
}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    headers = {"retry-after": "0", "retry-after-ms": "1"} if status == 429 or status >= 500 else {}
    body = {"id": str(uuid.uuid4()), "message": message or _ERRORS.get(status, f"HTTP {status}")}
    return json_reply(status, body, headers)


def stream_error_frame(_position: int) -> Frame:
    """How a Cohere stream says it failed after it started: a final ``message-end`` with ``ERROR``."""
    return sse_frame({"type": "message-end", "delta": {"finish_reason": "ERROR"}}, event="message-end")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _usage(billed_in: int, billed_out: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {"input_tokens": billed_in + TEMPLATE_TOKENS, "output_tokens": billed_out},
    }


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """A call of the first tool, unless the conversation already ends with a tool's result."""
    messages = body.get("messages") or []
    tools = [t.get("function") or {} for t in body.get("tools") or []]
    if not tools or (messages and messages[-1].get("role") == "tool"):
        return None
    name = str(tools[0].get("name") or "tool")
    arguments = sample_from_schema(tools[0].get("parameters") or {"type": "object"})
    call_id = f"{name}_{seed_of(json.dumps(messages)):08x}"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def _words(body: dict[str, Any], ctx: Context) -> tuple[list[str], str]:
    messages = body.get("messages") or []
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    pieces = word_chunks(reply_words(last_user, ctx.controls.output_words))
    limit = body.get("max_tokens")
    if isinstance(limit, int) and 0 <= limit < len(pieces):
        return pieces[:limit], "MAX_TOKENS"
    return pieces, "COMPLETE"


def chat(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v2/chat``."""
    messages = body.get("messages") or []
    prompt_tokens = sum(count_tokens(_text(m.get("content"))) for m in messages)
    if body.get("tools"):
        prompt_tokens += count_tokens(json.dumps(body["tools"]))
    call = _tool_call(body)
    if call is not None:
        plan = f"I will use {call['function']['name']} to answer."
        usage = _usage(prompt_tokens, count_tokens(plan) + count_tokens(call["function"]["arguments"]))
        return _tool_reply(body, plan, call, usage)
    pieces, reason = _words(body, ctx)
    return _text_reply(body, pieces, reason, _usage(prompt_tokens, len(pieces)))


def _text_reply(body: dict[str, Any], pieces: list[str], reason: str, usage: dict[str, Any]) -> Reply:
    reply_id = str(uuid.uuid4())
    if not body.get("stream"):
        message = {"role": "assistant", "content": [{"type": "text", "text": "".join(pieces)}]}
        return json_reply(200, {"id": reply_id, "message": message, "finish_reason": reason, "usage": usage})
    frames = [_start(reply_id), _event("content-start", index=0, message={"content": {"type": "text", "text": ""}})]
    frames += [_event("content-delta", True, index=0, message={"content": {"text": p}}) for p in pieces]
    frames += [_event("content-end", index=0), _end(reason, usage)]
    return SseReply(frames)


def _tool_reply(body: dict[str, Any], plan: str, call: dict[str, Any], usage: dict[str, Any]) -> Reply:
    reply_id = str(uuid.uuid4())
    if not body.get("stream"):
        message = {"role": "assistant", "tool_plan": plan, "tool_calls": [call]}
        return json_reply(200, {"id": reply_id, "message": message, "finish_reason": "TOOL_CALL", "usage": usage})
    frames = [_start(reply_id)]
    frames += [_event("tool-plan-delta", True, message={"tool_plan": p}) for p in word_chunks(plan.split())]
    opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
    frames.append(_event("tool-call-start", True, index=0, message={"tool_calls": opening}))
    for piece in text_chunks(call["function"]["arguments"]):
        frames.append(
            _event("tool-call-delta", True, index=0, message={"tool_calls": {"function": {"arguments": piece}}})
        )
    frames += [_event("tool-call-end", index=0), _end("TOOL_CALL", usage)]
    return SseReply(frames)


def _event(kind: str, content: bool = False, index: int | None = None, message: Any = None) -> Frame:
    event: dict[str, Any] = {"type": kind}
    if index is not None:
        event["index"] = index
    if message is not None:
        event["delta"] = {"message": message}
    return sse_frame(event, event=kind, content=content)


def _start(reply_id: str) -> Frame:
    message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    return sse_frame({"id": reply_id, "type": "message-start", "delta": {"message": message}}, event="message-start")


def _end(reason: str, usage: dict[str, Any]) -> Frame:
    return sse_frame({"type": "message-end", "delta": {"finish_reason": reason, "usage": usage}}, event="message-end")


def embed(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v2/embed``: vectors by embedding type, billed input tokens."""
    texts = [str(t) for t in body.get("texts") or []]
    dims = int(body.get("output_dimension") or 1024)
    kinds = body.get("embedding_types") or ["float"]
    vectors = [unit_vector(t, dims) for t in texts]
    meta = {"api_version": {"version": "2"}, "billed_units": {"input_tokens": sum(count_tokens(t) for t in texts)}}
    obj = {
        "id": str(uuid.uuid4()),
        "embeddings": {kind: vectors for kind in kinds},
        "texts": texts,
        "meta": meta,
        "response_type": "embeddings_by_type",
    }
    return json_reply(200, obj)


def embed_v1(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/embed``: v2's reply, or the vectors as a plain list when no embedding types are asked for."""
    reply = embed(body, ctx)
    if body.get("embedding_types") or not isinstance(reply, JsonReply):
        return reply
    obj = json.loads(reply.body)
    obj.update(embeddings=obj["embeddings"]["float"], response_type="embeddings_floats")
    obj["meta"]["api_version"] = {"version": "1"}
    return json_reply(200, obj)


def chat_v1(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/chat``: one ``message`` plus ``chat_history``; tools as ``parameter_definitions``."""
    message = str(body.get("message") or "")
    history = body.get("chat_history") or []
    prompt_tokens = count_tokens(message) + sum(count_tokens(str(m.get("message", ""))) for m in history)
    prompt_tokens += count_tokens(str(body.get("preamble") or ""))
    obj: dict[str, Any] = {"response_id": str(uuid.uuid4()), "generation_id": str(uuid.uuid4())}
    tools = body.get("tools") or []
    if tools and not body.get("tool_results"):
        definitions = tools[0].get("parameter_definitions") or {}
        parameters = {name: f"sample {name}" for name in definitions}
        calls = [{"name": tools[0].get("name"), "parameters": parameters}]
        obj.update(text="", finish_reason="COMPLETE", tool_calls=calls)
        output_tokens = count_tokens(json.dumps(calls))
    else:
        pieces = word_chunks(reply_words(message, ctx.controls.output_words))
        limit = body.get("max_tokens")
        reason = "MAX_TOKENS" if isinstance(limit, int) and 0 <= limit < len(pieces) else "COMPLETE"
        pieces = pieces[:limit] if reason == "MAX_TOKENS" else pieces
        obj.update(text="".join(pieces), finish_reason=reason)
        output_tokens = len(pieces)
    obj["chat_history"] = [*history, {"role": "USER", "message": message}, {"role": "CHATBOT", "message": obj["text"]}]
    usage = _usage(prompt_tokens, output_tokens)
    obj["meta"] = {"api_version": {"version": "1"}, **usage}
    if not body.get("stream"):
        return json_reply(200, obj)
    return SseReply(_v1_frames(obj), content_type=V1_STREAM)


def _v1_frames(obj: dict[str, Any]) -> list[Frame]:
    """A v1 stream of the reply ``obj``: JSON lines, the text in word pieces, ``stream-end`` with it all."""

    def line(event: dict[str, Any], content: bool = False) -> Frame:
        return Frame(dumps({"is_finished": event["event_type"] == "stream-end", **event}) + b"\n", content)

    frames = [line({"event_type": "stream-start", "generation_id": obj["generation_id"]})]
    if obj.get("tool_calls"):
        frames.append(line({"event_type": "tool-calls-generation", "text": "", "tool_calls": obj["tool_calls"]}, True))
    else:
        frames += [line({"event_type": "text-generation", "text": p}, True) for p in word_chunks(obj["text"].split())]
    frames.append(line({"event_type": "stream-end", "finish_reason": obj["finish_reason"], "response": obj}))
    return frames
