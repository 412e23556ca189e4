"""Latency spikes of a sparse series, seen per output token (schema 032, ``latency_p95_ms_per_token``), and a
reasoning model's slow thinking, seen per reasoning token (``ttft_p95_ms_per_token``).

A reasoning model's durations spread with the lengths of its answers (20 s to 20 minutes), so a
40-minute slowdown that hits 4 calls with short answers leaves every duration under twice the usual
p90; per output token those calls are 6x their usual pace. Real spans go through ``otel_traces`` and
the views into the anomaly rollup, and ``anomalies.detect`` reads them back: the spike is found and
said to be per token, a week without it has no latency episode, and neither has a series whose
durations do not follow its answers' lengths at all (each per-token time a ratio of two spreads).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from llmtrace import semconv
from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.conftest_store import otel_row
from tests.test_anomaly_rollup import fresh as _fresh  # a new database with the whole schema
from tests.test_anomaly_rollup import store as _store  # one chDB directory a process: theirs
from tests.test_anomaly_rollup import store_url as _store_url

store, store_url, fresh = _store, _store_url, _fresh

END = datetime(2026, 12, 3, 0, tzinfo=timezone.utc)
SPIKE = END - timedelta(hours=9, minutes=40)  # 40 minutes from 14:20 the day before the end
PACE_MS = 15.0  # usual generation time per output token


def _arrivals(rng: np.random.Generator, spike: bool) -> Iterator[datetime]:
    """Three days of calls ~7.5 minutes apart; ``spike``: none drawn in the spike's 40 minutes."""
    t = END - timedelta(days=3)
    while t < END:
        t += timedelta(minutes=float(rng.exponential(7.5)))
        if not (spike and SPIKE <= t < SPIKE + timedelta(minutes=40)):
            yield t


def _calls(seed: int, spike: bool, paced: bool = True) -> list[tuple[object, ...]]:
    """Three days of one sparse series (~8 calls an hour, answers of 300-10,000 tokens); ``spike``: 4
    calls of short answers in 40 minutes at 6x the pace; ``paced=False``: durations independent of the
    answers' lengths (as some generators draw them)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in _arrivals(rng, spike):
        tokens = int(np.exp(rng.uniform(np.log(300), np.log(10_000))))
        if paced:
            ms = tokens * PACE_MS * float(np.exp(rng.normal(0, 0.15)))
        else:
            ms = 60_000 * float(np.exp(rng.normal(0, 0.6)))
        rows.append(_row(t, tokens, ms))
    if spike:
        for i, tokens in enumerate((400, 650, 500, 800)):
            rows.append(_row(SPIKE + timedelta(minutes=3 + 10 * i), tokens, tokens * PACE_MS * 6))
    return rows


def _thinking(seed: int, spike: bool) -> list[tuple[object, ...]]:
    """Three days of a reasoning model's streams (~8 an hour): 1,000-10,000 reasoning tokens before the
    first visible one at ~13 ms each; ``spike``: 4 streams of short thinking in 40 minutes at 7x that pace,
    whose first tokens (55-80 s) still come sooner than a long thought's usually does."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in _arrivals(rng, spike):
        reasoning = int(np.exp(rng.uniform(np.log(1000), np.log(10_000))))
        ttft = reasoning * 13.0 * float(np.exp(rng.normal(0, 0.15)))
        rows.append(_row(t, reasoning + 500, ttft + 500 * PACE_MS, reasoning, ttft))
    if spike:
        for i, reasoning in enumerate((600, 750, 900, 800)):
            ttft = reasoning * 13.0 * 7
            at = SPIKE + timedelta(minutes=3 + 10 * i)
            rows.append(_row(at, reasoning + 500, ttft + 500 * PACE_MS, reasoning, ttft))
    return rows


def _row(at: datetime, tokens: int, ms: float, reasoning: int = 0, ttft_ms: float | None = None) -> tuple[object, ...]:
    attributes = {
        semconv.OPERATION_NAME: "chat",
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: "o3",
        semconv.USAGE_INPUT_TOKENS: "2000",
        semconv.USAGE_OUTPUT_TOKENS: str(tokens),
        semconv.USAGE_REASONING_OUTPUT_TOKENS: str(reasoning),
        semconv.RESPONSE_FINISH_REASONS: '["stop"]',
    }
    if ttft_ms is not None:
        attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = str(ttft_ms / 1000)
    start_ns = int(at.timestamp() * 1e9)
    return otel_row(attributes, service_name="code-review", start_ns=start_ns, duration_ns=int(ms * 1e6))


def episodes(client: ChdbClient, rows: list[tuple[object, ...]], metric: str, end: datetime, days: int) -> list[Any]:
    """Store ``rows`` and return ``metric``'s episodes over the ``days`` before ``end``, by service and model."""
    client.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    f = Filter(start=end - timedelta(days=days), end=end)
    report = anomalies.detect(client, f, by="service,model", now=end, include_calls=False)
    return report.find(metric, kind="episode")


def poisson_hours(
    rng: np.random.Generator, start: datetime, end: datetime, per_hour: Callable[[datetime], float]
) -> Iterator[datetime]:
    """Call times from ``start`` to ``end``: each hour ``per_hour(hour)`` calls on average, uniform within it."""
    hour = start
    while hour < end:
        for _ in range(rng.poisson(per_hour(hour))):
            at = hour + timedelta(seconds=float(rng.uniform(0, 3600)))
            if at < end:
                yield at
        hour += timedelta(hours=1)


