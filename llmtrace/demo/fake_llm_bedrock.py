"""Amazon Bedrock (``bedrock-runtime``) endpoints of the fake LLM, for the real boto3 client.

Point a client at the fake with ``endpoint_url=FakeLLM.url`` (any region, any credentials: requests
are signed by botocore as usual and the fake does not check signatures). Paths name the model:
``POST /model/{modelId}/converse``, ``/converse-stream``, ``/invoke``, ``/invoke-with-response-stream``.

Streams use AWS's binary event stream (``application/vnd.amazon.eventstream``): each message is a
prelude (total length, headers length, CRC32 of the two), string headers (``:event-type``,
``:content-type``, ``:message-type``), a JSON payload and a CRC32 of the whole. Converse streams
``messageStart``, ``contentBlockStart`` (tool use), ``contentBlockDelta``, ``contentBlockStop``,
``messageStop`` and ``metadata`` (usage); invoke streams ``chunk`` events whose ``bytes`` (base64)
carry the model family's own chunk JSON, the last one with ``amazon-bedrock-invocationMetrics``.
``invoke`` bodies follow the family of the model id: Anthropic, Amazon Nova and Titan, Meta Llama,
Mistral and Cohere. Errors are Bedrock's: ``x-amzn-ErrorType`` (``ThrottlingException`` for 429, ...)
and ``{"message": ...}``; a failing stream ends with an ``exception`` message.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from llmtrace.demo import fake_llm_anthropic as anthropic_api
from llmtrace.demo.fake_llm_common import (
    Context,
    Frame,
    Handler,
    JsonReply,
    Reply,
    SseReply,
    count_tokens,
    json_reply,
    new_id,
    reply_words,
    sample_from_schema,
    text_chunks,
    unit_vector,
    word_chunks,
)
from llmtrace.demo.fake_llm_eventstream import EVENT_STREAM, chunk_frame, event_frame, event_message, exception_frame

_PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")
_METRICS = "amazon-bedrock-invocationMetrics"
# The family in a model id, after any region prefix (``us.``) or ARN path (``.../us.anthropic...``).
_FAMILY = re.compile(
    r"(?:^|[./])(anthropic|amazon\.nova|amazon\.titan-embed|amazon\.titan|meta|mistral|cohere\.embed|cohere)[.-]"
)
_ERRORS = {
    400: ("ValidationException", "The provided model identifier is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is temporarily unavailable."),
}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    kind, default = _ERRORS.get(status, ("InternalServerException" if status >= 500 else "ValidationException", ""))
    headers = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return json_reply(status, {"message": message or default or f"HTTP {status}"}, _request_id(headers))


def stream_error_frame(_position: int) -> Frame:
    """The ``exception`` message a stream ends with when the model fails after it started."""
    return exception_frame(
        "modelStreamErrorException", {"message": "The model stream failed.", "originalStatusCode": 500}
    )


MALFORMED = (b'{"output": {"message": {"con', event_message({":message-type": "event"}, b"{")[:-4] + b"\0\0\0\0")


def _request_id(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**(headers or {}), "x-amzn-RequestId": new_id("", 8) + "-fake-4000-8000-" + new_id("", 12)}


def route(path: str) -> Handler | None:
    """The handler for a Bedrock runtime path, bound to the model it names; None when it is not one."""
    match = _PATH.match(path)
    if match is None:
        return None
    model, method = unquote(match.group(1)), match.group(2)
    handlers: dict[str, Callable[..., Reply]] = {
        "converse": functools.partial(_converse, stream=False),
        "converse-stream": functools.partial(_converse, stream=True),
        "invoke": functools.partial(_invoke, stream=False),
        "invoke-with-response-stream": functools.partial(_invoke, stream=True),
    }
    return functools.partial(handlers[method], model=model)


# --- what the model says ------------------------------------------------------------------------


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return " ".join(str(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def _last_user_text(body: dict[str, Any]) -> str:
    for key in ("prompt", "inputText", "message"):
        if isinstance(body.get(key), str):
            return str(body[key])
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return _texts(users[-1].get("content")) if users else ""


def _limit(body: dict[str, Any]) -> Any:
    configs = (body.get("inferenceConfig") or {}, body.get("textGenerationConfig") or {}, body)
    keys = ("maxTokens", "max_new_tokens", "maxTokenCount", "max_gen_len", "max_tokens")
    return next((c[k] for c in configs for k in keys if isinstance(c.get(k), int)), None)


def _words(body: dict[str, Any], ctx: Context) -> tuple[list[str], bool]:
    """The reply's pieces and whether the token limit cut them."""
    pieces = word_chunks(reply_words(_last_user_text(body), ctx.controls.output_words))
    limit = _limit(body)
    if isinstance(limit, int) and len(pieces) > limit:
        return pieces[:limit], True
    return pieces, False


