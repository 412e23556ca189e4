"""Google Gen AI SDK (``google.genai``): generate content (whole or streamed) and embeddings, sync and async.

One span per request the SDK sends: the private ``_generate_content`` / ``_generate_content_stream``
are patched, not the public methods, because one public call may send several requests
(automatic function calling, automatic continuation) and each is billed on its own. Chats
(``send_message``, ``send_message_stream``) go through them too; ``count_tokens`` is left alone.
The provider is ``gcp.vertex_ai`` for a ``vertexai=True`` client, else ``gcp.gemini``.

Gemini counts as the conventions want once added up: ``promptTokenCount`` already includes
``cachedContentTokenCount`` (cache reads); output is ``candidatesTokenCount + thoughtsTokenCount``
(reasoning, which Gemini counts apart). Finish reasons take the conventions' values
(``stop``, ``length``, ``content_filter``, ``error``); others are Gemini's, lower-cased.
"""

from __future__ import annotations

import base64
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._choices import Choices
from llmtrace.instrumentation._core import Endpoint
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get, given, put, server_of

SDK = "google.genai"

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "MALFORMED_RESPONSE": "error",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "MODEL_ARMOR"),
        "content_filter",
    ),
}


def _field(obj: Any, name: str) -> Any:
    """A config field from an SDK model (snake_case) or a dict in either spelling."""
    value = get(obj, name)
    if value is None and isinstance(obj, dict):
        head, *rest = name.split("_")
        value = obj.get(head + "".join(word.title() for word in rest))
    return value


def _finish_reason(reason: Any) -> str:
    name = str(getattr(reason, "value", reason) or "")
    return _FINISH_REASONS.get(name, name.lower())


def _model_name(model: Any) -> str | None:
    """``models/x``, ``publishers/google/models/x`` or a full Vertex resource name: the model id ``x``."""
    return model.rsplit("models/", 1)[-1] if isinstance(model, str) and model else None


def _blob(data: Any, mime_type: Any) -> Part:
    content = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    modality = str(mime_type or "").split("/", 1)[0] or "unknown"
    return {"type": "blob", "modality": modality, "mime_type": mime_type, "content": content}


def _part(part: Any) -> Part:
    """One ``Part`` (SDK model or dict) as a semconv part."""
    if isinstance(part, str):
        return text_part(part)
    text = _field(part, "text")
    if isinstance(text, str):
        return {"type": "reasoning", "content": text} if _field(part, "thought") else text_part(text)
    call = _field(part, "function_call")
    if call is not None:
        return tool_call_part(get(call, "id"), get(call, "name"), get(call, "args"))
    response = _field(part, "function_response")
    if response is not None:
        return {"type": "tool_call_response", "id": get(response, "id"), "response": get(response, "response")}
    blob = _field(part, "inline_data")
    if blob is not None:
        return _blob(get(blob, "data"), _field(blob, "mime_type"))
    file = _field(part, "file_data")
    if file is not None:
        mime_type = _field(file, "mime_type")
        modality = str(mime_type or "").split("/", 1)[0] or "unknown"
        return {"type": "uri", "modality": modality, "mime_type": mime_type, "uri": _field(file, "file_uri")}
    # Anything else (executable code, its result, a video's metadata): named by its one field, kept as is.
    fields = part.items() if isinstance(part, dict) else getattr(part, "__dict__", {}).items()
    kind, value = next(((k, v) for k, v in fields if v is not None), (type(part).__name__.lower(), str(part)))
    return {"type": kind, "content": value}


def _is_content(item: Any) -> bool:
    return _field(item, "parts") is not None or get(item, "role") is not None


def _message(content: Any) -> Message:
    parts = [_part(p) for p in _field(content, "parts") or []]
    role = get(content, "role") or "user"
    if parts and all(p["type"] == "tool_call_response" for p in parts):
        role = "tool"
    return {"role": "assistant" if role == "model" else role, "parts": parts}


def _messages(contents: Any) -> list[Message]:
    """``contents`` as the SDK takes it (text, parts, contents, or a list of them) as input messages;
    loose texts and parts in a row make one user message, as the SDK sends them."""
    items = contents if isinstance(contents, list | tuple) else [contents]
    out: list[Message] = []
    loose: list[Part] = []
    for item in items:
        if _is_content(item):
            if loose:
                out.append({"role": "user", "parts": loose})
                loose = []
            out.append(_message(item))
        elif item is not None:
            loose.append(_part(item))
    if loose:
        out.append({"role": "user", "parts": loose})
    return out


def _system(instruction: Any) -> list[Part] | None:
    if not given(instruction):
        return None
    if _is_content(instruction):
        parts: list[Part] = _message(instruction)["parts"]
        return parts
    return [_part(p) for p in (instruction if isinstance(instruction, list | tuple) else [instruction])]


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    """Function declarations (and Python functions, which the SDK declares itself); other tools by kind."""
    defs: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list | tuple) else []:
        if callable(tool):
            defs.append({"type": "function", "name": getattr(tool, "__name__", None), "description": tool.__doc__})
            continue
        declarations = _field(tool, "function_declarations")
        for fn in declarations or []:
            parameters = _field(fn, "parameters") or _field(fn, "parameters_json_schema")
            if hasattr(parameters, "model_dump"):
                parameters = parameters.model_dump(exclude_none=True, mode="json")
            name, description = get(fn, "name"), get(fn, "description")
            defs.append({"type": "function", "name": name, "description": description, "parameters": parameters})
        if not declarations:
            kinds = [k for k, v in (tool.items() if isinstance(tool, dict) else vars(tool).items()) if v is not None]
            defs.extend({"type": kind} for kind in kinds)
    return defs or None


