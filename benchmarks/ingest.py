"""Ingest throughput of ``llmtrace server`` and the latency of an overview query on 1M calls.

Starts a server subprocess on free ports over a temporary data dir, then measures:

- OTLP/HTTP protobuf ingest, as a curve over senders x batch size: realistic GenAI spans (~30
  attributes, made by the OTel SDK and encoded exactly as ``OTLPSpanExporter`` sends them),
  each request re-issued with fresh trace/span ids and current timestamps (so every span is
  new: the server's read-back cannot be satisfied by an earlier copy), each sender waiting for
  its 200 before the next batch (like a BatchSpanProcessor);
- with ``--sustain SECONDS``: one long run (4 senders, batch 512 by default) reporting spans/s
  and the server's RSS (server + decoding workers) per window: flat memory, nothing lost;
- the direct ``ClickHouseSpanExporter`` into the server's ClickHouse HTTP port, same spans, per
  senders x export batch size (one INSERT per ``export()``), and with ``insert_spans`` (512-span
  exports held until 8192 are pending, like the server batches);
- median of 5 runs of an overview query over 1M ``llm_calls`` rows.

    python benchmarks/ingest.py [--seconds 10] [--senders 1 2 4] [--batches 128 512 2048]
                                [--direct-batches 512 4096] [--direct-background] [--sustain 300] [--skip-direct]
                                [--skip-overview]

Every run reports the server's CPU time per span (from /proc) and the machine's load (load
average, and the CPU share used by everything else than the server and this benchmark),
which say more than wall time on a shared 2-core machine. After the runs, every acknowledged
span must be in ``otel_traces`` (counted, not assumed). Targets: >= 50,000 spans/s with 4
senders sustained, >= 20,000 spans/s for the direct exporter.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import struct
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
Result = tuple[float, float, str]  # spans/s, server µs CPU per span, machine load
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


class FreshBodies:
    """Serialized OTLP requests of ``spans`` that every call re-issues with new ids and times.

    The SDK spans are encoded once per batch size; each span's trace id, span id and start/end
    times are located in those bytes and patched per request (~1 µs per span, in the sender),
    so a long run sends millions of distinct, current spans without running the SDK.
    """

    def __init__(self, spans: list[Any], batch: int) -> None:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        self.batch = batch
        first = min(span.start_time for span in spans)
        self.templates: list[tuple[bytes, list[tuple[int, int, int, int, int, int]]]] = []
        for i in range(0, len(spans) - batch + 1, batch):
            chunk = spans[i : i + batch]
            body = encode_spans(chunk).SerializeToString()
            places = [(*self._offsets(body, s), s.start_time - first, s.end_time - s.start_time) for s in chunk]
            self.templates.append((body, places))
        self._counter = itertools.count(1)

    @staticmethod
    def _offsets(body: bytes, span: Any) -> tuple[int, int, int, int]:
        """Where the span's trace id, span id, start and end (fixed64, after their tags) are."""
        context = span.get_span_context()
        start, end = struct.pack("<Q", span.start_time), struct.pack("<Q", span.end_time)
        needles = (
            context.trace_id.to_bytes(16, "big"),
            context.span_id.to_bytes(8, "big"),
            b"\x39" + start,
            b"\x41" + end,
        )
        found = []
        for needle in needles:
            at = body.find(needle)
            assert at >= 0 and body.find(needle, at + 1) < 0, "a span field is not unique in its request"
            found.append(at + 1 if len(needle) == 9 else at)
        return found[0], found[1], found[2], found[3]

    def body(self, index: int) -> bytes:
        """Request ``index`` (mod the templates) with fresh ids, its spans started ~2 s ago."""
        template, places = self.templates[index % len(self.templates)]
        data = bytearray(template)
        now, counter = time.time_ns() - 2_000_000_000, next(self._counter)
        for n, (trace_at, span_at, start_at, end_at, offset, duration) in enumerate(places, 1):
            struct.pack_into(">QQ", data, trace_at, counter, n)
            struct.pack_into(">Q", data, span_at, counter << 20 | n)
            struct.pack_into("<Q", data, start_at, now + offset)
            struct.pack_into("<Q", data, end_at, now + offset + duration)
        return bytes(data)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_pids(pid: int) -> list[int]:
    """The server and its decoding workers (its direct children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(entry.name) == pid or int(_stat(int(entry.name))[1]) == pid:  # [1]: the parent pid
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and its worker processes (utime + stime, 1/100 s ticks)."""
    total = 0
    for each in server_pids(pid):
        try:
            fields = _stat(each)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / 100


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its workers, MB."""
    total = 0
    for each in server_pids(pid):
        try:
            total += int(_stat(each)[21]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total / 1e6


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / 100, sum(fields[:8]) / 100


class Load:
    """What else the machine did during a run: the load average and the CPU share of other processes."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.busy, self.total = machine_busy()
        self.mine = time.process_time()
        self.server = cpu_seconds(server_pid)

    def report(self) -> str:
        busy, total = machine_busy()
        others = (busy - self.busy) - (cpu_seconds(self.server_pid) - self.server) - (time.process_time() - self.mine)
        cores = os.cpu_count() or 1
        share = max(0.0, others) / max(total - self.total, 1e-9)
        return f"load {os.getloadavg()[0]:.1f}, others {100 * share:.0f}% of {cores} cores"


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


