"""The model-native bodies of Bedrock's ``invoke_model`` / ``invoke_model_with_response_stream``.

Each model family speaks its own JSON; the family is told from the body's own keys (never from the
model id, which may be an opaque inference-profile ARN):

==================  ===================================  ==========================================
family              request                              response / stream chunk
==================  ===================================  ==========================================
Anthropic           ``anthropic_version``, ``messages``  the Messages API message / its raw events
Amazon Nova         ``messages`` + ``inferenceConfig``   Converse's ``output`` / Converse's events
Meta Llama          ``prompt``, ``max_gen_len``          ``generation``, token counts
Amazon Titan        ``inputText``                        ``results`` / ``outputText``
Mistral             ``prompt`` or ``messages``           ``outputs`` or OpenAI-like ``choices``
Cohere              ``message`` (+ history) / ``prompt`` ``text`` or ``generations``
==================  ===================================  ==========================================

Tokens missing from a body come from what Bedrock adds for every family: the
``x-amzn-bedrock-{input,output}-token-count`` headers, and the last chunk's
``amazon-bedrock-invocationMetrics``.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation import _bedrock_converse as converse
from llmtrace.instrumentation._choices import Choices
from llmtrace.instrumentation._model import Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._sdk import put
from llmtrace.instrumentation.anthropic import MessageEvents, Messages
from llmtrace.instrumentation.openai import chat_messages, tool_definitions

_METRICS = "amazon-bedrock-invocationMetrics"
_COHERE_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}
_ANTHROPIC = Messages()


def _is_anthropic_request(body: dict[str, Any]) -> bool:
    return "anthropic_version" in body


def _is_nova_request(body: dict[str, Any]) -> bool:
    return "messages" in body and ("schemaVersion" in body or "inferenceConfig" in body)


def describe(request: Request, body: dict[str, Any]) -> None:
    """Request attributes and content of a native body."""
    if request.operation == sc.OP_EMBEDDINGS:  # the texts are not recorded, as for every embeddings call
        put(request.attributes, sc.EMBEDDINGS_DIMENSION_COUNT, body.get("dimensions"), int)
        return
    if _is_anthropic_request(body):
        _ANTHROPIC.describe_request(request, (), body)
        return
    converse.put_parameters(request.attributes, body, body.get("textGenerationConfig"), body.get("inferenceConfig"))
    if _is_nova_request(body):
        request.system_instructions = converse.system(body.get("system"))
        request.input_messages = converse.messages(body.get("messages"))
        request.tool_definitions = converse.tools(body.get("toolConfig"))
    elif "messages" in body:  # Mistral Large 2 and later: OpenAI-shaped chat
        system, request.input_messages = chat_messages(body.get("messages"))
        request.system_instructions = system or None
        request.tool_definitions = tool_definitions(body.get("tools"))
    elif "message" in body:  # Cohere Command R: the turn, its history, a preamble
        _describe_cohere(request, body)
    else:  # a prompt to complete: Llama, Titan, Mistral 7B / Mixtral, Cohere Command
        prompt = body.get("prompt", body.get("inputText"))
        if isinstance(prompt, str):
            request.input_messages = [{"role": "user", "parts": [text_part(prompt)]}]


def _describe_cohere(request: Request, body: dict[str, Any]) -> None:
    history = body.get("chat_history")
    turns = [
        {"role": _COHERE_ROLES.get(str(turn.get("role")), "user"), "parts": [text_part(str(turn.get("message", "")))]}
        for turn in (history if isinstance(history, list) else [])
        if isinstance(turn, dict)
    ]
    request.input_messages = [*turns, {"role": "user", "parts": [text_part(str(body.get("message", "")))]}]
    if isinstance(body.get("preamble"), str):
        request.system_instructions = [text_part(body["preamble"])]
    defs = [
        {"type": "function", "name": t.get("name"), "description": t.get("description"),
         "parameters": t.get("parameter_definitions")}
        for t in body.get("tools") or [] if isinstance(t, dict)
    ]  # fmt: skip
    request.tool_definitions = defs or None


def response(request: Request, body: Any, headers: dict[str, Any]) -> Response:
    """A whole native response body; tokens it lacks come from Bedrock's headers."""
    if not isinstance(body, dict):
        result = Response()
    elif "embedding" in body or "embeddings" in body:
        result = _embeddings(request, body)
    elif body.get("type") == "message" or ("content" in body and "stop_reason" in body):
        result = _ANTHROPIC.parse_response(request, body)
    elif isinstance(body.get("output"), dict):
        result = converse.response(body, request.model)
    else:
        fold = TextFold()
        fold.add(body)
        result = fold.result(request)
    result.model = result.model or request.model
    return _with_counts(result, _int(headers.get("x-amzn-bedrock-input-token-count")),
                        _int(headers.get("x-amzn-bedrock-output-token-count")))  # fmt: skip


def _embeddings(request: Request, body: dict[str, Any]) -> Response:
    """Titan (``embedding``, ``inputTextTokenCount``) or Cohere (``embeddings``: a list per text, or per type)."""
    vectors = body.get("embeddings")
    if isinstance(vectors, dict):  # Cohere with embedding_types: {"float": [[...]], ...}
        vectors = next(iter(vectors.values()), None)
    first = (
        body.get("embedding")
        if "embedding" in body
        else (vectors[0] if isinstance(vectors, list) and vectors else None)
    )
    response = Response(id=_first_str(body, "id"), usage=Usage(input_tokens=_first_int(body, "inputTextTokenCount")))
    if isinstance(first, list) and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
        response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(first)
    return response


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _with_counts(result: Response, input_tokens: int | None, output_tokens: int | None) -> Response:
    """Fill token counts the body did not give from Bedrock's own (headers or invocation metrics)."""
    usage = result.usage
    if usage.input_tokens is None and input_tokens is not None:
        usage.input_tokens = input_tokens
    if usage.output_tokens is None and output_tokens is not None:
        usage.output_tokens = output_tokens
    return result


