"""Run an app's evaluator over a sample of stored LLM calls and write its scores to ``llm_scores``.

The sample is deterministic (calls ordered by a hash of their span id, first ``sample`` kept), and
calls that already have a score from this evaluator (``Source = 'eval:{name}'``) are skipped, so an
interrupted run started again finishes the same sample instead of drawing a new one. Scores are
inserted directly (the evaluator runs next to the store, not in the app). An evaluator that raises
on one call costs that call's score only: failures are counted and the first few reported.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from llmtrace import semconv as sc
from llmtrace.analytics.filters import Filter

EvalValue = float | int | bool | str
Evaluator = Callable[["StoredCall"], EvalValue | Mapping[str, EvalValue] | None]

_COLUMNS = (
    "c.Timestamp AS ts, c.TraceId AS trace_id, c.SpanId AS span_id, c.ServiceName AS service, "
    "if(c.ResponseModel != '', c.ResponseModel, c.RequestModel) AS model, c.Release AS release, "
    "c.PromptName AS prompt_name"
)
_CONTENT_KEYS = (sc.SYSTEM_INSTRUCTIONS, sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES)


@dataclass(frozen=True)
class StoredCall:
    """One stored LLM call as an evaluator sees it; content is parsed JSON ([] when not captured)."""

    trace_id: str
    span_id: str
    timestamp: datetime
    service: str
    model: str
    release: str
    prompt_name: str
    system_instructions: list[Any] = field(default_factory=list)
    input_messages: list[Any] = field(default_factory=list)
    output_messages: list[Any] = field(default_factory=list)

    def output_text(self) -> str:
        """The text parts of the output messages, joined: what most judges grade."""
        return "".join(
            part.get("content", "")
            for message in self.output_messages
            for part in message.get("parts", [])
            if isinstance(part, dict) and part.get("type") == "text"
        )


@dataclass
class EvalReport:
    """What a run did: calls evaluated, skipped as already scored, failed, and scores written."""

    evaluated: int = 0
    skipped: int = 0
    failed: int = 0
    scores: int = 0
    errors: list[str] = field(default_factory=list)


def evaluate(
    client: Any,
    evaluator: Evaluator,
    window: Filter,
    *,
    name: str | None = None,
    sample: int = 100,
    concurrency: int = 4,
    progress: TextIO | None = sys.stderr,
) -> EvalReport:
    """Score up to ``sample`` calls in ``window`` with ``evaluator`` (``concurrency`` threads: judges
    that call an LLM wait on the network). The evaluator returns one value (scored as ``name``), a
    mapping of score name to value, or None (nothing to score)."""
    if sample <= 0 or concurrency <= 0:
        raise ValueError("sample and concurrency must be positive, e.g. --sample 100 --concurrency 4.")
    score_name: str = name or str(getattr(evaluator, "__name__", "evaluator"))
    source = f"eval:{score_name}"
    calls, done = _pending(client, window, sample, source)
    report = EvalReport(skipped=done)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(evaluator, call): call for call in calls}
        for finished, future in enumerate(as_completed(futures), 1):
            call = futures[future]
            try:
                rows = _rows(call, score_name, future.result(), source)
            except Exception as exc:
                report.failed += 1
                if len(report.errors) < 5:
                    report.errors.append(f"{call.span_id}: {type(exc).__name__}: {exc}")
            else:
                _insert(client, rows)  # as each call finishes: an interrupted run keeps what it did
                report.evaluated += 1
                report.scores += len(rows)
            _progress(progress, finished, len(calls), report)
    return report


def _pending(client: Any, window: Filter, sample: int, source: str) -> tuple[list[StoredCall], int]:
    """The sample's calls not yet scored by ``source``, and how many of it were."""
    sql = f"""
        WITH picked AS (
            SELECT {_COLUMNS} FROM llm_calls AS c
            WHERE {window.where("c.Timestamp")}
            ORDER BY cityHash64(c.SpanId), c.SpanId LIMIT {{sample:UInt32}}
        )
        SELECT p.*, t.SpanAttributes AS attributes,
               (p.trace_id, p.span_id) IN (SELECT TraceId, SpanId FROM llm_scores WHERE Source = {{source:String}})
                   AS done
        FROM picked AS p
        LEFT JOIN (SELECT TraceId, SpanId, SpanAttributes FROM otel_traces
                   WHERE Timestamp >= {{start:DateTime64(6, 'UTC')}} - INTERVAL 1 HOUR
                     AND Timestamp < {{end:DateTime64(6, 'UTC')}}) AS t
            ON t.TraceId = p.trace_id AND t.SpanId = p.span_id
        ORDER BY cityHash64(p.span_id), p.span_id"""
    result = client.query(sql, parameters=window.params(sample=sample, source=source))
    calls, done = [], 0
    for row in result.named_results():
        if row["done"]:
            done += 1
        else:
            calls.append(_stored_call(row))
    return calls, done


