"""The demo's plan: deterministic, the right size, inside the window, with every scripted episode."""

from __future__ import annotations

from llmtrace.demo import scenarios

END_NS = 1_800_000_000 * 10**9
WEEK = scenarios.plan(3000, 7, END_NS, seed=3)


def episode(kind: str) -> tuple[int, int]:
    return scenarios.episode_window(next(e for e in scenarios.EPISODES if e.kind == kind), END_NS, 7)


def calls(requests: list[scenarios.Request]) -> list[tuple[scenarios.Request, scenarios.Call]]:
    return [(r, c) for r in requests for c in r.calls]


def test_the_same_seed_gives_the_same_plan() -> None:
    assert scenarios.plan(200, 7, END_NS, seed=3) == scenarios.plan(200, 7, END_NS, seed=3)


def test_the_plan_has_about_the_requested_number_of_calls_oldest_first() -> None:
    assert abs(len(calls(WEEK)) - 3000) <= 0.03 * 3000  # incident traffic adds whole requests
    assert [r.start_ns for r in WEEK] == sorted(r.start_ns for r in WEEK)


def test_every_request_starts_inside_the_window() -> None:
    assert all(END_NS - 7 * scenarios.DAY_NS <= r.start_ns < END_NS for r in WEEK)


def test_traffic_follows_the_day() -> None:
    incidents = [episode("error_burst"), episode("latency_spike")]  # extra traffic, at any hour
    by_hour = [0] * 24
    for request in WEEK:
        if not any(start <= request.start_ns < stop for start, stop in incidents):
            by_hour[(request.start_ns // scenarios.HOUR_NS) % 24] += 1
    assert by_hour[scenarios.PEAK_HOUR_UTC] > 2 * by_hour[(scenarios.PEAK_HOUR_UTC + 12) % 24]


def test_support_bot_switches_model_at_the_scripted_time() -> None:
    switch, _ = episode("model_switch")
    models = {(r.start_ns >= switch, c.model) for r, c in calls(WEEK) if r.service == "support-bot"}
    assert (False, scenarios.SWITCH_FROM) in models and (True, scenarios.SWITCH_TO) in models
    assert (True, scenarios.SWITCH_FROM) not in models


def test_the_prompt_version_changes_for_the_summarizer_only_after_the_change() -> None:
    change, _ = episode("prompt_change")
    versions = {(r.start_ns >= change, r.prompt_version) for r in WEEK if r.service == "summarizer"}
    assert versions == {(False, "3"), (True, "4")}


def test_errors_burst_for_the_support_bot_during_the_episode() -> None:
    start, stop = episode("error_burst")
    during = [c for r, c in calls(WEEK) if r.service == "support-bot" and start <= r.start_ns < stop]
    outside = [c for r, c in calls(WEEK) if not start <= r.start_ns < stop]
    assert sum(bool(c.status) for c in during) / len(during) > 0.2
    assert sum(bool(c.status) for c in outside) / len(outside) < 0.05


def test_rate_limited_calls_are_retried_after_a_backoff() -> None:
    retried = [r for r in WEEK if any(c.status == 429 for c in r.calls)]
    assert retried
    for request in retried:
        failed = next(i for i, c in enumerate(request.calls) if c.status == 429)
        assert request.calls[failed + 1].gap_ms >= 500


def test_search_latency_spikes_during_the_episode() -> None:
    start, stop = episode("latency_spike")
    spiking = [c.duration_ms for r, c in calls(WEEK) if r.service == "search-api" and start <= r.start_ns < stop]
    usual = [c.duration_ms for r, c in calls(WEEK) if r.service == "search-api" and not start <= r.start_ns < stop]
    assert sorted(spiking)[len(spiking) // 2] > 3 * sorted(usual)[len(usual) // 2]


def test_the_plan_uses_every_model_and_both_environments() -> None:
    assert {c.model for _, c in calls(WEEK)} == set(scenarios.MODELS)
    assert {r.environment for r in WEEK} == {"production", "staging"}
    assert {r.release for r in WEEK} == set(scenarios.RELEASES)


def test_the_plan_drives_five_providers_each_streamed_and_not() -> None:
    by_provider = {scenarios.MODELS[c.model].provider for _, c in calls(WEEK)}
    assert by_provider == {"openai", "anthropic", "gcp.gemini", "gcp.vertex_ai", "aws.bedrock"}
    for provider in by_provider:
        mine = [c for _, c in calls(WEEK) if scenarios.MODELS[c.model].provider == provider]
        assert any(c.stream for c in mine) and any(not c.stream for c in mine)


def test_tool_calls_and_truncations_are_planned() -> None:
    assert any(c.offer_tools for _, c in calls(WEEK))
    assert any(c.max_tokens for _, c in calls(WEEK))
