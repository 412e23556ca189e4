"""Automatic prompt versions: the real SDKs against the fake LLM service, spans in memory.

A call's ``llmtrace.prompt.system_hash`` must change exactly when its system instructions change,
and its ``llmtrace.prompt.template_hash`` exactly when its message template does; the values of
declared variables must not move either.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anthropic
import openai
import pytest

import llmtrace
from llmtrace import semconv as sc
from llmtrace.instrumentation._model import Request
from llmtrace.instrumentation._prompt_hash import HASH_CHARS, prompt_hashes
from tests.conftest import SpanRecorder

SYSTEM = "You are a travel agent. Answer in one sentence."
TEMPLATE = "What is the weather in {city} for {name}?"


@pytest.fixture
def client(fake_llm: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


def hashes_of(spans: SpanRecorder) -> list[tuple[str | None, str | None]]:
    """(system hash, template hash) of each finished LLM span, in call order."""
    calls = sorted(spans.finished, key=lambda s: s.start_time or 0)
    return [
        (s.attributes.get(sc.PROMPT_SYSTEM_HASH), s.attributes.get(sc.PROMPT_TEMPLATE_HASH))  # type: ignore[union-attr]
        for s in calls
    ]


def ask(client: openai.OpenAI, system: str, template: str, **variables: str) -> None:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": template.format(**variables)}]
    with llmtrace.prompt("weather", variables=variables):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]


def test_other_variable_values_keep_both_hashes(client: openai.OpenAI, spans: SpanRecorder) -> None:
    ask(client, SYSTEM, TEMPLATE, city="Paris", name="Ada")
    ask(client, SYSTEM, TEMPLATE, city="Reykjavik", name="Bob")
    first, second = hashes_of(spans)
    assert first == second
    assert all(isinstance(h, str) and len(h) == HASH_CHARS for h in first)


def test_an_edited_system_prompt_changes_only_the_system_hash(client: openai.OpenAI, spans: SpanRecorder) -> None:
    ask(client, SYSTEM, TEMPLATE, city="Paris", name="Ada")
    ask(client, SYSTEM + " Be polite.", TEMPLATE, city="Paris", name="Ada")
    (system_a, template_a), (system_b, template_b) = hashes_of(spans)
    assert system_a != system_b
    assert template_a == template_b


def test_an_edited_template_changes_only_the_template_hash(client: openai.OpenAI, spans: SpanRecorder) -> None:
    ask(client, SYSTEM, TEMPLATE, city="Paris", name="Ada")
    ask(client, SYSTEM, "Weather in {city} for {name}, please?", city="Oslo", name="Bob")
    (system_a, template_a), (system_b, template_b) = hashes_of(spans)
    assert system_a == system_b
    assert template_a != template_b


def test_without_declared_variables_the_messages_are_hashed_as_sent(client: openai.OpenAI, spans: SpanRecorder) -> None:
    for city in ("Paris", "Oslo", "Paris"):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Weather in {city}?"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    paris, oslo, paris_again = hashes_of(spans)
    assert paris == paris_again and paris[0] == oslo[0]
    assert paris[1] != oslo[1]


def test_hashes_are_recorded_with_content_capture_off_and_no_content_is(fake_llm: Any) -> None:
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, capture_content=False)
    try:
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
        ask(client, SYSTEM, TEMPLATE, city="Paris", name="Ada")
        span = rec.one()
    finally:
        llmtrace.uninstrument()
    attributes = dict(span.attributes or {})
    assert len(str(attributes[sc.PROMPT_SYSTEM_HASH])) == HASH_CHARS
    assert len(str(attributes[sc.PROMPT_TEMPLATE_HASH])) == HASH_CHARS
    assert not set(attributes) & {sc.SYSTEM_INSTRUCTIONS, sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES}
    assert not any("Paris" in str(v) or "travel agent" in str(v) for v in attributes.values())


def test_the_same_system_prompt_hashes_the_same_through_another_provider(
    fake_llm: Any, client: openai.OpenAI, spans: SpanRecorder
) -> None:
    ask(client, SYSTEM, TEMPLATE, city="Paris", name="Ada")
    claude = anthropic.Anthropic(base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0)
    with llmtrace.prompt("weather", variables={"city": "Rome", "name": "Cy"}):
        claude.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=50,
            system=SYSTEM,
            messages=[{"role": "user", "content": TEMPLATE.format(city="Rome", name="Cy")}],
        )
    openai_hashes, anthropic_hashes = hashes_of(spans)
    assert openai_hashes == anthropic_hashes


def test_nested_prompt_blocks_add_variables_and_restore_them_after(client: openai.OpenAI, spans: SpanRecorder) -> None:
    messages = [{"role": "user", "content": "Weather in Paris for Ada?"}]
    with llmtrace.prompt("weather", variables={"city": "Paris"}):
        with llmtrace.prompt("weather", variables={"name": "Ada"}):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    both, city_only = hashes_of(spans)
    masked = [{"role": "user", "parts": [{"type": "text", "content": "Weather in {{city}} for {{name}}?"}]}]
    expected = prompt_hashes(Request("chat", "openai", "m", input_messages=masked), None)
    assert both[1] == expected[sc.PROMPT_TEMPLATE_HASH]
    assert city_only[1] != both[1]


def test_tool_call_ids_do_not_make_a_new_template() -> None:
    def call(call_id: str) -> Request:
        part = {"type": "tool_call", "id": call_id, "name": "weather", "arguments": {"city": "Paris"}}
        return Request("chat", "openai", "m", input_messages=[{"role": "assistant", "parts": [part]}])

    assert prompt_hashes(call("call_1"), None) == prompt_hashes(call("call_2"), None)


def test_a_call_without_system_instructions_has_no_system_hash() -> None:
    request = Request("chat", "openai", "m", input_messages=[{"role": "user", "parts": []}])
    assert set(prompt_hashes(request, None)) == {sc.PROMPT_TEMPLATE_HASH}
    assert prompt_hashes(Request("embeddings", "openai", "m"), None) == {}


@pytest.mark.parametrize("variables", [["city"], "Paris", 3])
def test_variables_that_are_not_a_mapping_are_refused(variables: Any) -> None:
    with pytest.raises(TypeError, match="variables must be a mapping"), llmtrace.prompt("weather", variables=variables):
        pass


def test_text_of_a_str_subclass_is_masked_like_plain_text() -> None:
    class Text(str):
        pass

    def request(text: str) -> Request:
        return Request("chat", "openai", "m", input_messages=[{"role": "user", "parts": [{"content": text}]}])

    variables = {"city": "Paris"}
    assert prompt_hashes(request(Text("Weather in Paris?")), variables) == prompt_hashes(
        request("Weather in Paris?"), variables
    )
    assert prompt_hashes(request("Weather in Paris?"), variables) == prompt_hashes(
        request("Weather in Oslo?"), {"city": "Oslo"}
    )


def _expected_hash(value: Any) -> str:
    """The documented hash, computed independently: sha256 of the sorted, compact, non-ASCII-kept JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


