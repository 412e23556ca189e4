"""Nested grouping reaches the store as a tree: ``llmtrace.trace`` > ``@observe`` > ``@tool`` and
the LLM calls, exported over OTLP by a real app process into a real ``llmtrace server``, come out
of ``otel_traces`` with the right ParentSpanId for every span, in one trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.server_process import ServerProcess

APP = """
import sys
import llmtrace
llmtrace.instrument(service_name="tree-app", endpoint=sys.argv[1])
import openai
from llmtrace.demo.fake_llm import FakeLLM

@llmtrace.tool
def lookup_order(order_id: str) -> str:
    return "shipped"

@llmtrace.observe
def answer(oai, question: str) -> str:
    status = lookup_order("42")
    oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question + status}])
    return status

with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    with llmtrace.trace("support-turn", user_id="u1", session_id="s1"):
        answer(oai, "where is my order?")
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "thanks"}])
print("flushed", llmtrace.flush(10))
"""


def test_a_nested_trace_is_one_tree_in_otel_traces(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").wait_ready()
    try:
        argv = [sys.executable, "-c", textwrap.dedent(APP), f"{server.otlp_url}/v1/traces"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
        assert result.returncode == 0 and result.stdout.strip() == "flushed True", result.stderr
        rows = (
            server.client()
            .query("SELECT SpanId, ParentSpanId, SpanName, TraceId FROM otel_traces WHERE ServiceName = 'tree-app'")
            .result_rows
        )
        names = {span: name for span, _, name, _ in rows}
        tree = sorted((names.get(parent, ""), name) for _, parent, name, _ in rows)
        assert tree == [
            ("", "support-turn"),
            ("answer", "chat gpt-4o-mini"),
            ("answer", "execute_tool lookup_order"),
            ("support-turn", "answer"),
            ("support-turn", "chat gpt-4o-mini"),
        ]
        assert len({trace for *_, trace in rows}) == 1
        calls = (
            server.client()
            .query(
                "SELECT count(), uniqExact(UserId, SessionId), any(UserId) FROM llm_calls "
                "WHERE ServiceName = 'tree-app'"
            )
            .result_rows
        )
        assert calls == [(2, 1, "u1")]  # the tool and function spans are not LLM calls; both calls tagged
    finally:
        assert server.stop() == 0
