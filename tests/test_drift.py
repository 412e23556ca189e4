"""Drift verdicts on synthetic traffic with known injected changes (real chDB, SQL statistics)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace import cli, semconv
from llmtrace.analytics import commands, drift, synthetic
from llmtrace.analytics.drift import Comparison, MetricDrift, Slice
from llmtrace.analytics.filters import Filter, sql_time
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.conftest_store import otel_row

END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)
# Clean history (before the anomalies of the reference scenario) against the last day.
CLEAN_VS_LAST_DAY = Comparison(Slice(END - 7 * DAY, END - 3 * DAY), Slice(END - DAY, END))
# Series with no injected event in either window of CLEAN_VS_LAST_DAY.
UNTOUCHED = [("chat-ui", "gpt-4o-mini"), ("support-bot", "gpt-4o-mini"), ("support-bot", "gpt-4o")]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('drift')}"


@pytest.fixture(scope="module")
def store(store_url: str) -> Iterator[Any]:
    client = synthetic.seed_store(store_url, synthetic.reference_scenario(END))
    yield client
    client.close()


@pytest.fixture(scope="module")
def by_series(store: Any) -> drift.DriftReport:
    return drift.compare(store, CLEAN_VS_LAST_DAY, by=("service", "model"))


def test_token_drift_is_a_major_output_token_drift_for_the_summarizer(by_series: drift.DriftReport) -> None:
    result = by_series.get("output_tokens", service="summarizer")
    assert result.verdict == "major"
    assert result.median_shift == pytest.approx(0.8, abs=0.1)


def test_token_drift_also_moves_cost_per_call_and_the_output_input_ratio(by_series: drift.DriftReport) -> None:
    for metric in ("cost_per_call_usd", "output_input_ratio"):
        assert by_series.get(metric, service="summarizer").verdict == "major", metric


def test_input_tokens_of_the_summarizer_did_not_drift(by_series: drift.DriftReport) -> None:
    assert by_series.get("input_tokens", service="summarizer").verdict == "none"


@pytest.mark.parametrize(("service", "model"), UNTOUCHED)
def test_series_without_injected_drift_have_no_flagged_metric(
    by_series: drift.DriftReport, service: str, model: str
) -> None:
    flagged = [r.metric for r in by_series.flagged() if r.group == {"service": service, "model": model}]
    assert flagged == []


def test_a_truncation_burst_in_the_last_day_is_a_truncation_rate_drift(by_series: drift.DriftReport) -> None:
    result = by_series.get("truncation_rate", service="search-api")
    assert result.flagged
    assert result.current_share > 2 * result.baseline_share


def test_model_switch_is_a_major_model_mix_change_for_the_agent_service(store: Any) -> None:
    report = drift.compare(store, CLEAN_VS_LAST_DAY, by="service", metrics=["model_mix"])
    result = report.get("model_mix", service="agent")
    assert result.verdict == "major"
    assert result.category == "gpt-4o"
    assert result.baseline_share == 0.0
    assert result.current_share > 0.75  # 18 of 24 hours, the busier ones


def test_model_mix_of_untouched_services_does_not_drift(store: Any) -> None:
    report = drift.compare(store, CLEAN_VS_LAST_DAY, by="service", metrics=["model_mix"])
    assert [r.group["service"] for r in report.flagged()] == ["agent"]


def test_a_series_that_only_exists_on_one_side_is_insufficient_data(by_series: drift.DriftReport) -> None:
    result = by_series.get("latency_ms", service="agent", model="gpt-4o")
    assert result.verdict == "insufficient_data"
    assert result.baseline_n == 0 and result.current_n > 30
    assert "at least 30 calls" in result.reason


def test_prompt_version_comparison_finds_the_output_token_drift(store: Any) -> None:
    versus = Comparison.versus("prompt_version", "3", "4", END - 2 * DAY, END)
    report = drift.compare(store, versus, f=_only("summarizer"))
    assert report.get("output_tokens").verdict == "major"
    assert report.get("input_tokens").verdict == "none"


def test_release_comparison_finds_the_output_token_drift(store: Any) -> None:
    versus = Comparison.versus("release", "v1.0.0", "v1.1.0", END - 2 * DAY, END)
    report = drift.compare(store, versus, f=_only("summarizer"))
    assert report.get("output_tokens").verdict == "major"


def test_grouping_by_the_compared_dimension_is_refused(store: Any) -> None:
    versus = Comparison.versus("release", "v1.0.0", "v1.1.0", END - 2 * DAY, END)
    with pytest.raises(ValueError, match="cannot group by 'release'"):
        drift.compare(store, versus, by="release")


def test_unknown_metric_is_refused_with_the_choices(store: Any) -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        drift.compare(store, CLEAN_VS_LAST_DAY, metrics=["vibes"])


def test_ten_minutes_of_night_traffic_is_insufficient_data(store: Any) -> None:
    night = END - timedelta(hours=20)  # 04:00 UTC, the quietest hours
    tiny = Comparison(Slice(night - timedelta(hours=1), night), Slice(night, night + timedelta(minutes=10)))
    report = drift.compare(store, tiny, f=_only("chat-ui"), metrics=["latency_ms"])
    assert report.get("latency_ms").verdict == "insufficient_data"


def test_ks_statistic_matches_a_direct_two_sample_computation(store: Any) -> None:
    report = drift.compare(store, CLEAN_VS_LAST_DAY, f=_only("chat-ui"), metrics=["latency_ms"])
    baseline = _durations(store, CLEAN_VS_LAST_DAY.baseline)
    current = _durations(store, CLEAN_VS_LAST_DAY.current)
    assert report.get("latency_ms").ks_statistic == pytest.approx(_ks(baseline, current), abs=1e-9)


def test_js_distance_matches_a_direct_computation_from_the_shares(store: Any) -> None:
    report = drift.compare(store, CLEAN_VS_LAST_DAY, f=_only("agent"), metrics=["model_mix"])
    shares = [_model_shares(store, side) for side in (CLEAN_VS_LAST_DAY.baseline, CLEAN_VS_LAST_DAY.current)]
    assert report.get("model_mix").js_distance == pytest.approx(_js(*shares), abs=1e-9)


def test_report_json_has_the_documented_shape(by_series: drift.DriftReport) -> None:
    doc = json.loads(by_series.to_json())
    assert set(doc) == {"baseline", "current", "by", "results"}
    assert doc["by"] == ["service", "model"]
    assert set(doc["baseline"]) == {"start", "end", "dimension", "value"}
    first = doc["results"][0]
    assert {"group", "metric", "kind", "verdict", "reason", "baseline_n", "current_n", "psi"} <= set(first)
    assert first["verdict"] == "major"


def test_frame_has_one_row_per_result_with_group_columns(by_series: drift.DriftReport) -> None:
    df = by_series.to_frame()
    assert len(df) == len(by_series.results)
    assert list(df.columns[:4]) == ["service", "model", "metric", "kind"]


# --------------------------------------------------------------------------- CLI
def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}"


def test_drift_command_prints_json_with_the_token_drift(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["drift", "--url", store_url, "--baseline", _span(END - 7 * DAY, END - 3 * DAY)]
    args += ["--current", _span(END - DAY, END), "--by", "service,model", "--format", "json"]
    assert cli.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    [tokens] = [r for r in doc["results"] if r["metric"] == "output_tokens" and r["group"]["service"] == "summarizer"]
    assert tokens["verdict"] == "major"


def test_drift_command_table_lists_changes_and_fail_on_major_exits_3(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["drift", "--url", store_url, "--baseline", _span(END - 7 * DAY, END - 3 * DAY)]
    args += ["--current", _span(END - DAY, END), "--by", "service", "--fail-on", "major"]
    assert cli.main(args) == 3
    out = capsys.readouterr().out
    assert "baseline: " in out and "agent" in out and "model_mix" in out
    assert "chat-ui" not in out  # unchanged series are not listed without --all


def test_drift_command_compares_two_releases(store: Any, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["drift", "--url", store_url, "--baseline", "release=v1.0.0", "--current", "release=v1.1.0"]
    args += ["--service", "summarizer", "--window", "30d", "--format", "json", "--metrics", "output_tokens"]
    assert cli.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["current"]["value"] == "v1.1.0"
    assert [r["verdict"] for r in doc["results"]] == ["major"]


def test_drift_command_names_the_problem_with_mismatched_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drift", "--url", "chdb:///nonexistent", "--baseline", "release=a", "--current", "1d"]) == 1
    assert "compare one dimension's values on both sides" in capsys.readouterr().err


def test_baseline_duration_is_the_period_just_before_the_current_window() -> None:
    now = END
    comparison = commands.parse_slices("7d", "1d", now=now)
    assert (comparison.current.start, comparison.current.end) == (END - DAY, END)
    assert (comparison.baseline.start, comparison.baseline.end) == (END - 8 * DAY, END - DAY)
    assert commands.parse_slices(None, "6h", now=now).baseline.start == END - timedelta(hours=12)


# --------------------------------------------------------------------------- verdict rules
def _numeric(**stats: Any) -> MetricDrift:
    defaults: dict[str, Any] = {"baseline_n": 10_000, "current_n": 10_000, "ks_pvalue": 1e-12, "ks_statistic": 0.3}
    return MetricDrift(
        group={}, metric="latency_ms", kind="numeric", verdict="none", reason="", **{**defaults, **stats}
    )


def test_huge_samples_do_not_flag_a_trivial_but_significant_shift() -> None:
    verdict, reason = drift.numeric_verdict(_numeric(baseline_n=10**6, current_n=10**6, ks_statistic=0.02, psi=0.01))
    assert verdict == "none" and "small" in reason


def test_psi_above_a_quarter_is_major_and_above_a_tenth_moderate() -> None:
    assert drift.numeric_verdict(_numeric(psi=0.3))[0] == "major"
    assert drift.numeric_verdict(_numeric(psi=0.15))[0] == "moderate"
    assert drift.numeric_verdict(_numeric(psi=0.05))[0] == "none"


def test_an_insignificant_ks_test_is_no_drift_whatever_the_psi() -> None:
    assert drift.numeric_verdict(_numeric(psi=0.9, ks_pvalue=0.2))[0] == "none"


def test_fewer_than_thirty_calls_on_a_side_is_insufficient_data() -> None:
    assert drift.numeric_verdict(_numeric(current_n=29, psi=2.0))[0] == "insufficient_data"


# --------------------------------------------------------------------------- helpers
def _only(service: str) -> Filter:
    return Filter(start=END - DAY, end=END, services=(service,))


def _durations(store: Any, side: Slice) -> list[float]:
    rows = store.query(
        "SELECT DurationUs / 1000 FROM llm_calls WHERE ServiceName = 'chat-ui' AND IsError = 0"
        " AND Timestamp >= {s:DateTime64(6, 'UTC')} AND Timestamp < {e:DateTime64(6, 'UTC')}",
        parameters={"s": sql_time(side.start), "e": sql_time(side.end)},
    ).result_rows
    return [float(r[0]) for r in rows]


def _ks(a: list[float], b: list[float]) -> float:
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    return d


def _model_shares(store: Any, side: Slice) -> dict[str, float]:
    rows = store.query(
        "SELECT RequestModel, count() FROM llm_calls WHERE ServiceName = 'agent'"
        " AND Timestamp >= {s:DateTime64(6, 'UTC')} AND Timestamp < {e:DateTime64(6, 'UTC')} GROUP BY 1",
        parameters={"s": sql_time(side.start), "e": sql_time(side.end)},
    ).result_rows
    total = sum(int(n) for _, n in rows)
    return {str(m): int(n) / total for m, n in rows}


def _js(p: dict[str, float], q: dict[str, float]) -> float:
    keys = set(p) | set(q)
    m = {k: (p.get(k, 0) + q.get(k, 0)) / 2 for k in keys}

    def kl(x: dict[str, float]) -> float:
        return sum(v * math.log2(v / m[k]) for k, v in x.items() if v > 0)

    return math.sqrt(0.5 * kl(p) + 0.5 * kl(q))


# --------------------------------------------------------------------------- v2: direction, blanks, vocabulary
def test_a_truncation_burst_is_a_change_for_the_worse(by_series: drift.DriftReport) -> None:
    assert by_series.get("truncation_rate", service="search-api").direction == "worse"


def test_more_output_tokens_is_a_change_without_a_better_side(by_series: drift.DriftReport) -> None:
    assert by_series.get("output_tokens", service="summarizer").direction == "changed"


def test_costlier_calls_are_worse_and_unflagged_results_carry_no_direction(by_series: drift.DriftReport) -> None:
    assert by_series.get("cost_per_call_usd", service="summarizer").direction == "worse"
    assert by_series.get("input_tokens", service="summarizer").direction is None


def test_insufficient_data_carries_no_effect_numbers(by_series: drift.DriftReport) -> None:
    result = by_series.get("latency_ms", service="agent", model="gpt-4o")
    assert result.verdict == "insufficient_data"
    assert (result.psi, result.ks_pvalue, result.current_median, result.median_shift, result.p95_shift) == (None,) * 5
    assert result.direction is None


def test_faster_output_is_a_change_for_the_better() -> None:
    r = MetricDrift({}, "output_tokens_per_s", "numeric", "major", "", 100, 100, median_shift=0.4)
    assert drift.direction(r) == "better"
    r = MetricDrift({}, "latency_ms", "numeric", "major", "", 100, 100, median_shift=-0.3)
    assert drift.direction(r) == "better"


# Finish reasons, after the end of the reference traffic: (provider, reason, calls) per side.
HOUR = timedelta(hours=1)
FINISH_SIDES = Comparison(Slice(END + HOUR, END + 2 * HOUR), Slice(END + 2 * HOUR, END + 3 * HOUR))
FINISH_TRAFFIC = {
    # the mix of providers moves (50/50 -> 20/80), each provider's replies end as before
    "mix-only": (
        [
            ("openai", "stop", 80),
            ("openai", "length", 20),
            ("anthropic", "end_turn", 80),
            ("anthropic", "max_tokens", 20),
        ],
        [
            ("openai", "stop", 32),
            ("openai", "length", 8),
            ("anthropic", "end_turn", 128),
            ("anthropic", "max_tokens", 32),
        ],
    ),
    # Anthropic starts refusing; OpenAI unchanged
    "refusals": (
        [("openai", "stop", 90), ("openai", "length", 10), ("anthropic", "end_turn", 90), ("anthropic", "refusal", 10)],
        [("openai", "stop", 90), ("openai", "length", 10), ("anthropic", "end_turn", 60), ("anthropic", "refusal", 40)],
    ),
}


@pytest.fixture(scope="module")
def finish_reasons(store: Any) -> drift.DriftReport:
    rows = []
    for service, sides in FINISH_TRAFFIC.items():
        for side, calls in zip((FINISH_SIDES.baseline, FINISH_SIDES.current), sides, strict=True):
            i = 0
            for provider, reason, count in calls:
                for _ in range(count):
                    attributes = {
                        semconv.OPERATION_NAME: "chat",
                        semconv.PROVIDER_NAME: provider,
                        semconv.REQUEST_MODEL: f"{provider}-model",
                        semconv.RESPONSE_FINISH_REASONS: json.dumps([reason]),
                    }
                    start_ns = int((side.start + i * timedelta(seconds=10)).timestamp() * 1e9)
                    rows.append(otel_row(attributes, service_name=service, start_ns=start_ns))
                    i += 1
    store.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    return drift.compare(store, FINISH_SIDES, by="service", metrics=["finish_reason"])


def test_a_change_of_provider_mix_alone_is_not_a_finish_reason_drift(finish_reasons: drift.DriftReport) -> None:
    result = finish_reasons.get("finish_reason", service="mix-only")
    assert (result.verdict, result.chi2_dof) == ("none", 2)  # (2 - 1) reasons of each of 2 providers
    assert result.chi2 == pytest.approx(0, abs=1e-9)


def test_finish_reasons_are_compared_in_each_providers_own_vocabulary(finish_reasons: drift.DriftReport) -> None:
    result = finish_reasons.get("finish_reason", service="refusals")
    assert result.flagged and result.category == "anthropic: refusal"
    assert (result.baseline_share, result.current_share) == (pytest.approx(0.05), pytest.approx(0.2))


def test_auto_grouping_means_by_service(store: Any) -> None:
    report = drift.compare(store, CLEAN_VS_LAST_DAY, by="auto", metrics=["output_tokens"])
    assert report.by == ("service",) and report.get("output_tokens", service="summarizer").verdict == "major"


def test_release_values_come_oldest_first(store: Any) -> None:
    assert drift.values_oldest_first(store, Filter(start=END - 7 * DAY, end=END), "release") == ["v1.0.0", "v1.1.0"]


def test_sampled_groups_report_full_counts_and_keep_their_verdicts(
    store: Any, by_series: drift.DriftReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large groups are read through a hash sample (here forced by a tiny SAMPLE): the counts stay the
    full ones and the injected drifts keep their verdicts, while untouched series stay unflagged."""
    from llmtrace.analytics import drift_sql

    monkeypatch.setattr(drift_sql, "SAMPLE", 300)
    sampled = drift.compare(store, CLEAN_VS_LAST_DAY, by=("service", "model"))
    summarizer = sampled.get("output_tokens", service="summarizer")
    full = by_series.get("output_tokens", service="summarizer")
    assert full.baseline_n > 300 and full.current_n > 300  # the sample is smaller than the group
    assert (summarizer.baseline_n, summarizer.current_n) == (full.baseline_n, full.current_n)
    assert summarizer.verdict == "major"
    assert sampled.get("truncation_rate", service="support-bot", model="gpt-4o-mini").current_n == (
        by_series.get("truncation_rate", service="support-bot", model="gpt-4o-mini").current_n
    )
    for service, model in UNTOUCHED:
        assert not [r for r in sampled.flagged() if r.group == {"service": service, "model": model}]