def _usage(meta: Any) -> Usage:
    if meta is None:
        return Usage()
    prompt, tool_prompt = get(meta, "prompt_token_count"), get(meta, "tool_use_prompt_token_count")
    candidates, thoughts = get(meta, "candidates_token_count"), get(meta, "thoughts_token_count")
    return Usage(
        input_tokens=None if prompt is None and tool_prompt is None else (prompt or 0) + (tool_prompt or 0),
        output_tokens=None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0),
        cache_read_tokens=get(meta, "cached_content_token_count"),
        reasoning_tokens=thoughts,
    )


def _new_request(instance: Any, operation: str, kwargs: dict[str, Any], stream: bool) -> Request:
    client = get(instance, "_api_client")
    host, port = server_of(get(get(client, "_http_options"), "base_url"))
    provider = "gcp.vertex_ai" if get(client, "vertexai") else "gcp.gemini"
    model = _model_name(kwargs.get("model"))
    return Request(operation, provider, model, stream, server_address=host, server_port=port)


class GenerateContent(Endpoint):
    """``Models._generate_content`` / ``_generate_content_stream`` (and their async twins): one request each."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return _new_request(instance, sc.OP_GENERATE_CONTENT, kwargs, self.stream)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        config, attrs = kwargs.get("config"), request.attributes
        put(attrs, sc.REQUEST_MAX_TOKENS, _field(config, "max_output_tokens"), int)
        put(attrs, sc.REQUEST_TEMPERATURE, _field(config, "temperature"), float)
        put(attrs, sc.REQUEST_TOP_P, _field(config, "top_p"), float)
        put(attrs, sc.REQUEST_TOP_K, _field(config, "top_k"), int)
        put(attrs, sc.REQUEST_STOP_SEQUENCES, _field(config, "stop_sequences"))
        put(attrs, sc.REQUEST_FREQUENCY_PENALTY, _field(config, "frequency_penalty"), float)
        put(attrs, sc.REQUEST_PRESENCE_PENALTY, _field(config, "presence_penalty"), float)
        put(attrs, sc.REQUEST_SEED, _field(config, "seed"), int)
        count = _field(config, "candidate_count")
        if given(count) and count != 1:
            put(attrs, sc.REQUEST_CHOICE_COUNT, count, int)
        schema = _field(config, "response_schema") or _field(config, "response_json_schema")
        if _field(config, "response_mime_type") == "application/json" or schema is not None:
            attrs[sc.OUTPUT_TYPE] = "json"
        request.system_instructions = _system(_field(config, "system_instruction"))
        request.input_messages = _messages(kwargs.get("contents"))
        request.tool_definitions = _tools(_field(config, "tools"))

    def parse_response(self, request: Request, result: Any) -> Response:
        whole = ContentStream()
        whole.add(result)
        return whole.result(request)

    def new_stream(self, request: Request) -> ContentStream:
        return ContentStream()


class ContentStream:
    """Folds ``GenerateContentResponse``s (streamed chunks, or one whole response): parts per candidate,
    the latest usage (each chunk carries the usage so far)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.choices = Choices()

    def add(self, chunk: Any) -> bool:
        self.id = self.id or get(chunk, "response_id")
        self.model = self.model or get(chunk, "model_version")
        self.usage = get(chunk, "usage_metadata") or self.usage
        carried = False
        for candidate in get(chunk, "candidates") or []:
            index = get(candidate, "index", 0)
            for part in get(get(candidate, "content"), "parts") or []:
                self.choices.add(index, _part(part))
                carried = True
            if get(candidate, "finish_reason") is not None:
                self.choices.finish(index, _finish_reason(get(candidate, "finish_reason")))
        return carried

    def result(self, request: Request) -> Response:
        outputs, reasons = self.choices.outputs()
        return Response(self.id, self.model, reasons, _usage(self.usage), outputs)


class EmbedContent(Endpoint):
    """``Models.embed_content``: Vertex reports tokens per embedding; the Gemini API reports none."""

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return _new_request(instance, sc.OP_EMBEDDINGS, kwargs, False)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        dimensions = _field(kwargs.get("config"), "output_dimensionality")
        put(request.attributes, sc.EMBEDDINGS_DIMENSION_COUNT, dimensions, int)

    def parse_response(self, request: Request, result: Any) -> Response:
        embeddings = get(result, "embeddings") or []
        counts = [get(get(e, "statistics"), "token_count") for e in embeddings]
        tokens: Any = sum(int(n) for n in counts if n is not None) if any(n is not None for n in counts) else None
        tokens = get(get(result, "usage_metadata"), "prompt_token_count", tokens)
        response = Response(usage=Usage(input_tokens=tokens))
        values = get(embeddings[0], "values") if embeddings else None
        if isinstance(values, list) and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
            response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(values)
        return response


def patches() -> list[Patch]:
    whole, streamed, embed = GenerateContent(stream=False), GenerateContent(stream=True), EmbedContent()
    return [
        target
        for cls in ("Models", "AsyncModels")
        for target in (
            Patch("google.genai.models", f"{cls}._generate_content", whole),
            Patch("google.genai.models", f"{cls}._generate_content_stream", streamed),
            Patch("google.genai.models", f"{cls}.embed_content", embed),
        )
    ]
