"""Level picking on plain episodes: the most specific level that explains an incident, once."""

from __future__ import annotations

from llmtrace.analytics.anomalies_episodes import Episode, resolve

ORDER = ["service,model", "service", "provider", "all"]


def _errors(level: str, leaves: set[int], events: float, trials: float, first: int = 100) -> Episode:
    return Episode(level, 0, frozenset(leaves), "error_rate", "up", first, first + 6, 20.0, first + 1,
                   observed=events / trials, expected=0.01, events=events, trials=trials)  # fmt: skip


def test_a_burst_of_one_series_stays_its_own_when_a_small_episode_elsewhere_coincides() -> None:
    burst = _errors("service,model", {0}, events=110, trials=1000)
    small = _errors("service,model", {3}, events=12, trials=400, first=103)
    app = _errors("all", {0, 1, 2, 3}, events=150, trials=4000)
    kept = resolve([burst, small, app], ORDER)
    assert {(e.level, e.leaves) for e in kept} == {("service,model", frozenset({0})), ("service,model", frozenset({3}))}


def test_an_outage_of_every_model_of_a_provider_is_reported_once_for_the_provider() -> None:
    models = [_errors("service,model", {i}, events=60, trials=600, first=100 + i) for i in range(3)]
    provider = _errors("provider", {0, 1, 2}, events=180, trials=1800)
    kept = resolve([*models, provider], ORDER)
    assert [(e.level, e.first, e.last) for e in kept] == [("provider", 100, 108)]


def test_a_coarse_episode_nothing_more_specific_explains_is_kept() -> None:
    app = _errors("all", {0, 1}, events=80, trials=4000)
    assert resolve([app], ORDER) == [app]
