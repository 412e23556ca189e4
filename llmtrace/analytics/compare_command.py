"""``llmtrace compare``: a candidate against a baseline, per metric, with a verdict (a deploy gate).

Examples::

    llmtrace compare --baseline release=v1.4.0 --candidate release=v1.5.0
    llmtrace compare --baseline prompt_version=3 --candidate prompt_version=4 --service summarizer --window 24h
    llmtrace compare --baseline model=gpt-4o --candidate model=gpt-4o-mini --format json
    llmtrace compare --baseline release=v1 --candidate release=v2 --fail-on worse   # exit 3 if worse

Exit status: 0, or 3 when ``--fail-on`` is met; 2 for a selector or filter naming nothing
(a typo never passes a gate); 1 when the store is unreachable or an option is invalid.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = ["FAIL_ON", "add_arguments", "run"]

# --fail-on X -> the verdicts that fail the gate
FAIL_ON: dict[str, tuple[str, ...]] = {"worse": ("worse",), "changed": ("worse", "better", "changed")}


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="what to compare against: release=v1 (name=value[,...])")
    parser.add_argument("--candidate", required=True, help="what is judged: release=v2 (name=value[,...])")
    parser.add_argument("--window", default="7d", help="time covered, ending now or at --until (default 7d)")
    parser.add_argument("--since", help="start of the window (ISO time; overrides --window)")
    parser.add_argument("--until", help="end of the window (ISO time; default now)")
    parser.add_argument("--url", help="ClickHouse URL (default: $LLMTRACE_CLICKHOUSE_URL, then http://localhost:8123)")
    for flag, what in (("service", "service"), ("environment", "environment"), ("provider", "provider"),
                       ("model", "model"), ("release", "release"), ("user", "user id"),
                       ("session", "session id")):  # fmt: skip
        parser.add_argument(f"--{flag}", action="append", default=[], help=f"only this {what}, both sides (repeatable)")
    parser.add_argument("--alpha", type=float, default=0.05, help="false-verdict rate for the report (default 0.05)")
    parser.add_argument("--min-samples", type=int, default=30, help="values needed on each side (default 30)")
    parser.add_argument("--min-effect", type=float, default=0.0, help="ignore relative changes below this, e.g. 0.05")
    parser.add_argument(
        "--lower-is-better", action="append", default=[], help="a score name where lower is better (repeatable)"
    )
    parser.add_argument("--fail-on", choices=list(FAIL_ON), help="exit 3 if any metric is worse (or changed at all)")
    parser.add_argument("--all", action="store_true", help="table: list every metric, not only verdicts")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(name: str, args: argparse.Namespace) -> int:
    from llmtrace.analytics.filters import SelectionError
    from llmtrace.store.client import MissingExtraError, StoreUnavailableError

    try:
        report = _compare(args)
    except SelectionError as exc:
        print(f"llmtrace compare: {exc}", file=sys.stderr)
        return 2
    except (StoreUnavailableError, MissingExtraError, ValueError) as exc:
        print(f"llmtrace compare: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("clickhouse_connect"):
            print(f"llmtrace compare: {exc}", file=sys.stderr)
            return 1
        raise
    if args.format == "json":
        sys.stdout.write(report.to_json() + "\n")
    else:
        write_table(report, args.all, sys.stdout)
    failing = args.fail_on and report.with_verdict(*FAIL_ON[args.fail_on])
    return 3 if failing else 0


def report_filter(args: argparse.Namespace, now: datetime | None = None) -> Any:
    """The window and dimension filters ``--window/--since/--until/--service/...`` describe."""
    from llmtrace.analytics.commands import parse_duration, parse_time
    from llmtrace.analytics.filters import Filter

    end = parse_time(args.until) if args.until else (now or datetime.now(timezone.utc))
    start = parse_time(args.since) if args.since else end - parse_duration(args.window)
    return Filter(
        start=start,
        end=end,
        services=tuple(args.service),
        environments=tuple(args.environment),
        providers=tuple(args.provider),
        models=tuple(args.model),
        releases=tuple(args.release),
        users=tuple(args.user),
        sessions=tuple(args.session),
    )


def _compare(args: argparse.Namespace) -> Any:
    from llmtrace.analytics.compare import compare
    from llmtrace.store.client import connect

    f = report_filter(args)
    client = connect(args.url)
    try:
        return compare(
            client,
            args.baseline,
            args.candidate,
            f,
            alpha=args.alpha,
            min_samples=args.min_samples,
            lower_is_better=args.lower_is_better,
            min_effect=args.min_effect,
        )
    finally:
        client.close()


def write_table(report: Any, show_all: bool, out: TextIO) -> None:
    """The report as text: a header, then one row per metric with a verdict (every one with --all)."""
    from llmtrace.store.commands import format_rows

    out.write(f"baseline:  {report.baseline.label}\ncandidate: {report.candidate.label}\n")
    out.write(f"window:    {report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC\n")
    out.write(f"method:    {report.method}, alpha {report.alpha:g}\n\n")
    rows = [r for r in report.results if show_all or r.verdict not in ("no_evidence", "insufficient_data")]
    if not rows:
        judged = len(report.with_verdict("no_evidence"))
        out.write(f"no evidence of a difference in {judged} metric(s) (--all to list them)\n")
        return
    table = [
        (r.metric, r.verdict, _num(r.baseline), _num(r.candidate), _num(r.difference, sign=True),
         f"[{_num(r.ci_low)}, {_num(r.ci_high)}]" if r.ci_low is not None else "-",
         f"{r.relative:+.1%}" if r.relative is not None else "-", r.baseline_n, r.candidate_n, r.detail)
        for r in rows
    ]  # fmt: skip
    columns = ["metric", "verdict", "baseline", "candidate", "diff", "interval", "rel", "n_base", "n_cand", "why"]
    format_rows(columns, table, "table", out)


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    if value in (float("inf"), -float("inf")):
        return "∞" if value > 0 else "-∞"
    text = f"{value:+.4g}" if sign else f"{value:.4g}"
    return text
