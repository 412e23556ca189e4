"""Server CPU of the Traces page's text search, cold, per text and window, for several stores and
checkouts run interleaved (e.g. main's code on one copy of a store, a branch's on another).

Each store is a running ``llmtrace server`` (``--store LABEL=URL,PID,CHECKOUT``): the search is that
checkout's ``llmtrace/analytics/traces.py`` (loaded from its file), its CPU the server process's
utime + stime around the call (``/proc/PID/stat``), with ``use_query_condition_cache = 0`` so each run
is cold. Every round runs each store once per (text, window), in turn; the lists are checked equal
across stores. Prints the median and range of the rounds, and the load.

    python benchmarks/text_search.py --end 2026-12-06T10:00 \\
        --store main=http://127.0.0.1:28124,1234,/work/main --store branch=http://127.0.0.1:28123,5678,.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from llmtrace.analytics.filters import Filter  # noqa: E402
from llmtrace.store.client import connect  # noqa: E402

WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
TEXTS = ["kiss", "🎉", "漢字か", "zq", "xq-77", "answer 965705"]


def load_traces(checkout: str, label: str) -> ModuleType:
    """That checkout's traces module, under its own name (its SQL and its search_grams)."""
    path = Path(checkout) / "llmtrace" / "analytics" / "traces.py"
    spec = importlib.util.spec_from_file_location(f"traces_{label}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(store: dict[str, Any], f: Filter, text: str) -> tuple[float, pd.DataFrame]:
    before = server_cpu(store["pid"])
    found = store["traces"].list_traces(store["client"], f, text=text, limit=200)
    return server_cpu(store["pid"]) - before, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", action="append", required=True, help="LABEL=URL,PID,CHECKOUT")
    parser.add_argument("--end", required=True, help="window end, UTC (ISO), e.g. 2026-12-06T10:00")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text", action="append", help=f"texts (default {TEXTS})")
    parser.add_argument("--window", action="append", choices=list(WINDOWS), help="windows (default all)")
    args = parser.parse_args()
    end = datetime.fromisoformat(args.end).replace(tzinfo=timezone.utc)
    stores = []
    for spec in args.store:
        label, rest = spec.split("=", 1)
        url, pid, checkout = rest.split(",")
        client = connect(url)
        client.set_client_setting("use_query_condition_cache", 0)
        stores.append({"label": label, "client": client, "pid": int(pid), "traces": load_traces(checkout, label)})
    print(f"load {os.getloadavg()[0]:.1f}; server CPU s per cold search, median [min-max] of {args.rounds} rounds")
    print(f"{'text':<16}{'window':<8}" + "".join(f"{s['label']:>24}" for s in stores) + "  traces")
    for text in args.text or TEXTS:
        for name in args.window or list(WINDOWS):
            f = Filter(start=end - WINDOWS[name], end=end)
            cpu: dict[str, list[float]] = {s["label"]: [] for s in stores}
            for _ in range(args.rounds):
                frames = []
                for store in stores:
                    seconds, found = one(store, f, text)
                    cpu[store["label"]].append(seconds)
                    frames.append(found)
                for other in frames[1:]:
                    pd.testing.assert_frame_equal(frames[0], other)
            cells = "".join(f"{statistics.median(c):>10.2f} [{min(c):.2f}-{max(c):.2f}]" for c in cpu.values())
            print(f"{text:<16}{name:<8}{cells}  {len(frames[0])}  (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
