"""llmtrace dashboard entry point: page list, shared sidebar filters, store checks.

Run with ``llmtrace dashboard`` (or ``streamlit run dashboard/streamlit_app.py``); the store
URL comes from ``LLMTRACE_CLICKHOUSE_URL`` (default http://127.0.0.1:8123).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st


def _bind_package() -> None:
    """The app's modules import one another as ``dashboard``. The wheel ships this folder as
    ``llmtrace._dashboard``: when this file lives inside the importable llmtrace package, that
    package answers to ``dashboard``. Anywhere else (a checkout, whatever its folder is called)
    the folder above this one is put on ``sys.path``. Decided by location, never by folder names:
    a clone named ``llmtrace`` is a checkout, not the installed package."""
    import importlib
    import importlib.util

    here = Path(__file__).resolve().parent
    spec = importlib.util.find_spec("llmtrace")
    package_dirs = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    if any(here == d / "_dashboard" for d in package_dirs):
        sys.modules["dashboard"] = importlib.import_module("llmtrace._dashboard")
    elif str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))


_bind_package()

from dashboard import common, sidebar  # noqa: E402
from llmtrace._process import disable_huge_pages  # noqa: E402
from llmtrace.analytics import overview  # noqa: E402

disable_huge_pages()  # however the app was started (llmtrace dashboard, up, streamlit run): steady CPU

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"
PAGES = [
    st.Page(PAGES_DIR / "overview.py", title="Overview", icon=":material/monitoring:", default=True),  # at /
    st.Page(PAGES_DIR / "traces.py", title="Traces", icon=":material/account_tree:", url_path="traces"),
    st.Page(PAGES_DIR / "cost.py", title="Cost", icon=":material/payments:", url_path="cost"),
    st.Page(PAGES_DIR / "latency.py", title="Latency", icon=":material/timer:", url_path="latency"),
    st.Page(PAGES_DIR / "drift.py", title="Drift", icon=":material/compare_arrows:", url_path="drift"),
    st.Page(PAGES_DIR / "compare.py", title="Compare", icon=":material/balance:", url_path="compare"),
    st.Page(PAGES_DIR / "prompts.py", title="Prompts", icon=":material/edit_note:", url_path="prompts"),
    st.Page(PAGES_DIR / "sessions.py", title="Sessions & users", icon=":material/group:", url_path="sessions"),
    st.Page(PAGES_DIR / "anomalies.py", title="Anomalies", icon=":material/crisis_alert:", url_path="anomalies"),
    st.Page(PAGES_DIR / "sql.py", title="SQL", icon=":material/terminal:", url_path="sql"),
]
NEEDS_DATA = {"Overview", "Traces", "Cost", "Latency", "Drift", "Compare", "Prompts", "Sessions & users", "Anomalies"}


def refuse_rebound_host() -> None:
    """DNS rebinding: a page whose own name the attacker re-points at 127.0.0.1 loads this app as
    same-origin and could run it (SQL console included) from the developer's browser. Its
    ``Host`` still names the attacker's domain: only names of the bound address run the app."""
    from llmtrace.server.browser_guard import host_allowed

    host = st.context.headers.get("Host")  # absent only outside a browser session (AppTest)
    if host is not None and not host_allowed(host, str(st.get_option("server.address") or "")):
        st.error(f"This dashboard does not answer to the name {host!r}; open it at its own address, "
                 "or add the name to LLMTRACE_ALLOWED_HOSTS.")  # fmt: skip
        st.stop()


def main() -> None:
    st.set_page_config(page_title="llmtrace", page_icon=":material/insights:", layout="wide")
    refuse_rebound_host()
    page = st.navigation(PAGES)
    st.sidebar.caption(f"Store: `{common.shown_store_url()}`")
    try:
        counts = common.load(overview.store_counts)
        if counts["calls"] == 0:  # never trust a cached "empty": the first calls may have just arrived
            counts = overview.store_counts(common.client())
        st.session_state[common.FILTER_KEY] = sidebar.render()
    except common.StoreUnavailable as exc:
        common.show_unavailable(exc)
        return
    if counts["calls"] == 0 and page.title in NEEDS_DATA:
        st.title(page.title)
        common.show_empty_store()
        return
    try:
        page.run()
    except common.StoreUnavailable as exc:
        common.show_unavailable(exc)


main()
