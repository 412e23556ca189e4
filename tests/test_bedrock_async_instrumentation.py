"""The Bedrock adapter on aiobotocore (what aioboto3 uses): the same four operations, awaited, over real HTTP
against the fake LLM's Bedrock endpoints.

aiobotocore pins botocore to a narrow range that the dev environment's boto3 does not share, so these tests
run where aiobotocore is installed: CI installs it in a venv of its own (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("aiobotocore", reason="aiobotocore runs in its own CI venv (it pins botocore apart from boto3)")

from aiobotocore.config import AioConfig
from aiobotocore.response import StreamingBody
from aiobotocore.session import get_session
from aiobotocore.stub import AioStubber
from botocore.exceptions import ClientError, EventStreamError
from opentelemetry.trace import StatusCode

from llmtrace import semconv as sc
from llmtrace.demo.fake_llm import FakeLLM
from tests.provider_helpers import content

NOVA = "amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
HI = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
PROMPT = json.dumps({"prompt": "What is the capital of France?", "max_gen_len": 100})


@asynccontextmanager
async def client(fake: FakeLLM, **controls: str) -> AsyncIterator[Any]:
    """An aiobotocore bedrock-runtime client on the fake, no retries; ``controls`` become ``x-fake-*`` headers."""
    config = AioConfig(retries={"total_max_attempts": 1})
    async with get_session().create_client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=fake.url, config=config,
        aws_access_key_id="AKIDFAKEFAKEFAKE", aws_secret_access_key="fake-secret",
    ) as bedrock:  # fmt: skip
        headers = {f"x-fake-{name.replace('_', '-')}": value for name, value in controls.items()}

        def add_headers(request: Any, **_: Any) -> None:
            for name, value in headers.items():
                request.headers[name] = value

        bedrock.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
        yield bedrock


async def test_converse_records_the_same_attributes_as_the_sync_client(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        response = await bedrock.converse(modelId=NOVA, messages=HI, inferenceConfig={"maxTokens": 50})

    span = spans.one()
    attrs = span.attributes
    assert span.name == f"chat {NOVA}" and attrs[sc.PROVIDER_NAME] == "aws.bedrock"
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    assert attrs[sc.USAGE_INPUT_TOKENS] == response["usage"]["inputTokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == response["usage"]["outputTokens"]
    assert attrs[sc.COST_STATUS] == "priced"
    text = response["output"]["message"]["content"][0]["text"]
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]
    assert fake_llm.requests[-1]["headers"]["authorization"].startswith("AWS4-HMAC-SHA256")


async def test_converse_stream_consumed_records_ttft_text_and_usage(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        response = await bedrock.converse_stream(modelId=NOVA, messages=HI)
        events = [event async for event in response["stream"]]

    attrs = spans.one().attributes
    usage = events[-1]["metadata"]["usage"]
    assert attrs[sc.STREAM_END] == "completed" and attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]


async def test_a_stream_closed_early_ends_its_span_once(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        stream = (await bedrock.converse_stream(modelId=NOVA, messages=HI))["stream"]
        async for _event in stream:
            break
        stream.close()  # synchronous, as on aiobotocore's own event stream

    assert spans.one().attributes[sc.STREAM_END] == "closed"


async def test_a_stream_dropped_unread_ends_its_span_as_abandoned(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        await bedrock.converse_stream(modelId=NOVA, messages=HI)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()

    assert spans.one().attributes[sc.STREAM_END] == "abandoned"


async def test_invoke_model_body_reads_the_same_after_llmtrace_read_it(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        response = await bedrock.invoke_model(modelId=LLAMA, body=PROMPT)
        body = response["body"]
        assert isinstance(body, StreamingBody)
        lines = [line async for line in body.iter_lines()]

    generation = json.loads(b"".join(lines))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    attrs = spans.one().attributes
    assert attrs[sc.OPERATION_NAME] == "text_completion"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == int(headers["x-amzn-bedrock-output-token-count"])
    assert content(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == generation["generation"]


async def test_invoke_model_with_response_stream_records_the_chunks(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm) as bedrock:
        response = await bedrock.invoke_model_with_response_stream(modelId=LLAMA, body=PROMPT)
        chunks = [json.loads(event["chunk"]["bytes"]) async for event in response["body"]]

    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    attrs = spans.one().attributes
    assert attrs[sc.STREAM_END] == "completed"
    assert attrs[sc.USAGE_INPUT_TOKENS] == metrics["inputTokenCount"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == metrics["outputTokenCount"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)


@pytest.mark.parametrize(("status", "code"), [("429", "ThrottlingException"), ("500", "InternalServerException"),
                                              ("400", "ValidationException")])  # fmt: skip
async def test_http_errors_reach_the_app_unchanged_and_mark_the_span(
    fake_llm: FakeLLM, spans: Any, status: str, code: str
) -> None:
    async with client(fake_llm, status=status) as bedrock:
        with pytest.raises(ClientError) as caught:
            await bedrock.converse(modelId=NOVA, messages=HI)
        assert type(caught.value) is getattr(bedrock.exceptions, code)

    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"botocore.errorfactory.{code}"


async def test_an_error_mid_stream_marks_the_span(fake_llm: FakeLLM, spans: Any) -> None:
    async with client(fake_llm, stream_error_after="2") as bedrock:
        stream = (await bedrock.converse_stream(modelId=NOVA, messages=HI))["stream"]
        with pytest.raises(EventStreamError):
            async for _event in stream:
                pass

    span = spans.one()
    assert span.attributes[sc.STREAM_END] == "error" and span.status.status_code is StatusCode.ERROR


async def test_other_aws_operations_pass_through_without_a_span(spans: Any) -> None:
    async with get_session().create_client(
        "sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    ) as sts:
        with AioStubber(sts) as stub:
            stub.add_response(
                "get_caller_identity",
                {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/u", "UserId": "u"},
            )
            identity = await sts.get_caller_identity()

    assert identity["Account"] == "123456789012"
    assert spans.finished == []
