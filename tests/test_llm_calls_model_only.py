"""llm_calls holds model calls only (schemas/013): tool, agent and grouping spans stay in otel_traces.

Spans come from the real openai SDK against the fake LLM service and a real ``@llmtrace.tool``,
exported by the direct ClickHouse exporter into chDB, on a fresh store and on a store created with
the schema as it was before 012 and migrated afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

import llmtrace
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, schema_files

OLD_SCHEMA = [p for p in schema_files() if p.name < "012"]


def agent_turn(fake_llm: Any) -> str:
    """One trace: a parent span, two chat calls and a tool between them; returns its trace id."""
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)

    @llmtrace.tool
    def weather(city: str) -> str:
        """Today's weather."""
        return f"sunny in {city}"

    with llmtrace.trace("turn", user_id="u1", session_id="s1") as span:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}])
        weather("Paris")
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "thanks"}])
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert llmtrace.flush(10)
    return trace_id


def calls_of(store: ChdbClient, trace_id: str) -> list[tuple[str, str]]:
    sql = "SELECT SpanName, Operation FROM llm_calls WHERE TraceId = {t:String} ORDER BY Timestamp"
    return [tuple(r) for r in store.query(sql, parameters={"t": trace_id}).result_rows]


def spans_of(store: ChdbClient, trace_id: str) -> int:
    sql = "SELECT count() FROM otel_traces WHERE TraceId = {t:String}"
    return int(store.query(sql, parameters={"t": trace_id}).result_rows[0][0])


def test_a_trace_with_a_tool_and_two_llm_calls_gives_two_llm_calls_rows(
    store: ChdbClient, fake_llm: Any, instrument_into: Any
) -> None:
    instrument_into(store)
    trace_id = agent_turn(fake_llm)
    assert spans_of(store, trace_id) == 4
    assert calls_of(store, trace_id) == [("chat gpt-4o-mini", "chat"), ("chat gpt-4o-mini", "chat")]


def test_a_store_migrated_from_the_old_schema_stops_counting_tools(
    empty_store: ChdbClient, fake_llm: Any, instrument_into: Any
) -> None:
    apply_migrations(client_runner(empty_store), files=OLD_SCHEMA)
    instrument_into(empty_store)
    before = agent_turn(fake_llm)
    assert [op for _, op in calls_of(empty_store, before)] == ["chat", "execute_tool", "chat"]  # the bug

    assert apply_migrations(client_runner(empty_store)) == [p.name for p in schema_files() if p.name >= "012"]
    after = agent_turn(fake_llm)
    assert calls_of(empty_store, after) == [("chat gpt-4o-mini", "chat"), ("chat gpt-4o-mini", "chat")]
    assert len(calls_of(empty_store, before)) == 3, "rows written before the migration are left as they were"


@pytest.mark.parametrize(
    ("attributes", "counted"),
    [
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, False),
        ({"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai"}, False),
        ({"gen_ai.operation.name": "create_agent", "gen_ai.system": "openai"}, False),
        ({"gen_ai.system": "langchain", "gen_ai.operation.name": "workflow"}, False),
        ({"llm.request.type": "unknown"}, False),
        ({"gen_ai.operation.name": "chat"}, True),
        ({"gen_ai.operation.name": "text_completion"}, True),
        ({"gen_ai.operation.name": "generate_content"}, True),
        ({"gen_ai.operation.name": "embeddings"}, True),
        ({"llm.request.type": "completion"}, True),
        ({"llm.request.type": "embedding"}, True),
        ({"llm.request.type": "rerank"}, True),
        ({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}, True),  # conventions before operation.name
    ],
)
def test_only_model_operations_become_llm_calls(
    module_store: ChdbClient, make_otel_row: Any, attributes: dict[str, str], counted: bool
) -> None:
    """One span of its own trace in the module's shared store: its trace has one llm_calls row or none."""
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    trace_id = uuid.uuid4().hex
    module_store.insert("otel_traces", [make_otel_row(attributes, trace_id=trace_id)], column_names=OTEL_TRACES_COLUMNS)
    assert spans_of(module_store, trace_id) == 1
    assert len(calls_of(module_store, trace_id)) == int(counted)


def test_prompt_hashes_reach_their_llm_calls_columns(store: ChdbClient, fake_llm: Any, instrument_into: Any) -> None:
    instrument_into(store)
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    with llmtrace.prompt("greet", variables={"name": "Ada"}):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, I am Ada"}],
        )
    assert llmtrace.flush(10)
    sql = "SELECT length(PromptSystemHash), length(PromptTemplateHash), PromptName FROM llm_calls"
    assert store.query(sql).result_rows == [(16, 16, "greet")]