def otlp_sender(server: ServerProcess, bodies: FreshBodies, senders: int) -> Any:
    pool = urllib3.PoolManager(maxsize=senders)
    url = f"{server.otlp_url}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}

    def send(index: int, rounds: int) -> int:
        response = pool.request("POST", url, body=bodies.body(index * 7 + rounds), headers=headers)
        return bodies.batch if response.status == 200 else 0

    return send


def bench_otlp(server: ServerProcess, bodies: FreshBodies, senders: int, seconds: float) -> Result:
    return measure(server, senders, seconds, otlp_sender(server, bodies, senders))


def sustain(
    server: ServerProcess, bodies: FreshBodies, senders: int, seconds: float, window: float = 30.0
) -> list[str]:
    """One long run, reported per window: spans/s, server CPU/span, RSS, machine load."""
    send = otlp_sender(server, bodies, senders)
    lines = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 1:
        rate, cpu, load = measure(server, senders, min(window, left), send)
        rss = rss_mb(server.process.pid)
        lines.append(f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)  RSS {rss:.0f} MB  [{load}]")
        print("  sustained:", lines[-1], flush=True)
    return lines


def bench_direct(
    server: ServerProcess,
    spans: list[Any],
    senders: int,
    seconds: float,
    batch: int,
    insert_spans: int = 1,
    background: bool = False,
) -> Result:
    """The direct exporter, each sender exporting ``batch`` spans per call (one INSERT each, or
    one per ``insert_spans`` held across calls).

    The spans repeat (the exporter reads SDK spans; rewriting them is not worth it here): this
    measures the insert path, not the read-back."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

    # the exporter's own buffer unless insert_spans needs more (it sizes INSERTs under load)
    buffered = {"max_buffered_spans": 2 * insert_spans} if insert_spans > 5_000 else {}
    exporters = [ClickHouseSpanExporter(server.http_url, insert_spans=insert_spans, background=background,
                                        **buffered)
                 for _ in range(senders)]  # fmt: skip
    batches = [spans[i : i + batch] for i in range(0, len(spans) - batch + 1, batch)]

    def send(index: int, rounds: int) -> int:
        chunk = batches[(index * 7 + rounds) % len(batches)]
        return batch if exporters[index].export(chunk) is SpanExportResult.SUCCESS else 0

    def flush() -> None:  # what the exporters still hold is inserted within the measured time
        for exporter in exporters:
            exporter.force_flush()

    try:
        return measure(server, senders, seconds, send, flush)
    finally:
        for exporter in exporters:
            exporter.shutdown()


def measure(server: ServerProcess, senders: int, seconds: float, send: Any, finish: Any = None) -> Result:
    """(spans/s acknowledged, server CPU µs per span, the machine's load meanwhile)."""
    load = Load(server.process.pid)
    cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
    acked = run_senders(senders, seconds, send)
    if finish is not None:
        finish()
    elapsed = time.monotonic() - started
    server.client().command("SELECT 1")  # waits until every acknowledged span is queryable
    cpu = cpu_seconds(server.process.pid) - cpu_before
    return acked / elapsed, 1e6 * cpu / max(acked, 1), load.report()


def stage_costs(spans: list[Any], batch_spans: int = 16_384, rounds: int = 3) -> list[tuple[str, str]]:
    """CPU per span of each stage of the pipeline, in this process, at the batch size a saturated
    server inserts (best of ``rounds``; CPU time, so less sensitive to a busy machine than wall
    time, though shared caches still inflate it). The sum bounds what 2 free cores can ingest."""
    from llmtrace.server.chunks import merge_keys
    from llmtrace.server.decode import decode_traces, prepare_request
    from llmtrace.server.engine import Engine
    from llmtrace.server.sink import SpanSink
    from llmtrace.store.migrations import apply_migrations

    bodies = FreshBodies(spans, BATCH)
    requests = batch_spans // BATCH
    workdir = Path(tempfile.mkdtemp(prefix="llmtrace-stages-"))
    engine = Engine(workdir / "data")
    apply_migrations(engine.run)
    sink = SpanSink(engine)
    best: dict[str, float] = {}
    try:
        for n in range(2 * rounds):
            raw = [bodies.body(i) for i in range(requests)]
            native = n % 2 == 1  # odd rounds: the same rows as Native blocks, for comparison
            rows = [decode_traces(body, "application/x-protobuf") for body in raw] if native else []
            started = time.process_time()
            prepared = [prepare_request(body, None, "application/x-protobuf") for body in raw]
            decoded = time.process_time()
            payload = b"".join(p.payload for p in prepared)
            keys = merge_keys([p.keys for p in prepared if p.keys is not None])
            fmt, data = ("Native", native_blocks(rows)) if native else ("JSONCompactEachRow", payload)
            blocked = time.process_time()
            inserter = sink._conn.send_insert(sink._statement.format(token=f"stages-{n}"), fmt)
            inserter.append(data)
            inserter.finish()
            inserted = time.process_time()
            bounds = sink._load(keys)
            assert not sink._missing(payload, keys, bounds)
            sink._complete_derived(keys, bounds, sink._batch_profile)  # as SpanSink.__call__ does
            verified = time.process_time()
            count = payload.count(b"\n")
            if native:
                stages = [("not summed: Native block (clickhouse-connect, worker) + its INSERT", inserted - decoded),
                          ("not summed: of which the Native INSERT + views", inserted - blocked)]  # fmt: skip
            else:
                stages = [("decode (OTLP protobuf -> JSON lines, worker)", decoded - started),
                          ("INSERT into otel_traces + its views (chDB)", inserted - decoded),
                          ("read-back verification + derived tables' checks", verified - inserted)]  # fmt: skip
            for name, seconds in stages:
                best[name] = min(best.get(name, 1e9), 1e6 * seconds / count)
    finally:
        sink.close()
        engine.close()
        shutil.rmtree(workdir, ignore_errors=True)
    total = sum(cost for name, cost in best.items() if "not summed" not in name)
    rows = [(f"stage: {name}", f"{cost:5.1f} µs CPU/span") for name, cost in best.items()]
    rows.append(
        (
            f"stages total ({batch_spans:,}-span INSERTs)",
            f"{total:5.1f} µs -> {2e6 / total:,.0f} spans/s on 2 free cores",
        )
    )
    return rows


def native_blocks(requests: list[list[Any]]) -> bytes:
    """The requests' rows as concatenated ``Native`` blocks, made by clickhouse-connect's serializer
    (what a worker would add to make the INSERT read Native instead of JSON lines)."""
    from clickhouse_connect.datatypes.registry import get_from_name
    from clickhouse_connect.driver.insert import InsertContext
    from clickhouse_connect.driver.transform import NativeTransform

    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES

    types = [get_from_name(name) for name in OTEL_TRACES_TYPES]
    out = []
    for rows in requests:
        columns = [list(column) for column in zip(*rows, strict=True)]
        context = InsertContext("otel_traces", list(OTEL_TRACES_COLUMNS), types, columns, column_oriented=True)
        context.current_block = 1  # no HTTP "INSERT ... FORMAT Native" prefix
        out.append(b"".join(NativeTransform().build_insert(context, error_handler=_reraise)))
    return b"".join(out)


def _reraise(exc: Exception) -> None:
    raise exc


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


def acknowledged_vs_stored(server: ServerProcess, deadline: float = 120.0) -> str:
    """Once the backlog is written: spans acknowledged, verified stored (``GET /status``), and
    counted in ``otel_traces`` (every benchmark span is distinct, so the count must match)."""
    import json

    end = time.monotonic() + deadline
    while True:
        status = json.loads(urllib3.request("GET", f"{server.otlp_url}/status").data)
        if status["backlog_spans"] == 0 and status["stored_spans"] >= status["accepted_spans"]:
            break
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    rows = server.client().command("SELECT count() FROM otel_traces")
    accepted = status["accepted_spans"]
    verdict = "nothing lost" if rows == accepted and not status["rejected_spans"] else "MISMATCH"
    return f"{accepted:,} / {status['stored_spans']:,} / {rows:,} rows ({verdict})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each ingest run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2, 4], help="concurrent senders per run")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512, 2048], help="spans per request")
    parser.add_argument("--sustain", type=float, default=0.0, help="also one run this long (4 senders, 512)")
    parser.add_argument("--direct-batches", type=int, nargs="+", default=[512, 4096], help="spans per export()")
    parser.add_argument("--direct-insert-spans", type=int, default=8192, help="also the exporter holding this many")
    parser.add_argument("--skip-direct", action="store_true", help="do not measure the direct exporter")
    parser.add_argument("--direct-background", action="store_true",
                        help="also each direct cell with background=True (a sender thread INSERTs)")  # fmt: skip
    parser.add_argument("--skip-stages", action="store_true", help="do not measure the per-stage CPU costs")
    parser.add_argument("--skip-overview", action="store_true", help="do not measure the overview query")
    args = parser.parse_args()
    spans = genai_spans(max(4096, 4 * max(args.batches), 2 * max(args.direct_batches)), seed=1)
    print(f"{len(spans)} SDK spans, {len(FreshBodies(spans, BATCH).templates[0][0]) // BATCH} bytes/span (protobuf)")
    results: list[tuple[str, str]] = []
    if not args.skip_stages:
        for row in stage_costs(spans):
            results.append(row)
            print(*row, sep=": ", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="llmtrace-bench-"))
    server = ServerProcess(workdir / "data").wait_ready()
    try:
        for batch in args.batches:
            bodies = FreshBodies(spans, batch)
            for senders in args.senders:
                rate, cpu, load = bench_otlp(server, bodies, senders, args.seconds)
                label = f"OTLP/HTTP protobuf, {senders} senders x {batch} spans"
                results.append((label, f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)  [{load}]"))
                print(*results[-1], sep=": ", flush=True)
        if args.sustain:
            for i, line in enumerate(sustain(server, FreshBodies(spans, BATCH), 4, args.sustain)):
                results.append((f"sustained, 4 senders x {BATCH}, window {i + 1}", line))
        results.append(("OTLP spans acknowledged / verified / in otel_traces", acknowledged_vs_stored(server)))
        if not args.skip_direct:
            modes = [False, True] if args.direct_background else [False]
            for batch, background in itertools.product(args.direct_batches, modes):
                for senders in args.senders:
                    rate, cpu, load = bench_direct(server, spans, senders, args.seconds, batch, background=background)
                    label = f"direct ClickHouseSpanExporter, {senders} senders x {batch} spans" + (
                        ", background" if background else ""
                    )
                    results.append((label, f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)  [{load}]"))
                    print(*results[-1], sep=": ", flush=True)
            for senders in args.senders if args.direct_insert_spans else []:
                rate, cpu, load = bench_direct(server, spans, senders, args.seconds, BATCH, args.direct_insert_spans)
                label = f"direct exporter, {senders} senders x {BATCH}, insert_spans={args.direct_insert_spans}"
                results.append((label, f"{rate:9,.0f} spans/s  ({cpu:.0f} µs CPU/span)  [{load}]"))
                print(*results[-1], sep=": ", flush=True)
        if not args.skip_overview:
            latency, groups = bench_overview(server)
            results.append((f"overview query, 1M llm_calls ({groups} models)", f"{latency:9.1f} ms median of 5"))
    finally:
        code = server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(label) for label, _ in results)
    print(f"\n{'measure':<{width}}  result\n{'-' * width}  {'-' * 40}")
    for label, value in results:
        print(f"{label:<{width}}  {value}")
    print("targets: >= 50,000 spans/s OTLP ingest (4 senders, sustained); >= 20,000 spans/s direct exporter")
    return code


if __name__ == "__main__":
    sys.exit(main())
