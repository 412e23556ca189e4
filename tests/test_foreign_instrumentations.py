"""Other tools' spans into a real ``llmtrace server``, read back from ``llm_calls``.

The real ``openai`` and ``anthropic`` SDKs call the fake LLM over HTTP, instrumented not by
llmtrace but by each peer package in turn, in a fresh interpreter of its own (they patch the same
SDK methods): the OTel contrib ``opentelemetry-instrumentation-openai-v2``, OpenInference
(``openinference-instrumentation-openai`` / ``-anthropic``, Arize Phoenix's conventions) and
OpenLLMetry (traceloop's ``opentelemetry-instrumentation-openai`` / ``-anthropic`` 0.62). Each
exports with the OTel SDK's OTLP/HTTP exporter into one ``llmtrace server``; per SDK: a call, a
stream and a call failing with HTTP 400. What each tool leaves out (so ``llm_calls`` cannot have it):

- openai-v2 2.4b0 (OpenAI only): no stream flag, no finish reason on a stream, no TTFT, no content
  on the span (it goes to log events, off by default); its ``error.type`` is ``str(type)``
  ("<class 'openai.BadRequestError'>", read as the class name).
- OpenInference: no operation name (an ``LLM`` span reads as ``chat``); OpenAI's instrumentor names
  no request model (read from ``llm.invocation_parameters``) and no provider beyond ``llm.system``;
  TTFT only on OpenAI streams (its "First Token Stream Event"); no ``error.type`` (the exception
  event's type is used). Anthropic's finish reason is the API's (``end_turn``).
- OpenLLMetry 0.62: no TTFT attribute; finish reasons mapped to OpenAI's words (Anthropic's
  ``end_turn`` -> ``stop``); ``error.type`` is the bare class name (``BadRequestError``, read
  as its exception event's ``openai.BadRequestError``); on an Anthropic stream it adds
  message_start's output token to the total (21 where the API says 20); Anthropic's
  ``messages.stream()`` helper is not marked as a stream (``create(stream=True)`` is).
- The anthropic SDK's own spans (anthropic >= 2, through the global tracer provider): the finish
  reason only as ``anthropic.message.stop_reason``; ``error.type`` is the API's (``invalid_request_error``);
  no content unless its content mode is on. With a peer instrumentor AND a global tracer provider,
  each Anthropic call has two spans (the SDK's inside the peer's), so two ``llm_calls`` rows:
  ``ANTHROPIC_OPEN_TELEMETRY=false`` (or ``Anthropic(open_telemetry=False)``) turns the SDK's off.
- None of them records a cost: the server's re-pricing pass prices those calls afterwards
  (``test_calls_stored_without_a_cost_are_priced_by_the_server``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmtrace import pricing
from llmtrace.demo.fake_llm import FakeLLM
from tests.server_process import ServerProcess

pytest.importorskip("openinference.instrumentation.openai")
pytest.importorskip("openinference.instrumentation.anthropic")
pytest.importorskip("opentelemetry.instrumentation.openai_v2")
pytest.importorskip("opentelemetry.instrumentation.openai")  # OpenLLMetry's
pytest.importorskip("opentelemetry.instrumentation.anthropic")

# service name -> the lines that instrument the SDKs it covers (`sdks`) with that tool
TOOLS = {
    "otel-openai-v2": (
        "from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor\n"
        "OpenAIInstrumentor().instrument(tracer_provider=provider)\n"
        "sdks = ['openai']\n"
    ),
    "openinference": (
        "from openinference.instrumentation.openai import OpenAIInstrumentor\n"
        "from openinference.instrumentation.anthropic import AnthropicInstrumentor\n"
        "OpenAIInstrumentor().instrument(tracer_provider=provider)\n"
        "AnthropicInstrumentor().instrument(tracer_provider=provider)\n"
        "sdks = ['openai', 'anthropic']\n"
    ),
    "openllmetry": (
        "from opentelemetry.instrumentation.openai import OpenAIInstrumentor\n"
        "from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor\n"
        "OpenAIInstrumentor().instrument(tracer_provider=provider)\n"
        "AnthropicInstrumentor().instrument(tracer_provider=provider)\n"
        "sdks = ['openai', 'anthropic']\n"
    ),
    # anthropic >= 2 records its own call spans through the global tracer provider, no instrumentor needed
    "anthropic-sdk": "from opentelemetry import trace\ntrace.set_tracer_provider(provider)\nsdks = ['anthropic']\n",
}
WORD = "parcel7781"  # in every prompt: the Traces text search must find the tool's spans by it

_CHILD = """
import sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

