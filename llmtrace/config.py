"""One settings object: explicit arguments > ``LLMTRACE_*`` / ``OTEL_*`` environment > defaults.

Invalid environment values raise :class:`ConfigError` naming the variable, because a
typo in ``LLMTRACE_CAPTURE_CONTENT`` silently capturing prompts is worse than a crash at start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"
DEFAULT_MAX_CONTENT_CHARS = 20_000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT values (newer spec) mapped to "capture on spans?".
_OTEL_CONTENT_MODES = {"no_content": False, "span_only": True, "event_only": False, "span_and_event": True}

Redactor = Callable[[str, str], str]
"""``redact(attribute_name, json_text) -> json_text``: runs on every content attribute before it is set."""


class ConfigError(ValueError):
    """A setting has a value llmtrace cannot use; the message names the setting and the fix."""


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one ``instrument()`` call.

    A frozen dataclass rather than a pydantic model: values are validated by :func:`resolve`
    with messages naming the variable, and importing pydantic would cost ~40 ms of app start-up.
    """

    service_name: str
    endpoint: str | None
    """OTLP/HTTP traces URL; None when spans go straight to ClickHouse."""
    clickhouse_url: str | None
    providers: tuple[str, ...] | None
    capture_content: bool
    max_content_chars: int
    redact: Redactor | None
    environment: str | None
    release: str | None
    disabled: bool
    background: bool = True
    """Read responses and end spans on llmtrace's worker thread (False: on the calling thread)."""


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false.")


def _env_content_mode(env: Mapping[str, str]) -> bool | None:
    name = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    mode = raw.strip().lower()
    if mode in _OTEL_CONTENT_MODES:
        return _OTEL_CONTENT_MODES[mode]
    try:
        return _env_bool(env, name)
    except ConfigError:
        raise ConfigError(
            f"{name}={raw!r} is not valid; use NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true or false."
        ) from None


def _env_positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; use e.g. {name}=20000.") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be a positive number of characters.")
    return value


def _env_str(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    return raw.strip() if raw and raw.strip() else None


def _traces_endpoint(env: Mapping[str, str]) -> str:
    """The full URL of the OTLP/HTTP traces endpoint, following the OTel exporter spec."""
    specific = _env_str(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific
    base = _env_str(env, "OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_OTLP_ENDPOINT
    return _with_traces_path(base)


def _with_traces_path(url: str) -> str:
    if url.rstrip("/").endswith("/v1/traces"):
        return url
    return url.rstrip("/") + "/v1/traces"


def _destination(endpoint: str | None, clickhouse_url: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """Where spans go: ``endpoint`` > ``clickhouse_url`` > OTLP env > ``LLMTRACE_CLICKHOUSE_URL`` > localhost OTLP."""
    if endpoint:
        return {"endpoint": _with_traces_path(endpoint), "clickhouse_url": None}
    if clickhouse_url:
        return {"endpoint": None, "clickhouse_url": clickhouse_url}
    otlp_env = _env_str(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env_str(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    direct = _env_str(env, "LLMTRACE_CLICKHOUSE_URL")
    if direct and not otlp_env:
        return {"endpoint": None, "clickhouse_url": direct}
    return {"endpoint": _traces_endpoint(env), "clickhouse_url": None}


def _default_service_name() -> str:
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
    return script or "unknown_service:python"


def _check_providers(providers: Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...] | None:
    if providers is None:
        return None
    if isinstance(providers, str):
        providers = [providers]
    unknown = sorted(set(providers) - set(known))
    if unknown:
        raise ConfigError(f"providers={unknown} are not supported; choose from {sorted(known)}.")
    return tuple(providers)


def resolve(
    *,
    known_providers: Sequence[str],
    service_name: str | None = None,
    endpoint: str | None = None,
    clickhouse_url: str | None = None,
    providers: Sequence[str] | None = None,
    capture_content: bool | None = None,
    redact: Redactor | None = None,
    max_content_chars: int | None = None,
    environment: str | None = None,
    release: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge arguments, environment and defaults; raise :class:`ConfigError` on bad values."""
    env = os.environ if env is None else env
    if max_content_chars is not None and max_content_chars <= 0:
        raise ConfigError("max_content_chars must be a positive number of characters.")
    if redact is not None and not callable(redact):
        raise ConfigError("redact must be a callable redact(attribute_name, json_text) -> json_text.")
    capture = capture_content
    if capture is None:
        capture = _env_bool(env, "LLMTRACE_CAPTURE_CONTENT")
    if capture is None:
        capture = _env_content_mode(env)
    values: dict[str, Any] = {
        "service_name": service_name or _env_str(env, "OTEL_SERVICE_NAME") or _default_service_name(),
        **_destination(endpoint, clickhouse_url, env),
        "providers": _check_providers(providers, known_providers),
        "capture_content": True if capture is None else capture,
        "max_content_chars": max_content_chars
        or _env_positive_int(env, "LLMTRACE_MAX_CONTENT_CHARS")
        or DEFAULT_MAX_CONTENT_CHARS,
        "redact": redact,
        "environment": environment or _env_str(env, "LLMTRACE_ENVIRONMENT"),
        "release": release or _env_str(env, "LLMTRACE_RELEASE"),
        "disabled": bool(_env_bool(env, "LLMTRACE_DISABLED")),
        "background": _env_bool(env, "LLMTRACE_BACKGROUND") is not False,
    }
    return Settings(**values)
