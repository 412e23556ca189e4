"""Frameworks above the SDKs (LangChain, LangGraph, LlamaIndex, OpenAI Agents SDK, pydantic-ai): their model calls are
traced through llmtrace's SDK patches, over real HTTP against the fake LLM, and each call is counted once.

pydantic-ai with instrumentation on opens its own ``chat`` span per model request: the SDK call inside
it then adds no span of llmtrace's (the framework's span, in the same pipeline, stands for the call),
so ``llm_calls`` in chDB has one row per request. llmtrace's spans nest under the framework's spans.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import agents
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from llama_index.core.llms import ChatMessage
from llama_index.llms.ollama import Ollama
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic_ai import Agent
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import llmtrace
from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from tests.provider_helpers import content

GPT = "gpt-4o-mini"
WEATHER = "What is the weather in Paris?"


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18C in {city}"


def test_langchain_chat_model_calls_are_traced_through_the_openai_patch(fake_llm: FakeLLM, spans: Any) -> None:
    llm = ChatOpenAI(model=GPT, base_url=fake_llm.openai_base_url, api_key="test", stream_usage=True)  # type: ignore[arg-type]
    reply = llm.invoke([SystemMessage("Be brief."), HumanMessage("hi")])
    chunks = list(llm.stream("hi"))

    invoked, streamed = spans.finished
    assert invoked.name == streamed.name == f"chat {GPT}"
    assert invoked.attributes[sc.RESPONSE_ID] == reply.response_metadata["id"]  # LangChain's own id is its run's
    assert content(invoked, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(invoked, sc.INPUT_MESSAGES) == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert streamed.attributes[sc.STREAM_END] == "completed"
    usage = next(c.usage_metadata for c in chunks if c.usage_metadata)  # stream_usage: include_usage
    assert streamed.attributes[sc.USAGE_OUTPUT_TOKENS] == usage["output_tokens"]
    assert sc.USAGE_ESTIMATED not in streamed.attributes


def weather_graph(fake: FakeLLM) -> Any:
    """A LangGraph tool loop: the model node asks for the tool, the tool node runs it, the model answers."""
    llm = ChatOpenAI(model=GPT, base_url=fake.openai_base_url, api_key="test").bind_tools([get_weather])  # type: ignore[arg-type]

    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()


def test_langgraph_model_calls_are_traced_once_each_in_the_app_s_trace(fake_llm: FakeLLM, spans: Any) -> None:
    """LangGraph runs nodes on its own executor and opens no OpenTelemetry spans (its tracing is LangSmith's):
    each model node's request is one span of ours, under the app's span, with the tool's result as input."""
    with spans.provider.get_tracer("app").start_as_current_span("handle request") as app:
        final = weather_graph(fake_llm).invoke({"messages": [HumanMessage(WEATHER)]})

    finished = spans.finished
    asked, answered = (s for s in finished if s.name == f"chat {GPT}")
    assert [s.name for s in finished].count(f"chat {GPT}") == 2  # two model-node runs, two spans
    assert {s.parent.span_id for s in (asked, answered) if s.parent} == {app.get_span_context().span_id}
    assert asked.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert answered.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    parts = [p for m in content(answered, sc.INPUT_MESSAGES) for p in m["parts"]]
    assert next(p for p in parts if p["type"] == "tool_call_response")["response"] == "18C in sample city"
    assert content(answered, sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == final["messages"][-1].content


def test_langgraph_model_calls_are_one_row_each_in_llm_calls(fake_llm: FakeLLM, store: ChdbClient) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ClickHouseSpanExporter(client=store)))
    llmtrace.instrument(tracer_provider=provider)
    try:
        weather_graph(fake_llm).invoke({"messages": [HumanMessage(WEATHER)]})
    finally:
        llmtrace.uninstrument()

    calls = store.query("SELECT SpanName, FinishReason, InputTokens FROM llm_calls ORDER BY Timestamp").result_rows
    assert [(name, reason) for name, reason, _ in calls] == [(f"chat {GPT}", "tool_calls"), (f"chat {GPT}", "stop")]
    assert all(tokens > 0 for _, _, tokens in calls)


