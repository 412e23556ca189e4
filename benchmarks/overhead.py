"""Per-call overhead of llmtrace vs its peers, no instrumentation and a bare OpenTelemetry span (the floor).

Three sections. (1) **Interleaved**, the decisive one: the real openai and anthropic SDKs end to end
against an in-process transport serving their real wire shapes (a completion, a 50-chunk SSE
stream), with llmtrace, its peers and the floors all installed at once behind one dispatcher per SDK
method (``peers.Switchboard``) and interleaved call by call in one process: sync, async and a
50-chunk stream. Peers (``pip install -e .[bench]``, OpenLIT apart, see pyproject.toml): the official
OpenTelemetry OpenAI instrumentation (openai-v2), OpenInference, OpenLIT; each must record one span
per call with the prompt and the reply (checked and printed first), into the same tracer provider
and no-op exporter, content capture on everywhere. (2) OpenAI only, in blocks of calls per
configuration, which adds inline mode (``LLMTRACE_BACKGROUND=false``) at the price of tens of µs of
bias per block for streams. (3) The SDK's HTTP and parsing stubbed out to prebuilt results: only the
instrumentation's own cost varies, on warm caches, precise to a few µs (diagnosis).

Time is CPU time, so other processes on this shared machine do not count: of the app's (calling)
thread (``time.thread_time``), which is what the app waits for, and of the whole process once
llmtrace's worker thread has finished the call's span, which is what the app pays. Overheads are
medians of differences paired with bare (per call when interleaved, per round in blocks). The floor
is one span with the same attributes (values precomputed) and, for streams, a pass-through
generator; "floor+read" also reads each chunk's text (what any tool reporting output must do). "A/A"
is bare measured again as if it were a configuration: its size is the benchmark's resolution.
Targets (issue #13): app's thread <= 0.5x the fastest peer, whole process <= 1.0x, streams <= 1.5x
floor+read; the interleaved section prints a verdict per scenario.

    python benchmarks/overhead.py [--rounds 15] [--calls 200] [--only interleaved|blocks|stubbed]

Then the start-up cost of ``import llmtrace; llmtrace.instrument()`` (``benchmarks/startup.py``
measures start-up in detail: with the SDKs, modules imported, RSS after the first priced call).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from peers import Switchboard, available
from sdk_calls import MESSAGES, OPENAI, SDKS, Sdk

import llmtrace
from llmtrace.instrumentation._worker import worker


class NullExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def clients(stubbed: bool = False) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    """Real clients over an in-process transport; ``stubbed``: clients whose HTTP and parsing are replaced
    by prebuilt results (the SDK's request building remains), so only the instrumentation's own cost varies."""
    sync, async_ = OPENAI.clients()
    if stubbed:
        _stub(sync, async_)
    return sync, async_


class _Chunks:
    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = iter(chunks)

    def __iter__(self) -> Any:
        return self.chunks

    def __next__(self) -> Any:
        return next(self.chunks)

    def close(self) -> None:
        pass


class _AsyncChunks:
    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk

    async def close(self) -> None:
        pass


_PREBUILT: dict[bool, Any] = {}


def _prebuilt(stream: bool) -> Any:
    if stream not in _PREBUILT:
        real, _ = clients()
        result = real.chat.completions.create(**OPENAI.kwargs(stream))
        _PREBUILT[stream] = list(result) if stream else result
    return _PREBUILT[stream]


def _stub(sync: openai.OpenAI, async_: openai.AsyncOpenAI) -> None:
    """Resources bind ``client.post`` when first touched: replace it before then."""

    def post(*args: Any, stream: bool = False, **kwargs: Any) -> Any:
        return _Chunks(_prebuilt(True)) if stream else _prebuilt(False)

    async def apost(*args: Any, stream: bool = False, **kwargs: Any) -> Any:
        return _AsyncChunks(_prebuilt(True)) if stream else _prebuilt(False)

    sync.post = post  # type: ignore[method-assign,assignment]
    async_.post = apost  # type: ignore[method-assign,assignment]


def heap_shim(rng: random.Random) -> list[Any]:
    """Live objects of random number and size, held during one block.

    The SDK allocates and frees thousands of objects per call; where they land depends on what
    else is alive, and that alone moves a call's cost by tens of µs (a wrapper that does nothing
    measured anywhere from -40 to +60 µs). A fresh random heap layout per block turns that
    bias into noise the medians average out; the A/A column shows what remains.
    """
    shim: list[Any] = [bytearray(rng.randint(8, 600)) if i % 3 else {i: i} for i in range(rng.randint(0, 20_000))]
    del shim[::2]
    return shim


class Floor:
    """The least any OTel instrumentation must do: one span with the same attributes, ended after the stream.

    With ``read=True`` it also reads what any tool reporting output must read: each stream chunk's
    text (kept), or the reply's text and usage. Reported beside the target's floor so the cost of
    merely looking at chunks is visible.
    """

    def __init__(
        self,
        provider: TracerProvider,
        start_attrs: dict[str, Any],
        end_attrs: dict[str, Any],
        read: bool = False,
        sdk: Sdk = OPENAI,
    ) -> None:
        self.tracer = provider.get_tracer("floor")
        self.start_attrs, self.end_attrs, self.read, self.sdk = start_attrs, end_attrs, read, sdk
        self.name = f"chat {start_attrs.get('gen_ai.request.model')}"

    def _end(self, span: Any, result: Any) -> None:
        if self.read:
            _ = self.sdk.reply(result)
        span.set_attributes(self.end_attrs)
        span.end()

    def call(self, fn: Callable[[], Any], stream: bool) -> None:
        span = self.tracer.start_span(self.name, kind=SpanKind.CLIENT, attributes=self.start_attrs)
        result = fn()
        if not stream:
            self._end(span, result)
            return
        text_of = self.sdk.chunk_text

        def observed() -> Any:  # the least any stream instrumentation does: see each chunk and the end
            yield from result
            span.set_attributes(self.end_attrs)
            span.end()

        def read() -> Any:
            texts = []
            for chunk in result:
                if text := text_of(chunk):
                    texts.append(text)
                yield chunk
            span.set_attributes(self.end_attrs)
            span.end()

        for _ in read() if self.read else observed():
            pass

    async def acall(self, fn: Callable[[], Any], stream: bool) -> None:
        span = self.tracer.start_span(self.name, kind=SpanKind.CLIENT, attributes=self.start_attrs)
        result = await fn()
        if not stream:
            self._end(span, result)
            return
        text_of, read = self.sdk.chunk_text, self.read

        async def observed() -> Any:
            texts = []
            async for chunk in result:
                if read and (text := text_of(chunk)):
                    texts.append(text)
                yield chunk
            span.set_attributes(self.end_attrs)
            span.end()

        async for _ in observed():
            pass


def reference_attributes(
    provider: TracerProvider, stream: bool, sdk: Sdk = OPENAI
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Capture the attributes llmtrace sets, so the floor sets exactly as many."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    probe = TracerProvider()
    probe.add_span_processor(SimpleSpanProcessor(memory))
    llmtrace.instrument(tracer_provider=probe)
    sync, _ = sdk.clients()
    result = sdk.call(sync, stream)
    if stream:
        list(result)
    llmtrace.uninstrument()
    attrs = dict(memory.get_finished_spans()[0].attributes or {})
    start_keys = {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "server.address",
        "server.port",
    }
    return (
        {k: v for k, v in attrs.items() if k in start_keys},
        {k: v for k, v in attrs.items() if k not in start_keys},
    )


def _peer() -> Any:
    """The official OpenTelemetry OpenAI instrumentation, when installed: a peer measured in the same run."""
    try:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    except ImportError:
        return None
    return OpenAIInstrumentor()


PEER = _peer()


def switch_on(config: str, provider: TracerProvider) -> None:
    if config == "llmtrace":
        llmtrace.instrument(tracer_provider=provider)
    elif config == "inline":  # LLMTRACE_BACKGROUND=false: everything on the calling thread
        os.environ["LLMTRACE_BACKGROUND"] = "false"
        try:
            llmtrace.instrument(tracer_provider=provider)
        finally:
            del os.environ["LLMTRACE_BACKGROUND"]
    elif config == "otel-openai-v2":
        PEER.instrument(tracer_provider=provider)
    # "bare" and "bare-again" (the A/A control: its overhead over bare is the benchmark's resolution)


def switch_off(config: str) -> None:
    if config in ("llmtrace", "inline"):
        llmtrace.uninstrument()
    elif config == "otel-openai-v2":
        PEER.uninstrument()


def _half_iqr(values: list[float]) -> float:
    """Half the interquartile range of the per-round overheads: how much one round's figure wanders."""
    if len(values) < 4:
        return float("nan")
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / 2


