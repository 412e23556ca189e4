"""What otel_traces_content's text index costs an INSERT: the same 16,384-span block of content rows
inserted into copies of the table with no index, 024's (``arrayMap(v -> lower(v), Content)``) and
029's (``traces.FOLDED_CONTENT``), rounds interleaved, in an in-process chDB (its CPU is this
process's). Content as ``benchmarks/ingest.py``'s spans (~150 bytes a span) and ~3 KB of prose.

    python benchmarks/content_index_ingest.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmtrace.analytics import traces  # noqa: E402

INDEXES = {
    "none": "",
    "024": ", INDEX idx arrayMap(v -> lower(v), Content) TYPE text(tokenizer = ngrams(3))",
    "029": f", INDEX idx {traces.FOLDED_CONTENT} TYPE text(tokenizer = ngrams(3))",
}
WORDS = [
    "the", "customer", "asked", "whether", "order", "shipping", "refund", "invoice", "plan", "annual", "monthly",
    "paused", "account", "password", "reset", "delivery", "address", "changed", "billing", "error", "timeout",
    "model", "answer", "question", "please",
]  # fmt: skip


def contents(kind: str, spans: int, seed: int = 1) -> list[list[str]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(spans):
        if kind == "short":
            question = f'[{{"role":"user","parts":[{{"type":"text","content":"Where is order {i}?"}}]}}]'
            answer = '[{"role":"assistant","parts":[{"type":"text","content":"It ships today."}]}]'
        else:
            prose = " ".join(
                rnd.choice(WORDS) + (str(rnd.randint(0, 999)) if rnd.random() < 0.1 else "") for _ in range(420)
            )
            question = f'[{{"role":"user","parts":[{{"type":"text","content":"{prose}"}}]}}]'
            answer = '[{"role":"assistant","parts":[{"type":"text","content":"It ships today."}]}]'
        rows.append([question, answer])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--spans", type=int, default=16_384)
    args = parser.parse_args()
    from chdb.session import Session

    with tempfile.TemporaryDirectory(prefix="content-index-") as path:
        session = Session(path)
        for kind in ("short", "long"):
            session.query(f"CREATE TABLE src_{kind} (Timestamp DateTime64(9), TraceId String, Content Array(String)) "
                          "ENGINE = Memory")  # fmt: skip
            rows = contents(kind, args.spans)
            values = ",".join(f"(now64(9), '{i:032x}', {row!r})" for i, row in enumerate(rows))
            session.query(f"INSERT INTO src_{kind} VALUES {values}")
            size = session.query(f"SELECT avg(arraySum(arrayMap(v -> length(v), Content))) FROM src_{kind}", "TSV")
            cpu: dict[str, list[float]] = {name: [] for name in INDEXES}
            for _ in range(args.rounds):
                for name, index in INDEXES.items():
                    session.query(f"DROP TABLE IF EXISTS t_{name}")
                    columns = f"Timestamp DateTime64(9), TraceId String, Content Array(String) CODEC(ZSTD(1)){index}"
                    session.query(f"CREATE TABLE t_{name} ({columns}) ENGINE = MergeTree ORDER BY Timestamp")
                    before = time.process_time()
                    session.query(f"INSERT INTO t_{name} SELECT * FROM src_{kind}")
                    cpu[name].append((time.process_time() - before) / args.spans * 1e6)
            base = statistics.median(cpu["none"])
            print(f"{kind}: {float(str(size).strip()):.0f} bytes of content a span, µs CPU a span, median of "
                  f"{args.rounds} (load {os.getloadavg()[0]:.1f}):")  # fmt: skip
            for name, samples in cpu.items():
                median = statistics.median(samples)
                print(f"  {name:>5}: {median:7.2f} (index {median - base:+.2f}; min {min(samples):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
