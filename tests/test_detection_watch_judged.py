"""Watch's time to detect read as the issue states it (benchmarks/detection_watch_judged.py --aligned):
steps end on whole 5-minute buckets, and an incident counts when the judge's own rule calls it eligible
on what watch has seen by then, not over its whole length."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_v16 as judge
import detection_watch_judged as watch

END = datetime(2026, 12, 7, 20, 3, tzinfo=timezone.utc)  # not on a bucket's edge, as a judged run's end
SEED = 1600


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    """What the judge records of a week: its seed, end and labelled incidents (the rule over their length)."""
    gen = judge.gen
    week = gen.Week(SEED, END)
    calls = gen.generate(week)[0]
    incidents = [{**inc.label(), **gen.eligibility(week, inc, calls)} for inc in week.incidents]
    return {"seed": SEED, "end": END.isoformat(), "incidents": incidents}


def test_a_step_ends_on_the_edge_of_a_whole_bucket(record: dict[str, Any]) -> None:
    week = judge.gen.WEEK
    for minute in range(1000, 1010):
        edge = watch.whole_bucket(record, week, minute)
        at = watch.at(record, week, edge)
        assert at.minute % 5 == 0 and at.second == 0
        assert 0 <= edge - minute < 5
        assert (edge == minute) == (watch.at(record, week, minute).minute % 5 == 0)
    assert watch.at(record, week, week) == END
    assert watch.at(record, week, 0) == END - timedelta(days=8)


def test_an_incident_is_judged_on_what_watch_has_seen(record: dict[str, Any]) -> None:
    early = watch.seen_eligibility("v16", judge, record, 2)
    assert len(early) == len(record["incidents"])
    shorter = 0
    for seen, inc in zip(early, record["incidents"], strict=True):
        assert seen is not None  # v16's rule reads any part of an incident
        seen_end = watch.whole_bucket(record, judge.gen.WEEK, inc["start"]) + 10
        if inc["end"] > seen_end:  # longer than what watch has seen: fewer calls behind the verdict
            assert seen["n"] <= inc["n"]
            shorter += 1
        else:  # over by then: the same verdict as over its whole length
            assert (seen["eligible"], seen["z"], seen["n"]) == (inc["eligible"], inc["z"], inc["n"])
    assert shorter >= 5
    # a long low-intensity incident is eligible over its length and not in its first 10-14 minutes
    assert any(inc["eligible"] and not seen["eligible"] for seen, inc in zip(early, record["incidents"], strict=True))


def test_a_record_the_generator_no_longer_makes_stops_the_run(record: dict[str, Any]) -> None:
    first, rest = record["incidents"][0], record["incidents"][1:]
    moved = {**record, "incidents": [{**first, "start": first["start"] + 1}, *rest]}
    with pytest.raises(SystemExit, match="no longer makes the recorded week"):
        watch.seen_eligibility("v16", judge, moved, 2)
    relabelled = {**record, "incidents": [{**first, "z": -1.0}, *rest]}
    with pytest.raises(SystemExit, match="no longer reads"):
        watch.seen_eligibility("v16", judge, relabelled, 2)
