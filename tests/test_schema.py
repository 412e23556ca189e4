"""The schema on real chDB: exact Collector columns, and what the materialized views derive."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

RowMaker = Callable[..., tuple[object, ...]]


@pytest.fixture
def otel_row(make_otel_row: RowMaker) -> RowMaker:
    return make_otel_row


@pytest.fixture
def store(emptied_store: ChdbClient) -> ChdbClient:
    """These tests only insert spans: one migrated database for the module, emptied after each test."""
    return emptied_store


# SCHEMA.md: the OpenTelemetry Collector ClickHouse exporter's otel_traces (Nested flattened).
COLLECTOR_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
]

LLM_CALLS_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("Environment", "LowCardinality(String)"),
    ("Release", "LowCardinality(String)"),
    ("Provider", "LowCardinality(String)"),
    ("Operation", "LowCardinality(String)"),
    ("RequestModel", "LowCardinality(String)"),
    ("ResponseModel", "LowCardinality(String)"),
    ("InputTokens", "UInt64"),
    ("OutputTokens", "UInt64"),
    ("CacheReadTokens", "UInt64"),
    ("CacheWriteTokens", "UInt64"),
    ("ReasoningTokens", "UInt64"),
    ("TotalTokens", "UInt64"),
    ("CostUsd", "Nullable(Float64)"),
    ("CostStatus", "LowCardinality(String)"),
    ("DurationUs", "UInt64"),
    ("TtftUs", "Nullable(UInt64)"),
    ("IsStream", "UInt8"),
    ("FinishReasons", "Array(LowCardinality(String))"),
    ("FinishReason", "LowCardinality(String)"),
    ("HasToolCalls", "UInt8"),
    ("StatusCode", "LowCardinality(String)"),
    ("IsError", "UInt8"),
    ("ErrorType", "LowCardinality(String)"),
    ("PromptName", "LowCardinality(String)"),
    ("PromptVersion", "LowCardinality(String)"),
    ("PromptSystemHash", "LowCardinality(String)"),
    ("PromptTemplateHash", "String"),
    ("UserId", "String"),
    ("SessionId", "String"),
    ("ServerAddress", "LowCardinality(String)"),
    ("UsageEstimated", "UInt8"),
    ("OutputTokensPerSecond", "Float64"),
    ("PriceVersion", "UInt32"),
    ("PrevCostUsd", "Nullable(Float64)"),
    ("PrevCostStatus", "LowCardinality(String)"),
]

ROLLUP_COLUMNS = [
    ("Bucket", "DateTime"),
    ("ServiceName", "LowCardinality(String)"),
    ("Environment", "LowCardinality(String)"),
    ("Release", "LowCardinality(String)"),
    ("Provider", "LowCardinality(String)"),
    ("Operation", "LowCardinality(String)"),
    ("RequestModel", "LowCardinality(String)"),
    ("PromptName", "LowCardinality(String)"),
    ("PromptVersion", "LowCardinality(String)"),
    ("Calls", "SimpleAggregateFunction(sum, UInt64)"),
    ("Errors", "SimpleAggregateFunction(sum, UInt64)"),
    ("InputTokens", "SimpleAggregateFunction(sum, UInt64)"),
    ("OutputTokens", "SimpleAggregateFunction(sum, UInt64)"),
    ("CacheReadTokens", "SimpleAggregateFunction(sum, UInt64)"),
    ("CacheWriteTokens", "SimpleAggregateFunction(sum, UInt64)"),
    ("ReasoningTokens", "SimpleAggregateFunction(sum, UInt64)"),
    ("CostUsd", "SimpleAggregateFunction(sum, Float64)"),
    ("UnpricedCalls", "SimpleAggregateFunction(sum, UInt64)"),
    ("PricedCalls", "SimpleAggregateFunction(sum, UInt64)"),
    ("DurationSumUs", "SimpleAggregateFunction(sum, UInt64)"),
    ("DurationQ", "AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt64)"),
    ("TtftQ", "AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt64))"),
    ("PriceVersion", "SimpleAggregateFunction(max, UInt32)"),  # 017: re-pricing's correction rows
]

LLMTRACE_SPAN = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": "1200",
    "gen_ai.usage.output_tokens": "300",
    "gen_ai.usage.cache_read.input_tokens": "200",
    "gen_ai.usage.cache_write.input_tokens": "100",
    "gen_ai.usage.reasoning.output_tokens": "50",
    "llmtrace.cost.usd": "0.00575",
    "gen_ai.response.finish_reasons": '["tool_calls","stop"]',
    "gen_ai.response.time_to_first_chunk": "0.5",
    "gen_ai.request.stream": "true",
    "gen_ai.prompt.name": "support-answer",
    "gen_ai.prompt.version": "3",
    "llmtrace.prompt.system_hash": "a1b2c3d4e5f60718",
    "llmtrace.prompt.template_hash": "0f1e2d3c4b5a6978",
    "user.id": "user-1",
    "session.id": "sess-1",
    "server.address": "api.openai.com",
    "llmtrace.environment": "staging",
    "llmtrace.release": "2024.06.1",
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
}


def columns(client: ChdbClient, table: str) -> list[tuple[str, str]]:
    sql = (
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = {table:String} ORDER BY position"
    )
    return [tuple(r) for r in client.query(sql, parameters={"table": table}).result_rows]


def insert(client: ChdbClient, *rows: tuple[object, ...]) -> None:
    client.insert("otel_traces", list(rows), column_names=OTEL_TRACES_COLUMNS)


def call(client: ChdbClient, span_id: str) -> dict[str, object]:
    result = client.query("SELECT * FROM llm_calls WHERE SpanId = {id:String}", parameters={"id": span_id})
    assert result.row_count == 1, f"expected one llm_calls row for span {span_id}, got {result.row_count}"
    return result.named_results()[0]


def test_otel_traces_has_exactly_the_collector_columns_and_types(store: ChdbClient) -> None:
    assert columns(store, "otel_traces") == COLLECTOR_COLUMNS


def test_otel_traces_columns_match_the_ingest_column_order() -> None:
    assert tuple(name for name, _ in COLLECTOR_COLUMNS) == OTEL_TRACES_COLUMNS


def test_llm_calls_has_the_contract_columns_and_types(store: ChdbClient) -> None:
    assert columns(store, "llm_calls") == LLM_CALLS_COLUMNS


@pytest.mark.parametrize("table", ["llm_calls_1m", "llm_calls_1h"])
def test_rollups_have_the_contract_columns_and_types(store: ChdbClient, table: str) -> None:
    assert columns(store, table) == ROLLUP_COLUMNS


def test_llm_scores_and_model_prices_have_their_columns(store: ChdbClient) -> None:
    assert [n for n, _ in columns(store, "llm_scores")] == [
        "Timestamp", "TraceId", "SpanId", "Name", "Value", "StringValue", "Source", "Comment",
    ]  # fmt: skip
    assert [n for n, _ in columns(store, "model_prices")] == [
        "Provider", "Model", "InputPerMTok", "OutputPerMTok", "CacheReadPerMTok", "CacheWritePerMTok",
        "Source", "UpdatedAt",
    ]  # fmt: skip


def test_llmtrace_span_becomes_one_fully_typed_llm_calls_row(store: ChdbClient, otel_row: RowMaker) -> None:
    start = time.time_ns()
    insert(
        store,
        otel_row(
            LLMTRACE_SPAN,
            start_ns=start,
            span_id="00000000000000a1",
            trace_id="0" * 31 + "1",
            resource_attributes={"service.version": "9.9", "deployment.environment.name": "prod"},
        ),
    )
    row = call(store, "00000000000000a1")
    row.pop("Timestamp")
    assert row == {
        "TraceId": "0" * 31 + "1",
        "SpanId": "00000000000000a1",
        "ParentSpanId": "",
        "SpanName": "chat gpt-4o",
        "ServiceName": "svc",
        "Environment": "staging",
        "Release": "2024.06.1",
        "Provider": "openai",
        "Operation": "chat",
        "RequestModel": "gpt-4o",
        "ResponseModel": "gpt-4o-2024-08-06",
        "InputTokens": 1200,
        "OutputTokens": 300,
        "CacheReadTokens": 200,
        "CacheWriteTokens": 100,
        "ReasoningTokens": 50,
        "TotalTokens": 1500,
        "CostUsd": 0.00575,
        "CostStatus": "priced",
        "DurationUs": 1_500_000,
        "TtftUs": 500_000,
        "IsStream": 1,
        "FinishReasons": ["tool_calls", "stop"],
        "FinishReason": "tool_calls",
        "HasToolCalls": 1,
        "StatusCode": "Unset",
        "IsError": 0,
        "ErrorType": "",
        "PromptName": "support-answer",
        "PromptVersion": "3",
        "PromptSystemHash": "a1b2c3d4e5f60718",
        "PromptTemplateHash": "0f1e2d3c4b5a6978",
        "UserId": "user-1",
        "SessionId": "sess-1",
        "ServerAddress": "api.openai.com",
        "UsageEstimated": 0,
        "OutputTokensPerSecond": 300.0,
        "PriceVersion": 0,
        "PrevCostUsd": None,
        "PrevCostStatus": "",
    }


def test_llm_calls_keeps_the_span_start_time_to_the_nanosecond(store: ChdbClient, otel_row: RowMaker) -> None:
    start = (time.time_ns() // 10**9 - 60) * 10**9 + 123_456_789
    insert(store, otel_row(LLMTRACE_SPAN, start_ns=start, span_id="00000000000000a2"))
    got = store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp) FROM llm_calls WHERE SpanId = '00000000000000a2'"
    ).result_rows
    assert got == [(start,)]


def test_non_genai_spans_do_not_reach_llm_calls(store: ChdbClient, otel_row: RowMaker) -> None:
    insert(store, otel_row({"http.request.method": "GET"}, span_name="GET /", span_kind="Server"))
    assert store.query("SELECT count() FROM otel_traces").result_rows == [(1,)]
    assert store.query("SELECT count() FROM llm_calls").result_rows == [(0,)]


def test_openlit_spelling_lands_in_the_same_columns(store: ChdbClient, otel_row: RowMaker) -> None:
    openlit = {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": "10",
        "gen_ai.usage.output_tokens": "20",
        "gen_ai.usage.cost": "0.0042",
        "gen_ai.response.finish_reasons": '["stop"]',
    }
    insert(store, otel_row(openlit, span_id="00000000000000b1"))
    row = call(store, "00000000000000b1")
    assert (row["Provider"], row["InputTokens"], row["OutputTokens"], row["CostUsd"], row["CostStatus"]) == (
        "openai", 10, 20, 0.0042, "priced",
    )  # fmt: skip


@pytest.mark.parametrize("stream_flag", ["gen_ai.request.stream", "gen_ai.request.is_stream"])  # OpenLIT's, earlier
def test_openlit_time_to_first_token_is_the_ttft_of_a_stream(
    store: ChdbClient, otel_row: RowMaker, stream_flag: str
) -> None:
    """OpenLIT writes gen_ai.server.time_to_first_token (seconds) on a call without a stream too,
    where it is the whole response's time: only a stream's is a TTFT."""
    openlit = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", stream_flag: "true",
               "gen_ai.server.time_to_first_token": "0.0125"}  # fmt: skip
    whole = {**openlit, stream_flag: "false", "gen_ai.server.time_to_first_token": "1.5"}
    insert(store, otel_row(openlit, span_id="00000000000000b2"), otel_row(whole, span_id="00000000000000b3"))
    stream, plain = call(store, "00000000000000b2"), call(store, "00000000000000b3")
    assert ((stream["TtftUs"], stream["IsStream"]), (plain["TtftUs"], plain["IsStream"])) == ((12_500, 1), (None, 0))


def test_openllmetry_spelling_lands_in_the_same_columns(store: ChdbClient, otel_row: RowMaker) -> None:
    openllmetry = {
        "gen_ai.system": "OpenAI",
        "llm.request.type": "completion",
        "gen_ai.request.model": "gpt-3.5-turbo-instruct",
        "llm.usage.prompt_tokens": "7",
        "llm.usage.completion_tokens": "5",
        "llm.usage.total_tokens": "12",
        "gen_ai.completion.0.finish_reason": "length",
        "llm.is_streaming": "true",
    }
    insert(store, otel_row(openllmetry, span_id="00000000000000c1", span_name="openai.completion"))
    row = call(store, "00000000000000c1")
    got = {k: row[k] for k in ("Provider", "Operation", "InputTokens", "OutputTokens", "TotalTokens")}
    assert got == {"Provider": "openai", "Operation": "text_completion", "InputTokens": 7, "OutputTokens": 5,
                   "TotalTokens": 12}  # fmt: skip
    assert (row["FinishReasons"], row["IsStream"], row["CostUsd"], row["CostStatus"]) == (
        ["length"], 1, None, "unpriced",
    )  # fmt: skip


def test_openllmetry_0_62_spelling_lands_in_the_same_columns(store: ChdbClient, otel_row: RowMaker) -> None:
    openllmetry = {  # traceloop's opentelemetry-instrumentation-openai 0.62: gen_ai.* with names of its own
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.reasoning_tokens": "3",
        "gen_ai.usage.total_tokens": "9",
        "gen_ai.is_streaming": "true",
    }
    insert(store, otel_row(openllmetry, span_id="00000000000000c3", span_name="openai.chat"))
    row = call(store, "00000000000000c3")
    assert (row["ReasoningTokens"], row["TotalTokens"], row["IsStream"]) == (3, 9, 1)


def test_the_anthropic_sdks_own_stop_reason_is_the_finish_reason(store: ChdbClient, otel_row: RowMaker) -> None:
    sdk = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
           "anthropic.message.stop_reason": "max_tokens"}  # fmt: skip
    insert(store, otel_row(sdk, span_id="00000000000000c4", span_name="anthropic.messages.create"))
    assert call(store, "00000000000000c4")["FinishReasons"] == ["max_tokens"]


OPENINFERENCE_LLM = {  # Arize Phoenix's conventions, as openinference-instrumentation-anthropic writes them
    "openinference.span.kind": "LLM",
    "llm.system": "anthropic",
    "llm.provider": "anthropic",
    "llm.request.model_name": "claude-3-5-haiku-latest",
    "llm.response.model_name": "claude-3-5-haiku-20241022",
    "llm.model_name": "claude-3-5-haiku-20241022",
    "llm.invocation_parameters": '{"max_tokens": 50, "stream": true}',
    "llm.token_count.prompt": "40",
    "llm.token_count.completion": "17",
    "llm.token_count.total": "57",
    "llm.token_count.prompt_details.cache_read": "30",
    "llm.token_count.prompt_details.cache_write": "6",
    "llm.token_count.completion_details.reasoning": "2",
    "llm.cost.total": "0.00123",
    "llm.finish_reason": "end_turn",
    "input.value": '{"messages": [{"role": "user", "content": "where is my parcel"}]}',
    "output.value": '{"content": [{"text": "on its way"}]}',
    "session.id": "sess-oi",
    "user.id": "user-oi",
}


def test_openinference_spelling_lands_in_the_same_columns(store: ChdbClient, otel_row: RowMaker) -> None:
    start = time.time_ns()
    first_token = (start + 250_000_000, "First Token Stream Event", {})  # OpenAI streams: no TTFT attribute
    insert(store, otel_row(OPENINFERENCE_LLM, span_id="00000000000000d1", span_name="messages.create",
                           span_kind="Internal", start_ns=start, events=[first_token]))  # fmt: skip
    row = call(store, "00000000000000d1")
    got = {k: row[k] for k in ("Provider", "Operation", "RequestModel", "ResponseModel", "InputTokens",
                               "OutputTokens", "CacheReadTokens", "CacheWriteTokens", "ReasoningTokens",
                               "TotalTokens", "CostUsd", "CostStatus", "IsStream", "FinishReasons", "TtftUs",
                               "SessionId", "UserId")}  # fmt: skip
    assert got == {
        "Provider": "anthropic", "Operation": "chat", "RequestModel": "claude-3-5-haiku-latest",
        "ResponseModel": "claude-3-5-haiku-20241022", "InputTokens": 40, "OutputTokens": 17, "CacheReadTokens": 30,
        "CacheWriteTokens": 6, "ReasoningTokens": 2, "TotalTokens": 57, "CostUsd": 0.00123, "CostStatus": "priced",
        "IsStream": 1, "FinishReasons": ["end_turn"], "TtftUs": 250_000, "SessionId": "sess-oi", "UserId": "user-oi",
    }  # fmt: skip
    content = store.query("SELECT Content FROM otel_traces_content WHERE SpanId = '00000000000000d1'").result_rows
    assert content == [([OPENINFERENCE_LLM["input.value"], OPENINFERENCE_LLM["output.value"]],)]


def test_openinference_openai_spelling_takes_the_request_model_from_the_invocation_parameters(
    store: ChdbClient, otel_row: RowMaker
) -> None:
    openai_llm = {  # openinference-instrumentation-openai: no llm.provider, no request model attribute
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.invocation_parameters": '{"model": "gpt-4o-mini"}',
        "llm.token_count.prompt": "5",
    }
    failed = {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.invocation_parameters": '{"model": "o3"}'}
    exception = (time.time_ns(), "exception", {"exception.type": "openai.BadRequestError"})
    anthropic_failed = {  # openinference-instrumentation-anthropic: the request's model in llm.model_name
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.request.model_name": "claude-x",
        "llm.model_name": "claude-x",
    }  # fmt: skip
    insert(store, otel_row(openai_llm, span_id="00000000000000d2", span_name="ChatCompletion", span_kind="Internal"),
           otel_row(failed, span_id="00000000000000d3", span_name="ChatCompletion", status_code="Error",
                    events=[exception]),
           otel_row(anthropic_failed, span_id="00000000000000d6", status_code="Error"))  # fmt: skip
    row = call(store, "00000000000000d2")
    assert (row["Provider"], row["RequestModel"], row["ResponseModel"], row["IsStream"], row["TtftUs"]) == (
        "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0, None,
    )  # fmt: skip
    row = call(store, "00000000000000d3")
    assert (row["RequestModel"], row["ResponseModel"], row["IsError"], row["ErrorType"]) == (
        "o3", "", 1, "openai.BadRequestError",
    )  # fmt: skip
    row = call(store, "00000000000000d6")
    assert (row["Provider"], row["RequestModel"], row["ResponseModel"], row["ErrorType"]) == (
        "anthropic", "claude-x", "", "_OTHER",
    )  # fmt: skip


@pytest.mark.parametrize(("kind", "operation"), [("EMBEDDING", "embeddings"), ("RERANKER", "rerank")])
def test_openinference_embedding_and_reranker_spans_are_model_calls(
    store: ChdbClient, otel_row: RowMaker, kind: str, operation: str
) -> None:
    attributes = {"openinference.span.kind": kind, "embedding.model_name": "text-embedding-3-small"}
    insert(store, otel_row(attributes, span_id="00000000000000d4"))
    row = call(store, "00000000000000d4")
    assert (row["Operation"], row["RequestModel"]) == (operation, "text-embedding-3-small")


@pytest.mark.parametrize("kind", ["CHAIN", "AGENT", "TOOL", "RETRIEVER"])
def test_openinference_spans_that_are_not_model_calls_stay_out(
    store: ChdbClient, otel_row: RowMaker, kind: str
) -> None:
    insert(store, otel_row({"openinference.span.kind": kind, "llm.system": "openai", "input.value": "hi"}))
    assert store.query("SELECT count() FROM llm_calls").result_rows == [(0,)]
    assert store.query("SELECT count() FROM otel_traces_content").result_rows == [(1,)]  # searched all the same


def test_peer_error_types_read_as_the_qualified_class_name(store: ChdbClient, otel_row: RowMaker) -> None:
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    v2 = {**chat, "error.type": "<class 'openai.RateLimitError'>"}  # openai-v2: str(type)
    openllmetry = {**chat, "error.type": "RateLimitError"}  # and an exception event with the qualified name
    event = (time.time_ns(), "exception", {"exception.type": "openai.RateLimitError"})
    status_code = {**chat, "error.type": "429"}  # a status code as error.type is kept, event or not
    insert(store, otel_row(v2, span_id="00000000000000d5", status_code="Error"),
           otel_row(openllmetry, span_id="00000000000000d7", status_code="Error", events=[event]),
           otel_row(status_code, span_id="00000000000000d8", status_code="Error", events=[event]))  # fmt: skip
    got = [
        call(store, span_id)["ErrorType"] for span_id in ("00000000000000d5", "00000000000000d7", "00000000000000d8")
    ]
    assert got == ["openai.RateLimitError", "openai.RateLimitError", "429"]


def test_total_tokens_fall_back_to_the_reported_total(store: ChdbClient, otel_row: RowMaker) -> None:
    insert(
        store,
        otel_row({"llm.request.type": "chat", "llm.usage.total_tokens": "42"}, span_id="00000000000000c2"),
    )
    assert call(store, "00000000000000c2")["TotalTokens"] == 42


def test_old_genai_spellings_land_in_the_same_columns(store: ChdbClient, otel_row: RowMaker) -> None:
    old = {
        "gen_ai.system": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.prompt_tokens": "11",
        "gen_ai.usage.completion_tokens": "22",
        "gen_ai.usage.cache_creation.input_tokens": "5",
        "gen_ai.conversation.id": "conv-9",
        "llmtrace.prompt.name": "legacy-prompt",
        "llmtrace.prompt.version": "7",
    }
    insert(store, otel_row(old, span_id="00000000000000d1"))
    row = call(store, "00000000000000d1")
    got = {k: row[k] for k in ("Provider", "InputTokens", "OutputTokens", "CacheWriteTokens", "SessionId",
                               "PromptName", "PromptVersion")}  # fmt: skip
    assert got == {"Provider": "anthropic", "InputTokens": 11, "OutputTokens": 22, "CacheWriteTokens": 5,
                   "SessionId": "conv-9", "PromptName": "legacy-prompt", "PromptVersion": "7"}  # fmt: skip


@pytest.mark.parametrize("spelling", ["Error", "STATUS_CODE_ERROR"])
def test_error_status_in_either_collector_spelling_marks_the_call_failed(
    store: ChdbClient, otel_row: RowMaker, spelling: str
) -> None:
    attrs = {"gen_ai.operation.name": "chat", "error.type": "RateLimitError"}
    insert(store, otel_row(attrs, span_id="00000000000000e1", span_kind="SPAN_KIND_CLIENT", status_code=spelling))
    row = call(store, "00000000000000e1")
    assert (row["StatusCode"], row["IsError"], row["ErrorType"]) == ("Error", 1, "RateLimitError")


def test_error_type_falls_back_to_the_exception_event(store: ChdbClient, otel_row: RowMaker) -> None:
    event = (time.time_ns(), "exception", {"exception.type": "openai.APITimeoutError"})
    insert(store, otel_row({"gen_ai.operation.name": "chat"}, span_id="00000000000000e2",
                           status_code="Error", events=[event]))  # fmt: skip
    assert call(store, "00000000000000e2")["ErrorType"] == "openai.APITimeoutError"


@pytest.mark.parametrize("spelling", ["Ok", "STATUS_CODE_OK"])
def test_ok_status_in_either_spelling_reads_ok(store: ChdbClient, otel_row: RowMaker, spelling: str) -> None:
    insert(store, otel_row({"gen_ai.operation.name": "chat"}, span_id="00000000000000e3", status_code=spelling))
    assert (call(store, "00000000000000e3")["StatusCode"], call(store, "00000000000000e3")["IsError"]) == (
        "Ok",
        0,
    )


def test_environment_and_release_fall_back_to_resource_attributes(store: ChdbClient, otel_row: RowMaker) -> None:
    resource = {"deployment.environment": "legacy-env", "service.version": "1.2.3"}
    insert(store, otel_row({"gen_ai.operation.name": "chat"}, span_id="00000000000000f1",
                           resource_attributes=resource))  # fmt: skip
    row = call(store, "00000000000000f1")
    assert (row["Environment"], row["Release"]) == ("legacy-env", "1.2.3")


def test_new_environment_attribute_wins_over_the_deprecated_one(store: ChdbClient, otel_row: RowMaker) -> None:
    resource = {"deployment.environment": "old", "deployment.environment.name": "new"}
    insert(store, otel_row({"gen_ai.operation.name": "chat"}, span_id="00000000000000f2",
                           resource_attributes=resource))  # fmt: skip
    assert call(store, "00000000000000f2")["Environment"] == "new"


def test_missing_cost_and_ttft_are_null_not_zero(store: ChdbClient, otel_row: RowMaker) -> None:
    insert(store, otel_row({"gen_ai.operation.name": "chat", "gen_ai.usage.output_tokens": "100"},
                           span_id="00000000000000f3", duration_ns=2_000_000_000))  # fmt: skip
    row = call(store, "00000000000000f3")
    assert (row["CostUsd"], row["CostStatus"], row["TtftUs"], row["IsStream"]) == (None, "unpriced", None, 0)
    assert row["OutputTokensPerSecond"] == 50.0


@pytest.mark.parametrize(("ttft", "expected"), [("0.25", 250_000), ("2.0004", 2_000_000), ("-0.1", 0)])
def test_a_first_token_is_timed_within_its_call(
    store: ChdbClient, otel_row: RowMaker, ttft: str, expected: int
) -> None:
    """The anthropic SDK times its first chunk from before its span starts: past the end reads as the end."""
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.stream": "true",
             "gen_ai.response.time_to_first_chunk": ttft, "gen_ai.usage.output_tokens": "100"}  # fmt: skip
    insert(store, otel_row(attrs, span_id="00000000000000f9", duration_ns=2_000_000_000))
    row = call(store, "00000000000000f9")
    assert (row["TtftUs"], row["DurationUs"]) == (expected, 2_000_000)


def test_explicit_cost_status_is_kept(store: ChdbClient, otel_row: RowMaker) -> None:
    attrs = {"gen_ai.operation.name": "chat", "llmtrace.cost.usd": "0.01",
             "llmtrace.cost.status": "estimated", "llmtrace.usage.estimated": "true"}  # fmt: skip
    insert(store, otel_row(attrs, span_id="00000000000000f4"))
    row = call(store, "00000000000000f4")
    assert (row["CostStatus"], row["UsageEstimated"]) == ("estimated", 1)


def test_message_content_stays_in_otel_traces_only(store: ChdbClient, otel_row: RowMaker) -> None:
    insert(store, otel_row(LLMTRACE_SPAN, span_id="00000000000000f5"))
    row = call(store, "00000000000000f5")
    assert not any("hi" in json.dumps(v, default=str) for v in row.values() if isinstance(v, str))
    raw = store.query("SELECT SpanAttributes['gen_ai.input.messages'] FROM otel_traces").result_rows
    assert raw == [(LLMTRACE_SPAN["gen_ai.input.messages"],)]


def test_trace_time_range_table_records_first_and_last_span(store: ChdbClient, otel_row: RowMaker) -> None:
    trace = "ab" * 16
    first = time.time_ns() // 10**9 - 3600
    insert(store, otel_row({}, trace_id=trace, start_ns=first * 10**9),
           otel_row({}, trace_id=trace, start_ns=(first + 60) * 10**9))  # fmt: skip
    got = store.query(
        "SELECT toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) FROM otel_traces_trace_id_ts "
        "WHERE TraceId = {t:String}",
        parameters={"t": trace},
    ).result_rows
    assert got == [(first, first + 60)]


def rollup_rows(otel_row: RowMaker, count: int) -> list[tuple[object, ...]]:
    """Calls spread over two hours, durations 1..count ms, a TTFT (0.1-100 ms, 1000 distinct values) on even
    ones, every 5th unpriced, every 10th failed."""
    hour_start = (time.time_ns() // 3_600_000_000_000 - 3) * 3_600_000_000_000
    rows = []
    for i in range(count):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": str(10 + i % 7),
            "gen_ai.usage.output_tokens": str(5 + i % 3),
            "gen_ai.usage.cache_read.input_tokens": "2",
            "gen_ai.usage.reasoning.output_tokens": "1",
        }
        if i % 2 == 0:
            attrs["gen_ai.response.time_to_first_chunk"] = str(((i // 2 * 7919) % 1000 + 1) / 10_000)
        if i % 5 != 0:
            attrs["llmtrace.cost.usd"] = "0.001"
        start = hour_start + (i % 120) * 60_000_000_000
        status = "Error" if i % 10 == 0 else "Ok"
        rows.append(otel_row(attrs, start_ns=start, duration_ns=(i + 1) * 1_000_000, status_code=status))
    return rows


@pytest.mark.parametrize("table", ["llm_calls_1m", "llm_calls_1h"])
def test_rollup_sums_equal_the_sums_over_llm_calls(store: ChdbClient, otel_row: RowMaker, table: str) -> None:
    insert(store, *rollup_rows(otel_row, 1000))
    sums = (
        "sum(Calls), sum(Errors), sum(InputTokens), sum(OutputTokens), sum(CacheReadTokens), "
        "sum(ReasoningTokens), round(sum(CostUsd), 9), sum(UnpricedCalls), sum(DurationSumUs)"
    )
    exact = (
        "count(), sum(IsError), sum(InputTokens), sum(OutputTokens), sum(CacheReadTokens), "
        "sum(ReasoningTokens), round(sum(ifNull(CostUsd, 0)), 9), countIf(CostStatus = 'unpriced'), sum(DurationUs)"
    )
    rolled = store.query(f"SELECT {sums} FROM {table}").result_rows
    assert rolled == store.query(f"SELECT {exact} FROM llm_calls").result_rows
    assert rolled[0][:2] == (1000, 100)


def test_hourly_rollup_has_one_bucket_per_hour(store: ChdbClient, otel_row: RowMaker) -> None:
    insert(store, *rollup_rows(otel_row, 240))
    assert store.query("SELECT uniqExact(Bucket) FROM llm_calls_1h").result_rows == [(2,)]
    assert store.query("SELECT uniqExact(Bucket) FROM llm_calls_1m").result_rows == [(120,)]


def test_rollup_latency_quantiles_match_exact_quantiles(store: ChdbClient, otel_row: RowMaker) -> None:
    rows = rollup_rows(otel_row, 2000)
    for chunk in range(0, len(rows), 250):  # several inserts -> several partial states to merge
        insert(store, *rows[chunk : chunk + 250])
    merged = store.query(
        "SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(DurationQ), "
        "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(TtftQ) FROM llm_calls_1h"
    ).result_rows[0]
    exact = store.query(
        "SELECT quantilesExact(0.5, 0.9, 0.95, 0.99)(DurationUs), quantilesExact(0.5, 0.9, 0.95, 0.99)(TtftUs) "
        "FROM llm_calls"
    ).result_rows[0]
    for got, want in zip(merged, exact, strict=True):
        assert got == pytest.approx(want, rel=0.02)


def test_every_attribute_the_llm_calls_view_reads_is_named_in_semconv() -> None:
    import re
    from pathlib import Path

    import llmtrace.semconv as sc

    names = {v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str)}
    schemas = Path(__file__).resolve().parent.parent / "schemas"
    view = "".join(
        (schemas / name).read_text()
        for name in (
            "005_llm_calls_mv.sql",
            "013_llm_calls_mv_model_calls.sql",
            "030_foreign_instrumentations.sql",
            "033_ttft_within_duration.sql",
        )
    )
    read = set(re.findall(r"Attributes\['([^']+)'\]", view)) | set(re.findall(r"\ba\['([^']+)'\]", view))
    assert read and read <= names, sorted(read - names)
