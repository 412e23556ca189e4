"""A series that joins or leaves a group is not a rate incident of the group (a canary next to a
provider's old series; a model retired after a migration)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from llmtrace.analytics import anomalies, synthetic
from llmtrace.analytics.anomalies_members import Unsettled, fold, settled_rows
from llmtrace.analytics.anomalies_scan import Scan, Window
from llmtrace.analytics.filters import Filter

H = timedelta(hours=1)
# pinned to 01:00 UTC (not the run's own hour): the incident then falls in the traffic's afternoon
END = (datetime.now(timezone.utc) - H).replace(hour=1, minute=0, second=0, microsecond=0)
OLD = (
    synthetic.Series("shop", "gpt-4o", calls_per_hour=240.0, truncation_rate=0.001),
    synthetic.Series("wiki", "gpt-4o-mini", calls_per_hour=120.0, truncation_rate=0.001),
)
# the canary cuts 8% of its outputs from its first call on: that is how it is, not a change
CANARY = synthetic.Series("checkout", "gpt-4.1-nano", calls_per_hour=300.0, truncation_rate=0.05)
JOINED = END - 18 * H
# a new model of an old service that fails 40% of its calls from its first one: an incident of the service
BROKEN = synthetic.Series("shop", "gpt-4.1", calls_per_hour=120.0, error_rate=0.4, truncation_rate=0.001)
BROKEN_FROM = END - 5 * H
# a service moves its traffic off its careful model 10 hours before the end; the model it keeps cuts
# 6% of its outputs, as it always did: the service's rate moves from ~1.3% to 6% with no series changing
KEPT = synthetic.Series("notes", "claude-haiku-4-5", provider="anthropic", calls_per_hour=100.0, truncation_rate=0.06)
RETIRED = synthetic.Series("notes", "claude-3-haiku", provider="anthropic", calls_per_hour=400.0, truncation_rate=0.001)
RETIRED_AT = END - 10 * H
MIGRATED = synthetic.Event("volume", 0, RETIRED_AT, factor=5.0)
# ... while both old series really do cut 30% of their outputs for an hour
INCIDENT = [synthetic.Event("truncation", i, END - 8 * H, END - 7 * H, factor=0.3) for i in range(2)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    old = synthetic.Scenario(end=END, days=3, series=OLD, events=tuple(INCIDENT), seed=11)
    client = synthetic.seed_store(f"chdb://{tmp_path_factory.mktemp('newcomers')}", old)
    synthetic.insert(client, synthetic.Scenario(end=END, days=18 / 24, series=(CANARY,), seed=12))
    synthetic.insert(client, synthetic.Scenario(end=END, days=5 / 24, series=(BROKEN,), seed=13))
    synthetic.insert(client, synthetic.Scenario(end=END, days=3, series=(KEPT,), events=(MIGRATED,), seed=14))
    synthetic.insert(client, synthetic.Scenario(end=RETIRED_AT, days=3 - 10 / 24, series=(RETIRED,), seed=15))
    yield client
    client.close()


@pytest.fixture(scope="module")
def episodes(store: Any) -> list[Any]:
    return anomalies.detect(store, Filter(start=END - 24 * H, end=END), include_calls=False, now=END).episodes()


@pytest.fixture(scope="module")
def truncations(episodes: list[Any]) -> list[Any]:
    return [a for a in episodes if a.metric == "truncation_rate"]


def _in_incident(a: Any) -> bool:
    return a.start < INCIDENT[0].end + H and a.end > INCIDENT[0].start


def test_the_newcomer_raises_no_rate_episode_of_its_groups(truncations: list[Any]) -> None:
    # before: provider=openai (and the app) "truncation_rate up" from the canary's first hours
    outside = [a.summary for a in truncations if not _in_incident(a)]
    assert all("checkout" in s for s in outside), outside


def test_a_retired_model_raises_no_rate_episode_of_its_groups(truncations: list[Any]) -> None:
    # before: service=notes (and provider=anthropic) "truncation_rate up" from the retirement on
    assert not [a.summary for a in truncations if "notes" in a.summary or "anthropic" in a.summary]


def test_an_incident_of_the_old_series_during_its_warm_up_is_still_found(truncations: list[Any]) -> None:
    found = [a for a in truncations if _in_incident(a)]
    assert found, [a.summary for a in truncations]
    assert all(a.series.get("service") != "checkout" for a in found)


def test_a_newcomer_failing_from_its_first_call_is_an_incident_of_its_service(episodes: list[Any]) -> None:
    errors = [a for a in episodes if a.metric == "error_rate" and a.end > BROKEN_FROM]
    assert any(a.series.get("service") == "shop" or a.series.get("provider") == "openai" for a in errors), [
        a.summary for a in episodes
    ]


def test_settled_rows_leave_out_late_joiners_while_young_and_leavers_after_their_last_call() -> None:
    member = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 1, 1], [1, 0, 0, 1, 0]], dtype=float)
    # leaf 0 old, 1 founded with it (5 min later), 2 joined at bucket 500, 3 left at 700, 4 never called
    first = np.array([0, 1, 500, 0, 1000])
    last = np.array([999, 999, 999, 700, -1])
    rows, unsettled = settled_rows(member, first, last, 1000, judge_first=400, step=300)
    grown = 288 + 36
    assert [(u.group, u.row) for u in unsettled] == [(0, 3), (2, 4)]
    assert rows.tolist() == [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]
    ends = np.arange(1000)
    assert (unsettled[0].out == (ends < 500 + grown)).all() and (unsettled[1].out == (ends > 700)).all()
    # group 1 is leaf 3 alone (4 never called): judged as it is
    # long grown and long gone by the first judged bucket: nothing to leave out
    assert settled_rows(member, first, np.array([999, 999, 999, 999, -1]), 1000, 500 + grown, 300)[1] == []


def test_fold_takes_the_settled_row_where_a_leaf_is_out() -> None:
    k = np.arange(4 * 6, dtype=float).reshape(4, 6)  # 2 groups, then their settled rows
    n, p = k + 100, k / 100
    windows = [
        Window(0, "error_rate", "up", 1, 2, 9.0),  # the whole group where a leaf is out: dropped
        Window(0, "error_rate", "up", 4, 5, 8.0),  # ... where none is: kept
        Window(2, "error_rate", "up", 0, 3, 7.0),  # the settled row where a leaf is out: the group's
        Window(2, "error_rate", "up", 3, 4, 7.5),  # ... ending where none is: dropped
        Window(1, "calls", "down", 1, 2, 6.0),  # volume: as it is
    ]
    volume = (k[:, :], np.ones((2, 6)), np.ones((2, 6)))
    scan = Scan(windows, {"error_rate": (k, n, p), "calls": volume})
    out = fold(scan, [Unsettled(0, 2, np.arange(6) < 4)], groups=2)
    assert [(w.group, w.first, w.last) for w in out.windows] == [(0, 4, 5), (0, 0, 3), (1, 1, 2)]
    folded = out.buckets["error_rate"][0]
    assert folded.shape == (2, 6) and folded[0].tolist() == k[2, :4].tolist() + k[0, 4:].tolist()
    assert folded[1].tolist() == k[1].tolist() and out.buckets["calls"][0].shape == (2, 6)
