"""Drift: does the current traffic look like the baseline? Previous period, or one release,
prompt version or model against another, with verdicts and overlaid distributions."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import drift
from llmtrace.analytics.groups import label

MODES = {
    "previous": "Previous period",
    "release": "Release vs release",
    "prompt_version": "Prompt version vs prompt version",
    "model": "Model vs model",
}
SPANS = {"day": "Last day vs the 7 days before", "sidebar": "The sidebar's window vs the same length before"}
GROUPINGS = ["service", "model", "provider", "release", "prompt", "prompt_version", "environment"]
VERDICT_COLORS = {"major": "#f8d0d0", "moderate": "#fde9c4", "insufficient_data": "#e8e8e8", "none": ""}
TABLE_COLUMNS = [
    "series", "metric", "verdict", "direction", "reason", "baseline_n", "current_n", "psi", "ks_pvalue", "js_distance",
    "median_shift", "p95_shift", "category", "baseline_share", "current_share",
]  # fmt: skip

f = common.current_filter()
st.title("Drift")

mode = st.radio("Compare", list(MODES), format_func=MODES.get, horizontal=True, key="drift_mode") or "previous"
if mode == "previous":
    span = st.selectbox("Current window", list(SPANS), format_func=SPANS.get, key="drift_span") or "day"
    if span == "day":  # whole days on both sides: traffic with daily peaks makes part-day windows look drifted
        comparison = drift.Comparison.previous_period(timedelta(days=1), timedelta(days=7), now=f.end)
    else:
        comparison = drift.Comparison.of_filter(f)
else:
    # oldest first, so the default is the one before the newest against the newest
    values = common.load(drift.values_oldest_first, f, mode)
    if len(values) < 2:
        st.info(f"Fewer than two values of {mode} in this window: widen the time range to compare them.")
        st.stop()
    left, right = st.columns(2)
    baseline = left.selectbox("Baseline", values, index=len(values) - 2, key="drift_baseline")
    current = right.selectbox("Current", values, index=len(values) - 1, key="drift_current")
    comparison = drift.Comparison.versus(mode, str(baseline), str(current), f.start, f.end)
default_by = ["service"]
choices = [g for g in GROUPINGS if g != mode]
by = st.multiselect("Group by", choices, default=default_by, key=f"drift_by_{mode}")
st.caption(f"Baseline: {comparison.baseline.label} · Current: {comparison.current.label}")
st.caption(
    "Does the current traffic look like the baseline? Each metric's distribution is compared (PSI and KS "
    "for numbers, Jensen–Shannon and chi-square for rates and mixes); a verdict needs a significant AND "
    "large change, says whether it is for the worse or the better, and needs 30 calls on each side."
)

try:
    report = common.load(drift.compare, comparison, tuple(by), f)
except ValueError as exc:
    st.warning(str(exc))
    st.stop()
counts = {v: sum(r.verdict == v for r in report.results) for v in ("major", "moderate", "insufficient_data")}
cards = st.columns(4)
cards[0].metric("Major drift", counts["major"], border=True)
cards[1].metric("Moderate drift", counts["moderate"], border=True)
cards[2].metric("Too little data", counts["insufficient_data"], border=True)
cards[3].metric("Metrics compared", len(report.results), border=True)

st.subheader("Verdicts")
only_changes = st.toggle("Only metrics that changed", value=True, key="drift_only_changes")
table = report.to_frame()
table.insert(0, "series", [label(r.group) for r in report.results])
if only_changes:
    table = table[table["verdict"].isin(["major", "moderate"])]
judged = [r for r in report.results if r.verdict != "insufficient_data"]
if table.empty and not judged:
    st.info(
        "Too little data to judge: every metric needs at least 30 calls on each side. "
        "Widen the window or group by fewer dimensions."
    )
elif table.empty:
    st.success("No drift: every compared metric looks like the baseline.")
else:
    shown = table[TABLE_COLUMNS].reset_index(drop=True)
    styled = common.color_rows(shown, "verdict", VERDICT_COLORS)
    common.table(
        styled,
        hide_index=True,
        key="drift_table",
        column_config={
            "median_shift": st.column_config.NumberColumn("median shift", format="percent"),
            "p95_shift": st.column_config.NumberColumn("p95 shift", format="percent"),
            "baseline_share": st.column_config.NumberColumn("baseline share", format="percent"),
            "current_share": st.column_config.NumberColumn("current share", format="percent"),
            "psi": st.column_config.NumberColumn("PSI", format="%.3f"),
            "js_distance": st.column_config.NumberColumn("JS distance", format="%.3f"),
            "ks_pvalue": st.column_config.NumberColumn("KS p-value", format="%.2g"),
        },
    )

st.subheader("Distributions")
numeric = [r for r in report.results if r.kind == "numeric" and r.verdict != "insufficient_data"]
if not numeric:
    st.caption("No numeric metric has enough calls on both sides to plot.")
    st.stop()
options = list(dict.fromkeys((r.series, r.metric) for r in numeric))  # flagged first (results are sorted)
picked = st.selectbox("Series and metric", options, format_func=lambda o: f"{o[1]} · {o[0]}", key="drift_plot")
result = next(r for r in numeric if (r.series, r.metric) == picked)
hist = common.load(drift.distribution, comparison, result.metric, result.group, f)
if hist.empty:
    st.caption("No calls to plot.")
else:
    chart = px.bar(
        hist, x="x", y="share", color="side", barmode="overlay", opacity=0.6,
        labels={"x": result.metric, "share": "share of calls"},
        color_discrete_map={"baseline": "#7f8c8d", "current": "#e74c3c"},
    )  # fmt: skip
    st.plotly_chart(common.style(chart, f"{result.metric}: baseline vs current ({result.verdict})"), key="drift_hist")
    st.caption(result.reason)
summary = pd.DataFrame(
    {
        "": ["median", "p95"],
        "baseline": [result.baseline_median, result.baseline_p95],
        "current": [result.current_median, result.current_p95],
    }
)
common.table(
    summary,
    hide_index=True,
    key="drift_quantiles",
    column_config={side: st.column_config.NumberColumn(side, format="%.4g") for side in ("baseline", "current")},
)
