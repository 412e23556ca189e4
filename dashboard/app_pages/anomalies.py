"""Anomalies: episodes where a series left its usual range (daily peaks are normal), odd calls,
and each episode's time series with the expected value and example traces."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from dashboard import common
from llmtrace.analytics import anomalies
from llmtrace.analytics.groups import label

GROUPINGS = ["service", "model", "provider", "release", "prompt", "prompt_version", "environment"]
SEVERITY_COLORS = {"critical": "#f8d0d0", "warning": "#fde9c4"}

f = common.current_filter()
st.title("Anomalies")

by = st.multiselect("Series", GROUPINGS, default=list(anomalies.DEFAULT_BY), key="anomaly_by")
try:
    report = common.load(anomalies.detect, f, tuple(by))
except ValueError as exc:
    st.warning(str(exc))
    st.stop()
episodes = report.episodes()
cards = st.columns(4)
cards[0].metric("Episodes", len(episodes), border=True)
cards[1].metric("Critical", sum(a.severity == "critical" for a in report.anomalies), border=True)
cards[2].metric("Odd calls and retry storms", len(report.anomalies) - len(episodes), border=True)
cards[3].metric("Bucket", common.fmt_duration(timedelta(seconds=report.step)), border=True)
st.caption(
    f"{report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC. Each bucket is compared with the same "
    "time of day on previous days (so daily peaks are normal); the bucket in progress is not judged."
)

if not report.anomalies:
    st.success("No anomalies in this window.")
    st.stop()

st.subheader("Anomalies")
table = report.to_frame()
table.insert(0, "series", [label(a.series) for a in report.anomalies])
table["trace"] = ["traces?trace=" + a.trace_ids[0] if a.trace_ids else None for a in report.anomalies]
columns = [
    "severity",
    "kind",
    "series",
    "metric",
    "direction",
    "start",
    "end",
    "observed",
    "expected",
    "score",
    "trace",
]
shown = table[columns]
styled = common.color_rows(shown, "severity", SEVERITY_COLORS)
common.table(
    styled,
    hide_index=True,
    key="anomaly_table",
    column_config={
        "trace": common.trace_link_column("example trace"),
        "score": st.column_config.NumberColumn("score", format="%.1f"),
        "start": st.column_config.DatetimeColumn("start", format="MM-DD HH:mm"),
        "end": st.column_config.DatetimeColumn("end", format="MM-DD HH:mm"),
    },
)

if not episodes:
    st.stop()
st.subheader("Episode")
picked = st.selectbox("Episode", range(len(episodes)), format_func=lambda i: episodes[i].summary, key="anomaly_episode")
episode = episodes[int(picked or 0)]
points = common.load(anomalies.points, f, tuple(by), (episode.metric,))
for name, value in episode.series.items():
    points = points[points[name] == value]
figure = go.Figure()
figure.add_scatter(x=points["bucket"], y=points["observed"], name="observed", mode="lines")
figure.add_scatter(x=points["bucket"], y=points["expected"], name="expected", line={"dash": "dash"})
flagged = points[points["flagged"]]
figure.add_scatter(x=flagged["bucket"], y=flagged["observed"], name="flagged", mode="markers", marker={"size": 9})
for other in report.find(episode.metric, kind="episode", **episode.series):
    figure.add_vrect(x0=other.start, x1=other.end, fillcolor="#e74c3c", opacity=0.12, line_width=0)
st.plotly_chart(common.style(figure, f"{episode.metric} · {label(episode.series)}", height=360), key="anomaly_chart")
if episode.trace_ids:
    st.markdown("Example traces: " + ", ".join(f"[`{t[:12]}…`](traces?trace={t})" for t in episode.trace_ids))
