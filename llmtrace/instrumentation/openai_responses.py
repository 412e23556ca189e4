"""OpenAI Responses API: ``responses.create`` (stream or not), ``responses.parse``, ``responses.stream()``."""

from __future__ import annotations

from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import Endpoint
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._sdk import get, given, json_arguments, put, text_of
from llmtrace.instrumentation.openai import _response_extras, new_request, put_sampling

# Why a response stopped, in Chat Completions' vocabulary so dashboards compare both APIs.
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _input_messages(items: Any) -> list[Message]:
    if isinstance(items, str):
        return [{"role": "user", "parts": [text_part(items)]}]
    messages: list[Message] = []
    for item in items if isinstance(items, list | tuple) else []:
        kind = get(item, "type", "message")
        if kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": get(item, "call_id"),
                            "response": get(item, "output"),
                        }
                    ],
                }
            )
        elif kind == "function_call":
            messages.append(
                {
                    "role": "assistant",
                    "parts": [
                        tool_call_part(get(item, "call_id"), get(item, "name"), json_arguments(get(item, "arguments")))
                    ],
                }
            )
        elif kind == "message":
            content = get(item, "content")
            parts = [text_part(content)] if isinstance(content, str) else [text_part(text_of(content))]
            messages.append({"role": get(item, "role", "user"), "parts": parts})
    return messages


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if not given(tools):
        return None
    return [
        {
            "type": get(t, "type"),
            "name": get(t, "name"),
            "description": get(t, "description"),
            "parameters": get(t, "parameters"),
        }
        for t in tools
    ] or None


def _finish_reason(result: Any, has_tool_call: bool) -> str:
    status = get(result, "status")
    if status == "incomplete":
        return _INCOMPLETE.get(get(get(result, "incomplete_details"), "reason") or "", "length")
    if status == "failed":
        return "error"
    return "tool_calls" if has_tool_call else "stop"


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=get(usage, "input_tokens"),
        output_tokens=get(usage, "output_tokens"),
        cache_read_tokens=get(get(usage, "input_tokens_details"), "cached_tokens"),
        reasoning_tokens=get(get(usage, "output_tokens_details"), "reasoning_tokens"),
    )


def response_of(result: Any) -> Response:
    parts: list[Part] = []
    for item in get(result, "output") or []:
        kind = get(item, "type")
        if kind == "message":
            for block in get(item, "content") or []:
                if get(block, "type") == "output_text":
                    parts.append(text_part(get(block, "text", "")))
                elif get(block, "type") == "refusal":
                    parts.append({"type": "refusal", "content": get(block, "refusal")})
        elif kind == "function_call":
            parts.append(
                tool_call_part(get(item, "call_id"), get(item, "name"), json_arguments(get(item, "arguments")))
            )
        elif kind == "reasoning":
            summary = "".join(get(s, "text", "") for s in get(item, "summary") or [])
            if summary:
                parts.append({"type": "reasoning", "content": summary})
    reason = _finish_reason(result, any(p["type"] == "tool_call" for p in parts))
    return Response(
        id=get(result, "id"),
        model=get(result, "model"),
        finish_reasons=[reason],
        usage=_usage(get(result, "usage")),
        output_messages=[{"role": "assistant", "parts": parts, "finish_reason": reason}],
        attributes=_response_extras(result),
    )


class Responses(Endpoint):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return new_request(instance, sc.OP_CHAT, kwargs, "responses")

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        put(request.attributes, sc.REQUEST_MAX_TOKENS, kwargs.get("max_output_tokens"), int)
        put_sampling(request.attributes, kwargs)
        text_format = get(get(kwargs.get("text"), "format"), "type")
        if given(kwargs.get("text_format")) or text_format in ("json_schema", "json_object"):
            request.attributes[sc.OUTPUT_TYPE] = "json"
        if isinstance(kwargs.get("instructions"), str):
            request.system_instructions = [text_part(kwargs["instructions"])]
        request.input_messages = _input_messages(kwargs.get("input"))
        request.tool_definitions = _tools(kwargs.get("tools"))

    def parse_response(self, request: Request, result: Any) -> Response:
        return response_of(result)

    def new_stream(self, request: Request) -> ResponsesStream:
        return ResponsesStream()


class ResponsesStream:
    """Keeps the final ``response`` from ``response.completed`` (or the partial text if the stream stops)."""

    _FINAL = ("response.completed", "response.incomplete", "response.failed")
    _OUTPUT = (
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.refusal.delta",
    )

    def __init__(self) -> None:
        self.final: Any = None
        self.partial: Any = None
        self.text: list[str] = []

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind in self._OUTPUT:
            if kind == "response.output_text.delta":
                self.text.append(get(event, "delta", ""))
            return True
        if kind in self._FINAL:
            self.final = get(event, "response")
        elif kind == "response.created":
            self.partial = get(event, "response")
        return False

    def result(self, request: Request) -> Response:
        if self.final is not None:
            return response_of(self.final)
        response = Response(id=get(self.partial, "id"), model=get(self.partial, "model"))
        if self.text:
            response.output_messages = [
                {"role": "assistant", "parts": [text_part("".join(self.text))], "finish_reason": ""}
            ]
        return response
