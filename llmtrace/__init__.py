"""llmtrace: LLM observability in one line.

``llmtrace.instrument()`` turns every call made through the installed LLM SDKs into an
OpenTelemetry span following the GenAI semantic conventions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from llmtrace import semconv as _sc
from llmtrace._setup import __version__, flush, instrument, uninstrument
from llmtrace.config import ConfigError
from llmtrace.grouping import Trace as _Trace
from llmtrace.grouping import observe, tool
from llmtrace.instrumentation._core import extra_attributes as _extra_attributes
from llmtrace.instrumentation._prompt_hash import prompt_variables as _prompt_variables
from llmtrace.pricing import set_price
from llmtrace.scores import score

__all__ = [
    "ConfigError",
    "__version__",
    "attributes",
    "flush",
    "instrument",
    "observe",
    "prompt",
    "score",
    "set_price",
    "tool",
    "trace",
    "uninstrument",
]


@contextmanager
def prompt(
    name: str, version: str | int | None = None, *, variables: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Tag LLM calls made inside the block with a prompt name and version (compare versions on the dashboard).

    ``variables`` names the values filled into the template (``{"city": city}``): they are masked
    before the call's prompt hashes are taken, so only an edit of the template itself is a new version.
    """
    tags = {_sc.PROMPT_NAME: name, _sc.PROMPT_VERSION: None if version is None else str(version)}
    with _extra_attributes(**tags), _prompt_variables(variables):
        yield


@contextmanager
def attributes(
    *, user_id: str | None = None, session_id: str | None = None, conversation_id: str | None = None
) -> Iterator[None]:
    """Tag LLM calls made inside the block with the app's user, session and conversation ids."""
    with _extra_attributes(**{_sc.USER_ID: user_id, _sc.SESSION_ID: session_id, _sc.CONVERSATION_ID: conversation_id}):
        yield


def trace(
    name: str, *, user_id: str | None = None, session_id: str | None = None, metadata: Mapping[str, Any] | None = None
) -> _Trace:
    """Group what runs inside into one trace under a parent span named ``name``; LLM calls inside carry
    ``user_id``/``session_id``. A context manager (``with``/``async with``) and a decorator (sync, async,
    generator functions) alike."""
    return _Trace(name, user_id=user_id, session_id=session_id, metadata=metadata)
