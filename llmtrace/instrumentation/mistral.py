"""Mistral's SDK (``mistralai``): ``chat.complete`` / ``chat.stream`` (and ``*_async``), ``embeddings.create``.

Requests are OpenAI-shaped (the OpenAI adapter reads the messages and tools); responses differ:
content may be a list of chunks (``thinking`` chunks on reasoning models), tool-call arguments may
arrive as an object, and a stream is ``CompletionEvent``s wrapping each chunk in ``.data``, the last
one carrying ``usage``. mistralai >= 2 opens its own GenAI span per request when a global tracer
provider is set; inside an llmtrace span it is told tracing is off, so each call has one span.
"""

from __future__ import annotations

from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._choices import Choices
from llmtrace.instrumentation._core import Endpoint, suppressed
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get, given, json_arguments, put, server_of
from llmtrace.instrumentation.openai import chat_messages, chat_usage, put_sampling, tool_definitions

SDK = "mistralai"
PROVIDER = "mistral_ai"
# mistralai 1.x kept its resources at the top level; 2.x and later under ``mistralai.client``.
_PACKAGES = ("mistralai", "mistralai.client")


def _content_parts(content: Any) -> list[Part]:
    """A message's content: a string, or chunks (``text``, ``thinking`` with text inside, others by type)."""
    if isinstance(content, str):
        return [text_part(content)] if content else []
    parts: list[Part] = []
    for chunk in content if isinstance(content, list) else []:
        kind = get(chunk, "type")
        if kind == "text":
            parts.append(text_part(get(chunk, "text") or ""))
        elif kind == "thinking":
            thought = "".join(get(t, "text") or "" for t in get(chunk, "thinking") or [])
            parts.append({"type": "reasoning", "content": thought})
        else:
            parts.append({"type": str(kind or "unknown"), "content": str(chunk)})
    return parts


def _tool_call(call: Any) -> Part:
    function = get(call, "function")
    return tool_call_part(get(call, "id"), get(function, "name"), json_arguments(get(function, "arguments")))


def _server(instance: Any) -> tuple[str | None, int | None]:
    configuration = get(instance, "sdk_configuration")
    try:
        url = configuration.get_server_details()[0]
    except Exception:  # older or newer SDKs keep it elsewhere: the span just lacks the server
        url = None
    return server_of(url)


class Chat(Endpoint):
    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        host, port = _server(instance)
        model = kwargs.get("model") if isinstance(kwargs.get("model"), str) else None
        return Request(sc.OP_CHAT, PROVIDER, model, self.stream, server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        attrs = request.attributes
        put(attrs, sc.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
        put_sampling(attrs, kwargs, seed_key="random_seed")
        if given(kwargs.get("response_format")) and get(kwargs["response_format"], "type") != "text":
            attrs[sc.OUTPUT_TYPE] = "json"
        request.system_instructions, request.input_messages = chat_messages(kwargs.get("messages"))
        request.tool_definitions = tool_definitions(kwargs.get("tools"))

    def parse_response(self, request: Request, result: Any) -> Response:
        outputs: list[Message] = []
        for choice in get(result, "choices") or []:
            message = get(choice, "message")
            parts = _content_parts(get(message, "content")) + [_tool_call(c) for c in get(message, "tool_calls") or []]
            reason = str(get(choice, "finish_reason") or "")
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": reason})
        return Response(
            id=get(result, "id"),
            model=get(result, "model"),
            finish_reasons=[m["finish_reason"] for m in outputs],
            usage=chat_usage(get(result, "usage")),
            output_messages=outputs,
        )

    def new_stream(self, request: Request) -> ChunkStream:
        return ChunkStream()


class ChunkStream:
    """Folds ``CompletionEvent``s: text and thinking per choice, whole tool calls, usage from the last chunk."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.choices = Choices()

    def add(self, event: Any) -> bool:
        chunk = get(event, "data") or event
        self.id, self.model = self.id or get(chunk, "id"), self.model or get(chunk, "model")
        self.usage = get(chunk, "usage") or self.usage
        carried = False
        for choice in get(chunk, "choices") or []:
            index, delta = get(choice, "index", 0), get(choice, "delta")
            for part in _content_parts(get(delta, "content")) + [_tool_call(c) for c in get(delta, "tool_calls") or []]:
                self.choices.add(index, part)
                carried = True
            if get(choice, "finish_reason"):
                self.choices.finish(index, str(get(choice, "finish_reason")))
        return carried

    def result(self, request: Request) -> Response:
        outputs, reasons = self.choices.outputs()
        usage = chat_usage(self.usage) if self.usage is not None else Usage()
        return Response(self.id, self.model, reasons, usage, outputs)


class Embeddings(Endpoint):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        host, port = _server(instance)
        model = kwargs.get("model") if isinstance(kwargs.get("model"), str) else None
        return Request(sc.OP_EMBEDDINGS, PROVIDER, model, server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        put(request.attributes, sc.EMBEDDINGS_DIMENSION_COUNT, kwargs.get("output_dimension"), int)
        fmt = kwargs.get("output_dtype")
        if given(fmt):
            request.attributes[sc.REQUEST_ENCODING_FORMATS] = [str(fmt)]

    def parse_response(self, request: Request, result: Any) -> Response:
        usage = get(result, "usage")
        response = Response(id=get(result, "id"), model=get(result, "model"))
        response.usage = Usage(input_tokens=get(usage, "prompt_tokens"))
        data = get(result, "data") or []
        vector = get(data[0], "embedding") if data else None
        if isinstance(vector, list) and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
            response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        return response


def _no_sdk_span(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """mistralai's own request span: inside ours, tracing is reported off, so the SDK opens none."""
    if suppressed():
        if "tracing_enabled" in kwargs:
            kwargs = {**kwargs, "tracing_enabled": False}
        elif args:  # the flag is the first parameter
            args = (False, *args[1:])
    return wrapped(*args, **kwargs)


def patches() -> list[Patch]:
    whole, streamed, embeddings = Chat(stream=False), Chat(stream=True), Embeddings()
    targets = [Patch("mistralai.client._hooks.tracing", "get_traced_request_and_span", wrapper=_no_sdk_span)]
    for package in _PACKAGES:
        for suffix in ("", "_async"):
            targets.append(Patch(f"{package}.chat", f"Chat.complete{suffix}", whole))
            targets.append(Patch(f"{package}.chat", f"Chat.stream{suffix}", streamed))
            targets.append(Patch(f"{package}.embeddings", f"Embeddings.create{suffix}", embeddings))
    return targets
