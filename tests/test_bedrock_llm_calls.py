"""Bedrock calls through the real boto3 client, the fake LLM and the direct ClickHouse exporter into chDB: what
the dashboard reads (``llm_calls``). Apart from the adapter's tests, which also run without chDB (the oldest
boto3 and the aiobotocore CI venvs)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

import llmtrace
from llmtrace.demo.fake_llm import FakeLLM
from tests.test_bedrock_instrumentation import HI, MODEL, NOVA, WEATHER, client


def test_bedrock_calls_land_in_llm_calls_with_tokens_cost_and_tool_calls(
    fake_llm: FakeLLM, store: Any, instrument_into: Any
) -> None:
    instrument_into(store)
    bedrock = client(fake_llm)
    called = bedrock.converse(modelId=NOVA, messages=HI, toolConfig=WEATHER)
    events = list(bedrock.converse_stream(modelId=MODEL, messages=HI)["stream"])
    with pytest.raises(ClientError):
        client(fake_llm, status="429").converse(modelId=NOVA, messages=HI)
    llmtrace.flush()

    sql = """SELECT Provider, Operation, RequestModel, InputTokens, OutputTokens, CostStatus, CostUsd > 0,
                    IsStream, HasToolCalls, FinishReason, IsError, ErrorType
             FROM llm_calls ORDER BY Timestamp"""
    streamed = events[-1]["metadata"]["usage"]
    assert [tuple(row) for row in store.query(sql).result_rows] == [
        ("aws.bedrock", "chat", NOVA, called["usage"]["inputTokens"], called["usage"]["outputTokens"], "priced", True,
         0, 1, "tool_use", 0, ""),
        ("aws.bedrock", "chat", MODEL, streamed["inputTokens"], streamed["outputTokens"], "priced", True,
         1, 0, "end_turn", 0, ""),
        ("aws.bedrock", "chat", NOVA, 0, 0, "no_usage", None, 0, 0, "", 1, "botocore.errorfactory.ThrottlingException"),
    ]  # fmt: skip
