"""Latency: percentiles and distributions per model, time to first token, throughput."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import latency

f = common.current_filter()
st.title("Latency")

per_model = common.load(latency.by_model, f)
st.subheader("Per model")
left, right = st.columns([3, 2])
bars = per_model.melt(id_vars="model", value_vars=["p50_ms", "p95_ms", "p99_ms"], var_name="percentile")
chart = px.bar(bars, x="model", y="value", color="percentile", barmode="group", labels={"value": "ms"})
left.plotly_chart(common.style(chart, "Duration percentiles"), key="percentiles_chart")
common.table(per_model, where=right, hide_index=True, column_config=common.SUMMARY_COLUMNS, key="per_model_table")

st.subheader("Distribution")
metric = st.radio(
    "Metric",
    list(latency.METRICS),
    format_func={"duration": "Total duration", "ttft": "Time to first token (streams)"}.get,
    horizontal=True,
    key="latency_metric",
)
histogram = common.load(latency.histogram, f, metric)
if histogram.empty:
    st.caption("No calls with this measurement in the window.")
else:
    # Log-spaced bins as ordered categories: equal widths, readable labels.
    bins = sorted(histogram["bin_ms"].unique())
    labels = {value: common.fmt_ms(value) for value in bins}
    histogram = histogram.assign(bin=histogram["bin_ms"].map(labels))
    chart = px.bar(
        histogram,
        x="bin",
        y="calls",
        color="model",
        category_orders={"bin": [labels[v] for v in bins]},
        labels={"bin": "at least"},
    )
    st.plotly_chart(common.style(chart, "Calls per latency bin", height=340), key="histogram_chart")

st.subheader("Over time")
trend = common.load(latency.over_time, f)
chart = px.line(trend, x="bucket", y="p95_ms", color="model", labels={"p95_ms": "p95 ms"})
st.plotly_chart(common.style(chart, "p95 duration per model", height=340), key="trend_chart")

st.subheader("Output tokens per second")
throughput = common.load(latency.tokens_per_second, f)
left, right = st.columns([3, 2])
chart = px.bar(throughput, x="model", y=["p50", "p95"], barmode="group", labels={"value": "tokens/s"})
left.plotly_chart(common.style(chart, "Generation speed after the first token"), key="throughput_chart")
common.table(throughput, where=right, hide_index=True, column_config=common.SUMMARY_COLUMNS, key="throughput_table")

st.subheader("Slowest calls")
slowest = common.with_trace_links(common.load(latency.slowest_calls, f))
common.table(
    slowest,
    hide_index=True,
    column_config={**common.SUMMARY_COLUMNS, "trace_id": common.trace_link_column()},
    key="slowest_table",
)
