"""Automatic prompt versions: stable hashes of a call's system instructions and message template.

Every call carries ``llmtrace.prompt.system_hash`` (its system instructions) and
``llmtrace.prompt.template_hash`` (its input messages), whether content capture is on or off: only
the hashes leave the process, never the text. The values of the variables an app declares with
``llmtrace.prompt(..., variables={...})`` are replaced by ``{{name}}`` before hashing, so the same
template filled with other values hashes the same, while any edit to its fixed text (or to the
system prompt) gives a new hash, i.e. a new prompt version nobody had to tag. Without declared
variables the messages are hashed as sent. Tool-call ids are left out: providers mint new ones
per call. Hashing runs on llmtrace's worker thread; the app's thread only reads one context
variable.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._json import c_encoder, quote
from llmtrace.instrumentation._model import Request

__all__ = ["HASH_CHARS", "add_prompt_hashes", "current_variables", "prompt_hashes", "prompt_variables"]

HASH_CHARS = 16  # 64 bits of sha256: collisions are out of reach for the versions one app has
_IGNORED_KEYS = frozenset({"id"})

_variables: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "llmtrace_prompt_variables", default=None
)


@contextmanager
def prompt_variables(variables: Mapping[str, Any] | None) -> Iterator[None]:
    """Declare, for calls made inside the block, which values are variables of the template.

    Raises :class:`TypeError` when ``variables`` is not a mapping of names to values.
    """
    if variables is not None and not isinstance(variables, Mapping):
        raise TypeError(f"variables must be a mapping of name -> value, got {type(variables).__name__}")
    merged = {**(_variables.get() or {}), **{str(k): str(v) for k, v in (variables or {}).items()}}
    token = _variables.set(merged or None)
    try:
        yield
    finally:
        _variables.reset(token)


def current_variables() -> Mapping[str, str] | None:
    """The declared variables of the calling context (read on the app's thread at call start)."""
    return _variables.get()


def prompt_hashes(request: Request, variables: Mapping[str, str] | None) -> dict[str, str]:
    """The hash attributes for one call ({} for parts it lacks); a failure here costs only them."""
    hashes: dict[str, str] = {}
    add_prompt_hashes(hashes, request, variables)
    return hashes


def add_prompt_hashes(attrs: dict[str, Any], request: Request, variables: Mapping[str, str] | None) -> None:
    """:func:`prompt_hashes` written into ``attrs`` (the job's one dict); both or neither on a failure."""
    system = template = None
    try:
        mask = _masker(variables) if variables else None
        if request.system_instructions:
            system = _hash(request.system_instructions, mask)
        if request.input_messages:
            template = _hash(request.input_messages, mask)
    except Exception as exc:
        internal_error("prompt hashes", exc)
        return
    if system is not None:
        attrs[sc.PROMPT_SYSTEM_HASH] = system
    if template is not None:
        attrs[sc.PROMPT_TEMPLATE_HASH] = template


Mask = Callable[[str], str]


def _masker(variables: Mapping[str, str] | None) -> Mask | None:
    """Replace each variable's value by ``{{name}}`` in one pass, longest value first (a value
    inside another is not cut); None when nothing is declared."""
    return _compiled(tuple(sorted(variables.items()))) if variables else None


@functools.lru_cache(maxsize=256)  # an app fills the same few templates: build each pattern once
def _compiled(variables: tuple[tuple[str, str], ...]) -> Mask | None:
    names: dict[str, str] = {}
    for name, value in variables:
        if value:
            names.setdefault(value, name)
    if not names:
        return None
    pattern = re.compile("|".join(re.escape(v) for v in sorted(names, key=len, reverse=True)))
    return lambda text: pattern.sub(lambda m: "{{" + names[m.group(0)] + "}}", text)


def _canonical(value: Any, mask: Mask | None) -> Any:
    """``value`` with tool-call ids dropped and variable values replaced by their names.

    Plain loops with string leaves taken in place: on the cold caches of a call's end every
    Python frame counts, and comprehensions and a call per leaf made eleven for one message."""
    cls = value.__class__  # exact types first: ABC isinstance checks cost more than the hashing
    if cls is str:
        return value if mask is None else mask(value)
    if cls is dict or (cls is not list and isinstance(value, Mapping)):
        mapping: dict[str, Any] = {}
        for k, v in value.items():
            if k not in _IGNORED_KEYS:
                mapping[str(k)] = v if v.__class__ is str and mask is None else _canonical(v, mask)
        return mapping
    if cls is list or cls is tuple:
        items: list[Any] = []
        for v in value:
            items.append(v if v.__class__ is str and mask is None else _canonical(v, mask))
        return items
    if isinstance(value, str):  # a str subclass
        return _canonical(str(value), mask)
    return value


# ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)`` with its
# C encoder built once: ``dumps`` builds an encoder per call, ~5 of the ~7 µs it takes for one message.
_SORTED: Any = c_encoder(str, sort_keys=True)


def _builtin_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 where it has one: on the cold caches of a call's end it beat OpenSSL's
    (whose digest set-up is much more code) by ~0.5 µs per hash; the same digest either way."""
    for module in ("_sha2", "_sha256"):  # 3.12+, 3.11
        try:
            return importlib.import_module(module).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_sha256 = _builtin_sha256()


def _hash(value: Any, mask: Mask | None) -> str:
    """The hash of one part of the prompt: plain text content (nothing to drop or mask) has its sorted
    JSON written directly; anything else goes through the canonical copy and the encoder (same text)."""
    text = None if mask is not None else _text_json(value)
    if text is None:
        return _digest(_canonical(value, mask))
    return _sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def _text_json(value: Any) -> str | None:
    """:func:`_digest`'s JSON text of the usual prompt part, a list of text parts or of messages with one
    text part each, written directly; None for any other shape (then the general path runs).

    Exact for exactly these shapes (exact ``str`` values; nothing to drop), with the encoder's own string
    quoting: on the cold caches of a call's end, the canonical copy and the sorting encoder's walk cost
    ~2 µs more per call (measured right after a stream), and so does each Python frame: a message is
    read here, not by a helper per message and part."""
    if value.__class__ is not list:
        return None
    items: list[str] = []
    for item in value:
        if item.__class__ is not dict or len(item) != 2:
            return None
        if "type" in item:
            text = _text_part(item)
            if text is None:
                return None
            items.append(text)
            continue
        role, parts = item.get("role"), item.get("parts")  # {"role": str, "parts": [one text part]}
        if role.__class__ is not str or parts.__class__ is not list or len(parts) != 1:
            return None
        part = parts[0]
        if part.__class__ is not dict or len(part) != 2:
            return None
        content, kind = part.get("content"), part.get("type")
        if content.__class__ is not str or kind.__class__ is not str or kind != "text":
            return None
        items.append('{"parts":[{"content":' + quote(content) + ',"type":"text"}],"role":' + quote(role) + "}")
    return "[" + ",".join(items) + "]"


def _text_part(part: dict[str, Any]) -> str | None:
    """``{"type": "text", "content": str}`` (two keys) as sorted JSON, else None."""
    content, kind = part.get("content"), part.get("type")
    if content.__class__ is not str or kind.__class__ is not str or kind != "text":
        return None
    return '{"content":' + quote(content) + ',"type":"text"}'


def _digest(value: Any) -> str:
    if _SORTED is None or value.__class__ is str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = "".join(_SORTED(value, 0))
    return _sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]
