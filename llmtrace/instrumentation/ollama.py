"""Ollama's Python client (``ollama``): ``chat``, ``generate``, ``embed`` (and the older ``embeddings``) on
``Client`` / ``AsyncClient`` and as module functions (``ollama.chat(...)``), streamed or not.

Token counts are Ollama's own: ``prompt_eval_count`` (input) and ``eval_count`` (output), sent on the
final object of a stream. Ollama serves local models, so calls get no cost unless the app sets a price
(``llmtrace.set_price("ollama", ...)``). The module functions are bound methods of a default client made
when ``ollama`` is imported, so they are patched apart from the classes.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import Endpoint
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get, given, put, server_of

SDK = "ollama"
PROVIDER = "ollama"
# Positional parameters of each method, after ``self``.
_POSITIONAL = {"chat": ("model", "messages"), "generate": ("model", "prompt", "suffix"), "embed": ("model", "input")}


def _arguments(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**dict(zip(_POSITIONAL.get(method, ("model", "prompt")), args, strict=False)), **kwargs}


def _message(message: Any) -> Message:
    role, parts = get(message, "role") or "user", []
    content = get(message, "content")
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": get(message, "tool_call_id"), "response": content})
    elif content:
        parts.append(text_part(str(content)))
    if get(message, "thinking"):
        parts.insert(0, {"type": "reasoning", "content": get(message, "thinking")})
    for image in get(message, "images") or []:
        parts.append({"type": "blob", "modality": "image", "content": str(getattr(image, "value", image))})
    for call in get(message, "tool_calls") or []:
        function = get(call, "function")
        parts.append(tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments")))
    return {"role": role, "parts": parts}


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    """JSON-schema tools, ``Tool`` models and Python functions (which the client declares itself)."""
    defs = []
    for tool in tools if isinstance(tools, list | tuple) else []:
        if callable(tool):
            defs.append({"type": "function", "name": getattr(tool, "__name__", None), "description": tool.__doc__})
            continue
        function = get(tool, "function")
        parameters = get(function, "parameters")
        if hasattr(parameters, "model_dump"):
            parameters = parameters.model_dump(exclude_none=True, by_alias=True)
        name, description = get(function, "name"), get(function, "description")
        defs.append({"type": "function", "name": name, "description": description, "parameters": parameters})
    return defs or None


def _usage(result: Any) -> Usage:
    return Usage(input_tokens=get(result, "prompt_eval_count"), output_tokens=get(result, "eval_count"))


class Call(Endpoint):
    """One client method; ``method`` names it (``chat``, ``generate``, ``embed``, ``embeddings``)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.operation = {"chat": sc.OP_CHAT, "generate": sc.OP_TEXT_COMPLETION}.get(method, sc.OP_EMBEDDINGS)

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        if instance is None or isinstance(instance, ModuleType):  # a module function: the default client
            instance = getattr(sys.modules.get("ollama"), "_client", None)
        host, port = server_of(get(get(instance, "_client"), "base_url"))
        model = _arguments(self.method, args, kwargs).get("model")
        stream = self.operation != sc.OP_EMBEDDINGS and kwargs.get("stream") is True
        model = model if isinstance(model, str) and model else None
        return Request(self.operation, PROVIDER, model, stream, server_address=host, server_port=port)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        call, attrs = _arguments(self.method, args, kwargs), request.attributes
        options = call.get("options")
        put(attrs, sc.REQUEST_MAX_TOKENS, get(options, "num_predict"), int)
        put(attrs, sc.REQUEST_TEMPERATURE, get(options, "temperature"), float)
        put(attrs, sc.REQUEST_TOP_P, get(options, "top_p"), float)
        put(attrs, sc.REQUEST_TOP_K, get(options, "top_k"), int)
        put(attrs, sc.REQUEST_SEED, get(options, "seed"), int)
        put(attrs, sc.REQUEST_FREQUENCY_PENALTY, get(options, "frequency_penalty"), float)
        put(attrs, sc.REQUEST_PRESENCE_PENALTY, get(options, "presence_penalty"), float)
        put(attrs, sc.REQUEST_STOP_SEQUENCES, get(options, "stop"))
        put(attrs, sc.EMBEDDINGS_DIMENSION_COUNT, call.get("dimensions"), int)
        if given(call.get("format")) and call.get("format") != "":
            attrs[sc.OUTPUT_TYPE] = "json"
        if self.method == "chat":
            messages = [_message(m) for m in call.get("messages") or []]
            system = [p for m in messages if m["role"] == "system" for p in m["parts"]]
            request.system_instructions = system or None
            request.input_messages = [m for m in messages if m["role"] != "system"]
            request.tool_definitions = _tools(call.get("tools"))
        elif self.method == "generate":
            request.system_instructions = [text_part(call["system"])] if given(call.get("system")) else None
            prompt = call.get("prompt")
            request.input_messages = [{"role": "user", "parts": [text_part(prompt)]}] if prompt else None

    def parse_response(self, request: Request, result: Any) -> Response:
        if self.operation == sc.OP_EMBEDDINGS:
            vectors = get(result, "embeddings") or ([get(result, "embedding")] if get(result, "embedding") else [])
            response = Response(model=get(result, "model"), usage=Usage(input_tokens=get(result, "prompt_eval_count")))
            if vectors and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
                response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(vectors[0])
            return response
        stream = Stream(self.method)
        stream.add(result)
        return stream.result(request)

    def new_stream(self, request: Request) -> Stream:
        return Stream(self.method)


class Stream:
    """Folds streamed ``ChatResponse`` / ``GenerateResponse`` objects; the last one (``done``) has the counts."""

    def __init__(self, method: str) -> None:
        self.chat = method == "chat"
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: list[Part] = []
        self.last: Any = None

    def add(self, chunk: Any) -> bool:
        message = get(chunk, "message") if self.chat else chunk
        text, thinking = get(message, "content" if self.chat else "response"), get(message, "thinking")
        calls = _message(message)["parts"] if self.chat and get(message, "tool_calls") else []
        self.text += [text] if text else []
        self.thinking += [thinking] if thinking else []
        self.calls += [p for p in calls if p["type"] == "tool_call"]
        if get(chunk, "done"):
            self.last = chunk
        return bool(text or thinking or calls)

    def result(self, request: Request) -> Response:
        parts: list[Part] = [{"type": "reasoning", "content": "".join(self.thinking)}] if self.thinking else []
        parts += [text_part("".join(self.text))] if self.text else []
        parts += self.calls
        reason = get(self.last, "done_reason") or ""
        output: Message = {"role": "assistant", "parts": parts, "finish_reason": reason}
        return Response(
            model=get(self.last, "model"),
            finish_reasons=[reason] if reason else [],
            usage=_usage(self.last),
            output_messages=[output],
        )


def patches() -> list[Patch]:
    methods = ("chat", "generate", "embed", "embeddings")
    calls = {method: Call(method) for method in methods}
    return [
        *(Patch("ollama._client", f"{cls}.{m}", calls[m]) for cls in ("Client", "AsyncClient") for m in methods),
        *(Patch("ollama", m, calls[m]) for m in methods),
    ]
