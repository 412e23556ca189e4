"""The direct exporter as ``instrument(clickhouse_url=...)`` builds it, checkout against checkout.

One ``llmtrace server``; for each round, each checkout (``--tree``, its own ``PYTHONPATH``) runs in a
child process, in alternating order: the exporter ``instrument(clickhouse_url=url)`` builds there
(or ``background=True`` with ``--max-buffered`` / ``--insert-spans``) fed ``--batch``-span exports
of realistic GenAI spans (``benchmarks/ingest.py``) back to back for ``--seconds`` (as a
``BatchSpanProcessor``'s worker that always has a batch ready; ``--rate`` paces them), then
``force_flush()``. Reported per run: spans/s acknowledged, client CPU per span (the process; the
exporting thread and the sender thread apart), server CPU per span (server + workers, /proc),
INSERTs and their mean size, the share of wall time ``export()`` spent waiting, spans stored
(counted in ``otel_traces``) and dropped, and the machine's load and the others' share of the cores.

    python benchmarks/direct_exporter.py --tree /path/to/old --tree . [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def child(url: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """One run in this process (the checkout on ``PYTHONPATH``)."""
    sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0])
    from opentelemetry.sdk.trace.export import SpanExportResult

    from benchmarks.ingest import Load, cpu_seconds, genai_spans
    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

    seconds, batch = args.seconds, args.batch
    spans = genai_spans(8192, seed=1)
    batches = [spans[i : i + batch] for i in range(0, len(spans) - batch + 1, batch)]
    kwargs = {"max_buffered_spans": args.max_buffered} if args.max_buffered else {}
    if args.insert_spans:
        kwargs["insert_spans"] = args.insert_spans
    if kwargs:
        exporter = ClickHouseSpanExporter(url, background=True, **kwargs)
    else:  # what instrument(clickhouse_url=url) builds in that checkout
        from llmtrace import config
        from llmtrace._setup import _build_exporter

        exporter = _build_exporter(config.resolve(known_providers=(), env={}, clickhouse_url=url)).exporter
    exporter.export(batches[0])  # connect and start the sender outside the measured time
    exporter.force_flush()
    inserts: list[int] = []
    sender_cpu = [0.0]
    send = exporter._send

    def counted(block: Any) -> Any:
        started = time.thread_time()
        try:
            return send(block)
        finally:
            sender_cpu[0] += time.thread_time() - started
            inserts.append(block.spans if hasattr(block, "spans") else len(block.rows))

    exporter._send = counted  # type: ignore[method-assign]
    exported, dropped = exporter.exported_spans, exporter.dropped_spans
    load = Load(server_pid)
    cpu, server, wall, thread = time.process_time(), cpu_seconds(server_pid), time.monotonic(), time.thread_time()
    acked, waited, rounds = 0, 0.0, 0
    deadline = wall + seconds
    while time.monotonic() < deadline:
        if args.rate:  # paced: this many spans/s at most, as an app below the exporter's limit
            ahead = wall + rounds * batch / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        chunk = batches[rounds % len(batches)]
        rounds += 1
        before, before_cpu = time.monotonic(), time.thread_time()
        if exporter.export(chunk) is SpanExportResult.SUCCESS:
            acked += len(chunk)
        waited += (time.monotonic() - before) - (time.thread_time() - before_cpu)
    export_cpu = time.thread_time() - thread
    assert exporter.force_flush(), "flush failed"
    elapsed = time.monotonic() - wall
    client = time.process_time() - cpu
    server_cpu = cpu_seconds(server_pid) - server
    report = load.report()
    result = {
        "spans_s": acked / elapsed,
        "client_us": 1e6 * client / acked,
        "export_thread_us": 1e6 * export_cpu / acked,
        "sender_thread_us": 1e6 * sender_cpu[0] / acked,
        "server_us": 1e6 * server_cpu / acked,
        "inserts": len(inserts),
        "mean_insert": sum(inserts) / max(1, len(inserts)),
        "export_waiting": waited / elapsed,
        "acked": acked,
        "warmup": len(batches[0]),
        "exported": exporter.exported_spans - exported,
        "dropped": exporter.dropped_spans - dropped,
        "load": report,
    }
    exporter.shutdown()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="a checkout to measure (repeat; default: this)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=512, help="spans per export (a BatchSpanProcessor's default)")
    parser.add_argument("--max-buffered", type=int, help="max_buffered_spans (default: the exporter's)")
    parser.add_argument("--insert-spans", type=int, help="insert_spans (default: the exporter's)")
    parser.add_argument("--rate", type=float, help="export at most this many spans/s (default: back to back)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "SERVER_PID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.server_process import ServerProcess

    trees = [Path(tree).resolve() for tree in args.tree] or [ROOT]
    workdir = Path(tempfile.mkdtemp(prefix="llmtrace-direct-"))
    server = ServerProcess(workdir / "data").wait_ready()
    lines = []
    try:
        count = server.client()
        for round_ in range(args.rounds):
            for tree in trees if round_ % 2 == 0 else trees[::-1]:
                before = int(count.command("SELECT count() FROM otel_traces"))
                env = {**os.environ, "PYTHONPATH": str(tree)}
                command = [sys.executable, str(Path(__file__).resolve()), "--child", server.http_url,
                           str(server.process.pid), "--seconds", str(args.seconds),
                           "--batch", str(args.batch)]  # fmt: skip
                for option in ("max_buffered", "insert_spans", "rate"):
                    if getattr(args, option):
                        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
                out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                stored = int(count.command("SELECT count() FROM otel_traces")) - before - run["warmup"]
                line = (
                    f"round {round_} {tree.name:>10}: {run['spans_s']:8,.0f} spans/s  "
                    f"client {run['client_us']:5.1f} µs/span "
                    f"(export thread {run['export_thread_us']:5.1f}, sender {run['sender_thread_us']:5.1f})  "
                    f"server {run['server_us']:5.1f}  {run['inserts']} INSERTs of {run['mean_insert']:,.0f}  "
                    f"export waiting {100 * run['export_waiting']:.0f}%  stored {stored:,} of {run['acked']:,} acked "
                    f"(dropped {run['dropped']:,})  [{run['load']}]"
                )
                lines.append(line)
                print(line, flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
