"""Bedrock's Converse shapes: content blocks, messages, tools, inference parameters, usage, stream events.

Amazon Nova's native ``invoke_model`` body uses the same camelCase shapes, so the Converse endpoints
and Nova bodies both read through here. Converse's ``inputTokens`` excludes the prompt cache
(``totalTokens`` = input + output + cache reads + cache writes, as real responses show), so the
span's input tokens add the two cache counters back, as the conventions count them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from opentelemetry.util.types import AttributeValue

from llmtrace import semconv as sc
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._sdk import put

_MEDIA = ("image", "document", "video", "audio")
_ROLES = {"assistant": "assistant", "user": "user", "system": "system"}
# Request parameters under every spelling Bedrock bodies use (Converse/Nova camelCase, Anthropic, Meta,
# Mistral and Cohere snake_case, Titan's textGenerationConfig), read from one merged dict.
_PARAMETERS: tuple[tuple[str, tuple[str, ...], type], ...] = (
    (sc.REQUEST_MAX_TOKENS, ("maxTokens", "max_tokens", "max_new_tokens", "max_gen_len", "maxTokenCount"), int),
    (sc.REQUEST_TEMPERATURE, ("temperature",), float),
    (sc.REQUEST_TOP_P, ("topP", "top_p", "p"), float),
    (sc.REQUEST_TOP_K, ("topK", "top_k", "k"), int),
    (sc.REQUEST_STOP_SEQUENCES, ("stopSequences", "stop_sequences", "stop"), list),
)
STREAM_EVENTS = frozenset(
    ("messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata")
)


def put_parameters(attrs: dict[str, AttributeValue], *configs: Any) -> None:
    """Sampling parameters from the given dicts (later ones win), under any of Bedrock's spellings."""
    merged: dict[str, Any] = {}
    for config in configs:
        if isinstance(config, dict):
            merged.update(config)
    for name, keys, kind in _PARAMETERS:
        value = next((merged[k] for k in keys if merged.get(k) is not None), None)
        if kind is list:
            put(attrs, name, [value] if isinstance(value, str) else value)
        else:
            put(attrs, name, value, kind)


def json_or_text(raw: str) -> Any:
    """Streamed tool input as JSON when it parses, else the raw text (a stream can stop mid-way)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _media(kind: str, block: Any) -> Part:
    source = block.get("source") if isinstance(block, dict) else None
    fmt = block.get("format") if isinstance(block, dict) else None
    mime_type = f"{kind}/{fmt}" if fmt and kind != "document" else fmt
    if isinstance(source, dict) and isinstance(source.get("bytes"), bytes | bytearray | str):
        data = source["bytes"]
        content = data if isinstance(data, str) else base64.b64encode(data).decode()
        return {"type": "blob", "modality": kind, "mime_type": mime_type, "content": content}
    if isinstance(source, dict) and isinstance(source.get("s3Location"), dict):
        return {"type": "uri", "modality": kind, "mime_type": mime_type, "uri": source["s3Location"].get("uri")}
    if isinstance(source, dict) and isinstance(source.get("text"), str):
        return text_part(source["text"])
    return {"type": kind, "content": block}


def _tool_result(result: dict[str, Any]) -> Part:
    items = [c.get("json", c.get("text", c)) if isinstance(c, dict) else c for c in result.get("content") or []]
    response = items[0] if len(items) == 1 else items
    return {"type": "tool_call_response", "id": result.get("toolUseId"), "response": response}


def part(block: Any) -> Part | None:
    """One content block as a semconv part; None for cache points, which carry no content."""
    if not isinstance(block, dict):
        return text_part(str(block))
    if "text" in block:
        return text_part(str(block["text"]))
    if "toolUse" in block:
        call = block["toolUse"] or {}
        return tool_call_part(call.get("toolUseId"), call.get("name"), call.get("input"))
    if "toolResult" in block:
        return _tool_result(block["toolResult"] or {})
    if "reasoningContent" in block:
        reasoning = (block["reasoningContent"] or {}).get("reasoningText") or {}
        return {"type": "reasoning", "content": reasoning.get("text") or ""}
    kind = next((k for k in _MEDIA if k in block), None)
    if kind is not None:
        return _media(kind, block[kind])
    if "cachePoint" in block:
        return None
    kind, value = next(iter(block.items()), ("unknown", None))
    return {"type": str(kind), "content": value}


def parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    found = (part(block) for block in content) if isinstance(content, list | tuple) else ()
    return [p for p in found if p is not None]


def messages(items: Any) -> list[Message]:
    """Converse messages; a user turn made only of tool results is the tool's message."""
    out: list[Message] = []
    for item in items if isinstance(items, list | tuple) else []:
        if not isinstance(item, dict):
            continue
        found = parts(item.get("content"))
        role = _ROLES.get(str(item.get("role")), str(item.get("role")))
        if found and all(p["type"] == "tool_call_response" for p in found):
            role = "tool"
        out.append({"role": role, "parts": found})
    return out


