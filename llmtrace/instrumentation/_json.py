"""json's C encoder, built once: ``json.dumps`` and ``JSONEncoder.encode`` rebuild it on every call,
most of the cost of encoding one small message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_c_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None)


def c_encoder(default: Callable[[Any], Any], sort_keys: bool) -> Any:
    """A compact, non-ASCII-escaping C encoder (``"".join(encoder(value, 0))``), or None where json has
    no C speedups. No cycle markers: the values are trees llmtrace built; a cycle ends in a
    RecursionError that the caller's guard catches."""
    if _c_make_encoder is None or _c_encode_str is None:
        return None
    return _c_make_encoder(None, default, _c_encode_str, None, ":", ",", sort_keys, False, True)


_quote: Callable[[str], str] = _c_encode_str or json.encoder.py_encode_basestring  # what the encoders above use


def text_json(value: Any, sort_keys: bool) -> str | None:
    """The JSON the encoders above give for the usual content (a list of text parts, or of messages with
    one text part each), written directly; None for any other shape (then the encoder runs).

    Exact for exactly these shapes (exact ``str`` leaves, the keys in the order llmtrace's adapters write
    them), written with the encoder's own string quoting. Why: a call's request and reply are encoded
    three times on the worker (hash, input, output), on caches the SDK's stream has made cold, where
    the encoder's general walk of dicts and lists cost more than these few string joins."""
    if value.__class__ is not list:
        return None
    items: list[str] = []
    for item in value:
        if item.__class__ is not dict:
            return None
        size = len(item)
        if size == 2 and item.get("type") == "text":
            text = _text_part(item, sort_keys)
        elif (size == 2 or (size == 3 and item.get("finish_reason").__class__ is str)) and next(iter(item)) == "role":
            text = _text_message(item, size == 3, sort_keys)
        else:
            return None
        if text is None:
            return None
        items.append(text)
    return "[" + ",".join(items) + "]"


def _text_part(part: dict[str, Any], sort_keys: bool) -> str | None:
    """``{"type": "text", "content": str}`` in that order, else None."""
    content = part.get("content")
    if content.__class__ is not str or part["type"].__class__ is not str or next(iter(part)) != "type":
        return None
    if sort_keys:
        return '{"content":' + _quote(content) + ',"type":"text"}'
    return '{"type":"text","content":' + _quote(content) + "}"


def _text_message(message: dict[str, Any], reply: bool, sort_keys: bool) -> str | None:
    """``{"role": str, "parts": [one text part]}`` (a reply: then ``"finish_reason": str``), in that order."""
    role, parts = message["role"], message.get("parts")
    if role.__class__ is not str or parts.__class__ is not list or len(parts) != 1:
        return None
    keys = iter(message)
    next(keys)
    if next(keys) != "parts":
        return None
    part = parts[0]
    if part.__class__ is not dict or len(part) != 2 or part.get("type") != "text":
        return None
    text = _text_part(part, sort_keys)
    if text is None:
        return None
    if not reply:
        if sort_keys:
            return '{"parts":[' + text + '],"role":' + _quote(role) + "}"
        return '{"role":' + _quote(role) + ',"parts":[' + text + "]}"
    reason = _quote(message["finish_reason"])
    if sort_keys:
        return '{"finish_reason":' + reason + ',"parts":[' + text + '],"role":' + _quote(role) + "}"
    return '{"role":' + _quote(role) + ',"parts":[' + text + '],"finish_reason":' + reason + "}"
