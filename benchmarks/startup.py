"""What ``llmtrace.instrument()`` costs an app at start-up, and whether it races the app's first client.

Every figure comes from fresh processes (median of ``--runs``), against the local fake LLM
started as its own process:

- **after the SDKs** (the usual order: ``import openai, anthropic`` first): the time and the
  modules of ``import llmtrace`` and of ``instrument()`` alone, and the RSS growth once the first
  priced call has been made (current and peak, against the same process without llmtrace);
- **before the SDKs**: the wall time of ``import llmtrace; instrument()`` then the SDKs, against
  the SDKs alone;
- **race** (``--race N``): N processes that instrument and at once build openai and anthropic
  clients with explicit ``httpx2`` clients and call the fake LLM; prints the failures.

``--checkout PATH`` measures another checkout of llmtrace (e.g. a ``git worktree`` of an older
commit) with the same SDKs: the before/after figures in docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_MEASURE = """
import json, sys, time

def rss():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

import openai, anthropic
before = set(sys.modules)
rss0, _ = rss()
t0, c0 = time.perf_counter(), time.thread_time()
if MODE != "none":
    import llmtrace
if MODE == "memory":  # the app's own pipeline: OTel SDK, spans kept in memory, no exporter of ours
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
t1, c1 = time.perf_counter(), time.thread_time()
imported = set(sys.modules)
if MODE == "otlp":
    llmtrace.instrument(endpoint="http://127.0.0.1:9", service_name="startup")
elif MODE == "memory":
    llmtrace.instrument(tracer_provider=provider)