def _stored_call(row: Mapping[str, Any]) -> StoredCall:
    attributes = row.get("attributes") or {}
    content = {key: _json_list(attributes.get(key, "")) for key in _CONTENT_KEYS}
    return StoredCall(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        timestamp=row["ts"],
        service=row["service"],
        model=row["model"],
        release=row["release"],
        prompt_name=row["prompt_name"],
        system_instructions=content[sc.SYSTEM_INSTRUCTIONS],
        input_messages=content[sc.INPUT_MESSAGES],
        output_messages=content[sc.OUTPUT_MESSAGES],
    )


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _rows(call: StoredCall, name: str, result: Any, source: str) -> list[list[Any]]:
    """llm_scores rows for one evaluator result; a bad value raises (counted as that call's failure)."""
    if result is None:
        values: Iterable[tuple[str, Any]] = []
    elif isinstance(result, Mapping):
        values = result.items()
    else:
        values = [(name, result)]
    now = datetime.now(timezone.utc)
    rows = []
    for score_name, value in values:
        number, label = _split(score_name, value)
        rows.append([now, call.trace_id, call.span_id, str(score_name), number, label, source, ""])
    return rows


def _split(name: str, value: Any) -> tuple[float, str]:
    if isinstance(value, bool):
        return float(value), ""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value), ""
    if isinstance(value, str):
        return 0.0, value
    raise TypeError(f"score {name!r}: the evaluator returned {value!r}; return a finite number, a bool or a str.")


_SCORE_COLUMNS = ["Timestamp", "TraceId", "SpanId", "Name", "Value", "StringValue", "Source", "Comment"]


def _insert(client: Any, rows: list[list[Any]]) -> None:
    if rows:
        client.insert("llm_scores", rows, column_names=_SCORE_COLUMNS)


def _progress(out: TextIO | None, finished: int, total: int, report: EvalReport) -> None:
    if out is None:
        return
    width = 30
    filled = width * finished // max(total, 1)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{total} calls, {report.failed} failed")
    if finished == total:
        out.write("\n")
    out.flush()


def load_evaluator(spec: str) -> Evaluator:
    """``package.module:function`` -> the function (ValueError naming the expected form otherwise)."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--evaluator {spec!r}: expected module:function, e.g. my_app.evals:helpfulness.")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise ValueError(f"--evaluator {spec!r}: {module_name} has no function {attribute!r}.")
    return function  # type: ignore[no-any-return]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``llmtrace evaluate``'s options (the CLI's command protocol)."""
    parser.add_argument("--evaluator", required=True, help="module:function taking a StoredCall")
    parser.add_argument("--name", help="score name for a single-value evaluator (default: the function's name)")
    parser.add_argument("--url", help="ClickHouse / llmtrace server URL (default: LLMTRACE_CLICKHOUSE_URL)")
    parser.add_argument("--last", default="1d", help="window ending now: 90m, 1h, 7d (default 1d)")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    for dimension in ("service", "environment", "release", "provider", "model"):
        parser.add_argument(f"--{dimension}", action="append", default=[], help="repeatable filter")


def run(name: str, args: argparse.Namespace) -> int:
    """Score a sample of stored calls; exit 1 if any evaluation failed."""
    from llmtrace.analytics.commands import parse_duration
    from llmtrace.store.client import connect

    sys.path.insert(0, "")  # the evaluator is the app's code, importable from where the command runs
    window = Filter.last(
        parse_duration(args.last),
        services=args.service,
        environments=args.environment,
        releases=args.release,
        providers=args.provider,
        models=args.model,
    )
    report = evaluate(
        connect(args.url), load_evaluator(args.evaluator), window,
        name=args.name, sample=args.sample, concurrency=args.concurrency,
    )  # fmt: skip
    print(f"{report.evaluated} calls evaluated, {report.skipped} already scored, {report.failed} failed, "
          f"{report.scores} scores written")  # fmt: skip
    for error in report.errors:
        print(f"  {error}", file=sys.stderr)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m llmtrace.evaluation …``, the same as ``llmtrace evaluate …``."""
    parser = argparse.ArgumentParser(prog="llmtrace evaluate", description=__doc__)
    add_arguments("evaluate", parser)
    return run("evaluate", parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
