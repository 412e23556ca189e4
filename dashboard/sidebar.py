"""The sidebar filters every page shares: a time window and dimension multiselects."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta, timezone

import streamlit as st

from dashboard import common
from llmtrace.analytics import sessions
from llmtrace.analytics.filters import DIMENSIONS, RAW_DIMENSIONS, Filter, options

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CUSTOM = "Custom"
LABELS = {
    "services": "Service",
    "environments": "Environment",
    "releases": "Release",
    "providers": "Provider",
    "models": "Model",
    "users": "User",
    "sessions": "Session",
}


def _linked_range() -> int:
    """The preset a link asked for with ``?range=7d`` (default 24h); a bad value is said, not ignored."""
    asked = st.query_params.get("range")
    choices = [*PRESETS, CUSTOM]
    if asked is None:
        return 1
    for index, name in enumerate(choices):
        if asked.lower() == name.lower():
            return index
    st.sidebar.warning(f"Unknown range {asked!r} in the link; use one of {', '.join(PRESETS)}. Showing 24h.")
    return 1


def window() -> Filter:
    """The time window chosen in the sidebar (no dimension filters yet); the URL's ``?range=`` follows it."""
    choice = (
        st.sidebar.radio("Time range", [*PRESETS, CUSTOM], index=_linked_range(), horizontal=True, key="time_range")
        or "24h"
    )
    if st.query_params.get("range") != choice and choice in PRESETS:
        st.query_params["range"] = choice  # shareable: the link opens the same window
    if choice != CUSTOM:
        return Filter.last(PRESETS[choice])
    today = datetime.now(timezone.utc).date()
    picked = st.sidebar.date_input("Dates (UTC)", (today - timedelta(days=6), today), key="custom_dates")
    first, last = _date_range(picked, today)
    start = datetime.combine(first, time.min, timezone.utc)
    return Filter(start=start, end=datetime.combine(last, time.min, timezone.utc) + timedelta(days=1))


def _date_range(picked: object, today: date) -> tuple[date, date]:
    """date_input returns one date while the user is still picking the second one."""
    if isinstance(picked, (tuple, list)):
        dates = [d for d in picked if isinstance(d, date)]
        if len(dates) == 2:
            return min(dates), max(dates)
        if dates:
            return dates[0], dates[0]
    if isinstance(picked, date):
        return picked, picked
    return today, today


def dimension_filters(base: Filter) -> Filter:
    """Add the multiselect choices; options are the values seen in the window."""
    values = common.load(options, base)
    chosen = {}
    for name in DIMENSIONS:
        current = st.session_state.get(f"filter_{name}", [])
        choices = sorted(set(values.get(name, [])) | set(current))
        chosen[name] = tuple(st.sidebar.multiselect(LABELS[name], choices, key=f"filter_{name}"))
    return Filter(start=base.start, end=base.end, **chosen)


def people_filters(f: Filter) -> Filter:
    """Add user and session pickers (ids active in the window, most recent first)."""
    values = common.load(sessions.ids, f)
    chosen = {}
    for name in RAW_DIMENSIONS:
        current = list(st.session_state.get(f"filter_{name}", []))
        choices = list(dict.fromkeys([*current, *values.get(name, [])]))
        chosen[name] = tuple(st.sidebar.multiselect(LABELS[name], choices, key=f"filter_{name}"))
    return dataclasses.replace(f, **chosen)


def render() -> Filter:
    """Draw the sidebar and return the resulting filter."""
    base = window()
    f = people_filters(dimension_filters(base))
    rollup = " · hourly rollup" if f.uses_rollup else ""
    st.sidebar.caption(f"{f.start:%Y-%m-%d %H:%M} → {f.end:%Y-%m-%d %H:%M} UTC{rollup}")
    if any(getattr(f, name) for name in RAW_DIMENSIONS):
        st.sidebar.caption("User and session filters read stored calls only; Drift and Anomalies ignore them.")
    return f