t2, c2 = time.perf_counter(), time.thread_time()
after = set(sys.modules)
rss1, _ = rss()
client = openai.OpenAI(base_url=BASE + "/v1", api_key="t", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
if MODE != "none":
    from llmtrace.instrumentation._worker import worker
    worker.drain()  # the call's span is priced and ended (the worker would do it within 50 ms)
rss2, peak = rss()
if MODE == "otlp":
    from llmtrace._setup import _state
    _state.exporter.exporter  # built by the first span (before this change: at the first export, on its thread)
rss3, peak3 = rss()
print(json.dumps({
    "import_ms": (t1 - t0) * 1000, "instrument_ms": (t2 - t1) * 1000,
    "import_cpu_ms": (c1 - c0) * 1000, "instrument_cpu_ms": (c2 - c1) * 1000,
    "import_modules": len(imported - before), "instrument_modules": len(after - imported),
    "sdk_modules": sorted(m for m in after - imported if m.startswith(("openai.", "anthropic."))),
    "rss_instrument": rss1 - rss0, "rss_call": rss2, "peak_call": peak, "rss_exporter": rss3, "peak_exporter": peak3,
}))
"""

_AUDIT = """
import sys, threading
background = []
def _audit(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        background.append(args[0])
sys.addaudithook(_audit)
"""

_CALLS = """
client = openai.OpenAI(api_key="t", base_url=BASE + "/v1", max_retries=0, http_client=httpx2.Client(timeout=30))
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
aclient = anthropic.Anthropic(api_key="t", base_url=BASE, max_retries=0, http_client=httpx2.Client(timeout=30))
aclient.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
for thread in threading.enumerate():
    if thread.name == "llmtrace-prices":
        thread.join(30)  # count all it imports, not only what overlapped the calls
print(len(background))
"""

_INSTRUMENT = "import llmtrace\nllmtrace.instrument(endpoint='http://127.0.0.1:9', service_name='race')\n"
_RACES = {
    "instrument, then the SDKs": _AUDIT + _INSTRUMENT + "import httpx2, openai, anthropic\n" + _CALLS,
    "the SDKs, then instrument": _AUDIT + "import httpx2, openai, anthropic\n" + _INSTRUMENT + _CALLS,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_llm() -> Iterator[str]:
    """The fake LLM as its own process (its threads must not share our children's import locks)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmtrace.demo.fake_llm", "--port", str(port)], stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "fake LLM at ...": listening
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


# Compiled modules, as an installed package has them: without, every child would compile llmtrace from
# source (~40 ms) where PYTHONDONTWRITEBYTECODE is set. Filled by each configuration's warm-up run.
_PYCACHE = Path(tempfile.gettempdir()) / "llmtrace-startup-pycache"


def _run(code: str, checkout: Path, base: str, **values: object) -> subprocess.CompletedProcess[str]:
    prelude = "".join(f"{name} = {value!r}\n" for name, value in {"BASE": base, **values}.items())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "PYTHONDONTWRITE"))}
    env["PYTHONPATH"] = str(checkout)
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    with tempfile.TemporaryDirectory() as cwd:  # never the repo: '' on sys.path would shadow --checkout
        return subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
        )


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    if result.returncode != 0:
        raise SystemExit(f"child failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def after_sdks(checkout: Path, base: str, runs: int) -> None:
    modes = ("otlp", "memory", "none")
    rows: dict[str, list[dict[str, object]]] = {mode: [] for mode in modes}
    for mode in modes:
        _json(_run(_MEASURE, checkout, base, MODE=mode))  # warm-up: compiles into the cache
    for _ in range(runs):  # interleaved, so load on the machine hits every mode alike
        for mode in modes:
            rows[mode].append(_json(_run(_MEASURE, checkout, base, MODE=mode)))

    def median(key: str, mode: str) -> float:
        return statistics.median(float(r[key]) for r in rows[mode])  # type: ignore[arg-type]

    print(f"after the SDKs (median of {runs} processes, {checkout}):")
    for mode, what in (("otlp", "llmtrace builds the OTLP pipeline"), ("memory", "the app's own TracerProvider")):
        sdk_modules: list[str] = rows[mode][0]["sdk_modules"]  # type: ignore[assignment]
        print(f"  {what}:")
        for step, key in (("import llmtrace", "import"), ("instrument()", "instrument")):
            print(f"    {step:16} {median(f'{key}_ms', mode):6.1f} ms wall {median(f'{key}_cpu_ms', mode):6.1f} ms CPU "
                  f"{median(f'{key}_modules', mode):4.0f} modules")  # fmt: skip
        print(f"    openai.*/anthropic.* modules instrument() imported: {len(sdk_modules)} {sdk_modules[:4]}")
        print(f"    RSS added by import + instrument(): {median('rss_instrument', mode):5.1f} MB")
        keys = [("call", "the first priced call")]
        if mode == "otlp":
            keys.append(("exporter", "that, and the OTLP exporter built"))
        for key, event in keys:
            grown = median(f"rss_{key}", mode) - median("rss_call", "none")
            peak = median(f"peak_{key}", mode) - median("peak_call", "none")
            print(f"    RSS after {event}, vs the process without llmtrace: +{grown:.1f} MB (peak +{peak:.1f})")


def before_sdks(checkout: Path, base: str, runs: int) -> None:
    sdks = "import openai, anthropic"
    instrument = "import llmtrace; llmtrace.instrument(endpoint='http://127.0.0.1:9')"
    pairs = {
        "SDKs alone -> import llmtrace; instrument(); SDKs": (sdks, f"{instrument}\n{sdks}"),
        "bare python -> import llmtrace; instrument()": ("pass", instrument),  # the same cost, less noise
    }
    for label, (bare, instrumented) in pairs.items():
        _added(label, {"bare": bare, "instrumented": instrumented}, checkout, base, runs)


def _added(label: str, code: dict[str, str], checkout: Path, base: str, runs: int) -> None:
    wall: dict[str, list[float]] = {name: [] for name in code}
    cpu: dict[str, list[float]] = {name: [] for name in code}
    for body in code.values():
        _run(body, checkout, base)  # warm-up: compiles into the cache
    for _ in range(runs):
        for name, body in code.items():
            start, used = time.perf_counter(), _children_cpu()
            result = _run(body, checkout, base)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(_children_cpu() - used)  # the busy machine inflates wall time, much less CPU time
            assert result.returncode == 0, result.stderr
    print(f"before the SDKs, {label}:")
    for kind, samples in (("wall", wall), ("CPU", cpu)):
        bare, instrumented = (statistics.median(samples[name]) for name in code)
        added = instrumented - bare
        print(f"  {kind:4} time {bare:.3f} s -> {instrumented:.3f} s: added {added:.3f} s (target <= 0.150 s)")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def race(checkout: Path, base: str, processes: int, parallel: int) -> int:
    """Processes that build their clients right after instrument(): failures, and modules imported on
    background threads (the cause: such an import can hand the app a half-built module)."""
    failures = 0
    for label, code in _RACES.items():
        start = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(lambda _, code=code: _run(code, checkout, base), range(processes)))
        failed = [r for r in results if r.returncode != 0]
        failures += len(failed)
        imports = [int(r.stdout.split()[-1]) for r in results if r.returncode == 0]
        print(
            f"race, {label}: {len(failed)} of {processes} processes failed; modules imported on background "
            f"threads per process: median {statistics.median(imports) if imports else 0:.0f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
        for reason in sorted({r.stderr.strip().splitlines()[-1] for r in failed})[:5]:
            print(f"  {reason}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=REPO, help="the llmtrace checkout to measure")
    parser.add_argument("--runs", type=int, default=11, help="processes per configuration (median)")
    parser.add_argument("--race", type=int, default=0, metavar="N", help="run the race with N processes per order")
    parser.add_argument("--parallel", type=int, default=4, help="race processes at a time")
    args = parser.parse_args()
    with fake_llm() as base:
        if args.race:
            return race(args.checkout.resolve(), base, args.race, args.parallel)
        after_sdks(args.checkout.resolve(), base, args.runs)
        before_sdks(args.checkout.resolve(), base, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