def test_llamaindex_llm_calls_are_traced_through_the_ollama_patch(fake_llm: FakeLLM, spans: Any) -> None:
    llm = Ollama(model="llama3.2", base_url=fake_llm.url, request_timeout=30, context_window=8192)
    chat = llm.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="hi")])
    completion = llm.complete("hello")

    chatted, completed = spans.finished
    assert [s.attributes[sc.PROVIDER_NAME] for s in (chatted, completed)] == ["ollama", "ollama"]
    assert content(chatted, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(chatted, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": chat.message.content}]
    assert content(completed, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": completion.text}]
    assert completed.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]


class AgentSpans(agents.TracingProcessor):
    """The OpenAI Agents SDK's own trace spans (its tracing is its own, not OpenTelemetry)."""

    def __init__(self) -> None:
        self.ended: list[Any] = []

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        self.ended.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@pytest.fixture
def agent_spans() -> Iterator[AgentSpans]:
    """The Agents SDK's spans go to this recorder (its default exporter would post them to OpenAI)."""
    recorder = AgentSpans()
    agents.set_trace_processors([recorder])
    yield recorder
    agents.set_trace_processors([])


def run_weather_agent(fake: FakeLLM) -> Any:
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test")
    model = agents.OpenAIResponsesModel(GPT, client)
    tools = [agents.function_tool(get_weather)]
    return agents.Runner.run_sync(
        agents.Agent(name="assistant", instructions="Be brief.", model=model, tools=tools), WEATHER
    )


def test_openai_agents_model_calls_are_traced_once_each_under_the_agent_span(
    fake_llm: FakeLLM, spans: Any, agent_spans: AgentSpans
) -> None:
    result = run_weather_agent(fake_llm)

    finished = spans.finished
    agent = next(s for s in finished if s.name == "invoke_agent assistant")
    tool = next(s for s in finished if s.name == "execute_tool get_weather")
    asked, answered = (s for s in finished if s.name == f"chat {GPT}")  # one span per model request
    assert len(finished) == 4
    assert {s.parent.span_id for s in (asked, answered, tool) if s.parent} == {agent.context.span_id}
    assert agent.attributes[sc.AGENT_NAME] == "assistant" and tool.attributes[sc.TOOL_NAME] == "get_weather"
    assert asked.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert answered.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    call = content(asked, sc.OUTPUT_MESSAGES)[0]["parts"][-1]
    assert (call["type"], call["name"]) == ("tool_call", "get_weather")
    parts = [p for m in content(answered, sc.INPUT_MESSAGES) for p in m["parts"]]
    assert next(p for p in parts if p["type"] == "tool_call_response")["response"] == "18C in sample city"
    assert content(answered, sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == result.final_output
    # The SDK's own trace saw the same two requests; it is not OpenTelemetry, so llm_calls counts ours only.
    kinds = [type(s.span_data).__name__ for s in agent_spans.ended]
    assert kinds.count("ResponseSpanData") == 2 and "AgentSpanData" in kinds and "FunctionSpanData" in kinds


def test_openai_agents_spans_are_mirrored_with_the_sdks_tracing_off(fake_llm: FakeLLM, spans: Any) -> None:
    agents.set_tracing_disabled(True)
    try:
        run_weather_agent(fake_llm)
    finally:
        agents.set_tracing_disabled(False)

    finished = spans.finished
    agent = next(s for s in finished if s.name == "invoke_agent assistant")
    assert sorted(s.name for s in finished if s.parent and s.parent.span_id == agent.context.span_id) == [
        f"chat {GPT}",
        f"chat {GPT}",
        "execute_tool get_weather",
    ]


def pydantic_agent(fake: FakeLLM, provider: TracerProvider | None, **kwargs: Any) -> Agent[None, str]:
    model = OpenAIChatModel(GPT, provider=OpenAIProvider(base_url=fake.openai_base_url, api_key="test"))
    agent: Agent[None, str] = Agent(model, name="weather", **kwargs)
    if provider is not None:
        agent.instrument = InstrumentationSettings(tracer_provider=provider)
    return agent


def test_pydantic_ai_instrumented_calls_are_counted_once_in_llm_calls(fake_llm: FakeLLM, store: ChdbClient) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ClickHouseSpanExporter(client=store)))
    llmtrace.instrument(tracer_provider=provider)
    try:
        agent = pydantic_agent(fake_llm, provider, tools=[get_weather])
        agent.run_sync(WEATHER)
    finally:
        llmtrace.uninstrument()

    spans = store.query("SELECT ScopeName, SpanName FROM otel_traces ORDER BY Timestamp").result_rows
    calls = store.query("SELECT SpanName, InputTokens, OutputTokens FROM llm_calls").result_rows
    assert ("llmtrace", f"chat {GPT}") not in spans  # the SDK call inside pydantic-ai's chat span added none
    assert [name for _, name in spans].count(f"chat {GPT}") == 2
    assert {"invoke_agent weather", "execute_tool get_weather"} <= {name for _, name in spans}
    assert sorted(name for name, _, _ in calls) == [f"chat {GPT}", f"chat {GPT}"]  # two requests, two rows
    assert all(inputs > 0 and outputs > 0 for _, inputs, outputs in calls)


def test_a_call_made_inside_a_pydantic_ai_tool_nests_under_its_execute_tool_span(fake_llm: FakeLLM, spans: Any) -> None:
    def ask_the_expert(question: str) -> str:
        """Ask another model."""
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test")
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
        return str(reply.choices[0].message.content)

    pydantic_agent(fake_llm, spans.provider, tools=[ask_the_expert]).run_sync("Ask the expert about Paris.")

    finished = spans.finished
    ours = [s for s in finished if s.instrumentation_scope.name == "llmtrace"]
    tool = next(s for s in finished if s.name == "execute_tool ask_the_expert")
    assert [s.name for s in ours] == ["chat gpt-4o"]  # the agent's own two requests are pydantic-ai's spans
    assert ours[0].parent is not None and ours[0].parent.span_id == tool.context.span_id


def model_span_around_openai_call(fake: FakeLLM, provider: TracerProvider) -> None:
    """What a framework's instrumentation does: its own GenAI ``chat`` span around the SDK call."""
    tracer = provider.get_tracer("some.framework")
    with tracer.start_as_current_span(f"chat {GPT}", attributes={sc.OPERATION_NAME: "chat"}):
        openai.OpenAI(base_url=fake.openai_base_url, api_key="test").chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}]
        )


def test_a_framework_model_span_in_llmtraces_pipeline_stands_for_the_call(fake_llm: FakeLLM, spans: Any) -> None:
    model_span_around_openai_call(fake_llm, spans.provider)

    assert [s.instrumentation_scope.name for s in spans.finished] == ["some.framework"]


def test_a_framework_model_span_exported_elsewhere_does_not_hide_the_call(fake_llm: FakeLLM, spans: Any) -> None:
    elsewhere = InMemorySpanExporter()
    other = TracerProvider()
    other.add_span_processor(SimpleSpanProcessor(elsewhere))
    model_span_around_openai_call(fake_llm, other)

    assert [s.instrumentation_scope.name for s in spans.finished] == ["llmtrace"]
    assert [s.instrumentation_scope.name for s in elsewhere.get_finished_spans()] == ["some.framework"]