endpoint, service, openai_url, anthropic_url, word = sys.argv[1:6]
provider = TracerProvider(resource=Resource.create({"service.name": service}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
%s
import anthropic
import openai

messages = [{"role": "user", "content": "where is " + word}]
fail = {"x-fake-status": "400"}
if "openai" in sdks:
    client = openai.OpenAI(base_url=openai_url, api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    print("openai stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices)[:20])
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_headers=fail)
    except openai.BadRequestError:
        print("openai error raised")
if "anthropic" in sdks:
    claude = anthropic.Anthropic(base_url=anthropic_url, api_key="k", max_retries=0)
    model = "claude-3-5-haiku-latest"
    claude.messages.create(model=model, max_tokens=64, messages=messages)
    events = claude.messages.create(model=model, max_tokens=64, messages=messages, stream=True)
    print("anthropic stream:", sum(1 for _ in events), "events")
    try:
        claude.messages.create(model=model, max_tokens=64, messages=messages, extra_headers=fail)
    except anthropic.BadRequestError:
        print("anthropic error raised")
provider.shutdown()  # exports every span before the interpreter ends
"""

_OPENAI = ("openai", "chat", "gpt-4o-mini")
_ANTHROPIC = ("anthropic", "chat", "claude-3-5-haiku-latest")
_GPT_RESPONSE, _CLAUDE_RESPONSE = "gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022"
_FAILED = ("Error", 1)
# Per tool, per call in order (provider's sync call, stream, failed call): provider, operation,
# request model, response model, input tokens, output tokens, stream flag, finish reasons, status,
# is-error, error type.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "otel-openai-v2": [
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 0, ["stop"], "Unset", 0, ""),
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 0, [], "Unset", 0, ""),
        (*_OPENAI, "", 0, 0, 0, [], *_FAILED, "openai.BadRequestError"),
    ],
    "openinference": [
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 20, 0, ["end_turn"], "Ok", 0, ""),
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 20, 1, ["end_turn"], "Ok", 0, ""),
        (*_ANTHROPIC, "", 0, 0, 0, [], *_FAILED, "anthropic.BadRequestError"),
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 0, ["stop"], "Ok", 0, ""),
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 1, ["stop"], "Ok", 0, ""),
        (*_OPENAI, "", 0, 0, 0, [], *_FAILED, "openai.BadRequestError"),
    ],
    "openllmetry": [
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 20, 0, ["stop"], "Ok", 0, ""),
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 21, 1, ["stop"], "Ok", 0, ""),
        (*_ANTHROPIC, "", 0, 0, 0, [], *_FAILED, "anthropic.BadRequestError"),
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 0, ["stop"], "Unset", 0, ""),
        (*_OPENAI, _GPT_RESPONSE, 9, 20, 1, ["stop"], "Ok", 0, ""),
        (*_OPENAI, "", 0, 0, 0, [], *_FAILED, "openai.BadRequestError"),
    ],
    "anthropic-sdk": [
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 20, 0, ["end_turn"], "Ok", 0, ""),
        (*_ANTHROPIC, _CLAUDE_RESPONSE, 8, 20, 1, ["end_turn"], "Ok", 0, ""),
        (*_ANTHROPIC, "", 0, 0, 0, [], *_FAILED, "invalid_request_error"),
    ],
}
_COLUMNS = (
    "Provider, Operation, RequestModel, ResponseModel, InputTokens, OutputTokens, IsStream, FinishReasons,"
    " StatusCode, IsError, ErrorType"
)


def _run_tools(server: ServerProcess, fake: FakeLLM) -> dict[str, str]:
    """Each tool's child, all at once (each its own interpreter); returns their outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "PYTEST"))}
    env["TRACELOOP_TELEMETRY"] = "false"
    urls = [f"{server.otlp_url}/v1/traces", fake.openai_base_url, fake.anthropic_base_url]
    children = {
        tool: subprocess.Popen(
            [sys.executable, "-c", _CHILD % code, urls[0], tool, *urls[1:], WORD],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for tool, code in TOOLS.items()
    }
    outputs = {}
    for tool, child in children.items():
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, f"{tool}:\n{out}"
        outputs[tool] = out
    return outputs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[tuple[ServerProcess, Any]]:
    """One server holding every tool's calls, plus one call that came with its own cost. Re-pricing
    runs every half second (the default is 300 s), so the cost test need not wait long."""
    data = tmp_path_factory.mktemp("foreign") / "data"
    server = ServerProcess(data, args=("--reprice-every", "0.5")).wait_ready()
    try:
        outputs = _run_tools(server, fake_llm)
        for tool, out in outputs.items():
            assert "error raised" in out, f"{tool}:\n{out}"
        _export_a_call_with_its_own_cost(server)
        yield server, server.client()
    finally:
        assert server.stop() == 0, server.output


PRICED_BY_THE_APP = 0.5  # USD: far from what the engine would charge for its tokens


def _export_a_call_with_its_own_cost(server: ServerProcess) -> None:
    """A gpt-4o-mini call priced by its instrumentation (OpenLIT's gen_ai.usage.cost): kept as sent."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "priced-by-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.otlp_url}/v1/traces")))
    attributes = {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100, "gen_ai.usage.cost": PRICED_BY_THE_APP,
    }  # fmt: skip
    provider.get_tracer("app").start_span("chat gpt-4o-mini", attributes=attributes).end()
    provider.shutdown()


def _rows(client: Any, service: str, columns: str = _COLUMNS) -> list[tuple[Any, ...]]:
    sql = f"SELECT {columns} FROM llm_calls WHERE ServiceName = {{s:String}} ORDER BY Provider, Timestamp"
    return [tuple(r) for r in client.query(sql, parameters={"s": service}).result_rows]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_each_call_becomes_one_llm_calls_row_with_what_the_tool_recorded(
    served: tuple[ServerProcess, Any], tool: str
) -> None:
    _, client = served
    assert _rows(client, tool) == EXPECTED[tool]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_each_tools_calls_reach_the_rollups_and_the_trace_list(served: tuple[ServerProcess, Any], tool: str) -> None:
    _, client = served
    calls = len(EXPECTED[tool])
    hourly = client.query(
        "SELECT sum(Calls), sum(Errors) FROM llm_calls_1h WHERE ServiceName = {s:String}", parameters={"s": tool}
    ).result_rows
    assert hourly == [(calls, calls // 3)]  # one failed call per SDK
    traces = client.query(
        "SELECT count(DISTINCT TraceId), sum(Calls) FROM llm_traces WHERE has(Services, {s:String})",
        parameters={"s": tool},
    ).result_rows
    assert traces == [(calls, calls)]  # each call is a trace of its own


def test_time_to_first_token_is_read_where_the_tool_records_it(served: tuple[ServerProcess, Any]) -> None:
    _, client = served
    ttft = {tool: _rows(client, tool, "Provider, IsStream, TtftUs IS NOT NULL, TtftUs <= DurationUs") for tool in TOOLS}
    # OpenInference's "First Token Stream Event" on OpenAI streams; the anthropic SDK's own attribute.
    assert [r for r in ttft["openinference"] if r[2]] == [("openai", 1, 1, 1)]
    assert [r for r in ttft["anthropic-sdk"] if r[2]] == [("anthropic", 1, 1, 1)]
    assert not any(r[2] for r in ttft["openllmetry"] + ttft["otel-openai-v2"])


@pytest.mark.parametrize(
    ("tool", "searched"), [("openinference", 6), ("openllmetry", 6), ("otel-openai-v2", 0), ("anthropic-sdk", 0)]
)
def test_the_traces_text_search_finds_the_prompts_the_tool_keeps(
    served: tuple[ServerProcess, Any], tool: str, searched: int
) -> None:
    """Content: OpenInference's input.value, OpenLLMetry's gen_ai.input.messages; openai-v2 keeps none
    on the span (its content goes to log events, off unless asked for), nor does the anthropic SDK by
    default (its ``traces.content_mode``)."""
    _, client = served
    found = client.query(
        "SELECT count() FROM otel_traces_content WHERE SpanId IN (SELECT SpanId FROM llm_calls WHERE "
        "ServiceName = {s:String}) AND arrayExists(v -> position(v, {w:String}) > 0, Content)",
        parameters={"s": tool, "w": WORD},
    ).result_rows
    assert found == [(searched,)]


def test_calls_stored_without_a_cost_are_priced_by_the_server(served: tuple[ServerProcess, Any]) -> None:
    _, client = served
    sql = (
        "SELECT ServiceName, Provider, ResponseModel, RequestModel, InputTokens, CacheReadTokens, CacheWriteTokens,"
        " OutputTokens, CostUsd, CostStatus FROM llm_calls WHERE TotalTokens > 0 ORDER BY ServiceName, Timestamp"
    )
    rollup_sql = "SELECT sum(UnpricedCalls), sum(CostUsd) FROM llm_calls_1h"
    deadline, rows, rollup = time.monotonic() + 60, [], (None, None)
    while time.monotonic() < deadline:  # the server's next re-pricing run, within half a second
        rows, rollup = client.query(sql).result_rows, client.query(rollup_sql).result_rows[0]
        if rows and all(r[9] == "priced" for r in rows) and rollup[0] == 0:  # calls priced, then rollups corrected
            break
        time.sleep(0.2)
    assert rows and all(r[9] == "priced" for r in rows), rows
    for service, provider, response_model, request_model, inp, read, write, out, cost, _ in rows:
        if service == "priced-by-app":
            assert cost == PRICED_BY_THE_APP  # a call that came with a cost is never priced again
            continue
        want = pricing.tokens_cost_usd(provider, [response_model, request_model], inp, out, read, write)
        assert want is not None and cost == pytest.approx(want, rel=1e-9), (service, provider, response_model)
    assert len(rows) == 1 + sum(1 for calls in EXPECTED.values() for r in calls if r[4])
    assert rollup[0] == 0 and rollup[1] == pytest.approx(sum(r[8] for r in rows), rel=1e-9)
