"""Shared pieces of the fake LLM service: per-request controls, replies, deterministic text.

The provider modules (``fake_llm_openai``, ``fake_llm_anthropic``) build replies out of these
parts; ``fake_llm`` puts them on the wire. Everything here is pure and deterministic except
ids and timestamps, which real APIs make unique too.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import string
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_ALNUM = string.ascii_letters + string.digits
_FILLER_TEXT = (
    "the quick answer depends on context and careful reasoning about each part of your question "
    "so here is a short deterministic reply that keeps going with plain useful words until the "
    "requested length is reached while staying readable for people who look at traces"
)
_FILLER = _FILLER_TEXT.split(" ")


@dataclass(frozen=True)
class Controls:
    """What the caller asked of this one request through ``x-fake-*`` headers."""

    status: int | None = None
    stream_error_after: int | None = None
    output_words: int | None = None
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    malformed: bool = False
    replay: str | None = None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None or not value.strip():
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(f"header {name} must be a non-negative integer, got {value!r}") from None


def parse_controls(headers: Mapping[str, str], *, latency_s: float, chunk_delay_s: float) -> Controls:
    """Read the ``x-fake-*`` headers (names lower-case); server defaults fill the delays.

    Raises ValueError naming the header when a number does not parse.
    """
    latency_ms = _int_header(headers, "x-fake-latency-ms")
    chunk_ms = _int_header(headers, "x-fake-chunk-delay-ms")
    return Controls(
        status=_int_header(headers, "x-fake-status"),
        stream_error_after=_int_header(headers, "x-fake-stream-error-after"),
        output_words=_int_header(headers, "x-fake-output-words"),
        latency_s=latency_s if latency_ms is None else latency_ms / 1000,
        chunk_delay_s=chunk_delay_s if chunk_ms is None else chunk_ms / 1000,
        malformed=headers.get("x-fake-malformed", "").strip().lower() in ("1", "true", "yes"),
        replay=(headers.get("x-fake-replay") or "").strip() or None,
    )


@dataclass(frozen=True)
class Frame:
    """One SSE event, already encoded; ``content`` marks text/argument deltas (they get delays)."""

    data: bytes
    content: bool = False


@dataclass
class JsonReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class SseReply:
    frames: list[Frame]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"


Reply = JsonReply | SseReply


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(status: int, obj: Any, headers: dict[str, str] | None = None) -> JsonReply:
    return JsonReply(status, dumps(obj), dict(headers or {}))


def sse_frame(data: Any, *, event: str | None = None, content: bool = False) -> Frame:
    """Encode one SSE event; ``data`` is a JSON-able object or a raw string such as ``[DONE]``."""
    payload = data if isinstance(data, str) else dumps(data).decode()
    head = f"event: {event}\n" if event else ""
    return Frame(f"{head}data: {payload}\n\n".encode(), content)


def cut_after_content(frames: list[Frame], n: int) -> list[Frame]:
    """Where a failing stream breaks off: after the ``n``-th content frame, or the last if fewer."""
    positions = [i for i, frame in enumerate(frames) if frame.content]
    if not positions:
        return frames[:1]
    if n == 0:
        return frames[: positions[0]]
    return frames[: positions[min(n, len(positions)) - 1] + 1]


class CacheState:
    """Remembers prompt prefixes so repeated ones can report cached tokens, like real prompt caches."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def seen_before(self, key: str) -> bool:
        """True when ``key`` was offered before; records it either way."""
        with self._lock:
            if key in self._seen:
                return True
            self._seen.add(key)
            return False


@dataclass
class Context:
    """Everything a provider handler needs besides the request body."""

    controls: Controls
    cache: CacheState
    headers: Mapping[str, str]


Handler = Callable[[dict[str, Any], Context], Reply]


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def count_tokens(text: str) -> int:
    """About one token per four characters, the usual rule of thumb; 0 only for empty text."""
    return math.ceil(len(text) / 4)


def seed_of(text: str) -> int:
    return zlib.crc32(text.encode())


def reply_words(prompt: str, words: int | None, *, variant: int = 0) -> list[str]:
    """The reply as words: ``Echo:`` + the prompt's first words, then deterministic filler.

    ``words`` fixes the count exactly (``x-fake-output-words``); otherwise it is 12-24,
    derived from the prompt so the same prompt always gets the same reply.
    """
    seed = seed_of(f"{variant}:{prompt}")
    total = words if words is not None else 12 + seed % 13
    head = ["Echo:", *prompt.split()[:6]]
    rng = random.Random(seed)
    while len(head) < total:
        head.append(rng.choice(_FILLER))
    return head[:total]


def unit_vector(text: str, dims: int) -> list[float]:
    """A deterministic embedding: ``dims`` floats of unit length, seeded by ``text``."""
    rng = random.Random(seed_of(text))
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vector]


def word_chunks(words: list[str]) -> list[str]:
    """Stream pieces, one per word, with the leading space real tokenizers put on later words."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def text_chunks(text: str) -> list[str]:
    """Split arbitrary text (e.g. JSON) into word-like pieces whose concatenation is ``text``."""
    pieces: list[str] = []
    current = ""
    for ch in text:
        if ch == " " and current.strip():
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces


_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def sample_from_schema(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None, name: str = "value") -> Any:
    """A value valid for a simple JSON schema (objects, arrays, scalars, enums, refs, anyOf).

    Used for tool-call arguments and structured outputs, so SDK parse helpers get valid JSON.
    """
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return sample_from_schema(target, defs, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if options:
            return sample_from_schema(options[0], defs, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return _sample_of_type(str(kind), schema, defs, name)


def _sample_of_type(kind: str, schema: Mapping[str, Any], defs: Mapping[str, Any], name: str) -> Any:
    if kind == "object":
        props = schema.get("properties", {})
        return {key: sample_from_schema(sub, defs, key) for key, sub in props.items()}
    if kind == "array":
        return [sample_from_schema(schema.get("items", {}), defs, name)]
    if kind == "integer":
        return int(schema.get("minimum", 42))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _FORMATS.get(str(schema.get("format", "")), f"sample {name}")
