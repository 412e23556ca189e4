"""Settings for llmtrace's own processes (the CLI, the dashboard), never applied to a host app's.

Transparent huge pages: on a kernel that backs anonymous memory with 2 MiB pages ("always", a
common default), the first touch of each fresh 2 MiB of a large numpy array makes the kernel zero
a whole huge page (or compact memory to find one), and that is system CPU of the touching process.
A 7-day ``anomalies.detect`` over 10M calls allocates ~300 MB of short-lived arrays; its own CPU
varied from 0.7 to 1.9 s between runs of the same code and data, all of it in system time (user
time 0.65-0.72 s every run). With huge pages off for the process, system time is 0.17-0.21 s in
every run (session 20, `benchmarks/anomalies_same.py`). ClickHouse's own guidance is the same
(huge pages off, or "madvise"), and the embedded engine (chdb://) shares the process.
"""

from __future__ import annotations

import ctypes
import sys

_PR_SET_THP_DISABLE = 41  # <linux/prctl.h>; per process, inherited by children


def disable_huge_pages() -> bool:
    """Turn transparent huge pages off for this process (Linux); whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc symbol (musl without prctl export, seccomp): keep going
        return False
