"""Ingest throughput of ``llmtrace server`` and the latency of an overview query on 1M calls.

Starts a server subprocess on free ports over a temporary data dir, then measures:

- OTLP/HTTP protobuf ingest: realistic GenAI spans (~30 attributes, made by the OTel SDK and
  encoded exactly as ``OTLPSpanExporter`` sends them), batches of 512, 2 and 4 concurrent
  senders, each waiting for its 200 before the next batch (like a BatchSpanProcessor);
- the direct ``ClickHouseSpanExporter`` into the server's ClickHouse HTTP port, same spans;
- median of 5 runs of an overview query (calls, tokens, cost, duration quantiles by model)
  over 1M ``llm_calls`` rows inserted with ``INSERT ... SELECT FROM numbers()``.

    python benchmarks/ingest.py [--seconds 10] [--senders 2 4]

Besides spans/s it reports the server's CPU time per span (from /proc), which says more than
wall time on a shared 2-core machine. Target: >= 20,000 spans/s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server_process import ServerProcess

BATCH = 512
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "claude-haiku-4", "gemini-2.0-flash"]


def genai_attributes(rnd: random.Random, model: str, i: int) -> dict[str, Any]:
    """~30 attributes, as an instrumented chat call records them."""
    question = f'[{{"role":"user","parts":[{{"type":"text","content":"Where is order {i}?"}}]}}]'
    answer = '[{"role":"assistant","parts":[{"type":"text","content":"It ships today."}]}]'
    return {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
        "gen_ai.response.model": f"{model}-2025-01-01", "gen_ai.request.temperature": 0.7,
        "gen_ai.request.max_tokens": 1024, "gen_ai.request.top_p": 1.0, "gen_ai.request.stream": i % 3 == 0,
        "gen_ai.response.id": f"chatcmpl-{rnd.getrandbits(64):x}", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": rnd.randint(10, 4000), "gen_ai.usage.output_tokens": rnd.randint(1, 1000),
        "gen_ai.usage.cache_read.input_tokens": rnd.randint(0, 100), "llmtrace.cost.usd": rnd.random() / 100,
        "server.address": "api.openai.com", "server.port": 443, "llmtrace.prompt.name": "support-bot",
        "gen_ai.response.time_to_first_chunk": rnd.random(), "llmtrace.prompt.version": "3",
        "llmtrace.environment": "prod", "llmtrace.release": "1.4.2", "user.id": f"user-{rnd.randint(1, 500)}",
        "session.id": f"sess-{rnd.randint(1, 5000)}", "gen_ai.conversation.id": f"conv-{rnd.randint(1, 5000)}",
        "gen_ai.openai.request.service_tier": "auto", "gen_ai.openai.response.system_fingerprint": "fp_abc",
        "http.response.status_code": 200, "gen_ai.output.type": "text",
        "gen_ai.input.messages": question, "gen_ai.output.messages": answer,
    }  # fmt: skip


def genai_spans(count: int, seed: int) -> list[Any]:
    """Finished SDK spans that look like instrumented chat calls (~30 attributes each)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    rnd = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench", "service.version": "1.4.2",
                                                         "deployment.environment.name": "prod"}))  # fmt: skip
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("llmtrace", "0.1.0")
    for i in range(count):
        model = rnd.choice(MODELS)
        with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attributes(genai_attributes(rnd, model, i))
    provider.shutdown()
    return list(memory.get_finished_spans())


def protobuf_batches(spans: list[Any]) -> list[bytes]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return [encode_spans(spans[i : i + BATCH]).SerializeToString() for i in range(0, len(spans), BATCH)]


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and its worker processes (utime + stime, 1/100 s ticks)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += int(fields[11]) + int(fields[12])
    return total / 100


def run_senders(senders: int, seconds: float, send: Any) -> int:
    """Run ``send(worker_index, round) -> spans acknowledged`` in threads; total spans acked."""
    acked = [0] * senders
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        rounds = 0
        while time.monotonic() < deadline:
            acked[index] += send(index, rounds)
            rounds += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(acked)


def bench_otlp(server: ServerProcess, bodies: list[bytes], senders: int, seconds: float) -> tuple[float, float]:
    pool = urllib3.PoolManager(maxsize=senders)
    url = f"{server.otlp_url}/v1/traces"

    def send(index: int, rounds: int) -> int:
        body = bodies[(index * 7 + rounds) % len(bodies)]
        response = pool.request("POST", url, body=body, headers={"Content-Type": "application/x-protobuf"})
        return BATCH if response.status == 200 else 0

    return measure(server, senders, seconds, send)


def bench_direct(server: ServerProcess, spans: list[Any], senders: int, seconds: float) -> tuple[float, float]:
    from opentelemetry.sdk.trace.export import SpanExportResult

    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

    exporters = [ClickHouseSpanExporter(server.http_url) for _ in range(senders)]
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]

    def send(index: int, rounds: int) -> int:
        batch = batches[(index * 7 + rounds) % len(batches)]
        return BATCH if exporters[index].export(batch) is SpanExportResult.SUCCESS else 0

    try:
        return measure(server, senders, seconds, send)
    finally:
        for exporter in exporters:
            exporter.shutdown()


