"""Where the direct exporter's server CPU goes: the same spans INSERTed in several wire formats.

One ``llmtrace server`` subprocess; the same realistic GenAI spans (``benchmarks/ingest.py``) go
in as 4096-row INSERTs into ``otel_traces`` in each variant, interleaved round by round:

- ``cc-native-lz4``: clickhouse-connect as the exporter uses it (Native block, lz4 body);
- ``cc-native-none``: the same without body compression;
- ``raw-native``: a prebuilt Native block POSTed as is (no client encoding: the server's share);
- ``raw-json``: the rows as ``JSONCompactEachRow`` (what the server's own writer inserts);
- ``otlp``: the same spans as OTLP protobuf to the OTLP port (decode + the server's own INSERT);
- ``exporter``: ``ClickHouseSpanExporter.export()`` of 4096 spans (rows + block + INSERT).

Reported per variant: server CPU µs per span (server process + its workers, /proc) and client CPU
µs per span (this process), best and median of the rounds, and the machine's load.

    PYTHONPATH=. python benchmarks/direct_formats.py [--rounds 3] [--inserts 6] [--batch 4096]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import FreshBodies, Load, cpu_seconds, genai_spans, native_blocks
from tests.server_process import ServerProcess


def variants(server: ServerProcess, spans: list[Any], batch: int) -> dict[str, Callable[[], int]]:
    import clickhouse_connect

    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter, _insert
    from llmtrace.server.decode import encode_rows
    from llmtrace.store.span_rows import rows_from_spans

    chunk = spans[:batch]
    rows = rows_from_spans(chunk)
    native = native_blocks([rows])
    pool = urllib3.PoolManager(maxsize=2)
    lz4_client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
    plain_client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port, compress=False)
    exporter = ClickHouseSpanExporter(server.http_url, max_buffered_spans=2 * batch)
    bodies: list[FreshBodies] = []  # built on first use: locating every span in the body is slow
    counter = iter(range(10**9))

    def post(query: str, body: bytes) -> int:
        url = f"{server.http_url}/?query={quote(query)}"
        response = pool.request("POST", url, body=body)
        assert response.status == 200, response.data[:300]
        return batch

    def cc(client: Any) -> Callable[[], int]:
        def run() -> int:
            _insert(client, "otel_traces", rows_from_spans(chunk))
            return batch

        return run

    def otlp() -> int:
        if not bodies:
            bodies.append(FreshBodies(spans, batch))
        response = pool.request("POST", f"{server.otlp_url}/v1/traces", body=bodies[0].body(next(counter)),
                                headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        assert response.status == 200, response.data[:300]
        return batch

    def export() -> int:
        from opentelemetry.sdk.trace.export import SpanExportResult

        assert exporter.export(chunk) is SpanExportResult.SUCCESS
        exporter.force_flush()
        return batch

    return {
        "cc-native-lz4": cc(lz4_client),
        "cc-native-none": cc(plain_client),
        "raw-native": lambda: post("INSERT INTO otel_traces FORMAT Native", native),
        "raw-json": lambda: post(
            "INSERT INTO otel_traces FORMAT JSONCompactEachRow", encode_rows(rows_from_spans(chunk))
        ),
        "otlp": otlp,
        "exporter": export,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inserts", type=int, default=6, help="INSERTs per variant per round")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--only", nargs="*", default=None, help="variants to run")
    args = parser.parse_args()
    spans = genai_spans(2 * args.batch, seed=1)
    workdir = Path(tempfile.mkdtemp(prefix="llmtrace-formats-"))
    server = ServerProcess(workdir / "data").wait_ready()
    results: dict[str, list[tuple[float, float]]] = {}
    loads: list[str] = []
    try:
        runs = variants(server, spans, args.batch)
        names = args.only or list(runs)
        for run in runs.values():  # warm up every path once
            if run in [runs[n] for n in names]:
                run()
        server.client().command("SELECT 1")
        for _ in range(args.rounds):
            for name in names:
                load = Load(server.process.pid)
                server_before, client_before = cpu_seconds(server.process.pid), time.process_time()
                sent = sum(runs[name]() for _ in range(args.inserts))
                server.client().command("SELECT 1")  # the OTLP path: acknowledged spans are queryable
                server_cpu = cpu_seconds(server.process.pid) - server_before
                client_cpu = time.process_time() - client_before
                results.setdefault(name, []).append((1e6 * server_cpu / sent, 1e6 * client_cpu / sent))
                loads.append(load.report())
                print(f"{name:15s} server {1e6 * server_cpu / sent:6.1f}  client {1e6 * client_cpu / sent:6.1f} "
                      f"µs/span  [{loads[-1]}]", flush=True)  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.batch}-span INSERTs, {args.inserts} per variant per round, {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'variant':15s} {'server µs/span best / median':>30s} {'client µs/span best / median':>30s}")
    for name, cells in results.items():
        server_cpu = [cell[0] for cell in cells]
        client_cpu = [cell[1] for cell in cells]
        print(f"{name:15s} {min(server_cpu):14.1f} / {statistics.median(server_cpu):6.1f}"
              f" {min(client_cpu):21.1f} / {statistics.median(client_cpu):6.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