def exponential_arrivals(
    rng: np.random.Generator, start: datetime, end: datetime, **mean_gap: float
) -> Iterator[datetime]:
    """Call times after ``start`` and before ``end``, the gaps exponential (``minutes=2.0``: 2 minutes
    on average), drawn one by one between the caller's own draws."""
    ((unit, scale),) = mean_gap.items()
    t = start
    while True:
        t += timedelta(**{unit: float(rng.exponential(scale))})
        if t >= end:
            return
        yield t


def slowed_calls(
    rng: np.random.Generator,
    start: datetime,
    end: datetime,
    per_hour: Callable[[datetime], float],
    tokens: tuple[float, float],
    spread: float,
    slow: tuple[datetime, timedelta, float],
) -> list[tuple[object, ...]]:
    """Calls of :func:`poisson_hours`, answers uniform in ``tokens`` at ~12 ms a token (lognormal,
    sigma ``spread``); ``slow``: (from, for how long, how many times slower)."""
    slow_from, slow_for, times = slow
    rows = []
    for at in poisson_hours(rng, start, end, per_hour):
        count = int(rng.uniform(*tokens))
        ms = count * 12.0 * float(np.exp(rng.normal(0, spread)))
        if slow_from <= at < slow_from + slow_for:
            ms *= times
        rows.append(_row(at, count, ms))
    return rows


def _latency(client: ChdbClient, rows: list[tuple[object, ...]], metric: str = "latency_p95_ms") -> list[Any]:
    return episodes(client, rows, metric, END, days=3)


def test_a_sparse_series_spike_hidden_in_its_durations_is_found_per_output_token(fresh: ChdbClient) -> None:
    rows = _calls(seed=1, spike=True)
    usual = sorted(r[12] for r in rows[:-4])  # type: ignore[type-var]
    assert max(r[12] for r in rows[-4:]) < 2 * usual[int(0.9 * len(usual))]  # type: ignore[operator]
    found = _latency(fresh, rows)
    assert [a.start <= SPIKE + timedelta(minutes=40) and a.end >= SPIKE for a in found] == [True]
    (episode,) = found
    assert "per output token" in episode.measure and episode.events is not None and episode.events >= 3
    assert episode.series == {"service": "code-review", "model": "o3"}


def test_the_table_says_what_a_per_token_episodes_numbers_are(fresh: ChdbClient) -> None:
    """``latency_p95_ms 0.75 vs 0.0001`` means nothing alone: the row points to its measure below the table."""
    from llmtrace.analytics.commands import _anomaly_table

    fresh.insert("otel_traces", _calls(seed=1, spike=True), column_names=OTEL_TRACES_COLUMNS)
    f = Filter(start=END - timedelta(days=3), end=END)
    report = anomalies.detect(fresh, f, by="service,model", now=END, include_calls=False)
    out = io.StringIO()
    _anomaly_table(report, out)
    text = out.getvalue()
    (row,) = [line for line in text.splitlines() if "latency_p95_ms [" in line]
    number = row.split("latency_p95_ms [")[1].split("]")[0]
    assert f"  [{number}] share of calls slower per output token than three times the usual p90" in text


def test_a_reasoning_models_slow_thinking_is_found_per_reasoning_token(fresh: ChdbClient) -> None:
    rows = _thinking(seed=8, spike=True)
    found = _latency(fresh, rows, "ttft_p95_ms")
    assert [a.start <= SPIKE + timedelta(minutes=40) and a.end >= SPIKE for a in found] == [True]
    assert "per reasoning token" in found[0].measure


def test_a_reasoning_models_usual_week_has_no_ttft_episode(fresh: ChdbClient) -> None:
    assert _latency(fresh, _thinking(seed=9, spike=False), "ttft_p95_ms") == []


@pytest.mark.parametrize("seed", [2, 3])
def test_the_same_weeks_without_a_spike_have_no_latency_episode(fresh: ChdbClient, seed: int) -> None:
    assert _latency(fresh, _calls(seed=seed, spike=False)) == []


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_durations_that_do_not_follow_the_answers_raise_no_per_token_episode(fresh: ChdbClient, seed: int) -> None:
    found = _latency(fresh, _calls(seed=seed, spike=False, paced=False))
    assert [a for a in found if "per output token" in a.measure] == []


def test_a_store_not_yet_migrated_to_032_gets_a_clear_error_naming_the_fix(
    store: Any,
    store_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An upgraded llmtrace reading a store its server or ``llmtrace migrate`` has not upgraded: the query's
    error, then the schema file missing and the command that adds it; after it, the same command works."""
    from llmtrace import cli
    from llmtrace.store.migrations import schema_files

    name = f"old_{uuid.uuid4().hex[:8]}"
    store.command(f"CREATE DATABASE {name}")
    url = f"{store_url}?database={name}"
    client = ChdbClient.open(store_url.removeprefix("chdb://"), database=name)
    try:
        older = [p for p in schema_files() if p.name < "032_"]
        apply_migrations(client_runner(client), files=older)
        client.insert("otel_traces", _calls(seed=7, spike=False)[:50], column_names=OTEL_TRACES_COLUMNS)
        args = ["anomalies", "--url", url, "--since", "3d", "--until", END.isoformat(), "--by", "service,model",
                "--no-calls"]  # fmt: skip
        assert cli.main(args) == 1
        err = capsys.readouterr().err
        assert "PerToken" in err and "032_anomaly_rollup_per_token.sql" in err
        assert f"llmtrace migrate --url chdb://{store_url.removeprefix('chdb://')}" in err
        assert cli.main(["migrate", "--url", url]) == 0
        capsys.readouterr()
        assert cli.main(args) == 0, capsys.readouterr().err
    finally:
        client.close()
        store.command(f"DROP DATABASE {name} SYNC")
