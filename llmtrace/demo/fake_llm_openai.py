"""OpenAI-shaped endpoints of the fake LLM: chat completions, legacy completions, embeddings.

Bodies follow the real API field for field (ids, dated model snapshots, usage details,
``stream_options.include_usage``), so the real ``openai`` SDK and its parse helpers accept them.
The Responses API lives in ``fake_llm_openai_responses``.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import time
from dataclasses import dataclass
from typing import Any

from llmtrace.demo.fake_llm_common import (
    CacheState,
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
    seed_of,
    sse_frame,
    text_chunks,
    word_chunks,
)

# Requests name an alias; the API answers with the dated snapshot it served.
_SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4": "gpt-4-0613",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}
REASONING_TOKENS = 64
CACHE_MIN_TOKENS = 1024

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (the fake LLM was asked for a 400)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: test. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def response_model(model: str) -> str:
    return _SNAPSHOTS.get(model, model)


def is_reasoning_model(model: str) -> bool:
    return model.startswith("gpt-5") or (len(model) > 1 and model[0] == "o" and model[1].isdigit())


def response_headers() -> dict[str, str]:
    return {
        "x-request-id": new_id("req_", 32),
        "openai-processing-ms": "1",
        "openai-version": "2020-10-01",
    }


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind, code, default = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, ""))
    text = message or default or f"The fake LLM was asked for HTTP {status}."
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def error_reply(status: int, message: str | None = None) -> JsonReply:
    """The error JSON OpenAI sends; ``retry-after-ms`` makes SDK retries instant."""
    headers = response_headers()
    if status == 429 or status >= 500:
        headers |= {"retry-after": "0", "retry-after-ms": "1"}
    return json_reply(status, error_body(status, message), headers)


def stream_error_frame(_position: int) -> Frame:
    """The in-band error OpenAI sends mid-stream; the SDK raises ``openai.APIError`` on it."""
    return sse_frame(error_body(500))


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string or a list of parts (images contribute nothing)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def prompt_usage(prompt: str, extra_tokens: int, model: str, cache: CacheState) -> tuple[int, int]:
    """(prompt_tokens, cached_tokens): long prompts whose first ~1024 tokens repeat report a cache hit."""
    tokens = count_tokens(prompt) + extra_tokens
    if tokens < CACHE_MIN_TOKENS or not cache.seen_before(f"openai:{model}:{prompt[: CACHE_MIN_TOKENS * 4]}"):
        return tokens, 0
    return tokens, min(tokens, max(CACHE_MIN_TOKENS, tokens // 2 // 128 * 128))


@dataclass
class Planned:
    """One choice's output before encoding: text pieces, or a tool call's argument pieces."""

    pieces: list[str]
    finish_reason: str
    tool_name: str | None = None
    call_id: str = ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def plan_text(prompt: str, ctx: Context, limit: int | None, fmt: dict[str, Any] | None, variant: int = 0) -> Planned:
    """Echo text (or JSON for a structured-output format), cut to ``limit`` tokens with ``length``."""
    words = reply_words(prompt, ctx.controls.output_words, variant=variant)
    if fmt and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema", fmt)
        pieces = text_chunks(json.dumps(sample_from_schema(spec.get("schema") or {})))
    elif fmt and fmt.get("type") == "json_object":
        pieces = text_chunks(json.dumps({"answer": " ".join(words)}))
    else:
        pieces = word_chunks(words)
    if limit is not None and len(pieces) > limit:
        return Planned(pieces[:limit], "length")
    return Planned(pieces, "stop")


def plan_tool_call(tool: dict[str, Any]) -> Planned:
    arguments = json.dumps(sample_from_schema(tool.get("parameters") or {"type": "object"}))
    return Planned(text_chunks(arguments), "tool_calls", str(tool.get("name", "tool")), new_id("call_", 24))


def output_tokens(planned: Planned) -> int:
    extra = count_tokens(planned.tool_name) + 4 if planned.tool_name else 0
    return len(planned.pieces) + extra


def chosen_tool(tools: list[dict[str, Any]], tool_choice: Any) -> dict[str, Any] | None:
    """The function tool the model 'decides' to call: the forced one, else the first."""
    if not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        name = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
        for tool in tools:
            if tool.get("name") == name:
                return tool
    return tools[0]


def _chat_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return None
    functions = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    return chosen_tool(functions, body.get("tool_choice"))


def _chat_plans(body: dict[str, Any], ctx: Context) -> list[Planned]:
    messages = body.get("messages") or []
    last_user = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    tool = _chat_tool(body)
    n = max(1, int(body.get("n") or 1))
    if tool is not None:
        return [plan_tool_call(tool) for _ in range(n)]
    return [plan_text(last_user, ctx, limit, body.get("response_format"), variant=i) for i in range(n)]


def chat_usage(prompt_tokens: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_message(planned: Planned) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if planned.tool_name is None:
        message["content"] = planned.text
        return message
    message["tool_calls"] = [
        {
            "id": planned.call_id,
            "type": "function",
            "function": {"name": planned.tool_name, "arguments": planned.text},
        }
    ]
    return message


def chat_completions(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/chat/completions``: text, tool calls, structured output, ``n`` choices, streams."""
    model = str(body.get("model", ""))
    messages = body.get("messages") or []
    prompt = "\n".join(content_text(m.get("content")) for m in messages)
    tools_tokens = count_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
    prompt_tokens, cached = prompt_usage(prompt, 4 * len(messages) + tools_tokens, model, ctx.cache)
    plans = _chat_plans(body, ctx)
    reasoning = REASONING_TOKENS if is_reasoning_model(model) else 0
    completion = sum(output_tokens(p) for p in plans) + reasoning
    usage = chat_usage(prompt_tokens, cached, completion, reasoning)
    base = {
        "id": new_id("chatcmpl-", 29),
        "created": int(time.time()),
        "model": response_model(model),
        "service_tier": service_tier(body),
        "system_fingerprint": "fp_" + format(seed_of(model), "08x")[:10],
    }
    if body.get("stream"):
        return SseReply(_chat_frames(base, plans, usage, body), response_headers())
    choices = [
        {"index": i, "message": _chat_message(p), "logprobs": None, "finish_reason": p.finish_reason}
        for i, p in enumerate(plans)
    ]
    obj = {**base, "object": "chat.completion", "choices": choices, "usage": usage}
    return json_reply(200, obj, response_headers())


