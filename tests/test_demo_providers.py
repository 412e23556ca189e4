"""Every model of the demo's table goes through its own provider's real SDK (the player's SENDERS table)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from llmtrace import semconv as sc
from llmtrace.demo import command, scenarios
from llmtrace.demo.fake_llm import FakeLLM
from llmtrace.demo.scenarios import Call, Request


def request_of(*calls: Call) -> Request:
    return Request(0, "search-api", "production", "v1.5.0", "query-rewrite", "2", "user-001", "sess", list(calls), "hi")


@pytest.mark.parametrize("model", sorted(scenarios.MODELS))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_each_demo_model_is_sent_through_its_providers_sdk_and_priced(
    fake_llm: FakeLLM, spans: Any, model: str, stream: bool
) -> None:
    player = command._Player(fake_llm, spans.provider.get_tracer(command.SCOPE))
    player.play(request_of(Call(model, stream, output_words=12, duration_ms=50, ttft_ms=10)))

    [call] = [s for s in spans.finished if s.attributes and sc.OPERATION_NAME in s.attributes]
    provider = scenarios.MODELS[model].provider
    assert call.attributes[sc.PROVIDER_NAME] == provider
    assert call.attributes[sc.REQUEST_MODEL] == model
    assert bool(call.attributes.get(sc.REQUEST_STREAM)) is stream  # absent on whole replies
    assert call.attributes[sc.COST_STATUS] == ("unpriced" if scenarios.MODELS[model].price_in is None else "priced")


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-pro"])
def test_a_failed_gemini_call_is_recorded_and_the_request_goes_on(
    fake_llm: FakeLLM, spans: Any, model: str, status: int
) -> None:
    player = command._Player(fake_llm, spans.provider.get_tracer(command.SCOPE))
    failed = Call(model, False, output_words=0, duration_ms=50, ttft_ms=0, status=status)
    player.play(request_of(failed, Call(model, False, output_words=12, duration_ms=50, ttft_ms=10)))

    calls = [s for s in spans.finished if s.attributes and sc.OPERATION_NAME in s.attributes]
    kind = "ClientError" if status < 500 else "ServerError"
    assert [s.attributes.get(sc.ERROR_TYPE) for s in calls] == [f"google.genai.errors.{kind}", None]


def test_the_bulk_history_names_each_providers_own_sdk_exception(store: Any) -> None:
    sql, params = scenarios.history_sql(4000, 7, time.time_ns())
    store.command(sql, parameters=params)

    stored = store.query("SELECT DISTINCT Provider, ErrorType FROM llm_calls WHERE IsError").result_rows
    assert len({provider for provider, _ in stored}) >= 3  # errors are 2% of calls: the rarest providers may have none
    assert all(error in scenarios.ERROR_TYPES[provider] for provider, error in stored)
    assert {provider for (provider,) in store.query("SELECT DISTINCT Provider FROM llm_calls").result_rows} == {
        m.provider for m in scenarios.MODELS.values()
    }  # the dashboard's five providers