class TextFold:
    """The simple families, whole or chunk by chunk: text and finish reason per choice, the latest token
    counts, the response id. A whole body folds as one chunk: each family's body is its chunk's superset."""

    def __init__(self) -> None:
        self.choices = Choices()
        self.id: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def add(self, chunk: dict[str, Any]) -> bool:
        self.id = self.id or _first_str(chunk, "response_id", "id")
        self.input_tokens = _first_int(chunk, "prompt_token_count", "inputTextTokenCount") or self.input_tokens
        self.output_tokens = _first_int(chunk, "generation_token_count", "totalOutputTextTokenCount") or (
            self.output_tokens
        )
        before = len(self.choices.parts)
        carried = self._text(chunk)
        return carried or len(self.choices.parts) > before

    def _text(self, chunk: dict[str, Any]) -> bool:
        if "generation" in chunk:  # Meta Llama
            return self._put(0, chunk["generation"], chunk.get("stop_reason"))
        if "outputText" in chunk:  # Titan, streamed
            return self._put(chunk.get("index", 0), chunk["outputText"], chunk.get("completionReason"))
        if isinstance(chunk.get("results"), list):  # Titan, whole
            for i, result in enumerate(chunk["results"]):
                self.output_tokens = _first_int(result, "tokenCount") or self.output_tokens
                self._put(i, result.get("outputText"), result.get("completionReason"))
            return bool(chunk["results"])
        if isinstance(chunk.get("outputs"), list):  # Mistral 7B / Mixtral / Large 2402
            return any([self._put(i, o.get("text"), o.get("stop_reason")) for i, o in enumerate(chunk["outputs"])])
        if isinstance(chunk.get("choices"), list):  # Mistral Large 2+: OpenAI-like
            return any([self._choice(i, c) for i, c in enumerate(chunk["choices"]) if isinstance(c, dict)])
        if isinstance(chunk.get("generations"), list):  # Cohere Command
            return any(
                [self._put(i, g.get("text"), g.get("finish_reason")) for i, g in enumerate(chunk["generations"])]
            )
        return self._cohere(chunk)

    def _cohere(self, chunk: dict[str, Any]) -> bool:
        """Command R: the whole body, or a ``text-generation`` chunk; ``stream-end`` repeats the text: skipped."""
        kind = chunk.get("event_type")
        text = chunk.get("text") if kind in (None, "text-generation") else None
        reason = chunk.get("finish_reason")
        for call in chunk.get("tool_calls") or [] if kind is None else []:
            self.choices.add(0, tool_call_part(None, call.get("name"), call.get("parameters")))
        return self._put(0, text, reason)

    def _choice(self, index: int, choice: dict[str, Any]) -> bool:
        message = choice.get("delta") or choice.get("message") or {}
        index = choice.get("index", index)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments")
            arguments = converse.json_or_text(arguments) if isinstance(arguments, str) else arguments
            self.choices.add(index, tool_call_part(call.get("id"), function.get("name"), arguments))
        return self._put(index, message.get("content"), choice.get("finish_reason") or choice.get("stop_reason"))

    def _put(self, index: int, text: Any, reason: Any) -> bool:
        if reason:
            self.choices.finish(index, str(reason))
        if isinstance(text, str) and text:
            self.choices.add(index, text_part(text))
            return True
        return False

    def result(self, request: Request) -> Response:
        outputs, reasons = self.choices.outputs()
        return Response(self.id, None, reasons, Usage(self.input_tokens, self.output_tokens), outputs)


def _first_int(obj: dict[str, Any], *names: str) -> int | None:
    return next((obj[n] for n in names if isinstance(obj.get(n), int)), None)


def _first_str(obj: dict[str, Any], *names: str) -> str | None:
    return next((obj[n] for n in names if isinstance(obj.get(n), str)), None)


class InvokeEvents:
    """Folds ``invoke_model_with_response_stream`` events: each ``{"chunk": {"bytes": ...}}`` is one JSON
    chunk of the model's own stream, handed to that family's fold (chosen by the first chunk's keys)."""

    def __init__(self) -> None:
        self.fold: Any = None
        self.metrics: dict[str, Any] = {}

    def add(self, event: Any) -> bool:
        raw = (event.get("chunk") or {}).get("bytes") if isinstance(event, dict) else None
        if raw is None:
            return False
        chunk = json.loads(raw)
        if not isinstance(chunk, dict):
            return False
        metrics = chunk.get(_METRICS)
        if isinstance(metrics, dict):
            self.metrics = metrics
        if self.fold is None:
            self.fold = _fold_for(chunk)
        return bool(self.fold.add(chunk))

    def result(self, request: Request) -> Response:
        result = self.fold.result(request) if self.fold is not None else Response()
        result.model = result.model or request.model
        return _with_counts(result, _first_int(self.metrics, "inputTokenCount"),
                            _first_int(self.metrics, "outputTokenCount"))  # fmt: skip


def _fold_for(chunk: dict[str, Any]) -> Any:
    if isinstance(chunk.get("type"), str):  # Anthropic's raw Messages events
        return MessageEvents()
    if converse.STREAM_EVENTS & chunk.keys():  # Nova streams Converse's events
        return converse.ConverseEvents()
    return TextFold()


def parse_body(raw: Any) -> Any:
    """The JSON of a request or response body (bytes or text); None for anything else (file objects are
    the app's to read, and non-JSON bodies, such as images, carry nothing to record)."""
    if isinstance(raw, bytes | bytearray | str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return None
