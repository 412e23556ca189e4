"""evaluate(): an evaluator (here an LLM judge through the real openai SDK) over calls stored in `llmtrace server`."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from llmtrace.analytics.filters import Filter
from llmtrace.evaluation import StoredCall, evaluate
from tests.server_process import ServerProcess

APP = """
import sys
import llmtrace
llmtrace.instrument(service_name="eval-app", endpoint=sys.argv[1])
import openai
from llmtrace.demo.fake_llm import FakeLLM

with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    for i in range(4):
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}])
assert llmtrace.flush(10)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("evaluation") / "data").wait_ready()
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(APP), f"{process.otlp_url}/v1/traces"],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    yield process
    process.stop()


def window() -> Filter:
    return Filter.last(timedelta(hours=1), services=("eval-app",))


def scores(server: ServerProcess, source: str) -> list[tuple[Any, ...]]:
    return (
        server.client()
        .query(
            "SELECT s.SpanId, s.Name, s.Value, s.StringValue FROM llm_scores AS s "
            "WHERE s.Source = {source:String} ORDER BY s.SpanId, s.Name",
            parameters={"source": source},
        )
        .result_rows
    )


def test_an_llm_judge_scores_each_sampled_call_once(server: ServerProcess, fake_llm: Any) -> None:
    judge_client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    seen: list[StoredCall] = []

    def judge(call: StoredCall) -> dict[str, Any]:
        seen.append(call)
        verdict = judge_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Grade: {call.output_text()}"}]
        )
        return {"judged": bool(verdict.choices[0].message.content), "length": len(call.output_text()), "tone": "ok"}

    progress = io.StringIO()
    report = evaluate(server.client(), judge, window(), sample=3, concurrency=2, progress=progress)
    assert (report.evaluated, report.skipped, report.failed, report.scores) == (3, 0, 0, 9)
    assert "3/3 calls" in progress.getvalue()
    assert all(
        call.input_messages and call.output_messages and call.model.startswith("gpt-4o-mini") for call in seen
    ), seen
    rows = scores(server, "eval:judge")
    assert len(rows) == 9 and {r[0] for r in rows} == {c.span_id for c in seen}
    assert {(r[1], r[2], r[3]) for r in rows if r[1] != "length"} == {("judged", 1.0, ""), ("tone", 0.0, "ok")}
    from llmtrace.analytics.scores import score_means

    means = score_means(server.client(), window(), by="service")
    assert means[means["score"] == "judged"][["service", "scores", "mean"]].values.tolist() == [["eval-app", 3, 1.0]]
    again = evaluate(server.client(), judge, window(), sample=3, concurrency=2, progress=None)
    assert (again.evaluated, again.skipped) == (0, 3)  # resumable: the same sample, already scored


def test_a_failing_call_is_counted_and_a_rerun_finishes_only_it(server: ServerProcess) -> None:
    failed_once: set[str] = set()

    def flaky(call: StoredCall) -> float:
        if not failed_once:
            failed_once.add(call.span_id)
            raise TimeoutError("judge timed out")
        return 0.5

    first = evaluate(server.client(), flaky, window(), name="flaky", sample=4, concurrency=1, progress=None)
    assert (first.evaluated, first.failed) == (3, 1)
    assert first.errors == [f"{next(iter(failed_once))}: TimeoutError: judge timed out"]
    second = evaluate(server.client(), flaky, window(), name="flaky", sample=4, concurrency=1, progress=None)
    assert (second.evaluated, second.skipped, second.failed) == (1, 3, 0)
    assert [r[1:] for r in scores(server, "eval:flaky")] == [("flaky", 0.5, "")] * 4


def test_a_bad_value_fails_that_call_with_a_message_naming_the_fix(server: ServerProcess) -> None:
    report = evaluate(server.client(), lambda call: [1], window(), name="bad", sample=1, progress=None)
    assert report.failed == 1 and "return a finite number, a bool or a str" in report.errors[0]


def output_length(call: StoredCall) -> int:
    """A module-level evaluator for the command-line test."""
    return len(call.output_text())


def test_llmtrace_evaluate_runs_an_evaluator_named_module_colon_function(server: ServerProcess) -> None:
    options = ["--evaluator", "tests.test_evaluation:output_length", "--url", server.http_url,
               "--service", "eval-app", "--last", "1h", "--sample", "2"]  # fmt: skip
    root = Path(__file__).parent.parent
    command = [sys.executable, "-m", "llmtrace.cli", "evaluate", *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 calls evaluated, 0 already scored, 0 failed, 2 scores written"
    assert [r[1] for r in scores(server, "eval:output_length")] == ["output_length"] * 2
    module = [sys.executable, "-m", "llmtrace.evaluation", *options]  # the same, resumed: nothing new to score
    again = subprocess.run(module, capture_output=True, text=True, timeout=120, cwd=root)
    assert again.stdout.strip() == "0 calls evaluated, 2 already scored, 0 failed, 0 scores written", again.stderr


def test_the_command_names_the_expected_evaluator_form() -> None:
    from llmtrace.evaluation import load_evaluator

    with pytest.raises(ValueError, match="expected module:function"):
        load_evaluator("tests.test_evaluation")