def _tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The Converse/Nova tool the model 'calls': none after a tool result."""
    specs = [t["toolSpec"] for t in (body.get("toolConfig") or {}).get("tools") or [] if "toolSpec" in t]
    messages = body.get("messages") or []
    last = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    if not specs or any(isinstance(b, dict) and "toolResult" in b for b in last or []):
        return None
    return dict(specs[0])


def _input_counts(body: dict[str, Any], model: str, ctx: Context) -> dict[str, int]:
    """Converse's counters: ``inputTokens`` excludes the prefix up to the last ``cachePoint``, which is a
    cache write the first time that prefix is seen and a cache read after."""
    blocks = [b for b in body.get("system") or [] if isinstance(b, dict)]
    for message in body.get("messages") or []:
        blocks += [b for b in message.get("content") or [] if isinstance(b, dict)]
    texts = [json.dumps(b, default=str) if "text" not in b else str(b["text"]) for b in blocks]
    tokens = [0 if "cachePoint" in b else count_tokens(t) for b, t in zip(blocks, texts, strict=True)]
    last_point = max((i for i, b in enumerate(blocks) if "cachePoint" in b), default=-1)
    prefix = sum(tokens[: last_point + 1])
    counts = {"inputTokens": sum(tokens) - prefix + 3, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    if last_point >= 0:
        seen = ctx.cache.seen_before(json.dumps([model, texts[: last_point + 1]]))
        counts["cacheReadInputTokens" if seen else "cacheWriteInputTokens"] = prefix
    return counts


# --- converse (and Nova's native body, which is Converse-shaped) ------------------------------------


def _converse_plan(body: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], list[str], str]:
    """The content block, its stream pieces and the stop reason."""
    tool = _tool(body)
    if tool is not None:
        arguments = sample_from_schema((tool.get("inputSchema") or {}).get("json") or {"type": "object"})
        block = {"toolUse": {"toolUseId": new_id("tooluse_", 22), "name": tool.get("name"), "input": arguments}}
        return block, text_chunks(json.dumps(arguments)), "tool_use"
    pieces, cut = _words(body, ctx)
    return {"text": "".join(pieces)}, pieces, "max_tokens" if cut else "end_turn"


def _converse_usage(body: dict[str, Any], model: str, ctx: Context, pieces: list[str]) -> dict[str, int]:
    counts = _input_counts(body, model, ctx)
    counts["outputTokens"] = len(pieces)
    counts["totalTokens"] = sum(counts.values())
    return counts


def _converse_events(block: dict[str, Any], pieces: list[str], stop: str, usage: dict[str, Any]) -> list[dict]:
    """The stream as (event type, payload) dicts, in Converse's order."""
    events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    if "toolUse" in block:
        start = {k: block["toolUse"][k] for k in ("toolUseId", "name")}
        events.append({"contentBlockStart": {"contentBlockIndex": 0, "start": {"toolUse": start}}})
        deltas: list[dict[str, Any]] = [{"toolUse": {"input": piece}} for piece in pieces]
    else:
        deltas = [{"text": piece} for piece in pieces]
    events += [{"contentBlockDelta": {"contentBlockIndex": 0, "delta": delta}} for delta in deltas]
    events += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop}},
        {"metadata": {"usage": usage, "metrics": {"latencyMs": 12}}},
    ]
    return events


