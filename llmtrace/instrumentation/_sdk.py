"""Small readers shared by provider adapters: SDK sentinels, objects-or-dicts, endpoints."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

_SENTINELS = ("NotGiven", "Omit", "NotGivenOr", "Unset")  # Unset: Speakeasy SDKs (mistralai)


_is_real_value: dict[type, bool] = {}


def given(value: Any) -> bool:
    """False for None and the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels (hot path: one dict lookup)."""
    if value is None:
        return False
    cls = value.__class__
    known = _is_real_value.get(cls)
    if known is None:
        known = _is_real_value[cls] = cls.__name__ not in _SENTINELS
    return known


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Read a field from an SDK model or a plain dict (request params are dicts, responses models)."""
    if obj is None:
        return default
    value = obj.get(name, default) if obj.__class__ is dict or isinstance(obj, dict) else getattr(obj, name, default)
    if value is None:
        return default
    known = _is_real_value.get(value.__class__)  # given(), inlined: this runs a few dozen times per call
    if known is None:
        known = given(value)
    return value if known else default


def put(attrs: dict[str, AttributeValue], name: str, value: Any, kind: type | None = None) -> None:
    """Set an attribute when the value is given, coercing to ``kind``."""
    if not given(value):
        return
    if kind is not None:
        try:
            value = kind(value)
        except (TypeError, ValueError):
            return
    if isinstance(value, str | bool | int | float):
        attrs[name] = value
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        attrs[name] = list(value)


# Where Stainless SDKs (openai, anthropic) keep the very object their ``base_url`` property returns:
# openai 2.x's property runs an import on every call (~1 µs warm, several on a call's cold caches).
_URL_FIELDS = ("_configured_base_url", "_base_url")
_url_fields: dict[type, str | None] = {}


def client_base_url(client: Any) -> Any:
    """``client.base_url``, read from the field the property returns when the SDK has one.

    The field is chosen per client class on first sight, only when it holds the same object the
    property returned (else the property is always used); the setter writes that field, so a
    changed ``base_url`` is seen."""
    if client is None:
        return None
    cls = client.__class__
    try:
        field = _url_fields[cls]
    except KeyError:
        url = get(client, "base_url")
        fields = getattr(client, "__dict__", {})
        _url_fields[cls] = next((f for f in _URL_FIELDS if url is not None and fields.get(f) is url), None)
        return url
    if field is not None:
        url = client.__dict__.get(field)
        if url is not None:
            return url
    return get(client, "base_url")


_last_server: tuple[Any, tuple[str | None, int | None]] = (None, (None, None))


def server_of(base_url: Any) -> tuple[str | None, int | None]:
    """Host and port of a client's base URL (httpx URL or string), with the scheme's default port."""
    global _last_server
    if base_url is None:
        return None, None
    last = _last_server  # an app mostly reuses one client: its (immutable) URL object is checked by identity
    if last[0] is base_url:
        return last[1]
    server = _server_of(str(base_url))
    _last_server = (base_url, server)
    return server


@functools.lru_cache(maxsize=256)
def _server_of(url: str) -> tuple[str | None, int | None]:
    # Cached: an app talks to a handful of endpoints, and URL parsing is a hot-path cost per call.
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None)
    return parts.hostname, port


def text_of(content: Any) -> str:
    """Concatenated text of a string or a list of content blocks/parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(t for t in (get(p, "text") for p in content) if isinstance(t, str))
    return ""


def json_arguments(raw: Any) -> Any:
    """Tool-call arguments as JSON when they parse, else as sent (a stream can end mid-way; some SDKs send objects)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
