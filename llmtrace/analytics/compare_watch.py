"""``llmtrace watch --canary-baseline release=v1 --canary-candidate release=v2``: a rollback trigger.

At every check, the candidate's calls in the last ``--canary-window`` are compared with the
baseline's (:func:`llmtrace.analytics.compare.compare`); each metric judged ``worse`` becomes an
alert, sent once per ``--realert`` period while it lasts, like a drift verdict. Because the
intervals are always valid, checking every minute does not raise the false-alarm rate: a deploy
tool can roll back on the first alert. Until the candidate has calls in the window, nothing is
said (the canary has not started); a baseline with no calls is a configuration error.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import datetime
from typing import Any

from llmtrace.analytics.alerts import Alert
from llmtrace.analytics.groups import json_safe

__all__ = ["add_arguments", "canary_alerts", "worse_alerts"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--canary-baseline", help="canary: the release (prompt, model) to compare with, e.g. release=v1"
    )
    parser.add_argument("--canary-candidate", help="canary: alert when this is worse, e.g. release=v2")
    parser.add_argument("--canary-window", default="24h", help="canary: traffic judged at each check (default 24h)")
    parser.add_argument("--canary-alpha", type=float, default=0.05, help="canary: false-alarm rate (default 0.05)")


def canary_alerts(client: Any, args: argparse.Namespace, now: datetime) -> list[Alert]:
    """The alerts of one check: one per metric the candidate is worse on (none without a canary)."""
    from llmtrace.analytics.commands import dimension_filter, parse_duration
    from llmtrace.analytics.compare import Selector, compare
    from llmtrace.analytics.filters import SelectionError

    baseline, candidate = getattr(args, "canary_baseline", None), getattr(args, "canary_candidate", None)
    if not baseline and not candidate:
        return []
    if not (baseline and candidate):
        raise ValueError("a canary needs both --canary-baseline and --canary-candidate, e.g. release=v1 and release=v2")
    f = dimension_filter(args, now - parse_duration(args.canary_window), now)
    try:
        report = compare(client, Selector.parse(baseline), Selector.parse(candidate), f, alpha=args.canary_alpha)
    except SelectionError:
        if _has_calls(client, Selector.parse(baseline), f) and not _has_calls(client, Selector.parse(candidate), f):
            return []  # the canary has not started yet
        raise
    return worse_alerts(report)


def worse_alerts(report: Any) -> list[Alert]:
    """One alert per ``worse`` metric of a :class:`~llmtrace.analytics.compare.CompareReport`."""
    alerts = []
    for r in report.with_verdict("worse"):
        key = f"compare|{report.baseline.label}|{report.candidate.label}|{r.metric}|worse"
        change = f" ({r.relative:+.0%})" if r.relative is not None else ""
        text = (
            f":rotating_light: llmtrace canary: {report.candidate.label} is worse than {report.baseline.label} on "
            f"{r.metric}: {r.baseline:.4g} -> {r.candidate:.4g}{change}, interval [{r.ci_low:.4g}, {r.ci_high:.4g}]."
        )
        payload = json_safe({"type": "compare", "baseline": report.baseline.label,
                             "candidate": report.candidate.label, **asdict(r)})  # fmt: skip
        alerts.append(Alert(key, "compare", text, payload, thread=key))
    return alerts


def _has_calls(client: Any, selector: Any, f: Any) -> bool:
    from llmtrace.analytics import frame

    sql = f"SELECT count() AS n FROM llm_calls WHERE {f.where()} AND {selector.condition('s')}"
    return int(frame(client, sql, {**f.params(), **selector.params("s")})["n"][0]) > 0
