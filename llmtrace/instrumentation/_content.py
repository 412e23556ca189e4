"""Message content on spans: JSON per the GenAI conventions, truncated and redacted.

Truncation works part by part so the attribute stays valid JSON that readers can parse.
The app's ``redact`` callback is the app's code, not ours: when it raises, that attribute is
left off the span (never set unredacted) and the rest of the span is kept.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from llmtrace.config import Redactor
from llmtrace.instrumentation._json import c_encoder

log = logging.getLogger("llmtrace")
_redact_reported: set[str] = set()

_SUFFIX = "…[truncated {n} chars]"
_TOTAL_FACTOR = 8
_MIN_TOTAL = 64 * 1024


def _truncate(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return value[:limit] + _SUFFIX.format(n=len(value) - limit)
    if isinstance(value, dict):
        return {k: _truncate(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v, limit) for v in value]
    return value


def _default(obj: Any) -> Any:
    """Make SDK objects (pydantic models, bytes, iterables) JSON-serialisable."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, set | tuple):
        return list(obj)
    return str(obj)


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_default, separators=(",", ":"))
_C_ENCODER: Any = c_encoder(_default, sort_keys=False)


def _dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is."""
    if _C_ENCODER is None or isinstance(value, str):
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))


def encode(name: str, value: Any, *, limit: int, redact: Redactor | None) -> str | None:
    """The attribute text for one content attribute: valid JSON, each string at most ``limit`` chars.

    Long conversations are also bounded as a whole (``_TOTAL_FACTOR`` x limit, at least 64 KiB):
    the oldest messages go first, replaced by a marker saying how many were omitted.
    None when ``redact`` raised or returned no string: the attribute must then be left off.
    """
    # _dumps, without its frame: this runs twice per call on the cold caches a call's end leaves
    text = _ENCODER.encode(value) if _C_ENCODER is None or isinstance(value, str) else "".join(_C_ENCODER(value, 0))
    if len(text) > limit:  # otherwise no string inside, nor the whole, can exceed a limit: nothing to cut
        text = _cut(value, limit)
    return text if redact is None else _redacted(redact, name, text)


def _cut(value: Any, limit: int) -> str:
    """The JSON text of ``value`` with each string cut to ``limit`` chars and, past the total budget,
    the oldest items of a list replaced by a marker."""
    value = _truncate(value, limit)
    text = _dumps(value)
    budget = max(limit * _TOTAL_FACTOR, _MIN_TOTAL)
    if len(text) > budget and isinstance(value, list) and len(value) > 1:
        kept = list(value)
        while len(kept) > 1 and len(_dumps(kept)) > budget:
            kept.pop(0)
        omitted = len(value) - len(kept)
        marker = {
            "role": "system",
            "parts": [{"type": "text", "content": f"[llmtrace: {omitted} earlier items omitted]"}],
        }
        text = _dumps([marker, *kept])
    return text


def _redacted(redact: Redactor, name: str, text: str) -> str | None:
    """``redact(name, text)``; None, logged once per attribute, when the app's callback fails.

    Not an internal error (the bug is in the app's callback), so it is never re-raised, tests
    included. The log names the exception type and where it was raised, not its message: that
    may quote the very content the callback was meant to hide.
    """
    try:
        result = redact(name, text)
        if isinstance(result, str):
            return result
        problem = f"it returned {type(result).__name__}, not the JSON text (str)"
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        problem = f"it raised {type(exc).__name__} at {frames[-1].filename}:{frames[-1].lineno}"
    if name not in _redact_reported:
        _redact_reported.add(name)
        log.warning(
            "llmtrace: your redact callback failed on %s: %s. That attribute is left off the spans it fails on; "
            "the rest of each span is kept and your application is unaffected. Logged once.",
            name,
            problem,
        )
    return None
