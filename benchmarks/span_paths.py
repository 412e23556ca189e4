"""The call's span alone, SDK path vs direct path, interleaved with real 50-chunk streams (no llmtrace around it).

Per stream, paired with a bare stream of the same round: the SDK's ``start_span`` / ``set_attributes``
/ ``end`` against ``llmtrace.instrumentation._direct``'s ``start`` / ``finish`` (same name, attributes,
provider and processor), each with and without making the span current during the call. Prints µs over
bare on the app's thread (start to the stream's end) and for the whole process (finish included).

    python benchmarks/span_paths.py [--calls 6000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from overhead import NullExporter, reference_attributes
from sdk_calls import SDKS

from llmtrace.instrumentation._direct import DirectSpans

Sample = tuple[float, float]  # app thread, whole process (s)


def _configs(
    tracer: Any, direct: DirectSpans, sdk: Any, client: Any, start: dict[str, Any], end: dict[str, Any]
) -> dict[str, Callable[[], Sample]]:
    name = "chat x"

    def bare() -> tuple[float, float]:
        t0, p0 = time.thread_time(), time.process_time()
        for _ in sdk.call(client, True):
            pass
        return time.thread_time() - t0, time.process_time() - p0

    def with_span(kind: str, current: bool) -> tuple[float, float]:
        t0, p0 = time.thread_time(), time.process_time()
        if kind == "sdk":
            span = tracer.start_span(name, None, kind=SpanKind.CLIENT, attributes=start, start_time=time.time_ns())
        else:
            span = direct.start(name, None, start, time.time_ns())
        token = otel_context.attach(trace.set_span_in_context(span)) if current else None
        result = sdk.call(client, True)
        if token is not None:
            otel_context.detach(token)
        for _ in result:
            pass
        t1 = time.thread_time()
        if kind == "sdk":
            span.set_attributes(dict(end))
            span.end(end_time=time.time_ns())
        else:
            span.finish(dict(end), None, time.time_ns())
        return t1 - t0, time.process_time() - p0

    return {
        "bare": bare,
        "sdk": lambda: with_span("sdk", False),
        "sdk+current": lambda: with_span("sdk", True),
        "direct": lambda: with_span("direct", False),
        "direct+current": lambda: with_span("direct", True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6000, help="streams per SDK, all configurations together")
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("span_paths")
    direct = DirectSpans.for_tracer(tracer)
    assert direct is not None and direct.usable()
    for sdk in SDKS:
        start, end = reference_attributes(provider, True, sdk)
        client, _ = sdk.clients()
        configs = _configs(tracer, direct, sdk, client, start, end)
        for run in configs.values():
            for _ in range(20):
                run()
        names = list(configs)
        order = [c for i in range(len(names)) for c in names[i:] + names[:i]]
        order += order[::-1]
        samples: dict[str, list[tuple[float, float]]] = {c: [] for c in names}
        for _ in range(max(1, args.calls // len(order))):
            for config in order:
                samples[config].append(configs[config]())
        for which, kind in enumerate(("app thread", "whole process")):
            over = {
                c: statistics.median(
                    (s[which] - b[which]) * 1e6 for s, b in zip(samples[c], samples["bare"], strict=True)
                )
                for c in names[1:]
            }
            cells = "  ".join(f"{c} +{value:.1f}" for c, value in over.items())
            print(f"{sdk.name} {kind}, n={len(samples['bare'])}, µs over bare: {cells}", flush=True)
    print(f"load: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
