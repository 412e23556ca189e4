"""Two versions of llmtrace in ONE process, interleaved call by call with bare and floor+read: A/B of a change.

Run to run, the stream cells of ``overhead.py`` wander by tens of µs on this shared machine (heap
layout, load, the other helpers), more than most single changes are worth. Here both versions are
imported side by side (each package copied under its own name, its ``llmtrace`` imports rewritten),
both instrument the same SDK methods behind ``peers.Switchboard``, and every call of one is paired
with a bare call of the same round, as ``overhead.py``'s interleaved section does. What differs
between the two columns is the code alone. Prints, per SDK and scenario, each version's overhead
over bare in µs and its ratio to floor+read, for the app's thread and the whole process.

    python benchmarks/overhead_ab.py --a /work/main --b . [--calls 1600] [--stream-only] [--async]

``--a`` / ``--b``: checkouts (or git trees) holding ``llmtrace/``; ``--rev-a REV`` takes the package
from a git revision of ``--a`` instead of its working tree. ``--async``: the async clients instead (each call run
to its end by one event loop; bare calls alike).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from overhead import Floor, NullExporter, reference_attributes
from peers import Switchboard
from sdk_calls import SDKS

_IMPORTS = (
    (re.compile(r"^(\s*)from llmtrace(\.| )", re.M), r"\1from {name}\2"),
    (re.compile(r"^(\s*)import llmtrace(\.|$| )", re.M), r"\1import {name}\2"),
    (re.compile(r"\"llmtrace\.(instrumentation|store|analytics|server|demo)\."), r'"{name}.\1.'),
)


def copy_as(source: Path, name: str, into: Path, rev: str | None = None) -> None:
    """``source``'s llmtrace package as the package ``name`` in ``into`` (imports rewritten; attribute
    names such as ``llmtrace.cost.usd`` are strings the rewrite leaves alone)."""
    target = into / name
    if rev is None:
        shutil.copytree(source / "llmtrace", target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(
            ["git", "-C", str(source), "archive", rev, "llmtrace"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        (into / "llmtrace").rename(target)
    for path in target.rglob("*.py"):
        text = path.read_text()
        for pattern, replacement in _IMPORTS:
            text = pattern.sub(replacement.format(name=name), text)
        path.write_text(text)


def _paired(samples: dict[str, list[tuple[float, float]]], which: int) -> dict[str, float]:
    return {
        config: statistics.median((s[which] - b[which]) * 1e6 for s, b in zip(runs, samples["bare"], strict=True))
        for config, runs in samples.items()
    }


def measure(packages: dict[str, Any], calls: int, streams: tuple[bool, ...], asynchronous: bool = False) -> None:
    workers = [importlib.import_module(f"{pkg.__name__}.instrumentation._worker").worker for pkg in packages.values()]
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    configs = ("bare", "floor+read", *packages)
    for sdk in SDKS:
        floors = {
            stream: Floor(provider, *reference_attributes(provider, stream, sdk), read=True, sdk=sdk)
            for stream in streams
        }
        sync_client, async_client = sdk.clients()
        client = async_client if asynchronous else sync_client
        sdk.resource(client)
        board = Switchboard()
        for name, pkg in packages.items():
            board.capture(name, lambda pkg=pkg: pkg.instrument(tracer_provider=provider))
        board.install()
        try:
            for stream in streams:
                samples = _samples(
                    sdk, board, client, floors[stream], configs, stream, calls if stream else calls * 3, workers,
                    asynchronous,
                )  # fmt: skip
                for which, kind in enumerate(("app thread", "whole process")):
                    over = _paired(samples, which)
                    cells = "  ".join(
                        f"{name} +{over[name]:6.1f} µs ({over[name] / over['floor+read']:.2f}x)" for name in packages
                    )
                    a, b = packages
                    print(
                        f"{sdk.name} {'async ' if asynchronous else ''}{'stream 50 chunks' if stream else 'call'}, "
                        f"{kind}, n={len(samples['bare'])}: "
                        f"floor+read +{over['floor+read']:.1f} µs  {cells}  {b}-{a} {over[b] - over[a]:+.1f} µs",
                        flush=True,
                    )
        finally:
            board.uninstall()
            for pkg in packages.values():
                pkg.uninstrument()
    provider.shutdown()


def _samples(
    sdk: Any, board: Switchboard, client: Any, floor: Floor, configs: tuple[str, ...], stream: bool, calls: int,
    workers: list[Any], asynchronous: bool = False,
) -> dict[str, list[tuple[float, float]]]:  # fmt: skip
    loop = asyncio.new_event_loop()

    async def arun(config: str) -> None:
        if config == "floor+read":
            await floor.acall(lambda: sdk.call(client, stream), stream)
            return
        result = await sdk.call(client, stream)
        if stream:
            async for _ in result:
                pass

    def run(config: str) -> None:
        if asynchronous:
            board.use(config)
            loop.run_until_complete(arun(config))
            return
        board.use(config)
        if config == "floor+read":
            floor.call(lambda: sdk.call(client, stream), stream)
            return
        result = sdk.call(client, stream)
        if stream:
            for _ in result:
                pass

    def drain() -> None:
        for worker in workers:
            worker.drain()

    for config in configs * 3:  # warm-up
        run(config)
        drain()
    order = [c for i in range(len(configs)) for c in configs[i:] + configs[:i]]
    order += order[::-1]
    samples: dict[str, list[tuple[float, float]]] = {c: [] for c in configs}
    for _ in range(max(1, calls // len(order))):
        for config in order:
            start, start_all = time.thread_time(), time.process_time()
            run(config)
            app_thread = time.thread_time() - start
            drain()  # this call's span is finished here: its work counts in the whole process
            samples[config].append((app_thread, time.process_time() - start_all))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="checkout holding llmtrace/ (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="checkout holding llmtrace/ (the change)")
    parser.add_argument("--rev-a", help="take A's package from this git revision of --a")
    parser.add_argument("--calls", type=int, default=1600, help="stream calls per configuration (x3 for sync)")
    parser.add_argument("--stream-only", action="store_true")
    parser.add_argument("--async", dest="asynchronous", action="store_true", help="async clients")
    args = parser.parse_args()
    # Each version warns that the other already wrapped a method: expected here, and not what is measured.
    logging.getLogger("llmtrace").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="llmtrace-ab-") as tmp:
        copy_as(args.a, "llmtrace_a", Path(tmp), args.rev_a)
        copy_as(args.b, "llmtrace_b", Path(tmp))
        sys.path.insert(0, tmp)
        packages = {"A": importlib.import_module("llmtrace_a"), "B": importlib.import_module("llmtrace_b")}
        measure(packages, args.calls, (True,) if args.stream_only else (True, False), args.asynchronous)
    print(f"load: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