def service_tier(body: dict[str, Any]) -> str:
    tier = body.get("service_tier") or "default"
    return "default" if tier == "auto" else str(tier)


def _first_delta(planned: Planned) -> dict[str, Any]:
    if planned.tool_name is None:
        return {"role": "assistant", "content": "", "refusal": None}
    call = {
        "index": 0,
        "id": planned.call_id,
        "type": "function",
        "function": {"name": planned.tool_name, "arguments": ""},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}


def _piece_delta(planned: Planned, piece: str) -> dict[str, Any]:
    if planned.tool_name is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def _chat_frames(
    base: dict[str, Any], plans: list[Planned], usage: dict[str, Any], body: dict[str, Any]
) -> list[Frame]:
    """Role chunk, one chunk per piece, finish chunk per choice; usage chunk only when asked for."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(choices: list[dict[str, Any]], usage_value: Any = None, *, content: bool = False) -> Frame:
        data = {**base, "object": "chat.completion.chunk", "choices": choices}
        if include_usage:
            data["usage"] = usage_value
        return sse_frame(data, content=content)

    def choice(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}

    frames: list[Frame] = []
    for i, planned in enumerate(plans):
        frames.append(chunk([choice(i, _first_delta(planned))]))
        frames.extend(chunk([choice(i, _piece_delta(planned, p))], content=True) for p in planned.pieces)
        frames.append(chunk([choice(i, {}, planned.finish_reason)]))
    if include_usage:
        frames.append(chunk([], usage))
    frames.append(sse_frame("[DONE]"))
    return frames


def completions(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/completions`` (legacy): ``text_completion`` objects, streamed or not."""
    model = str(body.get("model", ""))
    raw = body.get("prompt", "")
    prompt = raw if isinstance(raw, str) else " ".join(str(p) for p in raw)
    planned = plan_text(prompt, ctx, body.get("max_tokens", 16), None)
    prompt_tokens = count_tokens(prompt)
    completion = len(planned.pieces)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    base = {
        "id": new_id("cmpl-", 29),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if not body.get("stream"):
        choice = {"text": planned.text, "index": 0, "logprobs": None, "finish_reason": planned.finish_reason}
        return json_reply(200, {**base, "choices": [choice], "usage": usage}, response_headers())
    frames = [
        sse_frame(
            {**base, "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}]},
            content=True,
        )
        for p in planned.pieces
    ]
    last = {"text": "", "index": 0, "logprobs": None, "finish_reason": planned.finish_reason}
    frames.append(sse_frame({**base, "choices": [last]}))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(sse_frame({**base, "choices": [], "usage": usage}))
    frames.append(sse_frame("[DONE]"))
    return SseReply(frames, response_headers())


def _embedding(text: str, dims: int, encoding: str) -> list[float] | str:
    rng = random.Random(seed_of(text))
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    vector = [v / norm for v in vector]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
    return vector


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/embeddings``: deterministic unit vectors (``dimensions`` or 8), float or base64."""
    raw = body.get("input", "")
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
    texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
    dims = int(body.get("dimensions") or 8)
    encoding = str(body.get("encoding_format") or "float")
    data = [
        {"object": "embedding", "index": i, "embedding": _embedding(t, dims, encoding)} for i, t in enumerate(texts)
    ]
    tokens = sum(count_tokens(t) for t in texts)
    obj = {
        "object": "list",
        "data": data,
        "model": str(body.get("model", "")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json_reply(200, obj, response_headers())
