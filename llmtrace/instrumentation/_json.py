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


quote: Callable[[str], str] = _c_encode_str or json.encoder.py_encode_basestring
"""A JSON string literal, as the encoders above write strings (non-ASCII kept)."""
