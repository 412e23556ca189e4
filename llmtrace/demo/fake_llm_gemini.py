"""Gemini-shaped endpoints of the fake LLM (Gemini API and Vertex AI), for the real ``google-genai`` SDK.

Gemini names the model and the method in the path: ``POST /{version}/models/{model}:generateContent``
(Vertex: ``/{version}/[projects/P/locations/L/]publishers/google/models/{model}:...``), and
``:streamGenerateContent?alt=sse`` streams ``data: {GenerateContentResponse}`` events, each a
partial response carrying the usage so far. Bodies follow the REST API in camelCase:
``candidates[].content.parts`` (text, ``thought`` text, ``functionCall``), ``finishReason``,
``usageMetadata`` (``promptTokenCount`` includes ``cachedContentTokenCount``;
``candidatesTokenCount`` excludes ``thoughtsTokenCount``), ``modelVersion``, ``responseId``.
Embeddings: ``:batchEmbedContents`` / ``:embedContent`` (Gemini API) and ``:predict`` (Vertex).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

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
    sse_frame,
    unit_vector,
    word_chunks,
)

_PATH = re.compile(r"^/v1[a-z0-9]*/(?:.*/)?models/([^/:]+):([A-Za-z]+)$")
THOUGHT_TOKENS = 48
CACHED_CONTENT_TOKENS = 2048
_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    name, default = _STATUS.get(status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT", f"HTTP {status}"))
    return {"error": {"code": status, "message": message or default, "status": name}}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    """Google's error JSON (``{"error": {code, message, status}}``)."""
    return json_reply(status, error_body(status, message))


def stream_error_frame(_position: int) -> Frame:
    """A mid-stream error event, as Gemini sends when a stream fails after it started."""
    return sse_frame(error_body(500))


def route(path: str) -> Handler | None:
    """The handler for a Gemini path, with the model and method it names; None when it is not one."""
    match = _PATH.match(path)
    if match is None:
        return None
    model, method = match.groups()
    handlers: dict[str, Callable[..., Reply]] = {
        "generateContent": functools.partial(_generate, stream=False),
        "streamGenerateContent": functools.partial(_generate, stream=True),
        "batchEmbedContents": _batch_embed,
        "embedContent": _embed_one,
        "predict": _predict,
    }
    handler = handlers.get(method)
    return None if handler is None else functools.partial(handler, model=model)


def _texts(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return " ".join(str(p["text"]) for p in parts or [] if isinstance(p, dict) and "text" in p)


def _function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The declared function the model 'decides' to call: none after a function response or in NONE mode."""
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    contents = body.get("contents") or []
    answered = any("functionResponse" in p for p in (contents[-1].get("parts") or [])) if contents else False
    if not declarations or mode == "NONE" or answered:
        return None
    allowed = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("allowedFunctionNames")
    chosen: dict[str, Any] = next((d for d in declarations if not allowed or d.get("name") in allowed), declarations[0])
    return chosen


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI schemas spell types in capitals (``OBJECT``); JSON Schema in lower case."""
    if isinstance(schema, dict):
        return {k: v.lower() if k == "type" and isinstance(v, str) else _lower_types(v) for k, v in schema.items()}
    return [_lower_types(v) for v in schema] if isinstance(schema, list) else schema


def thinks(model: str, config: dict[str, Any]) -> bool:
    """2.5 and later models think unless the budget is 0."""
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
    return budget != 0 and ("2.5" in model or model.startswith("gemini-3"))


def _plan(body: dict[str, Any], model: str, ctx: Context) -> tuple[list[dict[str, Any]], str, int]:
    """The model's parts (one per streamed chunk), finish reason and output token count."""
    config = body.get("generationConfig") or {}
    function = _function(body)
    if function is not None:
        schema = function.get("parameters") or function.get("parametersJsonSchema") or {"type": "object"}
        call = {"name": function.get("name"), "args": sample_from_schema(_lower_types(schema))}
        return [{"functionCall": call}], "STOP", count_tokens(json.dumps(call))
    users = [c for c in body.get("contents") or [] if c.get("role", "user") == "user"]
    words = word_chunks(reply_words(_texts(users[-1]) if users else "", ctx.controls.output_words))
    limit = config.get("maxOutputTokens")
    reason = "STOP"
    if isinstance(limit, int) and len(words) > limit:
        words, reason = words[:limit], "MAX_TOKENS"
    parts = [{"text": piece} for piece in words]
    thinking = config.get("thinkingConfig") or {}
    if thinks(model, config) and (thinking.get("includeThoughts") or thinking.get("include_thoughts")):
        parts.insert(0, {"text": "**Thinking** about the question first.", "thought": True})  # type: ignore[dict-item]
    return parts, reason, len(words)


def _usage(body: dict[str, Any], model: str, output: int) -> dict[str, Any]:
    prompt = " ".join(_texts(c) for c in body.get("contents") or []) + _texts(body.get("systemInstruction"))
    prompt_tokens = count_tokens(prompt) + 3 * len(body.get("contents") or [])
    if body.get("tools"):
        prompt_tokens += count_tokens(json.dumps(body["tools"]))
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output}
    if body.get("cachedContent"):  # an explicit cache: its tokens count as prompt tokens, read from cache
        usage["promptTokenCount"] = prompt_tokens + CACHED_CONTENT_TOKENS
        usage["cachedContentTokenCount"] = CACHED_CONTENT_TOKENS
    thoughts = THOUGHT_TOKENS if thinks(model, body.get("generationConfig") or {}) else 0
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = usage["promptTokenCount"] + output + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["promptTokenCount"]}]
    return usage


