"""What llmtrace's Bedrock patch costs every *other* AWS call.

llmtrace wraps botocore's ``BaseClient._make_api_call``, which every AWS operation goes through; for
anything but the four Bedrock runtime operations the wrapper looks the operation name up in a dict and
calls through. This measures a real boto3 call path (an STS ``get_caller_identity`` answered by
botocore's ``Stubber``: parameter validation, events, request serialisation and response handling, no
network) with and without ``llmtrace.instrument()``, in alternating blocks, and the wrapper's own
dispatch against a bare function call. Time is the calling thread's CPU time; overheads are medians of
per-round differences, ± half their interquartile range.

    python benchmarks/bedrock_passthrough.py [--rounds 21] [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import boto3
from botocore.stub import Stubber
from opentelemetry.sdk.trace import TracerProvider

import llmtrace
from llmtrace.instrumentation import bedrock

IDENTITY = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/bench", "UserId": "AIDBENCH"}


def _block(sts: Any, stub: Stubber, calls: int) -> float:
    for _ in range(calls):
        stub.add_response("get_caller_identity", IDENTITY)
    start = time.thread_time()
    for _ in range(calls):
        sts.get_caller_identity()
    return (time.thread_time() - start) / calls


def _spread(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    provider = TracerProvider()
    with Stubber(sts) as stub:
        _block(sts, stub, args.calls)  # warm up
        bare, traced = [], []
        for round_ in range(args.rounds):
            if round_ % 2:  # alternate which goes first: no position bias
                bare.append(_block(sts, stub, args.calls))
            llmtrace.instrument(tracer_provider=provider, providers=["bedrock"])
            traced.append(_block(sts, stub, args.calls))
            llmtrace.uninstrument()
            if not round_ % 2:
                bare.append(_block(sts, stub, args.calls))
    differences = [t - b for t, b in zip(traced, bare, strict=True)]
    base = statistics.median(bare)
    extra = statistics.median(differences)
    print(f"sts.get_caller_identity (stubbed): {base * 1e6:8.1f} µs per call without llmtrace")
    print(f"  with llmtrace's Bedrock patch:   {extra * 1e6:+8.2f} ± {_spread(differences) * 1e6:.2f} µs "
          f"({extra / base:+.2%} of the call)")  # fmt: skip

    class _Client:
        class _service_model:  # the attribute botocore's clients have
            service_name = "sts"

    client, arguments, n = _Client(), ("GetCallerIdentity", {}), 200_000

    def call(*args: Any, **kwargs: Any) -> None:
        return None

    start = time.thread_time()
    for _ in range(n):
        call(*arguments)
    plain = (time.thread_time() - start) / n
    start = time.thread_time()
    for _ in range(n):
        bedrock._make_api_call(call, client, arguments, {})
    dispatched = (time.thread_time() - start) / n
    print(f"wrapper dispatch alone: {(dispatched - plain) * 1e9:.0f} ns per non-Bedrock call")


if __name__ == "__main__":
    main()
