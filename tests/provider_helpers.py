"""What the provider test suites share: recordings and their check, fake-LLM headers, content; no tests in here."""

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


def recording(name: str, directory: Path = RECORDED) -> dict[str, Any]:
    """A real recorded exchange (``directory/NAME.json``: request, response, ``expected``); ``directory`` is
    these suites' recordings unless given (the fake LLM's own: ``llmtrace.demo.fake_llm.RECORDED_DIR``)."""
    return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fake_headers(**values: str) -> dict[str, str]:
    """The fake LLM's per-request controls as headers: ``fake_headers(status="429")`` -> ``x-fake-status``."""
    return {f"x-fake-{name.replace('_', '-')}": value for name, value in values.items()}


def assert_recorded(span: ReadableSpan, expected: dict[str, Any]) -> None:
    """The span says what the recording says: model and id (where recorded), tokens, finish reason, text."""
    attrs = span.attributes or {}
    for key, attribute in (("response_model", sc.RESPONSE_MODEL), ("response_id", sc.RESPONSE_ID)):
        if key in expected:
            assert attrs.get(attribute) == expected[key], attribute
    assert attrs[sc.USAGE_INPUT_TOKENS] == expected["input_tokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == expected["output_tokens"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (expected["finish_reason"],)
    if "output_text" in expected:
        assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"][0] == {"type": "text", "content": expected["output_text"]}
