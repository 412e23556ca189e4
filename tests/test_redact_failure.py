"""An app's ``redact`` callback that fails costs that span its content, never its tokens, cost or tags.

The real openai SDK over real HTTP against the fake LLM service, spans from an in-memory exporter.
A failing callback is the app's bug, not llmtrace's: it is never re-raised, not even under pytest's
strict mode, so the in-process tests see what production sees; one test also runs in a fresh
interpreter without pytest, where the warning is logged once per attribute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

import llmtrace
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from tests.conftest import MEMORY_PROVIDER, SpanRecorder, run_script

CONTENT = {sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is ClickHouse?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
# Differ from call to call whatever redact does.
VARYING = {sc.RESPONSE_ID, sc.RESPONSE_TIME_TO_FIRST_CHUNK}


def failing_redact(name: str, text: str) -> str:
    raise RuntimeError(f"redactor bug while reading {text}")


def identity(name: str, text: str) -> str:
    return text


@contextmanager
def recording(redact: Callable[[str, str], Any]) -> Iterator[SpanRecorder]:
    """llmtrace instrumenting into an in-memory recorder with this ``redact``; undone on exit."""
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, redact=redact, environment="prod", release="v7")
    try:
        yield rec
    finally:
        llmtrace.uninstrument()


@pytest.fixture
def client(fake_llm: FakeLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


def chat(client: openai.OpenAI, *, stream: bool = False) -> None:
    """One call with every kind of content, tagged with a user; a stream is read to the end."""
    with llmtrace.attributes(user_id="u-42"):
        if stream:
            chunks = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True, stream_options={"include_usage": True}
            )
            for _ in chunks:
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)


def one_call(client: openai.OpenAI, redact: Callable[[str, str], Any], *, stream: bool = False) -> dict[str, Any]:
    """The attributes of the span of one :func:`chat` made with this ``redact``."""
    with recording(redact) as rec:
        chat(client, stream=stream)
        return dict(rec.one().attributes or {})


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_a_raising_redact_drops_the_content_attributes_and_keeps_everything_else(
    client: openai.OpenAI, stream: bool
) -> None:
    expected = one_call(client, identity, stream=stream)
    got = one_call(client, failing_redact, stream=stream)
    assert set(expected) >= CONTENT
    assert set(got) == set(expected) - CONTENT
    same = set(got) - VARYING
    assert {k: got[k] for k in same} == {k: expected[k] for k in same}


def test_the_span_of_a_failing_redact_keeps_tokens_cost_model_environment_user_and_finish_reasons(
    client: openai.OpenAI,
) -> None:
    a = one_call(client, failing_redact)
    assert a[sc.USAGE_INPUT_TOKENS] > 0 and a[sc.USAGE_OUTPUT_TOKENS] > 0
    assert a[sc.COST_USD] > 0 and a[sc.COST_STATUS] == sc.COST_PRICED
    assert a[sc.REQUEST_MODEL] == "gpt-4o-mini" and a[sc.RESPONSE_MODEL].startswith("gpt-4o-mini")
    assert a[sc.ENVIRONMENT] == "prod" and a[sc.RELEASE] == "v7"
    assert a[sc.USER_ID] == "u-42"
    assert a[sc.RESPONSE_FINISH_REASONS]
    assert sc.ERROR_TYPE not in a


def test_a_redact_returning_no_text_leaves_the_content_off_instead_of_setting_it(client: openai.OpenAI) -> None:
    a = one_call(client, lambda name, text: None)
    assert not CONTENT & set(a)
    assert a[sc.USAGE_OUTPUT_TOKENS] > 0


def test_a_redact_failing_on_one_attribute_costs_only_that_attribute(client: openai.OpenAI) -> None:
    def redact_all_but_output(name: str, text: str) -> str:
        if name == sc.OUTPUT_MESSAGES:
            raise ValueError("cannot parse the reply")
        return text.replace("ClickHouse", "[X]")

    a = one_call(client, redact_all_but_output)
    assert sc.OUTPUT_MESSAGES not in a
    assert "[X]" in a[sc.INPUT_MESSAGES] and "ClickHouse" not in a[sc.INPUT_MESSAGES]
    assert sc.TOOL_DEFINITIONS in a


def test_in_production_the_failure_is_logged_once_per_attribute_without_the_content(fake_llm: FakeLLM) -> None:
    """A fresh interpreter without pytest: production mode, a real logging handler, three calls."""
    result = run_script(
        f"""
        import json, logging, openai
        logging.basicConfig(level=logging.WARNING, format="LOG %(message)s")

        def redact(name, text):
            raise RuntimeError("redactor bug while reading " + text)

        llmtrace.instrument(tracer_provider=provider, redact=redact, environment="prod")
        client = openai.OpenAI(base_url={fake_llm.openai_base_url!r}, api_key="test", max_retries=0)
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages={MESSAGES!r})
        llmtrace.flush()
        spans = exporter.get_finished_spans()
        print("SPANS", json.dumps([sorted(s.attributes) for s in spans]))
        print("TOKENS", [s.attributes.get("gen_ai.usage.output_tokens") for s in spans])
        """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    logs = [line for line in result.stderr.splitlines() if line.startswith("LOG ")]
    failures = [line for line in logs if "redact callback failed" in line]
    assert sorted(line.split(" on ")[1].split(":")[0] for line in failures) == sorted(
        [sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS]
    )
    assert all("RuntimeError" in line and "ClickHouse" not in line for line in failures)
    assert "ClickHouse" not in result.stderr  # the exception's message quotes the content: never logged
    [names] = [json.loads(line[6:]) for line in result.stdout.splitlines() if line.startswith("SPANS ")]
    assert len(names) == 3
    for span_names in names:
        assert not CONTENT & set(span_names)
        assert {sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS, sc.COST_USD, sc.ENVIRONMENT} <= set(span_names)
