"""``llmtrace compare`` on canary demo traffic with known injected differences (real chDB, the
materialized views, SQL statistics): it names exactly those, in the right direction, and no others."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from llmtrace import cli
from llmtrace.analytics import compare
from llmtrace.analytics.compare import Selector
from llmtrace.analytics.filters import Filter, SelectionError
from llmtrace.demo import canary

# The clock, read once and passed to everything: the canaries end at the last whole hour before it
# (their rows are the same at any hour, shifted). Recent, because `watch` judges the last day.
NOW = datetime.now(timezone.utc)
DEMO = canary.DEMO.dated(NOW)
WINDOW = Filter(start=DEMO.start, end=DEMO.end, services=(DEMO.service,))
# A second service whose candidate gets worse half-way through the window.
MIDSTREAM = dataclasses.replace(
    DEMO,
    service="midstream-canary",
    calls=8000,
    seed=9,
    arms=(canary.Arm("v3.0.0"), canary.Arm("v3.1.0", generation=1.4, quality_shift=-0.08, from_share=0.5)),
)
CHANGE_AT = MIDSTREAM.start + timedelta(hours=MIDSTREAM.hours / 2)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('compare')}"


@pytest.fixture(scope="module")
def store(store_url: str) -> Iterator[Any]:
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(store_url)
    apply_migrations(client_runner(client))
    canary.insert(client, DEMO)
    canary.insert(client, MIDSTREAM)
    yield client
    client.close()


def _flagged(report: compare.CompareReport) -> dict[str, str]:
    return {r.metric: r.verdict for r in report.results if r.verdict not in ("no_evidence", "insufficient_data")}


def test_the_slower_release_is_worse_on_exactly_latency_and_the_quality_score(store: Any) -> None:
    report = compare.compare(store, "release=v2.0.0", "release=v2.1.0", WINDOW)
    assert _flagged(report) == {"latency_p50_ms": "worse", "latency_p95_ms": "worse", "score:quality": "worse"}


def test_the_cheaper_release_is_better_on_exactly_cost_per_call(store: Any) -> None:
    report = compare.compare(store, "release=v2.0.0", "release=v2.2.0", WINDOW)
    assert _flagged(report) == {"cost_per_call_usd": "better"}


def test_the_cost_difference_is_the_cheaper_models_third_and_its_interval_holds_it(store: Any) -> None:
    """gpt-4.1-nano costs two thirds of gpt-4o-mini per input and per output token (genai-prices)."""
    cost = compare.compare(store, "release=v2.0.0", "release=v2.2.0", WINDOW).get("cost_per_call_usd")
    assert cost.relative == pytest.approx(-1 / 3, abs=0.03)
    assert cost.ci_low < -1 / 3 * cost.baseline < cost.ci_high
    assert cost.baseline_n > 3800 and cost.candidate_n > 3800


def test_the_quality_drop_is_the_injected_eight_hundredths(store: Any) -> None:
    quality = compare.compare(store, "release=v2.0.0", "release=v2.1.0", WINDOW).get("score:quality")
    assert quality.difference == pytest.approx(-0.08, abs=0.015)
    assert quality.ci_low < quality.difference < quality.ci_high < 0


def test_time_to_first_token_is_not_blamed_for_slower_generation(store: Any) -> None:
    report = compare.compare(store, "release=v2.0.0", "release=v2.1.0", WINDOW)
    assert report.get("ttft_p50_ms").verdict == "no_evidence"
    assert report.get("ttft_p95_ms").verdict == "no_evidence"


def test_every_metric_of_the_issue_is_reported(store: Any) -> None:
    metrics = {r.metric for r in compare.compare(store, "release=v2.0.0", "release=v2.2.0", WINDOW).results}
    assert metrics == {
        "cost_per_call_usd", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "ttft_p95_ms", "error_rate",
        "truncation_rate", "input_tokens", "output_tokens", "score:quality", "finish_reason_mix:openai",
    }  # fmt: skip


def test_a_score_where_lower_is_better_turns_the_quality_drop_into_better(store: Any) -> None:
    report = compare.compare(store, "release=v2.0.0", "release=v2.1.0", WINDOW, lower_is_better=["quality"])
    assert report.get("score:quality").verdict == "better"


def test_a_minimum_effect_above_the_change_gives_no_evidence(store: Any) -> None:
    report = compare.compare(store, "release=v2.0.0", "release=v2.2.0", WINDOW, min_effect=0.5)
    assert report.get("cost_per_call_usd").verdict == "no_evidence"


def test_a_selector_may_combine_names(store: Any) -> None:
    baseline = Selector.parse(f"release=v2.0.0,model={DEMO.model}")
    report = compare.compare(store, baseline, Selector.parse("release=v2.2.0"), WINDOW)
    assert _flagged(report) == {"cost_per_call_usd": "better"}


def test_too_few_calls_are_insufficient_data_not_no_difference(store: Any) -> None:
    tiny = dataclasses.replace(WINDOW, start=DEMO.end - timedelta(minutes=5))
    report = compare.compare(store, "release=v2.0.0", "release=v2.1.0", tiny)
    assert {r.verdict for r in report.results} == {"insufficient_data"}


def test_an_unknown_release_is_a_selection_error_listing_the_known_ones(store: Any) -> None:
    with pytest.raises(SelectionError, match=re.escape("v2.0.0, v2.1.0, v2.2.0")):
        compare.compare(store, "release=v2.0.0", "release=v2.9.9", WINDOW)


@pytest.mark.parametrize(
    ("text", "error"),
    [("colour=red", "cannot compare on 'colour'"), ("release", "use name=value"), ("release=", "needs a value"),
     ("", "at least one name=value")],
)  # fmt: skip
def test_a_bad_selector_names_the_problem(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Selector.parse(text)


# --------------------------------------------------------------------------- sequential looks
@pytest.fixture(scope="module")
def looks(store: Any) -> list[tuple[Any, dict[str, str]]]:
    """Judge the mid-stream canary every two hours on the traffic so far."""
    f = Filter(start=MIDSTREAM.start, end=MIDSTREAM.end, services=(MIDSTREAM.service,))
    out = []
    for hours in range(2, int(MIDSTREAM.hours) + 1, 2):
        window = dataclasses.replace(f, end=MIDSTREAM.start + timedelta(hours=hours))
        out.append((window.end, _flagged(compare.compare(store, "release=v3.0.0", "release=v3.1.0", window))))
    return out


def test_a_canary_judged_every_two_hours_raises_nothing_before_it_gets_worse(looks: list[Any]) -> None:
    before = [flagged for end, flagged in looks if end <= CHANGE_AT]
    assert len(before) == 6
    assert before == [{}] * 6


def test_a_canary_that_gets_worse_mid_stream_is_called_worse_on_latency_and_only_what_changed(
    looks: list[Any],
) -> None:
    after = [flagged for end, flagged in looks if end > CHANGE_AT]
    assert after[-1].get("latency_p50_ms") == "worse"
    assert set().union(*after) <= {"latency_p50_ms", "latency_p95_ms", "score:quality"}
    assert all(set(flagged.values()) <= {"worse"} for flagged in after)


def test_once_called_worse_the_canary_stays_worse_at_later_looks(looks: list[Any]) -> None:
    flags = ["latency_p50_ms" in flagged for _, flagged in looks]
    first = flags.index(True)
    assert all(flags[first:])


# --------------------------------------------------------------------------- finish reasons
def _mix(counts: dict[tuple[int, str], int]) -> compare.MetricComparison:
    rows = pd.DataFrame([{"side": s, "provider": "anthropic", "reason": r, "calls": n} for (s, r), n in counts.items()])
    judge = compare._Judge(min_samples=30, lower_is_better=set(), min_effect=0.0, alpha=0.01)
    return judge.mix("anthropic", rows)


def test_a_shift_from_end_turn_to_max_tokens_is_a_changed_finish_reason_mix() -> None:
    result = _mix({(0, "end_turn"): 950, (0, "max_tokens"): 50, (1, "end_turn"): 850, (1, "max_tokens"): 150})
    assert result.verdict == "changed"
    assert result.p_value is not None and result.p_value < 1e-6
    assert "end_turn" in result.detail or "max_tokens" in result.detail


def test_the_same_finish_reason_mix_on_both_sides_is_no_evidence() -> None:
    result = _mix({(0, "end_turn"): 950, (0, "max_tokens"): 50, (1, "end_turn"): 948, (1, "max_tokens"): 52})
    assert result.verdict == "no_evidence"


# --------------------------------------------------------------------------- the command
def _run(store_url: str, *args: str) -> int:
    window = ["--since", DEMO.start.isoformat(), "--until", DEMO.end.isoformat(), "--service", DEMO.service]
    return cli.main(["compare", "--url", store_url, *window, *args])


def test_fail_on_worse_exits_3_for_the_slower_release(store: Any, store_url: str, capsys: Any) -> None:
    assert _run(store_url, "--baseline", "release=v2.0.0", "--candidate", "release=v2.1.0", "--fail-on", "worse") == 3
    out = capsys.readouterr().out
    assert "latency_p95_ms" in out and "worse" in out and "cost_per_call_usd" not in out


def test_fail_on_worse_passes_the_cheaper_release(store: Any, store_url: str, capsys: Any) -> None:
    assert _run(store_url, "--baseline", "release=v2.0.0", "--candidate", "release=v2.2.0", "--fail-on", "worse") == 0
    assert "cost_per_call_usd  better" in capsys.readouterr().out


def test_fail_on_changed_fails_the_cheaper_release_too(store: Any, store_url: str) -> None:
    assert _run(store_url, "--baseline", "release=v2.0.0", "--candidate", "release=v2.2.0", "--fail-on", "changed") == 3


def test_json_output_carries_values_intervals_and_the_method(store: Any, store_url: str, capsys: Any) -> None:
    assert _run(store_url, "--baseline", "release=v2.0.0", "--candidate", "release=v2.2.0", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseline"] == "release=v2.0.0" and doc["candidate"] == "release=v2.2.0"
    assert "mSPRT" in doc["method"] and doc["alpha"] == 0.05
    cost = next(r for r in doc["results"] if r["metric"] == "cost_per_call_usd")
    assert cost["verdict"] == "better" and cost["ci_low"] < cost["difference"] < cost["ci_high"] < 0


def test_an_unknown_release_exits_2(store: Any, store_url: str, capsys: Any) -> None:
    assert _run(store_url, "--baseline", "release=v2.0.0", "--candidate", "release=v7") == 2
    assert "release values there: v2.0.0, v2.1.0, v2.2.0" in capsys.readouterr().err


def test_a_bad_selector_exits_1_naming_the_choices(store: Any, store_url: str, capsys: Any) -> None:
    assert _run(store_url, "--baseline", "colour=red", "--candidate", "release=v2.1.0") == 1
    assert "choose from service, provider, model, release" in capsys.readouterr().err


# --------------------------------------------------------------------------- watch
def _watch(store_url: str, state: Any, candidate: str, capsys: Any) -> list[str]:
    args = ["watch", "--url", store_url, "--once", "--no-drift", "--no-calls", "--state", str(state)]
    args += ["--service", DEMO.service, "--canary-baseline", "release=v2.0.0", "--canary-candidate", candidate]
    assert cli.main(args) == 0
    return [line for line in capsys.readouterr().out.splitlines() if "llmtrace canary" in line]


def test_watch_alerts_once_per_metric_a_canary_is_worse_on(
    store: Any, store_url: str, tmp_path: Any, capsys: Any
) -> None:
    lines = _watch(store_url, tmp_path / "state.json", "release=v2.1.0", capsys)
    assert len(lines) == 3
    assert all("release=v2.1.0 is worse than release=v2.0.0" in line for line in lines)
    assert {m for m in ("latency_p50_ms", "latency_p95_ms", "score:quality") for line in lines if m in line} == {
        "latency_p50_ms", "latency_p95_ms", "score:quality"}  # fmt: skip
    assert _watch(store_url, tmp_path / "state.json", "release=v2.1.0", capsys) == []  # already sent


def test_watch_says_nothing_about_a_canary_that_is_only_cheaper(
    store: Any, store_url: str, tmp_path: Any, capsys: Any
) -> None:
    assert _watch(store_url, tmp_path / "state.json", "release=v2.2.0", capsys) == []


def test_watch_waits_quietly_for_a_canary_with_no_calls_yet(
    store: Any, store_url: str, tmp_path: Any, capsys: Any
) -> None:
    assert _watch(store_url, tmp_path / "state.json", "release=v2.3.0", capsys) == []


def test_a_selector_may_name_an_automatic_prompt_version() -> None:
    selector = Selector.parse("template_hash=0f1e2d3c4b5a6978,service=summarizer")
    assert selector.values == (("template_hash", "0f1e2d3c4b5a6978"), ("service", "summarizer"))
    assert "PromptTemplateHash" in selector.condition("s") and "ServiceName" in selector.condition("s")


def test_looks_give_the_verdict_of_each_growing_window(store: Any) -> None:
    f = Filter(start=MIDSTREAM.start, end=MIDSTREAM.end, services=(MIDSTREAM.service,))
    history = compare.looks(store, "release=v3.0.0", "release=v3.1.0", f, "latency_p50_ms", count=12)
    assert list(history["verdict"][:6]) == ["no_evidence"] * 6 and history["verdict"].iloc[-1] == "worse"
    widths = list((history["ci_high"] - history["ci_low"])[:6])
    assert widths == sorted(widths, reverse=True)  # the interval narrows as calls accumulate
    assert history["end"].iloc[-1] == MIDSTREAM.end


def test_looks_need_at_least_one(store: Any) -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        compare.looks(store, "release=v3.0.0", "release=v3.1.0", WINDOW, "latency_p50_ms", count=0)


# --------------------------------------------------------------------------- the demo's clock
def test_the_demo_canary_is_dated_when_it_is_loaded_not_when_its_module_was_imported() -> None:
    assert canary.DEMO.end is None and canary.WORSENING.end is None
    pinned = canary.DEMO.dated(datetime(2026, 1, 2, 3, 45, 6, tzinfo=timezone.utc))
    assert pinned.end == datetime(2026, 1, 2, 3, tzinfo=timezone.utc)
    assert pinned.start == datetime(2026, 1, 1, 3, tzinfo=timezone.utc)
    assert pinned.dated(NOW) is pinned  # a dated canary keeps its end
    with pytest.raises(ValueError, match="date it first"):
        _ = canary.DEMO.start