HEADER = (
    f"{'scenario':<24}{'bare µs':>9}{'A/A +µs':>10}{'floor +µs':>12}{'llmtrace +µs':>14}{'ratio':>7}"
    f"{'inline +µs':>12}{'ratio':>7}{'peer +µs':>10}{'ratio':>7}{'floor+read':>12}{'ratio':>7}"
)


def _ratio(over: float, floor: float) -> float:
    return over / floor if floor > 0 else float("nan")


def _median_wander(values: list[float]) -> float:
    """Half the range of the medians of five interleaved fifths of per-call overheads: how far the
    median itself wanders (the per-call spread is large; the median's is not)."""
    medians = [statistics.median(values[k::5]) for k in range(5)]
    return (max(medians) - min(medians)) / 2


def _summarise(
    samples: dict[str, list[tuple[float, float]]], which: int, spread: Callable[[list[float]], float] = _half_iqr
) -> tuple[float, dict[str, float], dict[str, float]]:
    """Median bare µs, and each configuration's overhead paired within a round (each against that
    round's bare run, so slow drifts of this shared machine cancel out) with its spread."""
    bare = statistics.median(s[which] for s in samples["bare"]) * 1e6
    diffs = {
        config: [(s[which] - b[which]) * 1e6 for s, b in zip(runs, samples["bare"], strict=True)]
        for config, runs in samples.items()
    }
    return bare, {c: statistics.median(d) for c, d in diffs.items()}, {c: spread(d) for c, d in diffs.items()}


