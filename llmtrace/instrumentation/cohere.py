"""Cohere's SDK (``cohere``): v2 ``chat``, ``chat_stream``, ``embed`` (``ClientV2``, ``AsyncClientV2``,
``client.v2``) and v1 ``Client.chat``, ``chat_stream``, ``embed``.

v2 requests are OpenAI-shaped messages (the OpenAI adapter reads them); replies carry content blocks,
``tool_plan`` and tool calls with JSON-string arguments, and Cohere's upper-case finish reasons, given
here with the conventions' values (``COMPLETE`` -> ``stop``, ``MAX_TOKENS`` -> ``length``, ``TOOL_CALL``
-> ``tool_call``...). Tokens are ``usage.billed_units`` (what Cohere charges, so what cost is computed
from), else ``usage.tokens``. ``chat_stream`` is a generator (the request is sent on first iteration):
its events are typed (``content-delta``, ``tool-call-delta``...) and ``message-end`` carries the finish
reason and usage. v1's ``chat_stream`` sends JSON lines (``text-generation``, ``tool-calls-generation``)
ending with ``stream-end``, whose ``response`` is the whole v1 reply. v1 ``Client.embed`` splits the texts
into batches sent from a thread pool: it is traced as one call (the batches' billed tokens summed), not per
batch, whose spans would lose the app's trace in those threads. Cohere's replies name no model: the
span's model is the requested one.
"""

from __future__ import annotations

from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import Endpoint
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get, given, json_arguments, put, server_of
from llmtrace.instrumentation.openai import chat_messages, tool_definitions

SDK = "cohere"
PROVIDER = "cohere"

_FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "TIMEOUT": "error",
    "ERROR_TOXIC": "content_filter",
}


# v2's ``embeddings`` by type (the SDK's model names the ``float`` field ``float_``).
_EMBEDDING_TYPES = ("float_", "float", "int8", "uint8", "binary", "ubinary")


def _finish_reason(reason: Any) -> str:
    name = str(reason or "")
    return _FINISH_REASONS.get(name, name.lower())


def _count(value: Any) -> int | None:
    """Cohere sends token counts as floats (``3.0``)."""
    return int(value) if isinstance(value, int | float) else None


def usage_of(usage: Any) -> Usage:
    """v2 ``usage`` or v1 ``meta``: billed units first (what is charged), else the raw token counts.

    ``cached_tokens`` counts raw tokens (prompt template included), not billed ones: it is a cache read
    only beside the raw counts, else an input of 35 billed tokens would claim 1024 cached ones.
    """
    billed = get(usage, "billed_units")
    if _count(get(billed, "input_tokens")) is not None or _count(get(billed, "output_tokens")) is not None:
        return Usage(
            input_tokens=_count(get(billed, "input_tokens")), output_tokens=_count(get(billed, "output_tokens"))
        )
    counts = get(usage, "tokens")
    return Usage(
        input_tokens=_count(get(counts, "input_tokens")),
        output_tokens=_count(get(counts, "output_tokens")),
        cache_read_tokens=_count(get(usage, "cached_tokens")) or None,
    )


def _server(instance: Any) -> tuple[str | None, int | None]:
    try:
        return server_of(instance._client_wrapper.get_base_url())
    except Exception:  # other SDK versions keep it elsewhere: the span just lacks the server
        return None, None


