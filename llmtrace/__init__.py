"""llmtrace: LLM observability in one line.

``llmtrace.instrument()`` turns every call made through the installed LLM SDKs into an
OpenTelemetry span following the GenAI semantic conventions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llmtrace import semconv as _sc
from llmtrace._setup import __version__, flush, instrument, uninstrument
from llmtrace.config import ConfigError
from llmtrace.instrumentation._core import extra_attributes as _extra_attributes
from llmtrace.pricing import set_price

__all__ = [
    "ConfigError",
    "__version__",
    "attributes",
    "flush",
    "instrument",
    "prompt",
    "set_price",
    "uninstrument",
]


@contextmanager
def prompt(name: str, version: str | int | None = None) -> Iterator[None]:
    """Tag LLM calls made inside the block with a prompt name and version (compare versions on the dashboard)."""
    with _extra_attributes(**{_sc.PROMPT_NAME: name, _sc.PROMPT_VERSION: None if version is None else str(version)}):
        yield


@contextmanager
def attributes(
    *, user_id: str | None = None, session_id: str | None = None, conversation_id: str | None = None
) -> Iterator[None]:
    """Tag LLM calls made inside the block with the app's user, session and conversation ids."""
    with _extra_attributes(**{_sc.USER_ID: user_id, _sc.SESSION_ID: session_id, _sc.CONVERSATION_ID: conversation_id}):
        yield
