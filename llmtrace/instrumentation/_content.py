"""Message content on spans: JSON per the GenAI conventions, truncated and redacted.

Truncation works part by part so the attribute stays valid JSON that readers can parse.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace.config import Redactor

_SUFFIX = "…[truncated {n} chars]"


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


def encode(name: str, value: Any, *, limit: int, redact: Redactor | None) -> str:
    """The attribute text for one content attribute."""
    text = json.dumps(_truncate(value, limit), ensure_ascii=False, default=_default, separators=(",", ":"))
    if len(text) > limit * 4:
        # Many small parts can still add up; keep the attribute bounded, even if then not valid JSON.
        text = text[: limit * 4] + _SUFFIX.format(n=len(text) - limit * 4)
    if redact is not None:
        text = redact(name, text)
    return text