def _model(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _put_sampling(attrs: dict[str, Any], kwargs: dict[str, Any]) -> None:
    put(attrs, sc.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
    put(attrs, sc.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
    put(attrs, sc.REQUEST_TOP_P, kwargs.get("p"), float)
    put(attrs, sc.REQUEST_TOP_K, kwargs.get("k"), int)
    put(attrs, sc.REQUEST_SEED, kwargs.get("seed"), int)
    put(attrs, sc.REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"), float)
    put(attrs, sc.REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"), float)
    put(attrs, sc.REQUEST_STOP_SEQUENCES, kwargs.get("stop_sequences"))
    if given(kwargs.get("response_format")) and get(kwargs["response_format"], "type") == "json_object":
        attrs[sc.OUTPUT_TYPE] = "json"


def _output_parts(message: Any) -> list[Part]:
    """A v2 assistant message: thinking and text blocks, the tool plan, then the tool calls."""
    parts: list[Part] = []
    for block in get(message, "content") or []:
        kind = get(block, "type")
        if kind == "text":
            parts.append(text_part(get(block, "text") or ""))
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": get(block, "thinking") or ""})
    if get(message, "tool_plan"):
        parts.append({"type": "reasoning", "content": get(message, "tool_plan")})
    for call in get(message, "tool_calls") or []:
        function = get(call, "function")
        parts.append(tool_call_part(get(call, "id"), get(function, "name"), json_arguments(get(function, "arguments"))))
    return parts


class Chat(Endpoint):
    """v2 ``chat`` and ``chat_stream``."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        host, port = _server(instance)
        return Request(sc.OP_CHAT, PROVIDER, _model(kwargs), self.stream, server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _put_sampling(request.attributes, kwargs)
        request.system_instructions, request.input_messages = chat_messages(kwargs.get("messages"))
        request.tool_definitions = tool_definitions(kwargs.get("tools"))

    def parse_response(self, request: Request, result: Any) -> Response:
        reason = _finish_reason(get(result, "finish_reason"))
        output: Message = {"role": "assistant", "parts": _output_parts(get(result, "message")), "finish_reason": reason}
        return Response(
            id=get(result, "id"),
            finish_reasons=[reason] if reason else [],
            usage=usage_of(get(result, "usage")),
            output_messages=[output],
        )

    def new_stream(self, request: Request) -> Stream:
        return Stream()


class Stream:
    """Folds v2 stream events: text and thinking deltas, the tool plan, tool calls by index, ``message-end``."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.plan: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.reason = ""
        self.usage: Any = None

    def add(self, event: Any) -> bool:
        kind, message = get(event, "type"), get(get(event, "delta"), "message")
        if kind == "content-delta":
            content = get(message, "content")
            self.text += [get(content, "text")] if get(content, "text") else []
            self.thinking += [get(content, "thinking")] if get(content, "thinking") else []
            return bool(get(content, "text") or get(content, "thinking"))
        if kind == "tool-plan-delta":
            self.plan.append(get(message, "tool_plan") or "")
            return True
        if kind in ("tool-call-start", "tool-call-delta"):
            call, slot = get(message, "tool_calls"), self.calls.setdefault(get(event, "index", 0), {"args": []})
            slot["id"] = slot.get("id") or get(call, "id")
            slot["name"] = slot.get("name") or get(get(call, "function"), "name")
            slot["args"].append(get(get(call, "function"), "arguments") or "")
            return True
        if kind == "message-start":
            self.id = get(event, "id")
        elif kind == "message-end":
            self.reason = _finish_reason(get(get(event, "delta"), "finish_reason"))
            self.usage = get(get(event, "delta"), "usage")
        return False

    def result(self, request: Request) -> Response:
        parts: list[Part] = [{"type": "reasoning", "content": "".join(self.thinking)}] if self.thinking else []
        parts += [text_part("".join(self.text))] if self.text else []
        parts += [{"type": "reasoning", "content": "".join(self.plan)}] if self.plan else []
        for _, call in sorted(self.calls.items()):
            parts.append(tool_call_part(call["id"], call["name"], json_arguments("".join(call["args"]))))
        output: Message = {"role": "assistant", "parts": parts, "finish_reason": self.reason}
        usage = usage_of(self.usage) if self.usage is not None else Usage()
        return Response(self.id, None, [self.reason] if self.reason else [], usage, [output])


class Embed(Endpoint):
    """v2 ``embed``: billed input tokens, and the vectors' size (the first embedding type returned)."""

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        host, port = _server(instance)
        return Request(sc.OP_EMBEDDINGS, PROVIDER, _model(kwargs), server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        put(request.attributes, sc.EMBEDDINGS_DIMENSION_COUNT, kwargs.get("output_dimension"), int)
        put(request.attributes, sc.REQUEST_ENCODING_FORMATS, kwargs.get("embedding_types"))

    def parse_response(self, request: Request, result: Any) -> Response:
        response = Response(id=get(result, "id"), usage=usage_of(get(result, "meta")))
        embeddings = get(result, "embeddings")
        if isinstance(embeddings, list):  # v1's ``embeddings_floats``: the vectors themselves
            vectors: Any = embeddings
        else:
            vectors = next((v for v in (get(embeddings, k) for k in _EMBEDDING_TYPES) if v), None)
        if vectors and isinstance(vectors[0], list) and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
            response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(vectors[0])
        return response


class ChatV1(Endpoint):
    """v1 ``chat`` and ``chat_stream``: one ``message``, a ``preamble``, ``chat_history``; tool calls as
    ``{name, parameters}``."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        host, port = _server(instance)
        return Request(sc.OP_CHAT, PROVIDER, _model(kwargs), self.stream, server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _put_sampling(request.attributes, kwargs)
        if given(kwargs.get("preamble")):
            request.system_instructions = [text_part(str(kwargs["preamble"]))]
        roles = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}
        history: list[Message] = [
            {
                "role": roles.get(str(get(m, "role")), str(get(m, "role")).lower()),
                "parts": [text_part(get(m, "message"))],
            }
            for m in kwargs.get("chat_history") or []
            if get(m, "message")
        ]
        if given(kwargs.get("message")):
            history.append({"role": "user", "parts": [text_part(str(kwargs["message"]))]})
        request.input_messages = history
        tools = kwargs.get("tools") or []
        defs = [{"type": "function", "name": get(t, "name"), "description": get(t, "description")} for t in tools]
        request.tool_definitions = defs or None

    def parse_response(self, request: Request, result: Any) -> Response:
        return _v1_response(result, get(result, "text") or "")

    def new_stream(self, request: Request) -> StreamV1:
        return StreamV1()


def _v1_response(result: Any, text: str) -> Response:
    """A v1 reply (``chat``'s, or ``stream-end``'s ``response``) with ``text`` as its output text."""
    parts: list[Part] = [text_part(text)] if text else []
    for call in get(result, "tool_calls") or []:
        parts.append(tool_call_part(None, get(call, "name"), get(call, "parameters")))
    reason = _finish_reason(get(result, "finish_reason"))
    return Response(
        id=get(result, "response_id") or get(result, "generation_id"),
        finish_reasons=[reason] if reason else [],
        usage=usage_of(get(result, "meta")),
        output_messages=[{"role": "assistant", "parts": parts, "finish_reason": reason}],
    )


class StreamV1:
    """Folds v1 stream events: ``text-generation`` text, then ``stream-end`` with the whole reply."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.text: list[str] = []
        self.final: Any = None

    def add(self, event: Any) -> bool:
        kind = get(event, "event_type")
        if kind == "text-generation":
            self.text.append(get(event, "text") or "")
            return bool(get(event, "text"))
        if kind == "tool-calls-generation":
            return True
        if kind == "stream-start":
            self.id = get(event, "generation_id")
        elif kind == "stream-end":
            self.final = get(event, "response")
        return False

    def result(self, request: Request) -> Response:
        if self.final is not None:
            return _v1_response(self.final, get(self.final, "text") or "".join(self.text))
        text = "".join(self.text)  # left early: the text so far, no finish reason or usage
        parts: list[Part] = [text_part(text)] if text else []
        return Response(self.id, output_messages=[{"role": "assistant", "parts": parts, "finish_reason": ""}])


def patches() -> list[Patch]:
    whole, streamed, embed = Chat(stream=False), Chat(stream=True), Embed()
    v1_whole, v1_streamed = ChatV1(stream=False), ChatV1(stream=True)
    targets: list[Patch] = []
    for cls in ("V2Client", "AsyncV2Client"):
        targets.append(Patch("cohere.v2.client", f"{cls}.chat", whole))
        targets.append(Patch("cohere.v2.client", f"{cls}.chat_stream", streamed))
        targets.append(Patch("cohere.v2.client", f"{cls}.embed", embed))
    for cls in ("BaseCohere", "AsyncBaseCohere"):
        targets.append(Patch("cohere.base_client", f"{cls}.chat", v1_whole))
        targets.append(Patch("cohere.base_client", f"{cls}.chat_stream", v1_streamed))
    # The clients' batching embed (BaseCohere.embed runs per batch on a thread pool, outside the app's context).
    targets += [Patch("cohere.client", f"{cls}.embed", embed) for cls in ("Client", "AsyncClient")]
    return targets