def test_sample_thresholds_only_for_sides_above_the_sample_size() -> None:
    from llmtrace.analytics import drift_sql

    params = drift_sql.sample_params([(0, ("a",), drift_sql.SAMPLE), (1, ("a",), 4 * drift_sql.SAMPLE)])
    assert params == {"sample_keys": [drift_sql.sample_key(1, ("a",))], "sample_limits": [drift_sql.HASH_RANGE // 4]}


def test_present_flags_count_exactly_the_calls_each_metric_has_a_value_for(store: Any) -> None:
    """sizes_sql reports counts from drift_sql.PRESENT instead of computing the metrics: per metric,
    the same calls (the store holds failed, unpriced, non-streamed and zero-output calls)."""
    from llmtrace.analytics import drift_sql

    flags = ", ".join(f"{expr} AS {name}" for name, expr in drift_sql.FLAGS.items())
    pairs = [
        f"countIf(({expr}) IS NOT NULL), countIf({drift_sql.PRESENT[m]})" for m, expr in drift_sql.NUMERIC.items()
    ] + [f"countIf(({expr}) IS NOT NULL), countIf({drift_sql.PRESENT[m]})" for m, expr in drift_sql.CATEGORICAL.items()]
    row = store.query(f"SELECT {', '.join(pairs)} FROM (SELECT *, {flags} FROM llm_calls)").result_rows[0]
    counts = dict(zip([*drift_sql.NUMERIC, *drift_sql.CATEGORICAL], zip(row[::2], row[1::2], strict=True), strict=True))
    assert {m: full for m, (full, _) in counts.items()} == {m: present for m, (_, present) in counts.items()}
    assert 0 < counts["ttft_ms"][0] < counts["latency_ms"][0] < counts["error_rate"][0]  # the cases differ


def test_slices_that_cannot_share_a_call_read_each_call_once_with_the_same_report(
    store: Any, by_series: drift.DriftReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disjoint windows skip the ARRAY JOIN that puts a call on both sides of overlapping ones;
    forced through it, the report is the same: verdicts, counts, KS and categorical statistics
    exactly, figures from ClickHouse's reservoir quantiles (groups over 8,192 calls) within 5%
    (medians, p95s) or 0.01 (PSI)."""
    from llmtrace.analytics import drift_sql

    assert drift_sql.Query(CLEAN_VS_LAST_DAY.baseline, CLEAN_VS_LAST_DAY.current, ()).disjoint
    monkeypatch.setattr(drift_sql.Query, "disjoint", property(lambda self: False))
    assert "ARRAY JOIN" in drift_sql.Query(CLEAN_VS_LAST_DAY.baseline, CLEAN_VS_LAST_DAY.current, ()).calls({})
    forced = drift.compare(store, CLEAN_VS_LAST_DAY, by=("service", "model"))
    estimated = {"psi", "baseline_median", "current_median", "median_shift", "baseline_p95", "current_p95", "p95_shift"}
    for new, old in zip(forced.to_dict()["results"], by_series.to_dict()["results"], strict=True):
        exact = [k for k in old if k not in estimated]
        assert {k: new[k] for k in exact} == {k: old[k] for k in exact}
        for key in estimated - {"median_shift", "p95_shift"}:
            # PSI's bins are the reservoir's deciles: within 0.01 (the verdicts' cuts are 0.1 and 0.25)
            near = {"abs": 0.01} if key == "psi" else {"rel": 0.05, "abs": 1e-3}
            expected = None if old[key] is None else pytest.approx(old[key], **near)
            assert new[key] == expected, (new["group"], new["metric"], key)


def test_overlapping_windows_count_a_call_on_both_sides(store: Any) -> None:
    from llmtrace.analytics import drift_sql

    overlap = Comparison(Slice(END - 2 * DAY, END), Slice(END - DAY, END))
    assert not drift_sql.Query(overlap.baseline, overlap.current, ()).disjoint
    report = drift.compare(store, overlap, f=_only("chat-ui"), metrics=["error_rate"])
    calls = [_calls(store, side) for side in (overlap.baseline, overlap.current)]
    assert (report.get("error_rate").baseline_n, report.get("error_rate").current_n) == tuple(calls)
    assert calls[0] > calls[1] > 0


def _calls(store: Any, side: Slice) -> int:
    sql = """SELECT count() FROM llm_calls WHERE ServiceName = 'chat-ui'
             AND Timestamp >= {start:DateTime64(6, 'UTC')} AND Timestamp < {end:DateTime64(6, 'UTC')}"""
    return int(
        store.query(sql, parameters={"start": sql_time(side.start), "end": sql_time(side.end)}).result_rows[0][0]
    )
