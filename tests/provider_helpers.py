"""What the provider test suites (Gemini, Groq, Mistral, Ollama) share; no tests in here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM

# Replayed by a fake of their own: tests/test_fake_llm.py checks the top-level recordings through openai/anthropic.
RECORDED = Path(__file__).parent / "fixtures" / "recorded" / "providers"
CONTENT_ATTRIBUTES = (sc.SYSTEM_INSTRUCTIONS, sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.TOOL_DEFINITIONS)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def replaying() -> Iterator[FakeLLM]:
    """A fake LLM serving this suite's real recordings (``x-fake-replay``)."""
    with FakeLLM(recorded_dir=RECORDED) as fake:
        yield fake


def content(span: ReadableSpan, name: str) -> Any:
    return json.loads(str(span.attributes[name]))
