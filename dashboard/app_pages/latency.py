"""Latency: percentiles and distributions per model, time to first token, throughput."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import latency

PERCENTILES = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99"}

f = common.current_filter()
st.title("Latency")

with st.spinner("Reading latency percentiles…"):
    per_model = common.load(latency.by_model, f)
if per_model.empty:
    common.no_calls(
        f"No LLM calls in the last {common.fmt_duration(f.duration)} with these filters: "
        "pick a longer time range or clear a filter in the sidebar."
    )
models = common.color_map(per_model["model"])
model_column = {"model": st.column_config.TextColumn("model", pinned=True)}

st.subheader("Per model")
left, right = st.columns([3, 2])
bars = per_model.rename(columns=PERCENTILES).melt(
    id_vars="model", value_vars=list(PERCENTILES.values()), var_name="percentile"
)
chart = px.bar(
    bars, x="model", y="value", color="percentile", barmode="group",
    color_discrete_map=common.PERCENTILE_COLORS, hover_data={"value": ":,.0f"},
)  # fmt: skip
left.plotly_chart(common.style(chart, "Duration percentiles", y="ms"), key="percentiles_chart")
common.table(
    per_model,
    where=right,
    hide_index=True,
    column_order=["model", "calls", "p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms"],
    column_config={
        **common.SUMMARY_COLUMNS,
        **model_column,
        "ttft_p50_ms": st.column_config.NumberColumn("TTFT p50", format="%.0f ms"),
        "ttft_p95_ms": st.column_config.NumberColumn("TTFT p95", format="%.0f ms"),
    },
    key="per_model_table",
)

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
    st.caption("No calls with this measurement in the window (time to first token exists only for streams).")
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
        color_discrete_map=models,
        category_orders={"bin": [labels[v] for v in bins]},
    )
    st.plotly_chart(
        common.style(chart, "Calls per latency bin", height=340, y="calls", x="latency (bin start)"),
        key="histogram_chart",
    )

st.subheader("Over time")
trend = common.load(latency.over_time, f)
chart = px.line(trend, x="bucket", y="p95_ms", color="model", color_discrete_map=models)
chart.update_traces(hovertemplate="%{y:,.0f} ms")
st.plotly_chart(common.style(chart, "p95 duration per model", height=340, y="ms"), key="trend_chart")

st.subheader("Output tokens per second")
throughput = common.load(latency.tokens_per_second, f)
if throughput.empty:
    st.caption("No streamed calls with output in the window: speed after the first token needs a stream.")
else:
    left, right = st.columns([3, 2])
    chart = px.bar(
        throughput, x="model", y=["p50", "p95"], barmode="group", color_discrete_map=common.PERCENTILE_COLORS
    )
    left.plotly_chart(
        common.style(chart, "Generation speed after the first token", y="tokens/s"), key="throughput_chart"
    )
    common.table(
        throughput,
        where=right,
        hide_index=True,
        column_config={
            **common.SUMMARY_COLUMNS,
            **model_column,
            "p50": st.column_config.NumberColumn("p50 tokens/s", format="%.1f"),
            "p95": st.column_config.NumberColumn("p95 tokens/s", format="%.1f"),
        },
        key="throughput_table",
    )

st.subheader("Slowest calls")
slowest = common.with_trace_links(common.load(latency.slowest_calls, f))
common.table(
    slowest,
    hide_index=True,
    column_config={**common.SUMMARY_COLUMNS, "trace_id": common.trace_link_column()},
    key="slowest_table",
)
