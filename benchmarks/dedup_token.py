"""What the direct exporter's deduplication token costs: the exporter of a git revision (default: the
one before tokens) against this checkout's, INSERT by INSERT (each first in turn) into one ``llmtrace server``.

Each INSERT is ``export()`` of ``--batch`` realistic GenAI spans (``benchmarks/ingest.py``), new ones
each time, and every one is checked to be stored. Reported per variant:
client CPU µs per span (this process), server CPU µs per span (server process + workers, /proc),
spans/s of wall time, median over the INSERTs, and the machine's load.

    PYTHONPATH=. python benchmarks/dedup_token.py [--old 9868391] [--inserts 12] [--batch 4096 512]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import Load, cpu_seconds, genai_spans
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
MODULE = "llmtrace/exporters/clickhouse.py"


def old_exporter_class(revision: str, scratch: Path) -> Any:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{MODULE}"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = scratch / "old_clickhouse_exporter.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_clickhouse_exporter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ClickHouseSpanExporter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="9868391", help="git revision of the exporter without tokens")
    parser.add_argument("--inserts", type=int, default=12, help="INSERTs per variant and batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[4096, 512])
    args = parser.parse_args()

    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

    scratch = Path(tempfile.mkdtemp(prefix="llmtrace-dedup-bench-"))
    server = ServerProcess(scratch / "data").wait_ready()
    try:
        classes = {"old": old_exporter_class(args.old, scratch), "token": ClickHouseSpanExporter}
        stored = 0
        for batch in args.batch:
            # Distinct spans for every INSERT: ClickHouse 26.9 skips a block equal to one of a table's
            # last ones (deduplicate_insert defaults to enable), which would flatter the variant without
            # tokens.
            pool = genai_spans(batch * (2 * args.inserts + 2), seed=batch)
            chunks = iter([pool[k : k + batch] for k in range(0, len(pool), batch)])
            exporters = {name: cls(server.http_url, max_buffered_spans=2 * batch) for name, cls in classes.items()}
            for exporter in exporters.values():  # connect, and warm the server's caches
                exporter.export(next(chunks))
            samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in exporters}
            load = Load(server.process.pid)
            for i in range(args.inserts):
                order = list(exporters.items())[:: 1 if i % 2 else -1]  # back to back, each first in turn
                for name, exporter in order:
                    chunk = next(chunks)
                    wall, mine, theirs = time.perf_counter(), time.process_time(), cpu_seconds(server.process.pid)
                    result = exporter.export(chunk)
                    assert result.name == "SUCCESS", name
                    samples[name].append((time.process_time() - mine, cpu_seconds(server.process.pid) - theirs,
                                          time.perf_counter() - wall))  # fmt: skip
            total = server.client().query("SELECT count() FROM otel_traces").result_rows[0][0]
            stored += batch * (2 * args.inserts + 2)
            assert total == stored, (total, stored)  # every INSERT stored, none skipped
            print(f"batch {batch} spans, {args.inserts} INSERTs per variant, {load.report()}")
            for name, runs in samples.items():
                client = statistics.median(r[0] for r in runs) / batch * 1e6
                served = statistics.median(r[1] for r in runs) / batch * 1e6
                rate = batch / statistics.median(r[2] for r in runs)
                print(f"  {name:6} client {client:6.1f} µs/span  server {served:6.1f} µs/span  {rate:8.0f} spans/s")
            for exporter in exporters.values():
                exporter.shutdown()
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
