"""The worker's job for a 50-chunk stream, piece by piece, run back to back on warm caches (µs, medians).

Queues 1,500 streams' jobs with the worker held, then runs each job's steps one by one with timers:
what ``Invocation._job_end_stream`` does, in its order. Compare with ``overhead_ab.py``'s whole-process
minus app's-thread figure, where each job runs alone right after its stream (cold caches).

    python benchmarks/worker_pieces.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from overhead import NullExporter
from sdk_calls import SDKS

import llmtrace
from llmtrace import semconv as sc
from llmtrace.instrumentation import _core
from llmtrace.instrumentation._prompt_hash import add_prompt_hashes
from llmtrace.instrumentation._worker import worker


def _request_attributes(settings: Any, request: Any, extra: Any) -> dict[str, Any]:
    """The call's own request attributes, as ``Invocation._request_attributes`` writes them inline."""
    attributes = dict(request.attributes)
    if request.stream:
        attributes[sc.REQUEST_STREAM] = True
    if settings.environment:
        attributes[sc.ENVIRONMENT] = settings.environment
    if settings.release:
        attributes[sc.RELEASE] = settings.release
    if extra:
        attributes.update(extra)
    return attributes


STEPS = ("describe", "request attributes", "hashes", "content", "result", "response attributes", "finish")


def main() -> int:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    llmtrace.instrument(tracer_provider=provider)
    ns = time.perf_counter_ns
    for sdk in SDKS:
        client, _ = sdk.clients()
        for _ in range(50):
            for _ in sdk.call(client, True):
                pass
        worker.drain()
        with worker._lock:  # held: the worker thread cannot run the jobs
            for _ in range(1500):
                for _ in sdk.call(client, True):
                    pass
            jobs = list(worker._jobs)
            worker._jobs.clear()
        times: dict[str, list[float]] = {step: [] for step in STEPS}
        for job, (how, _exc), end_ns in jobs:
            inv = job.__self__  # type: ignore[attr-defined]
            settings, request = inv.runtime.settings, inv.request
            marks = [ns()]
            inv.endpoint.describe_request(request, inv._args, inv._kwargs)
            marks.append(ns())
            attributes = _request_attributes(settings, request, inv._extra)
            marks.append(ns())
            add_prompt_hashes(attributes, request, inv._variables)
            marks.append(ns())
            _core._add_request_content(attributes, settings, request)
            marks.append(ns())
            attributes[sc.STREAM_END] = how
            response = inv._acc.result(request)
            marks.append(ns())
            _core._add_response_attributes(attributes, settings, request, response)
            marks.append(ns())
            inv._direct.finish(attributes, None, end_ns)  # the direct path (the SDK path: span.set_attributes/end)
            marks.append(ns())
            for step, start, end in zip(STEPS, marks, marks[1:], strict=False):
                times[step].append((end - start) / 1000)
        cells = "  ".join(f"{step} {statistics.median(values):.1f}" for step, values in times.items())
        total = sum(statistics.median(values) for values in times.values())
        print(f"{sdk.name}: {cells}  (sum {total:.1f} µs)", flush=True)
    llmtrace.uninstrument()
    return 0


if __name__ == "__main__":
    sys.exit(main())
