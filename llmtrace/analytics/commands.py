"""``llmtrace drift``, ``llmtrace anomalies`` and ``llmtrace watch``.

Examples::

    llmtrace drift --current 1d --baseline 7d --by service,model
    llmtrace drift --baseline release=v1.4.0 --current release=v1.5.0 --window 7d --format json
    llmtrace drift --baseline 2025-06-01..2025-06-08 --current 2025-06-08..2025-06-09
    llmtrace anomalies --since 24h --by service --format json
    llmtrace watch --every 1m --webhook https://hooks.slack.com/services/...
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

__all__ = ["add_arguments", "parse_duration", "parse_slices", "parse_time", "run"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``1h``, ``7d``, ``2w`` -> timedelta (ValueError naming the format otherwise)."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"cannot read duration {text!r}: use a number and a unit, e.g. 30m, 1h, 7d, 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time (``2025-06-01``, ``2025-06-01T12:00``); naive means UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: use ISO 8601, e.g. 2025-06-01 or 2025-06-01T12:00") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _dimension(text: str) -> tuple[str, str] | None:
    if "=" not in text:
        return None
    name, value = text.split("=", 1)
    from llmtrace.analytics.groups import parse_by

    return parse_by(name)[0], value


def parse_slices(baseline: str | None, current: str, window: str = "7d", now: datetime | None = None) -> Any:
    """The :class:`~llmtrace.analytics.drift.Comparison` the ``--baseline``/``--current`` pair means.

    ``current``: a duration ending now (``1d``), a fixed window ``A..B``, or ``dim=value``.
    ``baseline``: a duration just before the current window (``7d``; default: as long as
    it), a fixed window ``A..B``, or ``dim=value`` (then ``current`` must name the same
    dimension, and both sides cover ``window`` ending now).
    """
    from llmtrace.analytics.drift import Comparison, Slice
    from llmtrace.analytics.filters import utcnow

    now = now or utcnow()
    base_dim = _dimension(baseline) if baseline else None
    cur_dim = _dimension(current)
    if base_dim or cur_dim:
        if not (base_dim and cur_dim) or base_dim[0] != cur_dim[0]:
            raise ValueError(
                "compare one dimension's values on both sides, e.g. --baseline release=v1 --current release=v2"
            )
        return Comparison.versus(base_dim[0], base_dim[1], cur_dim[1], now - parse_duration(window), now)
    cur = _window(current, now)
    if baseline and ".." in baseline:
        base = _window(baseline, now)
    else:
        length = parse_duration(baseline) if baseline else cur.end - cur.start
        base = Slice(cur.start - length, cur.start)
    return Comparison(base, cur)


def _window(text: str, now: datetime) -> Any:
    from llmtrace.analytics.drift import Slice

    if ".." in text:
        first, last = text.split("..", 1)
        return Slice(parse_time(first), parse_time(last))
    return Slice(now - parse_duration(text), now)


# --------------------------------------------------------------------------- arguments
def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="ClickHouse URL (default: $LLMTRACE_CLICKHOUSE_URL, then http://localhost:8123)")
    parser.add_argument("--service", action="append", default=[], help="only this service (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    parser.add_argument("--environment", action="append", default=[], help="only this environment (repeatable)")
    if name == "drift":
        _drift_arguments(parser)
    elif name == "anomalies":
        _anomaly_arguments(parser, since="24h")
        parser.add_argument("--until", help="end of the window (ISO time; default: now)")
        parser.add_argument("--format", choices=("table", "json"), default="table")
    else:
        _anomaly_arguments(parser, since="24h")
        parser.add_argument("--every", default="1m", help="time between checks (default 1m)")
        parser.add_argument("--webhook", help="POST each new alert here as JSON with a Slack-compatible `text`")
        parser.add_argument(
            "--webhook-timeout", default="10s", help="give up on one delivery after this long in all (default 10s)"
        )
        parser.add_argument("--once", action="store_true", help="check once and exit")
        parser.add_argument(
            "--state", help="file remembering alerts already sent (default ~/.llmtrace/watch-state.json)"
        )
        parser.add_argument("--no-drift", action="store_true", help="check anomalies only")
        # whole days on both sides: traffic with daily peaks makes part-day windows look drifted
        parser.add_argument("--drift-current", default="1d", help="drift: recent window (default 1d)")
        parser.add_argument("--drift-baseline", default="7d", help="drift: the window before it (default 7d)")
        parser.add_argument("--realert", default="24h", help="re-send a drift alert still present after this long")
        from llmtrace.analytics import compare_watch

        compare_watch.add_arguments(parser)


def _drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--current", default="1d", help="1d (ending now) | A..B | release=Y (default 1d)")
    parser.add_argument("--baseline", help="7d (before current) | A..B | release=X (default: same length before)")
    parser.add_argument("--window", default="7d", help="time covered by dimension comparisons (default 7d)")
    parser.add_argument(
        "--by",
        default="",
        help="group by e.g. service,model (service, provider, model, "
        "release, prompt, prompt_version, environment, operation)",
    )
    parser.add_argument("--metrics", help="comma-separated subset of metrics")
    parser.add_argument("--min-samples", type=int, default=30, help="calls needed on each side (default 30)")
    parser.add_argument("--all", action="store_true", help="table: show every metric, not only changes")
    parser.add_argument("--fail-on", choices=("moderate", "major"), help="exit 3 if any verdict reaches this level")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _anomaly_arguments(parser: argparse.ArgumentParser, since: str) -> None:
    parser.add_argument("--since", default=since, help=f"window ending now (default {since})")
    parser.add_argument(
        "--by",
        default="auto",
        help="auto (default: service x model, service, provider and the whole app, reporting the most "
        "specific level) or one grouping, e.g. service,model",
    )
    parser.add_argument("--metrics", help="comma-separated subset: calls, error_rate, latency_p95_ms, ...")
    parser.add_argument("--step", help="bucket width, e.g. 5m or 1h (default: from the window)")
    parser.add_argument("--history", help="baseline history before the window (default 7d for hourly buckets)")
    parser.add_argument("--no-calls", action="store_true", help="skip call-level anomalies")


# --------------------------------------------------------------------------- running
def run(name: str, args: argparse.Namespace) -> int:
    from llmtrace.analytics.filters import SelectionError
    from llmtrace.store.client import MissingExtraError, StoreUnavailableError

    try:
        if name == "drift":
            return _run_drift(args, sys.stdout)
        if name == "anomalies":
            return _run_anomalies(args, sys.stdout)
        from llmtrace.analytics.alerts import watch_command

        return watch_command(args, sys.stdout)
    except SelectionError as exc:  # a typo in a filter: a usage error, never "no drift"
        print(f"llmtrace {name}: {exc}", file=sys.stderr)
        return 2
    except (StoreUnavailableError, MissingExtraError, ValueError) as exc:
        print(f"llmtrace {name}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("clickhouse_connect"):
            print(f"llmtrace {name}: {exc}", file=sys.stderr)
            if hint := _schema_hint(args, exc):
                print(f"llmtrace {name}: {hint}", file=sys.stderr)
            return 1
        raise


def _schema_hint(args: argparse.Namespace, exc: BaseException) -> str:
    """For a query that names what the store lacks: the schema files it has not applied, and the fix
    (an upgraded llmtrace reading a store that its server or ``llmtrace migrate`` has not upgraded)."""
    if not any(code in str(exc) for code in ("UNKNOWN_IDENTIFIER", "UNKNOWN_TABLE", "NO_SUCH_COLUMN")):
        return ""
    from llmtrace.store.client import StoreSettings, connect
    from llmtrace.store.migrations import client_runner, pending

    try:
        client = connect(args.url)
        try:
            missing = pending(client_runner(client))
        finally:
            client.close()
    except Exception:
        return ""
    if not missing:
        return ""
    url = StoreSettings.resolve(args.url).url
    return (
        f"the store's schema is older than this llmtrace ({len(missing)} schema file(s) not applied: "
        f"{', '.join(missing)}); run `llmtrace migrate --url {url}` (or restart `llmtrace server`)"
    )


def dimension_filter(args: argparse.Namespace, start: datetime, end: datetime) -> Any:
    from llmtrace.analytics.filters import Filter

    return Filter(
        start=start,
        end=end,
        services=tuple(args.service),
        models=tuple(args.model),
        environments=tuple(args.environment),
    )


def _metrics(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _run_drift(args: argparse.Namespace, out: TextIO) -> int:
    from llmtrace.analytics import drift
    from llmtrace.store.client import connect

    comparison = parse_slices(args.baseline, args.current, args.window)
    f = dimension_filter(args, comparison.current.start, comparison.current.end)
    client = connect(args.url)
    try:
        _check_drift_selection(client, comparison, f)
        report = drift.compare(
            client, comparison, args.by, f, metrics=_metrics(args.metrics), min_samples=args.min_samples
        )
    finally:
        client.close()
    if args.format == "json":
        out.write(report.to_json() + "\n")
    else:
        _drift_table(report, args.all, out)
    levels = {"moderate": ("moderate", "major"), "major": ("major",)}
    failing = args.fail_on and any(r.verdict in levels[args.fail_on] for r in report.results)
    return 3 if failing else 0


def _check_drift_selection(client: Any, comparison: Any, f: Any) -> None:
    """Filters must name known values and select calls on both sides; ``release=X`` must have calls."""
    from llmtrace.analytics.drift import dimension_values
    from llmtrace.analytics.filters import SelectionError, check_selection

    sides = [comparison.baseline, comparison.current]
    check_selection(client, f, list(dict.fromkeys((s.start, s.end) for s in sides)))
    dimension = comparison.current.dimension
    if dimension is None:
        return
    values = dimension_values(client, f, dimension, limit=1000)
    for side in sides:
        if side.value not in values:
            raise SelectionError(
                f"no calls with {dimension}={side.value!r} between {f.start:%Y-%m-%d %H:%M} and "
                f"{f.end:%Y-%m-%d %H:%M} UTC (--window); {dimension} values there: {', '.join(values) or 'none'}"
            )


def _drift_table(report: Any, show_all: bool, out: TextIO) -> None:
    from llmtrace.analytics.groups import label
    from llmtrace.store.commands import format_rows

    c = report.comparison
    out.write(f"baseline: {c.baseline.label}\ncurrent:  {c.current.label}\n\n")
    rows = [r for r in report.results if show_all or r.verdict != "none"]
    if not rows:
        out.write(f"no drift in {len(report.results)} metric(s) checked (--all to list them)\n")
        return
    table = [(label(r.group), r.metric, r.verdict, r.baseline_n, r.current_n, _stat(r), r.reason) for r in rows]
    format_rows(["series", "metric", "verdict", "n_base", "n_cur", "effect", "why"], table, "table", out)


def _stat(r: Any) -> str:
    if r.kind == "numeric":
        shift = "" if r.median_shift is None else f" median {r.median_shift:+.0%}"
        return f"PSI {r.psi:.2f}{shift}" if r.psi is not None else "-"
    return f"JS {r.js_distance:.2f}" if r.js_distance is not None else "-"


def _run_anomalies(args: argparse.Namespace, out: TextIO) -> int:
    from llmtrace.analytics.filters import check_selection
    from llmtrace.store.client import connect

    end = parse_time(args.until) if args.until else datetime.now(timezone.utc)
    client = connect(args.url)
    try:
        check_selection(client, dimension_filter(args, end - parse_duration(args.since), end))
        report = detect_from_args(client, args, end)
    finally:
        client.close()
    if args.format == "json":
        out.write(report.to_json() + "\n")
    else:
        _anomaly_table(report, out)
    return 0


def detect_from_args(client: Any, args: argparse.Namespace, end: datetime) -> Any:
    """Run anomaly detection as ``--since/--by/--metrics/--step/--history/--no-calls`` say."""
    from llmtrace.analytics import anomalies

    f = dimension_filter(args, end - parse_duration(args.since), end)
    return anomalies.detect(
        client,
        f,
        args.by,
        metrics=_metrics(args.metrics),
        step=int(parse_duration(args.step).total_seconds()) if args.step else None,
        history=parse_duration(args.history) if args.history else None,
        include_calls=not args.no_calls,
    )


def _anomaly_table(report: Any, out: TextIO) -> None:
    from llmtrace.analytics.groups import label
    from llmtrace.store.commands import format_rows

    out.write(
        f"window: {report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC, {report.step // 60} min buckets\n\n"
    )
    for line in report.warming_lines():
        out.write(line + "\n")
    if not report.anomalies:
        out.write("no anomalies\n")
        return
    # what each episode's observed and expected are (a share of calls past a bar, calls in the window), once
    # per kind below the table: "latency_p95_ms 1 vs 0.0001" reads as nothing without it
    measures = list(dict.fromkeys(a.measure for a in report.anomalies if a.measure))
    rows = [
        (
            a.severity,
            a.kind,
            label(a.series) + (f" user={a.user}" if a.user else ""),
            a.metric + (f" [{measures.index(a.measure) + 1}]" if a.measure else ""),
            a.direction,
            f"{a.start:%m-%d %H:%M}",
            f"{a.end:%m-%d %H:%M}",
            _short(a.observed),
            _short(a.expected),
            f"{a.score:.1f}",
            " ".join(t[:12] for t in a.trace_ids[:2]),
        )
        for a in report.anomalies
    ]
    columns = ["severity", "kind", "series", "metric", "dir", "start", "end", "observed", "expected", "score", "traces"]
    format_rows(columns, rows, "table", out)
    if measures:
        out.write("\nobserved and expected:\n")
        for number, measure in enumerate(measures, start=1):
            out.write(f"  [{number}] {measure}\n")


def _short(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 10000 else f"{value:,.0f}"