def _generate(body: dict[str, Any], ctx: Context, *, model: str, stream: bool) -> Reply:
    parts, reason, output = _plan(body, model, ctx)
    usage = _usage(body, model, output)
    head = {"modelVersion": model, "responseId": new_id("", 22)}
    if not stream:  # one part per kind: the thought, then the whole text
        whole = [p for p in parts if "text" not in p or p.get("thought")]
        if any("text" in p and not p.get("thought") for p in parts):
            whole.append({"text": "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))})
        whole_candidate = {"content": {"parts": whole, "role": "model"}, "finishReason": reason, "index": 0}
        return json_reply(200, {"candidates": [whole_candidate], "usageMetadata": usage, **head})
    frames = []
    running = {k: v for k, v in usage.items() if k not in ("candidatesTokenCount", "totalTokenCount")}
    for i, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        last = i == len(parts) - 1
        if last:
            candidate["finishReason"] = reason
        chunk_usage = usage if last else {**running, "totalTokenCount": running["promptTokenCount"]}
        frames.append(sse_frame({"candidates": [candidate], "usageMetadata": chunk_usage, **head}, content=True))
    return SseReply(frames, content_type="text/event-stream")


def _dims(config: Any) -> int:
    value = config.get("outputDimensionality") if isinstance(config, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else 8


def _batch_embed(body: dict[str, Any], ctx: Context, *, model: str) -> Reply:
    """Gemini API: one embedding per request, no usage (the API reports none)."""
    requests = body.get("requests") or []
    embeddings = [{"values": unit_vector(_texts(r.get("content")), _dims(r))} for r in requests]
    return json_reply(200, {"embeddings": embeddings})


def _embed_one(body: dict[str, Any], ctx: Context, *, model: str) -> Reply:
    text = _texts(body.get("content"))
    config = body.get("embedContentConfig") or body
    return json_reply(
        200,
        {
            "embedding": {"values": unit_vector(text, _dims(config))},
            "usageMetadata": {"promptTokenCount": count_tokens(text)},
        },
    )


def _predict(body: dict[str, Any], ctx: Context, *, model: str) -> Reply:
    """Vertex AI text embeddings: per-instance token counts in ``statistics``."""
    dims = _dims(body.get("parameters") or {})
    predictions = []
    chars = 0
    for instance in body.get("instances") or []:
        text = str(instance.get("content", ""))
        chars += len(text)
        statistics = {"truncated": False, "token_count": count_tokens(text)}
        predictions.append({"embeddings": {"values": unit_vector(text, dims), "statistics": statistics}})
    return json_reply(200, {"predictions": predictions, "metadata": {"billableCharacterCount": chars}})