TRICKY = ["", "plain", 'quote " and \\ backslash', "line\nbreak\ttab\x00nul\x1f", "é ü 漢字 😀 \u2028\u2029", "{}[],:"]


@pytest.mark.parametrize("text", TRICKY)
def test_plain_text_prompts_hash_as_their_sorted_json(text: str) -> None:
    """Plain text content takes a shortcut (its JSON written directly): it must give the very same hash."""
    system = [{"type": "text", "content": text}, {"type": "text", "content": "second"}]
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": text}]},
        {"role": text or "assistant", "parts": [{"content": "keys in another order", "type": "text"}]},
    ]
    request = Request("chat", "openai", "m", system_instructions=system, input_messages=messages)
    assert prompt_hashes(request, None) == {
        sc.PROMPT_SYSTEM_HASH: _expected_hash(system),
        sc.PROMPT_TEMPLATE_HASH: _expected_hash(messages),
    }


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}], "name": "ada"},  # a third key
        {"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "text", "content": "two"}]},
        {"role": "user", "parts": [{"type": "text", "content": 3}]},  # not a string
        {"role": "user", "parts": [{"type": "image", "content": "hi"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi", "id": "x"}]},  # an id: dropped
    ],
)
def test_other_shapes_hash_through_the_canonical_copy(message: dict[str, Any]) -> None:
    request = Request("chat", "openai", "m", input_messages=[message])
    parts = [{k: v for k, v in part.items() if k != "id"} for part in message["parts"]]
    assert prompt_hashes(request, None)[sc.PROMPT_TEMPLATE_HASH] == _expected_hash([{**message, "parts": parts}])
