"""The worker's job alone, right after its stream (cold caches, as it runs), two versions in ONE process.

``overhead_ab.py``'s whole-process column holds the stream itself too, whose CPU wanders by several µs
between processes and slots: a change of 1-3 µs to the worker's job drowns in it. Here each stream is
made with version A or B instrumenting (alternating A, B / B, A), then that version's queued job is run
on this thread and only the job is timed (``time.thread_time_ns``, so the figures include one clock
read). Prints the median job per SDK for each version and B-A. Run both orders (swap --a/--b).

    python benchmarks/worker_ab.py --a /work/main --b . [--calls 1000]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from overhead import NullExporter
from overhead_ab import copy_as
from peers import Switchboard
from sdk_calls import SDKS

_WARM_UP = 50  # first calls per version left out of the medians


def measure(packages: dict[str, object], calls: int) -> None:
    workers = {name: importlib.import_module(f"{pkg.__name__}.instrumentation._worker").worker
               for name, pkg in packages.items()}  # fmt: skip
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    for sdk in SDKS:
        client, _ = sdk.clients()
        sdk.resource(client)
        board = Switchboard()
        for name, pkg in packages.items():
            board.capture(name, lambda pkg=pkg: pkg.instrument(tracer_provider=provider))  # type: ignore[attr-defined]
        board.install()
        jobs: dict[str, list[float]] = {name: [] for name in packages}
        try:
            for i in range(calls):
                for name in ("A", "B") if i % 2 else ("B", "A"):
                    board.use(name)
                    for _ in sdk.call(client, True):
                        pass
                    start = time.thread_time_ns()
                    workers[name].drain()  # this stream's job, on the caches its stream left
                    jobs[name].append((time.thread_time_ns() - start) / 1000)
        finally:
            board.uninstall()
            for pkg in packages.values():
                pkg.uninstrument()  # type: ignore[attr-defined]
        a, b = (statistics.median(jobs[name][_WARM_UP:]) for name in ("A", "B"))
        print(f"{sdk.name} worker job after its stream: A {a:.2f} µs  B {b:.2f} µs  B-A {b - a:+.2f} µs", flush=True)
    provider.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="checkout holding llmtrace/ (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="checkout holding llmtrace/ (the change)")
    parser.add_argument("--calls", type=int, default=1000, help="streams per version and SDK")
    args = parser.parse_args()
    logging.getLogger("llmtrace").setLevel(logging.ERROR)  # each version warns the other wrapped first
    with tempfile.TemporaryDirectory(prefix="llmtrace-worker-ab-") as tmp:
        copy_as(args.a, "llmtrace_a", Path(tmp))
        copy_as(args.b, "llmtrace_b", Path(tmp))
        sys.path.insert(0, tmp)
        measure({"A": importlib.import_module("llmtrace_a"), "B": importlib.import_module("llmtrace_b")}, args.calls)
    print(f"load: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
