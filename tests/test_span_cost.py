"""``llmtrace server`` prices at ingest the model calls that arrive without a cost.

Spans in every spelling the store reads (the GenAI conventions, OpenLLMetry's older names,
OpenInference) go over OTLP/HTTP into a real server with re-pricing off, so any cost found was
set at ingest. The expected cost is the engine's for the provider, models and tokens
``llm_calls`` stored: the ingest reading of a span and the view's must agree. Calls that came with
a cost or a cost status, unknown models, calls without tokens and other spans are left alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmtrace import pricing
from tests.server_process import ServerProcess, post_spans

# span name -> its attributes (ints and floats as OTLP ints and doubles)
PRICED = {
    "semconv": {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1024,
    },
    "openllmetry-older": {
        "llm.request.type": "chat", "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-3-5-haiku-latest",
        "gen_ai.response.model": "claude-3-5-haiku-20241022", "gen_ai.usage.prompt_tokens": 500,
        "gen_ai.usage.completion_tokens": 50,
    },
    "openllmetry-llm-usage": {
        "llm.request.type": "chat", "gen_ai.system": "openai", "llm.request.model": "gpt-4o",
        "llm.usage.prompt_tokens": 80, "llm.usage.completion_tokens": 8,
    },
    "openinference-openai": {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.system": "openai",
        "llm.model_name": "gpt-4o-2024-08-06", "llm.invocation_parameters": '{"model": "gpt-4o", "stream": false}',
        "llm.token_count.prompt": 300, "llm.token_count.completion": 30,
        "llm.token_count.prompt_details.cache_read": 128,
    },
    "openinference-anthropic": {
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.system": "anthropic",
        "llm.model_name": "claude-sonnet-4-0", "llm.request.model_name": "claude-sonnet-4-0",
        "llm.response.model_name": "claude-sonnet-4-20250514",
        "llm.token_count.prompt": 2000, "llm.token_count.completion": 100,
        "llm.token_count.prompt_details.cache_write": 1500,
    },
    "openinference-hostile-parameters": {  # not JSON: the request model is llm.model_name's, as the view reads it
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-mini",
        "llm.invocation_parameters": "{not json", "llm.token_count.prompt": 50, "llm.token_count.completion": 5,
    },
    "openinference-parameters-not-an-object": {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-mini",
        "llm.invocation_parameters": "[1, 2]", "llm.token_count.prompt": 60, "llm.token_count.completion": 6,
    },
    "embeddings": {
        "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 4000,
    },
}  # fmt: skip
_CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
APP_COST = 0.5  # USD, far from what the engine charges for these tokens
LEFT_ALONE = {  # span name -> (attributes, CostUsd stored, CostStatus stored or None when not a model call)
    "openlit-own-cost": (
        {**_CHAT, "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cost": APP_COST}, APP_COST, "priced",
    ),
    "openinference-own-cost": (
        {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-mini",
         "llm.token_count.prompt": 1000, "llm.cost.total": APP_COST}, APP_COST, "priced",
    ),
    "llmtrace-unpriced": (
        {**_CHAT, "gen_ai.request.model": "my-finetune", "gen_ai.usage.input_tokens": 10,
         "llmtrace.cost.status": "unpriced"}, None, "unpriced",
    ),
    "unknown-model": (
        {**_CHAT, "gen_ai.request.model": "mystery-model-x9", "gen_ai.usage.input_tokens": 10}, None, "unpriced",
    ),
    "no-tokens": ({**_CHAT, "error.type": "openai.RateLimitError"}, None, "no_usage"),
    "garbage-tokens": (
        {**_CHAT, "gen_ai.usage.input_tokens": "1_000", "gen_ai.usage.output_tokens": "-5"}, None, "no_usage",
    ),
    "http-span": ({"http.request.method": "POST", "gen_ai.usage.input_tokens": 10}, None, None),
}  # fmt: skip


def _value(v: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=v)


def _request(spans: dict[str, dict[str, Any]]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    rnd, now = random.Random(7), time.time_ns()
    made = [
        Span(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), name=name, kind=Span.SPAN_KIND_CLIENT,
             start_time_unix_nano=now, end_time_unix_nano=now + 400_000_000,
             attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items()])
        for name, attrs in spans.items()
    ]  # fmt: skip
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="foreign"))])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=made)])]
    ).SerializeToString()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = ServerProcess(tmp_path_factory.mktemp("span-cost") / "data", args=("--reprice-every", "0")).wait_ready()
    try:
        spans = {**PRICED, **{name: attrs for name, (attrs, _, _) in LEFT_ALONE.items()}}
        code, _, body = post_spans(server, _request(spans))
        assert code == 200, body
        client = server.client()
        deadline = time.monotonic() + 60
        while client.query("SELECT count() FROM otel_traces").result_rows[0][0] < len(spans):
            assert time.monotonic() < deadline, "the server did not store the spans"
            time.sleep(0.05)  # polling a real server's insert, with a deadline
        yield client
    finally:
        assert server.stop() == 0, server.output


def _calls(client: Any) -> dict[str, tuple[Any, ...]]:
    rows = client.query(
        "SELECT SpanName, Provider, ResponseModel, RequestModel, InputTokens, OutputTokens, CacheReadTokens,"
        " CacheWriteTokens, CostUsd, CostStatus FROM llm_calls"
    ).result_rows
    return {r[0]: tuple(r[1:]) for r in rows}


def _sources(client: Any) -> dict[str, str]:
    rows = client.query("SELECT SpanName, SpanAttributes['llmtrace.cost.source'] FROM otel_traces").result_rows
    return {r[0]: r[1] for r in rows}


@pytest.mark.parametrize("name", list(PRICED))
def test_a_call_without_a_cost_is_priced_at_ingest_as_the_engine_prices_its_stored_row(client: Any, name: str) -> None:
    provider, response_model, request_model, inp, out, read, write, cost, status = _calls(client)[name]
    want = pricing.tokens_cost_usd(provider, [response_model, request_model], inp, out, read, write)
    assert want is not None and want > 0, (name, provider, response_model, request_model)
    assert status == "priced"
    assert cost == pytest.approx(want, rel=1e-12)
    assert _sources(client)[name] == "server"


def test_the_readings_match_what_the_view_stored(client: Any) -> None:
    """Spot checks of the view's side, so a wrong reading on both sides cannot pass above."""
    calls = _calls(client)
    assert calls["openinference-openai"][:6] == ("openai", "gpt-4o-2024-08-06", "gpt-4o", 300, 30, 128)
    assert calls["openinference-anthropic"][:7] == (
        "anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0", 2000, 100, 0, 1500,
    )  # fmt: skip
    assert calls["openllmetry-older"][:5] == (
        "anthropic",
        "claude-3-5-haiku-20241022",
        "claude-3-5-haiku-latest",
        500,
        50,
    )


