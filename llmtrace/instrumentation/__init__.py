"""Provider instrumentations over one shared core.

Each provider module names the SDK it patches (``SDK``), declares its patch targets
(``patches()``) and may hook ``on_instrument``/``on_uninstrument``. Modules import
without their SDK; the SDK is patched when it is (or gets) imported by the app.
"""

from __future__ import annotations

# provider key -> module implementing it
PROVIDERS: dict[str, str] = {
    "openai": "llmtrace.instrumentation.openai",
    "anthropic": "llmtrace.instrumentation.anthropic",
}