def _converse(body: dict[str, Any], ctx: Context, *, model: str, stream: bool) -> Reply:
    if _FAMILY.search(model) is None:
        return error_reply(400)
    block, pieces, stop = _converse_plan(body, ctx)
    usage = _converse_usage(body, model, ctx, pieces)
    if not stream:
        message = {"role": "assistant", "content": [block]}
        reply = {"output": {"message": message}, "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 12}}
        return json_reply(200, reply, _request_id())
    frames = [
        event_frame(kind, payload, content=kind == "contentBlockDelta")
        for event in _converse_events(block, pieces, stop, usage)
        for kind, payload in event.items()
    ]
    return SseReply(frames, _request_id(), content_type=EVENT_STREAM)


# --- invoke: the model family's own body ----------------------------------------------------------


def _invoke(body: dict[str, Any], ctx: Context, *, model: str, stream: bool) -> Reply:
    match = _FAMILY.search(model)
    if match is None:
        return error_reply(400)
    family = match.group(1)
    if family in _EMBEDDERS:
        if stream:
            return error_reply(400, "The model is unsupported for streaming.")
        whole, tokens = _EMBEDDERS[family](body, model)
        headers = {"X-Amzn-Bedrock-Input-Token-Count": str(tokens), "X-Amzn-Bedrock-Invocation-Latency": "12"}
        return json_reply(200, whole, _request_id(headers))
    chunks, whole, counts = _FAMILIES[family](body, ctx, model, stream)
    if not stream:
        headers = {
            "X-Amzn-Bedrock-Input-Token-Count": str(counts[0]),
            "X-Amzn-Bedrock-Output-Token-Count": str(counts[1]),
            "X-Amzn-Bedrock-Invocation-Latency": "12",
        }
        return json_reply(200, whole, _request_id(headers))
    metrics = {"inputTokenCount": counts[0], "outputTokenCount": counts[1], "invocationLatency": 12}
    chunks[-1] = ({**chunks[-1][0], _METRICS: {**metrics, "firstByteLatency": 5}}, chunks[-1][1])
    frames = [chunk_frame(chunk, content=content) for chunk, content in chunks]
    return SseReply(frames, _request_id({"X-Amzn-Bedrock-Content-Type": "application/json"}), content_type=EVENT_STREAM)


Chunks = list[tuple[dict[str, Any], bool]]  # (chunk JSON, carries output)
Family = Callable[[dict[str, Any], Context, str, bool], tuple[Chunks, dict[str, Any], tuple[int, int]]]


def _anthropic(body: dict[str, Any], ctx: Context, model: str, stream: bool) -> Any:
    """The fake Anthropic Messages API's own reply, ids as Bedrock gives them (``msg_bdrk_``)."""
    base = re.sub(r"^(?:[a-z]+\.)?anthropic\.|-v\d+(?::\d+)?$", "", model)
    reply = anthropic_api.messages({**body, "model": base, "stream": stream}, ctx)
    if isinstance(reply, SseReply):
        chunks: Chunks = []
        for frame in reply.frames:
            data = frame.data.decode().split("data: ", 1)[1]
            chunk = json.loads(data)
            if chunk.get("type") == "message_start":
                chunk["message"]["id"] = chunk["message"]["id"].replace("msg_01", "msg_bdrk_01", 1)
            chunks.append((chunk, frame.content))
        start = chunks[0][0]["message"]["usage"]
        output = next(c["usage"]["output_tokens"] for c, _ in chunks if c.get("type") == "message_delta")
        return chunks, {}, (_anthropic_input(start), output)
    message = json.loads(reply.body)
    message["id"] = message["id"].replace("msg_01", "msg_bdrk_01", 1)
    return [], message, (_anthropic_input(message["usage"]), message["usage"]["output_tokens"])


def _anthropic_input(usage: dict[str, Any]) -> int:
    return (
        int(usage["input_tokens"])
        + int(usage.get("cache_read_input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
    )


def _nova(body: dict[str, Any], ctx: Context, model: str, stream: bool) -> Any:
    block, pieces, stop = _converse_plan(body, ctx)
    usage = _converse_usage(body, model, ctx, pieces)
    nova_usage = {
        "inputTokens": usage["inputTokens"],
        "outputTokens": usage["outputTokens"],
        "totalTokens": usage["totalTokens"],
        "cacheReadInputTokenCount": usage["cacheReadInputTokens"],
        "cacheWriteInputTokenCount": usage["cacheWriteInputTokens"],
    }
    whole = {"output": {"message": {"role": "assistant", "content": [block]}}, "stopReason": stop, "usage": nova_usage}
    events = _converse_events(block, pieces, stop, nova_usage)
    chunks = [(event, "contentBlockDelta" in event) for event in events]
    return chunks, whole, (usage["inputTokens"], usage["outputTokens"])


def _text_family(build: Callable[[str, str | None, int, int, bool], dict[str, Any]]) -> Family:
    """A family whose reply is text: ``build(text, stop, input_tokens, output_tokens, first)`` gives a
    whole body (stop set) or a stream chunk (``first`` marks the one carrying the prompt's count)."""

    def family(body: dict[str, Any], ctx: Context, model: str, stream: bool) -> Any:
        pieces, cut = _words(body, ctx)
        prompt_tokens = count_tokens(_last_user_text(body)) + 2
        stop = "length" if cut else "stop"
        whole = build("".join(pieces), stop, prompt_tokens, len(pieces), True)
        chunks = [(build(p, None, prompt_tokens, i + 1, i == 0), True) for i, p in enumerate(pieces)]
        chunks.append((build("", stop, prompt_tokens, len(pieces), False), False))
        return chunks, whole, (prompt_tokens, len(pieces))

    return family


def _llama(text: str, stop: str | None, prompt: int, output: int, first: bool) -> dict[str, Any]:
    return {
        "generation": text,
        "prompt_token_count": prompt if first else None,
        "generation_token_count": output,
        "stop_reason": stop,
    }


def _titan(text: str, stop: str | None, prompt: int, output: int, first: bool) -> dict[str, Any]:
    reason = {"stop": "FINISH", "length": "LENGTH"}.get(stop or "")
    if first and stop is not None:  # the whole body
        return {
            "inputTextTokenCount": prompt,
            "results": [{"tokenCount": output, "outputText": text, "completionReason": reason}],
        }
    return {"outputText": text, "index": 0, "totalOutputTextTokenCount": output, "completionReason": reason,
            "inputTextTokenCount": prompt if first else None}  # fmt: skip


def _mistral(text: str, stop: str | None, prompt: int, output: int, first: bool) -> dict[str, Any]:
    return {"outputs": [{"text": text, "stop_reason": stop}]}


def _cohere(text: str, stop: str | None, prompt: int, output: int, first: bool) -> dict[str, Any]:
    reason = {"stop": "COMPLETE", "length": "MAX_TOKENS"}.get(stop or "")
    if first and stop is not None:
        return {"response_id": new_id("", 8), "text": text, "generation_id": new_id("", 12), "finish_reason": reason}
    if stop is not None:
        return {"is_finished": True, "event_type": "stream-end", "finish_reason": reason, "response": {"text": "…"}}
    return {"is_finished": False, "event_type": "text-generation", "text": text}


def _mistral_any(body: dict[str, Any], ctx: Context, model: str, stream: bool) -> Any:
    """Mistral: a prompt (7B, Mixtral, Large 2402) or chat ``messages`` (Large 2407 and later)."""
    if "messages" not in body:
        return _mistral_prompt(body, ctx, model, stream)
    tools = [t.get("function") or {} for t in body.get("tools") or [] if isinstance(t, dict)]
    last = (body.get("messages") or [{}])[-1]
    if tools and last.get("role") != "tool":
        arguments = json.dumps(sample_from_schema(tools[0].get("parameters") or {"type": "object"}))
        call = {"id": new_id("", 9), "function": {"name": tools[0].get("name"), "arguments": arguments}}
        message = {"role": "assistant", "content": "", "tool_calls": [call]}
        whole = {"choices": [{"index": 0, "message": message, "stop_reason": "tool_calls"}]}
        output = count_tokens(arguments) + 4
        return [(whole, True)], whole, (count_tokens(json.dumps(body)), output)
    pieces, cut = _words(body, ctx)
    stop, prompt = "length" if cut else "stop", count_tokens(json.dumps(body.get("messages")))

    def choice(text: str, reason: str | None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "stop_reason": reason}]}

    chunks = [(choice(piece, None), True) for piece in pieces] + [(choice("", stop), False)]
    return chunks, choice("".join(pieces), stop), (prompt, len(pieces))


def _titan_embed(body: dict[str, Any], model: str) -> tuple[dict[str, Any], int]:
    text = str(body.get("inputText", ""))
    dims = body["dimensions"] if isinstance(body.get("dimensions"), int) else 1024
    tokens = count_tokens(text)
    return {"embedding": unit_vector(text, dims), "inputTextTokenCount": tokens}, tokens


def _cohere_embed(body: dict[str, Any], model: str) -> tuple[dict[str, Any], int]:
    texts = [str(t) for t in body.get("texts") or []]
    vectors = [unit_vector(t, 1024) for t in texts]
    reply = {"id": new_id("", 8) + "-fake", "embeddings": vectors, "response_type": "embeddings_floats", "texts": texts}
    return reply, sum(count_tokens(t) for t in texts)


_EMBEDDERS = {"amazon.titan-embed": _titan_embed, "cohere.embed": _cohere_embed}
_mistral_prompt = _text_family(_mistral)
_FAMILIES: dict[str, Family] = {
    "anthropic": _anthropic,
    "amazon.nova": _nova,
    "amazon.titan": _text_family(_titan),
    "meta": _text_family(_llama),
    "mistral": _mistral_any,
    "cohere": _text_family(_cohere),
}
