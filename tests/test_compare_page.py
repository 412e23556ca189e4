"""The Compare page under Streamlit's AppTest, on canary demo traffic in chDB: it shows the
verdicts ``llmtrace compare`` gives, for the releases picked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.analytics import compare
from llmtrace.analytics.filters import Filter
from llmtrace.demo import canary
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner

# The clock, read once: the canary ends at the last whole hour before it (the page shows the last week).
NOW = datetime.now(timezone.utc)
# A smaller service with newer releases: its pair is the newest but has less traffic than the demo's.
SMALL = canary.Canary(arms=(canary.Arm("r1"), canary.Arm("r2")), calls=600, hours=2, seed=3, service="faq-bot")
APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "streamlit_app.py")


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"chdb://{tmp_path_factory.mktemp('compare-page')}"
    client = connect(url)
    apply_migrations(client_runner(client))
    canary.insert(client, canary.DEMO.dated(NOW))
    canary.insert(client, SMALL.dated(NOW))
    yield url
    common._client(url).close()
    common._client.clear()
    common._cached.clear()
    client.close()


@pytest.fixture
def page(store_url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/compare.py").run()
    at.selectbox(key="cmp_base_release").set_value("v2.0.0").run()
    return at


def _cards(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _verdicts(at: AppTest) -> dict[str, str]:
    table = at.dataframe[0].value
    frame: Any = getattr(table, "data", table)  # a Styler holds its frame in .data
    return dict(zip(frame["metric"], frame["verdict"], strict=True))


def test_the_slower_release_shows_three_worse_metrics_and_names_them(page: AppTest) -> None:
    page.selectbox(key="cmp_cand_release").set_value("v2.1.0").run()
    assert not page.exception
    assert _cards(page)["Worse"] == "3"
    assert (
        page.error[0].value == "**v2.1.0** is worse than **v2.0.0** on latency_p50_ms, latency_p95_ms, score:quality."
    )


def test_the_page_verdicts_equal_the_command_s(page: AppTest) -> None:
    page.selectbox(key="cmp_cand_release").set_value("v2.2.0").run()
    f: Filter = page.session_state[common.FILTER_KEY]
    client = common._client(common.store_url())
    expected = {r.metric: r.verdict for r in compare.compare(client, "release=v2.0.0", "release=v2.2.0", f).results}
    assert _verdicts(page) == expected
    assert expected["cost_per_call_usd"] == "better"
    assert _cards(page)["Worse"] == "0"


def test_the_same_value_on_both_sides_asks_for_two(page: AppTest) -> None:
    page.selectbox(key="cmp_cand_release").set_value("v2.0.0").run()
    assert any("two different values" in i.value for i in page.info)


def test_a_link_opens_the_page_on_the_canarys_comparison(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``llmtrace up --demo`` prints canary_live.compare_link: the page opens on it, no clicks."""
    from llmtrace.demo.canary_live import compare_link

    link = compare_link("http://localhost:8501", canary.DEMO)
    assert link == (
        "http://localhost:8501/compare?by=release&baseline=v2.0.0&candidate=v2.1.0&service=checkout-assistant"
    )
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(APP, default_timeout=60)
    for pair in link.split("?", 1)[1].split("&"):
        at.query_params[pair.split("=")[0]] = pair.split("=")[1]
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    assert at.selectbox(key="cmp_base_release").value == "v2.0.0"
    assert at.selectbox(key="cmp_cand_release").value == "v2.1.0"
    assert _cards(at)["Worse"] == "3"


def test_a_link_to_a_release_without_calls_says_so(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"by": "release", "baseline": "v0.0.1", "candidate": "v2.1.0"})
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    assert any("'v0.0.1' from the link has no calls" in w.value for w in at.warning)
    assert at.selectbox(key="cmp_cand_release").value == "v2.1.0"


def test_without_a_link_the_page_compares_two_releases_of_the_busiest_service_and_says_so(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services with releases in the window: the default pair is the newest launch of the
    service where both have the most calls (not the newest two across services; the canary's
    releases went out together, so the first two by name), and the page says what it compares:
    which releases, where, over which window, how many calls."""
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    assert at.selectbox(key="cmp_service_release").value == canary.DEMO.service
    base, cand = at.selectbox(key="cmp_base_release").value, at.selectbox(key="cmp_cand_release").value
    assert (base, cand) == ("v2.0.0", "v2.1.0")  # launched together: the first two by name
    said = [m.value for m in at.markdown if m.value.startswith("Comparing release")]
    assert len(said) == 1 and f"**{cand}** (candidate) with **{base}** (baseline)" in said[0], said
    assert f"in service **{canary.DEMO.service}**" in said[0], said
    assert re.search(r" UTC: [1-9][\d,]* against [1-9][\d,]* calls\.$", said[0]), said  # the sidebar's window


def test_picking_the_other_service_offers_only_its_releases(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/compare.py").run()
    at.selectbox(key="cmp_service_release").set_value(SMALL.service).run()
    assert not at.exception
    assert set(at.selectbox(key="cmp_base_release").options) == {"r1", "r2"}
    said = next(m.value for m in at.markdown if m.value.startswith("Comparing release"))
    assert f"in service **{SMALL.service}**" in said and ": 300 against 300 calls." in said, said


def test_the_default_pair_is_the_busiest_services_newest_two(store_url: str) -> None:
    from llmtrace.analytics.compare_pick import default_pair

    client = connect(store_url)
    try:
        window = Filter.last(timedelta(days=2), now=NOW)
        pair = default_pair(client, window, "release")
        assert pair is not None and pair.service == canary.DEMO.service and pair.calls == canary.DEMO.calls // 3
        assert (pair.baseline, pair.candidate) == ("v2.0.0", "v2.1.0")
        services = default_pair(client, window, "service")  # services themselves: no service to stay within
        assert services is not None and services.service is None
        assert {services.baseline, services.candidate} == {canary.DEMO.service, SMALL.service}
        assert default_pair(client, Filter.last(timedelta(days=2), now=NOW, services=(SMALL.service,)), "model") is None
    finally:
        client.close()


def test_a_release_launched_alone_is_compared_with_the_one_before_it() -> None:
    from llmtrace.analytics.compare_pick import _newest_launch

    t = pd.Timestamp("2026-12-01 00:00")
    rows = pd.DataFrame({"value": ["v1.9.0", "v1.10.0", "v1.11.0"], "calls": [50, 40, 30],
                         "first": [t, t + pd.Timedelta(days=2), t + pd.Timedelta(days=3)]})  # fmt: skip
    older, newer = _newest_launch(rows)
    assert (older["value"], newer["value"]) == ("v1.10.0", "v1.11.0")
    # v1.11.0 and v1.10.0 went out together (20 minutes apart, in that order): by name, not by the minute.
    together = pd.DataFrame({"value": ["v1.9.0", "v1.11.0", "v1.10.0"], "calls": [50, 40, 30],
                             "first": [t, t + pd.Timedelta(days=3), t + pd.Timedelta(days=3, minutes=20)]})  # fmt: skip
    older, newer = _newest_launch(together)
    assert (older["value"], newer["value"]) == ("v1.10.0", "v1.11.0")
