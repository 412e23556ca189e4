"""Provider instrumentations over one shared core.

Each provider module names the SDK it patches (``SDK``) and declares its patch targets
(``patches()``). Modules import without their SDK; each target is patched when its SDK
module is (or gets) imported by the app or the SDK itself, never imported by llmtrace.
"""

from __future__ import annotations

# provider key -> module implementing it
PROVIDERS: dict[str, str] = {
    "openai": "llmtrace.instrumentation.openai",
    "anthropic": "llmtrace.instrumentation.anthropic",
    "google_genai": "llmtrace.instrumentation.google_genai",
    "groq": "llmtrace.instrumentation.groq",
    "ollama": "llmtrace.instrumentation.ollama",
    "mistralai": "llmtrace.instrumentation.mistral",
    "bedrock": "llmtrace.instrumentation.bedrock",
    "cohere": "llmtrace.instrumentation.cohere",
    "litellm": "llmtrace.instrumentation.litellm",
    "openai_agents": "llmtrace.instrumentation.openai_agents",
}

# provider key -> the SDK's root modules: the provider module (and wrapt) is imported once one of them is.
# Every patch target lies under one of them (tests/test_setup.py checks it).
SDK_ROOTS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "google_genai": ("google.genai",),
    "groq": ("groq",),
    "ollama": ("ollama",),
    "mistralai": ("mistralai",),
    "bedrock": ("botocore", "aiobotocore"),
    "cohere": ("cohere",),
    "litellm": ("litellm",),
    "openai_agents": ("agents",),
}
