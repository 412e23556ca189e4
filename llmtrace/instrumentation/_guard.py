"""Keeping llmtrace's own failures away from the host app.

Quiet in production (logged once per site, saying the app is unaffected), loud in tests
(re-raised under pytest or ``LLMTRACE_STRICT=1``) so bugs cannot hide behind the guard.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("llmtrace")

_reported: set[str] = set()


def strict() -> bool:
    """Whether internal errors propagate (tests) instead of being logged (production)."""
    flag = os.environ.get("LLMTRACE_STRICT")
    if flag is not None and flag.strip() != "":
        return flag.strip().lower() in ("1", "true", "yes", "on")
    return "pytest" in sys.modules and "PYTEST_CURRENT_TEST" in os.environ


def internal_error(site: str, exc: BaseException) -> None:
    """Report a failure inside llmtrace; re-raises it only in strict mode."""
    if strict():
        raise exc
    if site in _reported:
        return
    _reported.add(site)
    log.warning(
        "llmtrace: internal error in %s; your application is unaffected and this call's span may be incomplete. "
        "Please report it with this traceback.",
        site,
        exc_info=exc,
    )
