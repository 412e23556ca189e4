"""The whole path: an instrumented app (real SDKs, fake LLM service) -> OTLP -> `llmtrace server` -> SQL.

The app runs as its own process, exactly as a user's would; rows are read back through
clickhouse-connect over the server's ClickHouse HTTP port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from tests.server_process import ServerProcess

APP = """
import json, sys
import llmtrace
llmtrace.instrument(service_name="e2e-app", endpoint=sys.argv[1], environment="test", release="r1")
import anthropic, openai
from llmtrace.demo.fake_llm import FakeLLM

out = {}
with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    ant = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t", max_retries=0)
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    out["openai"] = [r.id, r.usage.prompt_tokens, r.usage.completion_tokens]
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}],
                                              stream=True, stream_options={"include_usage": True}))
    out["openai_stream"] = [chunks[0].id, chunks[-1].usage.completion_tokens]
    m = ant.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    out["anthropic"] = [m.id, m.usage.input_tokens, m.usage.output_tokens]
    try:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                                    extra_headers={"x-fake-status": "429"})
    except openai.RateLimitError:
        out["error"] = True
print(json.dumps(out))
print("flushed", llmtrace.flush(10))
"""

OFFICIAL_OPENAI_APP = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
provider = TracerProvider(resource=Resource.create({"service.name": "official-otel-app"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1])))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()
import openai
from llmtrace.demo.fake_llm import FakeLLM
with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
print(json.dumps([r.id, r.usage.prompt_tokens, r.usage.completion_tokens]))
provider.force_flush()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("e2e") / "data").wait_ready()
    yield process
    process.stop()


def run_app(code: str, endpoint: str) -> dict[str, Any] | list[Any]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), endpoint], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).parent.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])  # type: ignore[no-any-return]


def test_instrumented_app_lands_in_otel_traces_and_llm_calls(server: ServerProcess) -> None:
    calls = run_app(APP, f"{server.otlp_url}/v1/traces")
    assert isinstance(calls, dict)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
    rows = client.query(
        "SELECT SpanId, ResponseModel, InputTokens, OutputTokens, CostUsd, CostStatus, TtftUs, IsStream, IsError, "
        "ErrorType, Provider, Environment, Release, SpanName FROM llm_calls WHERE ServiceName = 'e2e-app' "
        "ORDER BY Timestamp"
    ).named_results()
    rows = list(rows)
    assert len(rows) == 4
    chat, stream, message, error = rows
    assert (chat["InputTokens"], chat["OutputTokens"]) == (calls["openai"][1], calls["openai"][2])
    assert chat["CostStatus"] == "priced"
    assert chat["CostUsd"] == pytest.approx((calls["openai"][1] * 0.15 + calls["openai"][2] * 0.6) / 1e6)
    assert (chat["Provider"], chat["Environment"], chat["Release"]) == ("openai", "test", "r1")
    assert chat["TtftUs"] is None and chat["IsStream"] == 0
    assert stream["IsStream"] == 1 and stream["TtftUs"] > 0
    assert stream["OutputTokens"] == calls["openai_stream"][1]
    assert message["Provider"] == "anthropic"
    assert (message["InputTokens"], message["OutputTokens"]) == (calls["anthropic"][1], calls["anthropic"][2])
    assert message["CostUsd"] > 0
    assert (error["IsError"], error["ErrorType"]) == (1, "openai.RateLimitError")
    raw = client.query(
        "SELECT SpanAttributes['gen_ai.response.id'], SpanKind, StatusCode FROM otel_traces "
        "WHERE ServiceName = 'e2e-app' ORDER BY Timestamp LIMIT 1"
    ).result_rows
    assert raw == [(calls["openai"][0], "Client", "Unset")]


def test_spans_from_the_official_otel_openai_instrumentation_land_in_llm_calls(server: ServerProcess) -> None:
    response_id, prompt_tokens, completion_tokens = run_app(OFFICIAL_OPENAI_APP, f"{server.otlp_url}/v1/traces")
    client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
    rows = client.query(
        "SELECT Provider, Operation, RequestModel, InputTokens, OutputTokens, CostStatus, CostUsd FROM llm_calls "
        "WHERE ServiceName = 'official-otel-app'"
    ).result_rows
    assert [r[:6] for r in rows] == [("openai", "chat", "gpt-4o-mini", prompt_tokens, completion_tokens, "priced")]
    # the tool records no cost: the server priced the call as it arrived, as llmtrace prices it in an app
    assert rows[0][6] == pytest.approx((prompt_tokens * 0.15 + completion_tokens * 0.6) / 1e6)
    ids = client.query(
        "SELECT SpanAttributes['gen_ai.response.id'] FROM otel_traces WHERE ServiceName = 'official-otel-app'"
    ).result_rows
    assert ids == [(response_id,)]


DIRECT_APP = """
import json, sys
import llmtrace
llmtrace.instrument(service_name="direct-app", clickhouse_url=sys.argv[1])
import openai
from llmtrace.demo.fake_llm import FakeLLM
with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    ids = [oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}]).id
           for i in range(5)]
print(json.dumps(ids))
assert llmtrace.flush(10)
"""


def test_direct_clickhouse_exporter_writes_without_a_collector(server: ServerProcess) -> None:
    ids = run_app(DIRECT_APP, server.http_url)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
    stored = client.query(
        "SELECT SpanAttributes['gen_ai.response.id'] FROM otel_traces WHERE ServiceName = 'direct-app'"
    ).result_rows
    assert sorted(r[0] for r in stored) == sorted(ids)
    assert client.query("SELECT count() FROM llm_calls WHERE ServiceName = 'direct-app'").result_rows == [(5,)]