def measure(server: ServerProcess, senders: int, seconds: float, send: Any) -> tuple[float, float]:
    """(spans/s acknowledged, server CPU µs per span)."""
    cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
    acked = run_senders(senders, seconds, send)
    elapsed = time.monotonic() - started
    server.client().command("SELECT 1")  # waits until every acknowledged span is queryable
    cpu = cpu_seconds(server.process.pid) - cpu_before
    return acked / elapsed, 1e6 * cpu / max(acked, 1)


FILL_1M = """
INSERT INTO llm_calls (Timestamp, TraceId, SpanId, ServiceName, Provider, Operation, RequestModel, ResponseModel,
    InputTokens, OutputTokens, TotalTokens, CostUsd, CostStatus, DurationUs, StatusCode, IsError)
SELECT now64(9) - toIntervalSecond(number % 600000), hex(sipHash128(number)), hex(sipHash64(number)), 'overview',
    'openai', 'chat',
    ['gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4', 'claude-haiku-4', 'gemini-2.0-flash'][number % 5 + 1],
    '', 10 + number % 4000, 1 + number % 1000, 11 + number % 4000 + number % 1000, (number % 1000) / 1e5, 'priced',
    100000 + (sipHash64(number) % 5000000), if(number % 50 = 0, 'Error', 'Ok'), number % 50 = 0
FROM numbers(1000000)
"""
OVERVIEW = """
SELECT RequestModel, count() AS calls, sum(InputTokens) AS input_tokens, sum(OutputTokens) AS output_tokens,
    sum(CostUsd) AS cost, quantiles(0.5, 0.9, 0.99)(DurationUs) AS duration_q, avg(IsError) AS error_rate
FROM llm_calls
WHERE ServiceName = 'overview' AND Timestamp >= now64(9) - toIntervalDay(7)
GROUP BY RequestModel ORDER BY calls DESC
"""


def bench_overview(server: ServerProcess) -> tuple[float, int]:
    client = server.client()
    started = time.monotonic()
    client.command(FILL_1M)
    fill = time.monotonic() - started
    timings = []
    for _ in range(5):
        started = time.monotonic()
        rows = client.query(OVERVIEW).result_rows
        timings.append(time.monotonic() - started)
    assert sum(row[1] for row in rows) == 1_000_000, rows
    print(f"(1M llm_calls rows inserted in {fill:.1f} s)")
    return statistics.median(timings) * 1000, len(rows)


def acknowledged_vs_stored(server: ServerProcess, deadline: float = 60.0) -> str:
    """What the server's ``GET /status`` says once its backlog is written: accepted vs stored."""
    import json

    end = time.monotonic() + deadline
    while True:
        status = json.loads(urllib3.request("GET", f"{server.otlp_url}/status").data)
        if status["backlog_spans"] == 0 and status["stored_spans"] >= status["accepted_spans"]:
            break
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    return f"{status['accepted_spans']:,} / {status['stored_spans']:,} (rejected {status['rejected_spans']})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each ingest run")
    parser.add_argument("--senders", type=int, nargs="+", default=[2, 4], help="concurrent senders per run")
    args = parser.parse_args()
    spans = genai_spans(BATCH * 8, seed=1)
    bodies = protobuf_batches(spans)
    print(f"{len(bodies)} distinct batches of {BATCH} spans, {len(bodies[0]) // BATCH} bytes/span (protobuf)")
    workdir = Path(tempfile.mkdtemp(prefix="llmtrace-bench-"))
    server = ServerProcess(workdir / "data").wait_ready()
    results: list[tuple[str, str]] = []
    try:
        for senders in args.senders:
            rate, cpu = bench_otlp(server, bodies, senders, args.seconds)
            results.append((f"OTLP/HTTP protobuf, {senders} senders", f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)"))
            print(*results[-1], sep=": ", flush=True)
        results.append(("OTLP spans acknowledged / verified stored", acknowledged_vs_stored(server)))
        try:
            import llmtrace.exporters.clickhouse  # noqa: F401
        except ImportError:
            results.append(("direct ClickHouse exporter", "not available"))
        else:
            for senders in args.senders:
                rate, cpu = bench_direct(server, spans, senders, args.seconds)
                label = f"direct ClickHouseSpanExporter, {senders} senders"
                results.append((label, f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)"))
                print(*results[-1], sep=": ", flush=True)
        latency, groups = bench_overview(server)
        results.append((f"overview query, 1M llm_calls ({groups} models)", f"{latency:9.1f} ms median of 5"))
    finally:
        code = server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(label) for label, _ in results)
    print(f"\n{'measure':<{width}}  result\n{'-' * width}  {'-' * 40}")
    for label, value in results:
        print(f"{label:<{width}}  {value}")
    print("target: >= 20,000 spans/s OTLP ingest")
    return code


if __name__ == "__main__":
    sys.exit(main())
