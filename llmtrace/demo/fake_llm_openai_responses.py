"""The OpenAI Responses API (``POST /v1/responses``) of the fake LLM, streamed or not.

The stream is the real event sequence (``response.created`` ... ``response.completed``), every
event with ``type`` and an increasing ``sequence_number``, so ``client.responses.stream()`` and
``client.responses.parse()`` work against it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llmtrace.demo.fake_llm_common import (
    Context,
    Frame,
    Reply,
    SseReply,
    count_tokens,
    json_reply,
    new_id,
    sse_frame,
)
from llmtrace.demo.fake_llm_openai import (
    REASONING_TOKENS,
    Planned,
    chosen_tool,
    content_text,
    error_body,
    is_reasoning_model,
    output_tokens,
    plan_text,
    plan_tool_call,
    prompt_usage,
    response_headers,
    response_model,
    service_tier,
)


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input", "")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [i for i in raw if isinstance(i, dict)]


def _item_text(item: dict[str, Any]) -> str:
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    if item.get("type") == "function_call":
        return str(item.get("arguments", ""))
    return content_text(item.get("content"))


def _plan(body: dict[str, Any], items: list[dict[str, Any]], ctx: Context) -> Planned:
    functions = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    answered = bool(items) and items[-1].get("type") == "function_call_output"
    tool = None if answered else chosen_tool(functions, body.get("tool_choice"))
    if tool is not None:
        return plan_tool_call(tool)
    last_user = next((_item_text(i) for i in reversed(items) if i.get("role") == "user"), "")
    fmt = (body.get("text") or {}).get("format")
    return plan_text(last_user, ctx, body.get("max_output_tokens"), fmt)


def _message_item(planned: Planned, item_id: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": planned.text}
    return {"id": item_id, "type": "message", "status": status, "content": [part], "role": "assistant"}


def _call_item(planned: Planned, item_id: str, status: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": planned.call_id,
        "name": planned.tool_name,
    }


def _usage(prompt_tokens: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt_tokens + completion,
    }


def _response(body: dict[str, Any], rid: str, model: str, created: int) -> dict[str, Any]:
    """The response envelope with the request's settings echoed, still ``in_progress``."""
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "frequency_penalty": body.get("frequency_penalty", 0.0),
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": response_model(model),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "presence_penalty": body.get("presence_penalty", 0.0),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "prompt_cache_retention": None,
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": service_tier(body),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def responses(body: dict[str, Any], ctx: Context) -> Reply:
    """``POST /v1/responses``: a message (or function call) item, plus a reasoning item for o*/gpt-5*."""
    model = str(body.get("model", ""))
    items = _items(body)
    prompt = "\n".join([str(body.get("instructions") or ""), *(_item_text(i) for i in items)])
    tools_tokens = count_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
    prompt_tokens, cached = prompt_usage(prompt, 4 * len(items) + tools_tokens, model, ctx.cache)
    planned = _plan(body, items, ctx)
    reasoning = REASONING_TOKENS if is_reasoning_model(model) else 0
    usage = _usage(prompt_tokens, cached, output_tokens(planned) + reasoning, reasoning)
    envelope = _response(body, new_id("resp_", 48), model, int(time.time()))
    final = _final(envelope, planned, reasoning > 0, usage)
    if body.get("stream"):
        return SseReply(_frames(envelope, final, planned), response_headers())
    return json_reply(200, final, response_headers())


def _final(envelope: dict[str, Any], planned: Planned, with_reasoning: bool, usage: dict[str, Any]) -> dict[str, Any]:
    incomplete = planned.finish_reason == "length"
    status = "incomplete" if incomplete else "completed"
    output: list[dict[str, Any]] = []
    if with_reasoning:
        output.append({"id": new_id("rs_", 48), "type": "reasoning", "summary": []})
    if planned.tool_name is None:
        output.append(_message_item(planned, new_id("msg_", 48), status))
    else:
        output.append(_call_item(planned, new_id("fc_", 48), "completed", planned.text))
    return {
        **envelope,
        "status": status,
        "completed_at": int(time.time()),
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "output": output,
        "usage": usage,
    }


class _Events:
    """Numbers events as they are made, the way the API's ``sequence_number`` counts."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def add(self, kind: str, content: bool = False, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.frames), **fields}
        self.frames.append(sse_frame(data, event=kind, content=content))


def _frames(envelope: dict[str, Any], final: dict[str, Any], planned: Planned) -> list[Frame]:
    events = _Events()
    events.add("response.created", response=envelope)
    events.add("response.in_progress", response=envelope)
    for index, item in enumerate(final["output"]):
        if item["type"] == "reasoning":
            events.add("response.output_item.added", output_index=index, item=item)
            events.add("response.output_item.done", output_index=index, item=item)
        elif item["type"] == "message":
            _message_events(events, index, item, planned)
        else:
            _call_events(events, index, item, planned)
    done = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    events.add(done, response=final)
    return events.frames


def _message_events(events: _Events, index: int, item: dict[str, Any], planned: Planned) -> None:
    ids = {"item_id": item["id"], "output_index": index}
    events.add(
        "response.output_item.added",
        output_index=index,
        item={**item, "status": "in_progress", "content": []},
    )
    empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    events.add("response.content_part.added", **ids, content_index=0, part=empty)
    for piece in planned.pieces:
        events.add("response.output_text.delta", True, **ids, content_index=0, delta=piece, logprobs=[])
    events.add("response.output_text.done", **ids, content_index=0, text=planned.text, logprobs=[])
    events.add("response.content_part.done", **ids, content_index=0, part=item["content"][0])
    events.add("response.output_item.done", output_index=index, item=item)


def _call_events(events: _Events, index: int, item: dict[str, Any], planned: Planned) -> None:
    ids = {"item_id": item["id"], "output_index": index}
    events.add(
        "response.output_item.added",
        output_index=index,
        item=_call_item(planned, item["id"], "in_progress", ""),
    )
    for piece in planned.pieces:
        events.add("response.function_call_arguments.delta", True, **ids, delta=piece)
    events.add("response.function_call_arguments.done", **ids, arguments=planned.text, name=planned.tool_name)
    events.add("response.output_item.done", output_index=index, item=item)


def stream_error_frame(position: int) -> Frame:
    """An ``error`` event (ResponseErrorEvent fields) plus the ``error`` object the SDK raises on."""
    error = error_body(500)["error"]
    data = {"type": "error", "sequence_number": position, "code": "server_error", "message": error["message"]}
    return sse_frame({**data, "param": None, "error": error}, event="error")