def system(blocks: Any) -> list[Part] | None:
    found = parts(blocks) if blocks else []
    return found or None


def tools(config: Any) -> list[dict[str, Any]] | None:
    """``toolConfig.tools``: each ``toolSpec`` as a function with its JSON schema."""
    defs: list[dict[str, Any]] = []
    for tool in (config.get("tools") or []) if isinstance(config, dict) else []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict):
            schema = (spec.get("inputSchema") or {}).get("json")
            defs.append(
                {
                    "type": "function",
                    "name": spec.get("name"),
                    "description": spec.get("description"),
                    "parameters": schema,
                }
            )
    return defs or None


def _first(counts: dict[str, Any], *names: str) -> int | None:
    return next((counts[n] for n in names if isinstance(counts.get(n), int)), None)


def usage(counts: Any) -> Usage:
    """Converse (and Nova) usage with the cache counters added to the input tokens."""
    if not isinstance(counts, dict):
        return Usage()
    read = _first(counts, "cacheReadInputTokens", "cacheReadInputTokenCount")
    write = _first(counts, "cacheWriteInputTokens", "cacheWriteInputTokenCount")
    uncached = _first(counts, "inputTokens")
    total_input = None if uncached is None else uncached + (read or 0) + (write or 0)
    return Usage(total_input, _first(counts, "outputTokens"), read, write)


def response(body: Any, model: str | None = None) -> Response:
    """A whole Converse (or Nova) response: ``output.message``, ``stopReason``, ``usage`` (``model``: the
    requested id; these bodies name none)."""
    message = ((body.get("output") or {}).get("message") or {}) if isinstance(body, dict) else {}
    reason = str(body.get("stopReason") or "") if isinstance(body, dict) else ""
    output: Message = {"role": "assistant", "parts": parts(message.get("content")), "finish_reason": reason}
    counts = body.get("usage") if isinstance(body, dict) else None
    return Response(None, model, [reason] if reason else [], usage(counts), [output])


class ConverseEvents:
    """Folds Converse stream events (``messageStart`` ... ``metadata``), also Nova's invoke stream chunks."""

    def __init__(self) -> None:
        self.pieces: dict[int, tuple[str, list[str]]] = {}
        self.starts: dict[int, dict[str, Any]] = {}
        self.reason: str | None = None
        self.counts: Any = None

    def add(self, event: Any) -> bool:
        delta_event = event.get("contentBlockDelta")
        if delta_event is not None:
            return self._delta(delta_event)
        if "contentBlockStart" in event:
            start = event["contentBlockStart"] or {}
            self.starts[int(start.get("contentBlockIndex", 0))] = start.get("start") or {}
        elif "messageStop" in event:
            self.reason = (event["messageStop"] or {}).get("stopReason") or self.reason
        elif "metadata" in event:
            self.counts = (event["metadata"] or {}).get("usage") or self.counts
        return False

    def _delta(self, event: dict[str, Any]) -> bool:
        delta = event.get("delta") or {}
        if "text" in delta:
            kind, piece = "text", delta["text"]
        elif "toolUse" in delta:
            kind, piece = "tool", (delta["toolUse"] or {}).get("input")
        elif "reasoningContent" in delta:
            kind, piece = "reasoning", (delta["reasoningContent"] or {}).get("text")
        else:
            return False
        self.pieces.setdefault(int(event.get("contentBlockIndex", 0)), (kind, []))[1].append(piece or "")
        return True

    def _part(self, index: int) -> Part:
        kind, pieces = self.pieces.get(index, ("tool", []))
        joined = "".join(pieces)
        if kind == "tool":
            call = self.starts.get(index, {}).get("toolUse") or {}
            return tool_call_part(call.get("toolUseId"), call.get("name"), json_or_text(joined) if joined else {})
        return {"type": "reasoning", "content": joined} if kind == "reasoning" else text_part(joined)

    def result(self, request: Request) -> Response:
        found = [self._part(i) for i in sorted(set(self.pieces) | set(self.starts))]
        reason = self.reason or ""
        output: Message = {"role": "assistant", "parts": found, "finish_reason": reason}
        return Response(None, request.model, [reason] if reason else [], usage(self.counts), [output])
