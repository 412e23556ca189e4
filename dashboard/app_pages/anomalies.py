"""Anomalies: incidents found by count statistics over the last week (by default), odd calls,
and each episode's time series with its expected value and example traces."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common
from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import DIMENSIONS, Filter
from llmtrace.analytics.groups import label

WINDOWS = {"7d": timedelta(days=7), "24h": timedelta(hours=24), "6h": timedelta(hours=6), "sidebar": None}
WINDOW_NAMES = {"7d": "Last 7 days", "24h": "Last 24 hours", "6h": "Last 6 hours", "sidebar": "The sidebar's window"}
GROUPINGS = {
    "auto": "Automatic: service × model (by environment, provider where split), service, provider, app",
    "service,model": "Service × model",
    "service": "Service",
    "provider": "Provider",
    "model": "Model",
    "release": "Release",
    "environment": "Environment",
}
SEVERITY_COLORS = {"critical": "#f8d0d0", "warning": "#fde9c4"}
COLUMNS = [
    "severity", "kind", "level", "series", "user", "metric", "direction", "start", "end",
    "observed", "expected", "measure", "events", "trials", "score", "trace",
]  # fmt: skip

sidebar = common.current_filter()
st.title("Anomalies")
left, right = st.columns(2)
window = left.selectbox("Window", list(WINDOWS), format_func=WINDOW_NAMES.get, key="anomaly_window") or "7d"
by = right.selectbox("Series", list(GROUPINGS), format_func=GROUPINGS.get, key="anomaly_by") or "auto"
span = WINDOWS[window]
dimensions = {name: getattr(sidebar, name) for name in DIMENSIONS}  # the sidebar's services, models, ...
f = sidebar if span is None else Filter.last(span, now=sidebar.end, **dimensions)
try:
    report = common.load(anomalies.detect, f, by)
except ValueError as exc:
    st.warning(str(exc))
    st.stop()
episodes = report.episodes()
cards = st.columns(4)
cards[0].metric("Episodes", len(episodes), border=True)
cards[1].metric("Critical", sum(a.severity == "critical" for a in report.anomalies), border=True)
cards[2].metric("Odd calls and retry storms", len(report.anomalies) - len(episodes), border=True)
cards[3].metric("Warming up", len(report.warming_up), border=True)
st.caption(
    f"{report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC. Every 5, 15 and 60 minutes and 3 hours "
    "of each series is tested against its own recent past: call volume against the expected count (daily "
    "peaks allowed for), failures, truncations and empty outputs against the usual rate, and the share of "
    "calls slower, later to the first token, longer or costlier than the series' usual 90th percentile. "
    "The score is −log10 of the chance of seeing that many by luck; an incident is reported once, at the most "
    "specific level that explains it. One user whose calls run far above its own busiest hour and at least "
    "half again the rest of its series (a runaway loop) is a calls episode of the series naming the user. "
    "The 5 minutes in progress are not judged."
)
for line in report.warming_lines():
    st.info(line)

if not report.anomalies:
    st.success("No anomalies in this window.")
    st.stop()

st.subheader("Anomalies")
table = report.to_frame()
table.insert(0, "series", [label(a.series) for a in report.anomalies])
table["trace"] = ["traces?trace=" + a.trace_ids[0] if a.trace_ids else None for a in report.anomalies]
styled = common.color_rows(table[COLUMNS], "severity", SEVERITY_COLORS)
common.table(
    styled,
    hide_index=True,
    key="anomaly_table",
    column_config={
        "trace": common.trace_link_column("example trace"),
        "score": st.column_config.NumberColumn("score (−log10 p)", format="%.1f"),
        "observed": st.column_config.NumberColumn("observed", format="%.4g"),
        "expected": st.column_config.NumberColumn("expected", format="%.4g"),
        "start": st.column_config.DatetimeColumn("start", format="MM-DD HH:mm"),
        "end": st.column_config.DatetimeColumn("end", format="MM-DD HH:mm"),
    },
)
st.caption(
    "For rates and for latency, TTFT, tokens and cost, *observed* and *expected* are shares of calls "
    "(*measure* says which: failed, cut, above the usual p90 or twice it, ...) with *events* of *trials* "
    "behind them; for calls, counts."
)

if not episodes:
    st.stop()
st.subheader("Episode")
picked = st.selectbox("Episode", range(len(episodes)), format_func=lambda i: episodes[i].summary, key="anomaly_episode")
episode = episodes[int(picked or 0)]
scanned = "tokens_per_call_low" if episode.metric == "tokens_per_call" and episode.direction == "down" else None
points = common.load(anomalies.points, f, by, (episode.metric,))
level = episode.level.removesuffix(",user")  # a runaway user's episode: its series' calls
points = points[(points["level"] == level) & (points["metric"] == (scanned or episode.metric))]
for name, value in episode.series.items():
    points = points[points[name] == value]
near = (points["bucket"] >= episode.start - timedelta(hours=12)) & (
    points["bucket"] < episode.end + timedelta(hours=12)
)
points = points[near].sort_values("bucket")
if episode.metric == "calls":  # a bucket without calls is a count of zero, not a gap in the line
    grid = pd.date_range(points["bucket"].min(), points["bucket"].max(), freq="5min")
    points = points.set_index("bucket").reindex(grid).rename_axis("bucket").reset_index()
    points["observed"] = points["observed"].fillna(0)
    points["flagged"] = points["flagged"].fillna(False).astype(bool)
figure = go.Figure()
figure.add_scatter(x=points["bucket"], y=points["observed"], name="observed", mode="lines", connectgaps=True,
                   line={"color": "#1f77b4", "width": 1.5})  # fmt: skip
figure.add_scatter(x=points["bucket"], y=points["expected"], name="expected", connectgaps=True,
                   line={"dash": "dash", "color": "#7f8c8d"})  # fmt: skip
flagged = points[points["flagged"]]
figure.add_scatter(x=flagged["bucket"], y=flagged["observed"], name="flagged", mode="markers",
                   marker={"size": 7, "color": "#e74c3c"})  # fmt: skip
figure.add_vrect(x0=episode.start, x1=episode.end, fillcolor="#e74c3c", opacity=0.12, line_width=0)
unit = "calls per 5 minutes" if episode.metric == "calls" else "share of calls per 5 minutes"
st.plotly_chart(
    common.style(figure, f"{episode.metric} · {label(episode.series)} ({unit})", height=360), key="anomaly_chart"
)
if episode.user:
    st.text(f"Runaway user: {episode.user}: {episode.measure}.")  # plain text: a user id is data, not markdown
if episode.trace_ids:
    st.markdown("Example traces: " + ", ".join(f"[`{t[:12]}…`](traces?trace={t})" for t in episode.trace_ids))
