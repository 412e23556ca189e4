"""The volume's expectations are computed from a query of the calls alone while the store computes
the counts (``anomalies_levels.early_volume``): they serve only where the counts hold the same
leaves and calls, so the report is the one computed from the counts, whatever arrives between.

A spy on ``leaf_volume`` (the real function, counted) tells which path a detection took.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from llmtrace.analytics import anomalies, anomalies_levels
from llmtrace.analytics.anomalies import AnomalyReport, plan
from llmtrace.analytics.anomalies_levels import VolumeSide, levels_for
from llmtrace.analytics.anomalies_sql import rollup_answers
from llmtrace.analytics.filters import Filter
from tests.test_anomalies_beside import InTurn
from tests.test_anomalies_demo import COLUMNS, END, _rows
from tests.test_anomalies_demo import store as _store
from tests.test_anomalies_demo import store_url as _store_url

store, store_url = _store, _store_url  # the demo's week of calls in a chDB directory (one a process)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the volume computations (the real one runs)."""
    runs: list[int] = []
    real = anomalies_levels.leaf_volume

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(anomalies_levels, "leaf_volume", counted)
    return runs


def _detect(client: Any, days: int = 7, **kwargs: Any) -> AnomalyReport:
    return anomalies.detect(client, Filter(start=END - timedelta(days=days), end=END), now=END, **kwargs)


@pytest.mark.parametrize(
    ("days", "kwargs"),
    [(7, {}), (7, {"by": "service,model"}), (4, {"step": 60})],
    ids=["week-rollup", "week-by-service-model", "four-days-by-minute"],
)
def test_the_volume_read_beside_the_counts_serves_and_is_the_one_computed_from_them(
    store: Any, monkeypatch: pytest.MonkeyPatch, days: int, kwargs: dict[str, Any]
) -> None:
    p = plan(Filter(start=END - timedelta(days=days), end=END), kwargs.get("step"), None, END)
    by = kwargs.get("by", anomalies.DEFAULT_BY)
    keys = tuple(dict.fromkeys(k for lv in levels_for(by) for k in lv.keys))
    # the week reads the 5-minute rollup; by the minute, the calls themselves (both calls queries)
    assert rollup_answers(keys, p.step) == (kwargs.get("step") is None)
    runs = _spy(monkeypatch)
    early = _detect(store, days, **kwargs)
    assert len(runs) == 1  # computed once, before the counts, and served
    monkeypatch.setattr(VolumeSide, "serves", lambda self, leaves, calls: False)
    again = _detect(store, days, **kwargs)
    assert len(runs) == 3  # computed before the counts, then again from them
    assert early.to_dict() == again.to_dict()
    assert any(a.metric == "calls" for a in early.anomalies), "no volume finding: the comparison says little"


def test_calls_that_arrive_between_the_two_reads_are_judged_as_the_counts_hold_them(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In turn (one query at a time): the calls are read, a burst of calls lands, then the counts are
    read. The volume computed before the burst cannot serve: the report is the one read afterwards,
    burst included, not a mix of the two."""
    runs = _spy(monkeypatch)
    real = anomalies.early_volume
    burst = _burst()

    def then_a_burst(client: Any, *args: Any) -> VolumeSide:
        side = real(client, *args)
        store.insert("llm_calls", burst, column_names=COLUMNS)
        return side

    monkeypatch.setattr(anomalies, "early_volume", then_a_burst)
    raced = _detect(InTurn(store))
    assert len(runs) == 2  # the early volume was set aside
    monkeypatch.setattr(anomalies, "early_volume", real)
    settled = _detect(store)
    assert len(runs) == 3
    assert raced.to_dict() == settled.to_dict()
    assert _rises_at(settled, burst[0][0]), "the burst is not in the report: the comparison says little"


def _burst() -> list[tuple[Any, ...]]:
    """search-api's calls of one quiet hour, 30 times over, an hour before the end."""
    day = timedelta(days=1)
    hour = [r for r in _rows() if r[3] == "search-api" and END - day - timedelta(hours=1) <= r[0] < END - day]
    assert hour, "no search-api calls in the hour a day before"
    copies = [(i, r) for i in range(30) for r in hour]
    return [(r[0] + day, f"{n:030x}ee", f"{n:014x}ee", *r[3:]) for n, (i, r) in enumerate(copies)]


def _rises_at(report: AnomalyReport, when: Any) -> bool:
    return any(a.metric == "calls" and a.direction == "up" and a.start <= when < a.end for a in report.anomalies)
