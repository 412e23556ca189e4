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


SPLIT_ORDER = ["service,model,environment", "service,model", "service", "all"]
# leaves: 0/1 = support-bot x claude production/staging, 2 = support-bot x ft, 3-5 other services
SERIES_OF = [0, 0, 1, 2, 3, 4]


def test_a_burst_in_both_environments_of_one_series_is_not_handed_to_the_whole_app() -> None:
    production = _errors("service,model,environment", {0}, events=45, trials=200)
    staging = _errors("service,model,environment", {1}, events=12, trials=40, first=102)
    app = _errors("all", set(range(6)), events=75, trials=2000)  # the burst plus other services' noise
    kept = resolve([production, staging, app], SPLIT_ORDER, SERIES_OF, "service,model")
    assert {(e.level, e.leaves) for e in kept} == {
        ("service,model,environment", frozenset({0})),
        ("service,model,environment", frozenset({1})),
    }


def test_a_service_wide_burst_is_the_service_s_not_the_app_s_when_no_model_explains_it_alone() -> None:
    claude = _errors("service,model,environment", {0}, events=45, trials=200)
    fine_tune = _errors("service,model,environment", {2}, events=8, trials=50, first=101)
    # excess events: claude 43, the service 59 (claude explains it alone: 43 >= 0.7 x 59, so it is
    # dropped at its own level), the app 70 (43 < 0.7 x 70: claude does not explain the app's)
    service = _errors("service", {0, 1, 2}, events=62, trials=300)
    app = _errors("all", set(range(6)), events=90, trials=2000)
    kept = resolve([claude, fine_tune, service, app], SPLIT_ORDER, SERIES_OF, "service,model")
    assert [(e.level, e.leaves, e.first) for e in kept] == [("service", frozenset({0, 1, 2}), 100)]


def test_an_outage_of_several_series_above_the_environments_still_goes_to_the_coarser_level() -> None:
    models = [_errors("service,model,environment", {i}, events=60, trials=600, first=100 + i) for i in (0, 2, 3)]
    app = _errors("all", set(range(6)), events=190, trials=2400)
    kept = resolve([*models, app], SPLIT_ORDER, SERIES_OF, "service,model")
    assert [(e.level, e.first) for e in kept] == [("all", 100)]


def test_both_environments_of_a_series_at_once_are_one_episode_of_the_series() -> None:
    production = _errors("service,model,environment", {0}, events=45, trials=200)
    staging = _errors("service,model,environment", {1}, events=12, trials=40, first=102)
    series = _errors("service,model", {0, 1}, events=57, trials=240)
    kept = resolve([production, staging, series], SPLIT_ORDER, SERIES_OF, "service,model")
    assert [(e.level, e.leaves) for e in kept] == [("service,model", frozenset({0, 1}))]


def test_a_finer_episode_starting_later_inside_the_coarser_one_is_not_reported_again() -> None:
    models = [_errors("service,model,environment", {i}, events=60, trials=600) for i in (0, 2)]
    late = _errors("service,model,environment", {3}, events=9, trials=30, first=108)  # past ONSET_BUCKETS
    late.last = 111  # and ends inside the app's episode
    app = _errors("all", set(range(6)), events=140, trials=2400, first=99)
    app.last = 112
    kept = resolve([*models, late, app], SPLIT_ORDER, SERIES_OF, "service,model")
    assert [(e.level, e.first, e.last) for e in kept] == [("all", 99, 112)]
