"""OpenAI-compatible providers of the fake LLM: Groq and Mistral speak OpenAI's chat format with their own twists.

- Groq (``POST /openai/v1/chat/completions``, the real path): usage of a stream comes in
  ``x_groq.usage`` on the final chunk (top-level ``usage`` only with ``stream_options``); every
  response carries ``x_groq.id`` and ``service_tier: on_demand``.
- Mistral (``POST /mistral/v1/chat/completions`` and ``/mistral/v1/embeddings``; the prefix only keeps
  it apart from OpenAI's routes, point the SDK's ``server_url`` at ``FakeLLM.mistral_url``): a stream's
  final chunk carries the finish reason and ``usage`` together, always; no ``service_tier`` or
  ``system_fingerprint``; embeddings take ``input`` and answer ``mistral-embed``-sized vectors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llmtrace.demo import fake_llm_openai as openai_api
from llmtrace.demo.fake_llm_common import Context, Frame, JsonReply, Reply, dumps, new_id


def _carries_output(event: dict[str, Any]) -> bool:
    deltas = [c.get("delta") or {} for c in event.get("choices") or []]
    return any(d.get("content") or d.get("tool_calls") for d in deltas)


def _rewrite(frames: list[Frame], change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> list[Frame]:
    """Decode the JSON events of an OpenAI stream, let ``change`` rework them, encode them back (``[DONE]`` kept)."""
    events = [json.loads(f.data.decode().removeprefix("data: ")) for f in frames if f.data.startswith(b"data: {")]
    tail = [f for f in frames if not f.data.startswith(b"data: {")]
    return [Frame(b"data: " + dumps(e) + b"\n\n", _carries_output(e)) for e in change(events)] + tail


def _with_usage(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "stream_options": {"include_usage": True}} if body.get("stream") else body


def _groq_usage(usage: Any) -> Any:
    """Groq's usage: token counts and timings, no OpenAI details objects."""
    if not isinstance(usage, dict):
        return usage
    counts = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return {"queue_time": 0.01, "prompt_time": 0.002, "completion_time": 0.05, "total_time": 0.052, **counts}


def groq_chat(body: dict[str, Any], ctx: Context) -> Reply:
    """Groq's chat completions: OpenAI's, plus ``x_groq`` (stream usage in its final chunk)."""
    asked = bool((body.get("stream_options") or {}).get("include_usage"))
    reply = openai_api.chat_completions(_with_usage(body), ctx)
    request_id = new_id("req_", 26)
    if isinstance(reply, JsonReply):
        if reply.status == 200:
            obj = json.loads(reply.body)
            obj["usage"] = _groq_usage(obj.get("usage"))
            reply.body = dumps({**obj, "service_tier": "on_demand", "x_groq": {"id": request_id}})
        return reply

    def change(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        usage = _groq_usage(events[-1].get("usage"))
        if asked:
            events[-1]["usage"] = usage
        chunks = events if asked else [{k: v for k, v in e.items() if k != "usage"} for e in events[:-1]]
        for event in chunks:
            event["service_tier"] = "on_demand"
        chunks[0]["x_groq"] = {"id": request_id}
        chunks[-1]["x_groq"] = {"id": request_id, "usage": usage}
        return chunks

    reply.frames = _rewrite(reply.frames, change)
    return reply


def _mistral_event(event: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in event.items() if k not in ("service_tier", "system_fingerprint")}
    if isinstance(event.get("usage"), dict):  # counts only, no OpenAI details objects
        event["usage"] = {k: event["usage"][k] for k in ("prompt_tokens", "total_tokens", "completion_tokens")}
    for choice in event.get("choices") or []:
        choice.pop("logprobs", None)
        for call in (choice.get("delta") or choice.get("message") or {}).get("tool_calls") or []:
            call["id"] = call.get("id") and call["id"][-9:]  # Mistral's tool call ids are 9 characters
    return event


def _whole_tool_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mistral streams each tool call whole, in one delta: fold OpenAI's argument pieces into their first delta."""
    out: list[dict[str, Any]] = []
    open_calls: dict[tuple[int, int], dict[str, Any]] = {}
    for event in events:
        choices = event.get("choices") or []
        calls = [(c, t) for c in choices for t in (c.get("delta") or {}).get("tool_calls") or []]
        if not calls:
            out.append(event)
            continue
        for choice, call in calls:
            key = (choice.get("index", 0), call.get("index", 0))
            if key in open_calls:  # a later piece: append to the first delta, drop this event
                open_calls[key]["function"]["arguments"] += call["function"].get("arguments", "")
            else:
                open_calls[key] = call
                out.append(event)
    return out


def mistral_chat(body: dict[str, Any], ctx: Context) -> Reply:
    """Mistral's chat completions: OpenAI's shape; a stream's last chunk has the finish reason and usage."""
    body = {k: v for k, v in body.items() if k != "random_seed"} | (
        {"seed": body["random_seed"]} if "random_seed" in body else {}
    )
    if body.get("tools"):  # Mistral takes tools without a type (mistralai 1.x sends none): functions
        body["tools"] = [{"type": "function", **tool} for tool in body["tools"]]
    reply = openai_api.chat_completions(_with_usage(body), ctx)
    if isinstance(reply, JsonReply):
        if reply.status == 200:
            reply.body = dumps(_mistral_event(json.loads(reply.body)))
        return reply

    def change(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        usage = events[-1]["usage"]
        chunks = [_mistral_event({k: v for k, v in e.items() if k != "usage"}) for e in _whole_tool_calls(events[:-1])]
        chunks[-1]["usage"] = _mistral_event({"usage": usage})["usage"]
        return chunks

    reply.frames = _rewrite(reply.frames, change)
    return reply


def mistral_embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    """Mistral's embeddings: ``input`` (or the older ``inputs``), OpenAI's response shape with an id."""
    texts = body.get("input", body.get("inputs", ""))
    reply = openai_api.embeddings({"model": body.get("model"), "input": texts, "dimensions": 8}, ctx)
    if isinstance(reply, JsonReply) and reply.status == 200:
        obj = json.loads(reply.body)
        obj["usage"] = {**obj["usage"], "completion_tokens": 0}
        reply.body = dumps({"id": new_id("", 32), **obj})
    return reply