def _row(name: str, bare: float, over: dict[str, float], spread: dict[str, float]) -> str:
    floor, peer, inline = over["floor"], over.get("otel-openai-v2", float("nan")), over.get("inline", float("nan"))
    return (
        f"{name:<24}{bare:>9.1f}{over['bare-again']:>6.1f} ±{spread['bare-again']:<3.0f}"
        f"{floor:>6.1f} ±{spread['floor']:<4.0f}"
        f"{over['llmtrace']:>8.1f} ±{spread['llmtrace']:<4.0f}{_ratio(over['llmtrace'], floor):>7.2f}"
        f"{inline:>12.1f}{_ratio(inline, floor):>7.2f}{peer:>10.1f}{_ratio(peer, floor):>7.2f}"
        f"{over['floor+read']:>12.1f}{_ratio(over['llmtrace'], over['floor+read']):>7.2f}"
    )


def _per_call(start: float, start_all: float, calls: int) -> tuple[float, float]:
    """Per-call CPU of the calling thread, and of the whole process once llmtrace's worker has
    finished the spans it holds (its work counts there, done on this thread if still queued)."""
    app_thread = time.thread_time() - start
    worker.drain()
    return app_thread / calls, (time.process_time() - start_all) / calls


def run_sync(
    config: str, calls: int, stream: bool, provider: TracerProvider, floors: dict[str, Floor], stubbed: bool
) -> tuple[float, float]:
    sync, _ = clients(stubbed)
    kwargs = OPENAI.kwargs(stream)

    def bare() -> None:
        result = sync.chat.completions.create(**kwargs)
        if stream:
            for _ in result:
                pass

    switch_on(config, provider)
    try:
        start, start_all = time.thread_time(), time.process_time()
        for _ in range(calls):
            if config in floors:
                floors[config].call(lambda: sync.chat.completions.create(**kwargs), stream)
            else:
                bare()
        return _per_call(start, start_all, calls)
    finally:
        switch_off(config)


def run_async(
    config: str, calls: int, stream: bool, provider: TracerProvider, floors: dict[str, Floor], stubbed: bool
) -> tuple[float, float]:
    _, client = clients(stubbed)
    kwargs = OPENAI.kwargs(stream)

    async def body() -> tuple[float, float]:
        start, start_all = time.thread_time(), time.process_time()
        for _ in range(calls):
            if config in floors:
                await floors[config].acall(lambda: client.chat.completions.create(**kwargs), stream)
            else:
                result = await client.chat.completions.create(**kwargs)
                if stream:
                    async for _ in result:
                        pass
        return _per_call(start, start_all, calls)

    switch_on(config, provider)
    try:
        return asyncio.run(body())
    finally:
        switch_off(config)