@pytest.mark.parametrize("name", list(LEFT_ALONE))
def test_calls_with_their_own_cost_or_nothing_to_price_are_left_alone(client: Any, name: str) -> None:
    _, cost, status = LEFT_ALONE[name]
    calls = _calls(client)
    if status is None:
        assert name not in calls  # not a model call
    else:
        assert calls[name][-2:] == (cost, status)
    assert _sources(client)[name] == ""


def test_the_rollups_hold_the_ingest_costs(client: Any) -> None:
    total = client.query("SELECT sum(CostUsd) FROM llm_calls").result_rows[0][0]
    hourly = client.query("SELECT sum(CostUsd), sum(UnpricedCalls) FROM llm_calls_1h").result_rows[0]
    assert hourly[0] == pytest.approx(total, rel=1e-9)
    assert hourly[1] == 2  # llmtrace-unpriced and unknown-model


def test_a_model_with_a_stored_override_is_left_to_the_repricing_pass(tmp_path: Any) -> None:
    """The decode workers do not hold the server's price overrides: a call of an overridden model is
    not priced at ingest (at the engine's price it would be wrong until the next re-pricing run), the
    re-pricing pass prices it at the override; other models are priced at ingest as before."""
    import json

    path = tmp_path / "prices.json"
    path.write_text(json.dumps([{"model": "gpt-4o-mini", "input_mtok": 1000, "output_mtok": 2000}]))
    args = ("--prices-file", str(path), "--reprice-every", "0")
    server = ServerProcess(tmp_path / "data", args=args).wait_ready()
    try:
        spans = {"overridden": PRICED["semconv"], "not-overridden": PRICED["openllmetry-llm-usage"]}
        code, _, body = post_spans(server, _request(spans))
        assert code == 200, body
        client = server.client()
        deadline = time.monotonic() + 60
        while client.query("SELECT count() FROM llm_calls").result_rows[0][0] < 2:
            assert time.monotonic() < deadline, "the server did not store the spans"
            time.sleep(0.05)  # polling a real server's insert, with a deadline
        costs = dict(client.query("SELECT SpanName, CostStatus FROM llm_calls").result_rows)
        assert costs == {"overridden": "unpriced", "not-overridden": "priced"}
        assert _sources(client) == {"overridden": "", "not-overridden": "server"}
    finally:
        assert server.stop() == 0, server.output