def startup_cost(repeats: int = 7) -> tuple[float, float]:
    """Median CPU time of a bare interpreter vs one that imports llmtrace and instruments (CPU, not wall:
    on this shared machine wall time mostly measures the other processes)."""

    # Compiled modules, as an installed package has them (PYTHONDONTWRITEBYTECODE would compile each time).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "llmtrace-startup-pycache")

    def timed(code: str) -> float:
        subprocess.run([sys.executable, "-c", code], check=True, env=env)  # warm-up: fills the cache
        samples = []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return statistics.median(samples)

    bare = timed("pass")
    instrumented = timed("import llmtrace; llmtrace.instrument(endpoint='http://127.0.0.1:9')")
    return bare, instrumented


SECTIONS = {
    "interleaved": "in-process HTTP, llmtrace and its peers interleaved call by call: the real SDKs end to end",
    "blocks": "in-process HTTP, blocks of calls per configuration (adds async and inline mode)",
    "stubbed": "stubbed transport: no HTTP or JSON parsing, prebuilt results (llmtrace's own cost in isolation)",
}


def measure(
    stubbed: bool, rounds: int, calls: int, provider: TracerProvider
) -> tuple[dict[str, list[str]], dict[str, list[float]]]:
    """Every scenario of one section: rows per CPU measure, and llmtrace's ratios to the floor."""
    configs = ("bare", "bare-again", "floor", "floor+read", "llmtrace", "inline") + (
        ("otel-openai-v2",) if PEER is not None and not stubbed else ()  # the peer needs the SDK's own stream
    )
    tables: dict[str, list[str]] = {"app thread": [], "whole process": []}
    ratios: dict[str, list[float]] = {"app thread": [], "whole process": []}
    rng = random.Random(2026)
    for mode in ("sync", "async"):
        for stream in (False, True):
            start_attrs, end_attrs = reference_attributes(provider, stream)
            floors = {
                "floor": Floor(provider, start_attrs, end_attrs),
                "floor+read": Floor(provider, start_attrs, end_attrs, read=True),
            }
            runner = run_sync if mode == "sync" else run_async
            # A stream costs the SDK ~6x a completion: fewer calls per block, three times the rounds,
            # so the paired medians settle (the SDK's own run-to-run spread is ~2% of 3.7 ms).
            block = calls // 4 if stream else calls
            repeats = rounds * 3 if stream else rounds
            samples: dict[str, list[tuple[float, float]]] = {c: [] for c in configs}
            runner("bare", block // 4, stream, provider, floors, stubbed)  # warm-up
            runner("llmtrace", block // 4, stream, provider, floors, stubbed)
            for round_ in range(repeats):
                order = configs if round_ % 2 == 0 else tuple(reversed(configs))
                for config in order:
                    shim = heap_shim(rng)
                    samples[config].append(runner(config, block, stream, provider, floors, stubbed))
                    del shim
            name = f"{mode} {'stream 50 chunks' if stream else 'non-stream'}"
            for which, table in enumerate(tables):
                bare, over, spread = _summarise(samples, which)
                ratios[table].append(_ratio(over["llmtrace"], over["floor"]))
                tables[table].append(_row(name, bare, over, spread))
    return tables, ratios


INTERLEAVED = ("bare", "bare-again", "floor", "floor+read", "llmtrace")
PEER_COLUMNS = ("otel-v2", "openinference", "openlit")
MESSAGES_TEXT = MESSAGES[0]["content"]
SCENARIOS = (("sync", False, False), ("async", True, False), ("sync stream 50 chunks", False, True))
Samples = dict[str, list[tuple[float, float]]]


def measure_interleaved(calls: int, provider: TracerProvider) -> tuple[dict[str, list[str]], list[str]]:
    """The real SDKs end to end, llmtrace and its peers interleaved call by call in one process.

    Every configuration's wrappers sit behind one dispatcher per SDK method (``peers.Switchboard``),
    so all see the same heap and the same machine moment; orders rotate and mirror (ABC..CBA) so
    none always follows another. Returns the rows per CPU measure and the verdicts on the targets:
    app's thread <= 0.5x the fastest peer, whole process <= 1.0x, streams <= 1.5x floor+read.
    """
    tables: dict[str, list[str]] = {"app thread": [], "whole process": []}
    verdicts: list[str] = []
    for sdk in SDKS:
        results = _measure_sdk(sdk, calls, provider)
        for label, samples in results.items():
            name = f"{sdk.name} {label}"
            for which, table in enumerate(tables):
                bare, over, spread = _summarise(samples, which, _median_wander)
                tables[table].append(_peer_row(name, bare, over, spread))
                verdicts.append(_verdict(name, table, over, stream="stream" in label))
    return tables, verdicts


def _measure_sdk(sdk: Sdk, calls: int, provider: TracerProvider) -> dict[str, Samples]:
    peers = available(sdk.name)
    floors = {}
    for stream in (False, True):
        start_attrs, end_attrs = reference_attributes(provider, stream, sdk)
        floors[stream] = {
            "floor": Floor(provider, start_attrs, end_attrs, sdk=sdk),
            "floor+read": Floor(provider, start_attrs, end_attrs, read=True, sdk=sdk),
        }
    sync, async_ = sdk.clients()
    sdk.resource(sync), sdk.resource(async_)  # the SDK imports its resource modules: patched from here on
    board = Switchboard()
    board.capture("llmtrace", lambda: llmtrace.instrument(tracer_provider=provider))
    instrumentors = [board.capture(name, lambda i=instrument: i(provider)) for name, instrument in peers.items()]
    board.install()
    configs = INTERLEAVED + tuple(peers)
    try:
        for config in ("llmtrace", *peers):
            print(f"{sdk.name}, {config}: {_check_same_work(sdk, board, sync, config, provider)}")
        samples = {}
        for label, is_async, stream in SCENARIOS:
            client = async_ if is_async else sync
            count = calls // 4 if stream else calls  # a stream costs the SDK ~6x a completion
            samples[label] = _interleaved_samples(sdk, board, client, floors[stream], configs, stream, is_async, count)
        return samples
    finally:
        board.uninstall()
        llmtrace.uninstrument()
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


class _Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _check_same_work(sdk: Sdk, board: Switchboard, client: Any, config: str, provider: TracerProvider) -> str:
    """That ``config`` records one span per call carrying the prompt and the reply (streamed or not), in
    the provider every configuration shares: the peers are measured doing llmtrace's work."""
    recorder = _Recorder()
    provider.add_span_processor(recorder)  # it stays, recording nothing once this check dropped its list
    board.use(config)
    found = []
    for stream in (False, True):
        result = sdk.call(client, stream)
        if stream:
            for _ in result:
                pass
        worker.drain()
        spans, recorder.spans = recorder.spans, []
        text = " ".join(str(v) for span in spans for v in (span.attributes or {}).values())
        text += " ".join(str(v) for span in spans for event in span.events for v in (event.attributes or {}).values())
        reply = "w49" if stream else "A short summary"
        found.append(f"{len(spans)} span(s), prompt {MESSAGES_TEXT in text}, reply {reply in text}")
    board.use("bare")
    recorder.on_end = lambda span: None  # type: ignore[method-assign]
    return "completion: " + found[0] + "; stream: " + found[1]


def _interleaved_samples(
    sdk: Sdk,
    board: Switchboard,
    client: Any,
    floors: dict[str, Floor],
    configs: tuple[str, ...],
    stream: bool,
    is_async: bool,
    calls: int,
) -> Samples:
    """``calls`` per-call samples of each configuration: (app thread CPU, whole process CPU)."""

    def run(config: str) -> None:
        board.use(config)
        if config in floors:
            floors[config].call(lambda: sdk.call(client, stream), stream)
            return
        result = sdk.call(client, stream)
        if stream:
            for _ in result:
                pass

    async def arun(config: str) -> None:
        board.use(config)
        if config in floors:
            await floors[config].acall(lambda: sdk.call(client, stream), stream)
            return
        result = await sdk.call(client, stream)
        if stream:
            async for _ in result:
                pass

    order = [c for i in range(len(configs)) for c in configs[i:] + configs[:i]]
    order += order[::-1]
    samples: Samples = {c: [] for c in configs}

    def record(config: str, start: float, start_all: float) -> None:
        app_thread = time.thread_time() - start
        worker.drain()  # this call's span is finished here: its work counts in the whole process
        samples[config].append((app_thread, time.process_time() - start_all))

    async def aloop() -> None:
        for config in configs:  # warm-up
            await arun(config)
        for _ in range(max(1, calls // (2 * len(configs)))):
            for config in order:
                start, start_all = time.thread_time(), time.process_time()
                await arun(config)
                record(config, start, start_all)

    if is_async:
        asyncio.run(aloop())
        return samples
    for config in configs:  # warm-up
        run(config)
    for _ in range(max(1, calls // (2 * len(configs)))):
        for config in order:
            start, start_all = time.thread_time(), time.process_time()
            run(config)
            record(config, start, start_all)
    return samples


PEER_HEADER = (
    f"{'scenario':<32}{'bare µs':>9}{'A/A +µs':>10}{'floor':>8}{'f+read':>8}{'llmtrace +µs':>14}"
    + "".join(f"{name:>15}" for name in PEER_COLUMNS)
    + f"{'/fastest':>10}{'/f+read':>9}"
)


def _fastest_peer(over: dict[str, float]) -> tuple[str, float]:
    found = [(over[name], name) for name in PEER_COLUMNS if name in over]
    value, name = min(found) if found else (float("nan"), "none")
    return name, value


def _peer_row(name: str, bare: float, over: dict[str, float], spread: dict[str, float]) -> str:
    peers = "".join(f"{over[p]:>8.1f} ±{spread[p]:<4.0f}" if p in over else f"{'—':>15}" for p in PEER_COLUMNS)
    _, fastest = _fastest_peer(over)
    return (
        f"{name:<32}{bare:>9.1f}{over['bare-again']:>6.1f} ±{spread['bare-again']:<3.0f}"
        f"{over['floor']:>8.1f}{over['floor+read']:>8.1f}{over['llmtrace']:>8.1f} ±{spread['llmtrace']:<4.0f}"
        f"{peers}{_ratio(over['llmtrace'], fastest):>9.2f}x{_ratio(over['llmtrace'], over['floor+read']):>8.2f}x"
    )


def _verdict(name: str, table: str, over: dict[str, float], stream: bool) -> str:
    peer, fastest = _fastest_peer(over)
    limit = 0.5 if table == "app thread" else 1.0
    ratio = _ratio(over["llmtrace"], fastest)
    line = f"{name}, {table}: llmtrace {ratio:.2f}x the fastest peer ({peer}; target <= {limit}x) "
    line += "met" if ratio <= limit else "MISSED"
    if stream:
        vs_read = _ratio(over["llmtrace"], over["floor+read"])
        line += f"; {vs_read:.2f}x floor+read (target <= 1.5x) " + ("met" if vs_read <= 1.5 else "MISSED")
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--only", choices=tuple(SECTIONS), help="run one section")
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    os.environ.setdefault(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY"
    )  # the peer captures content too
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    trace.set_tracer_provider(provider)  # OpenLIT's instrumentors take the global provider
    os.environ["ANTHROPIC_OPEN_TELEMETRY"] = "false"  # anthropic 2.x's own spans (global provider): off for all
    worst: dict[tuple[str, str], float] = {}
    verdicts: list[str] = []
    for section, title in SECTIONS.items():
        if args.only and args.only != section:
            continue
        print(f"\n== {title}")
        if section == "interleaved":
            tables, verdicts = measure_interleaved(args.calls * args.rounds // 10, provider)
            for table, rows in tables.items():
                print(f"\nCPU per call, {table}: overhead over bare in µs ± wander; llmtrace / the fastest peer's")
                print("and / floor+read's (f+read: the floor that also reads each chunk's text):")
                print(PEER_HEADER)
                print("\n".join(rows))
            continue
        tables, ratios = measure(section == "stubbed", args.rounds, args.calls, provider)
        for table, rows in tables.items():
            print(f"\nCPU per call, {table} (ratios: overhead / the floor's; last column: llmtrace / floor+read):")
            print(HEADER)
            print("\n".join(rows))
        for table, values in ratios.items():
            worst[section, table] = max(values)
    provider.shutdown()
    bare, instrumented = startup_cost()
    print(
        f"\nstart-up (CPU): bare python {bare:.3f} s, import llmtrace + instrument() {instrumented:.3f} s, "
        f"added {instrumented - bare:.3f} s (target <= 0.150 s)"
    )
    for (section, table), value in worst.items():
        print(f"worst overhead ratio vs OTel floor, {section}, {table}: {value:.2f}x (target <= 1.5x)")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
