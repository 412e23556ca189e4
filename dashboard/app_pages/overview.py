"""Overview: headline numbers vs the previous window, trends, and where the calls go."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import common
from llmtrace.analytics import overview

f = common.current_filter()
st.title("Overview")

with st.spinner("Reading the window…"):
    both = common.load(overview.summary_with_previous, f)
now, before = both.loc["current"], both.loc["previous"]
if not now["calls"]:
    common.no_calls(
        f"No LLM calls in the last {common.fmt_duration(f.duration)}. Pick a longer time range in the sidebar, "
        "or send calls from your app (see the SQL page for what the store holds)."
    )
was = before["calls"]  # "new" instead of a ratio against an almost empty previous window
st.caption(
    f"Change is against the previous {common.fmt_duration(f.duration)} "
    f"({f.previous().start:%b %d %H:%M} → {f.start:%b %d %H:%M} UTC)."
)


def spend_value(row: pd.Series) -> str:
    priced = int(row["calls"]) - int(row["unpriced_calls"])
    return common.fmt_usd(row["cost_usd"]) if priced > 0 else "n/a"


top = st.columns(5)
top[0].metric("Calls", common.fmt_int(now["calls"]), common.change(now["calls"], was, was), border=True)
top[1].metric(
    "Error rate",
    common.fmt_pct(now["error_rate"]),
    common.point_change(now["error_rate"], before["error_rate"]) if was >= common.MIN_PREVIOUS_CALLS else None,
    delta_color="inverse",
    help=f"{common.fmt_int(now['errors'])} failed calls",
    border=True,
)
top[2].metric(
    "Spend",
    spend_value(now),
    common.change(now["cost_usd"], before["cost_usd"], was),
    delta_color="inverse",
    help=f"Priced calls only; {common.fmt_int(now['unpriced_calls'])} calls have no known price",
    border=True,
)
top[3].metric(
    "Tokens",
    common.fmt_tokens(now["tokens"]),
    common.change(now["tokens"], before["tokens"], was),
    delta_color="off",
    help=f"{common.fmt_int(now['input_tokens'])} input, {common.fmt_int(now['output_tokens'])} output",
    border=True,
)
top[4].metric("Unpriced calls", common.fmt_int(now["unpriced_calls"]), border=True)

LATENCY_CARDS = [
    ("Latency p50", "p50_ms"),
    ("Latency p95", "p95_ms"),
    ("Latency p99", "p99_ms"),
    ("TTFT p50", "ttft_p50_ms"),
    ("TTFT p95", "ttft_p95_ms"),
]
for column, (label, key) in zip(st.columns(5), LATENCY_CARDS, strict=True):
    column.metric(
        label, common.fmt_ms(now[key]), common.change(now[key], before[key], was), delta_color="inverse", border=True
    )

series = common.load(overview.timeseries, f)
st.subheader("Over time")
charts = st.columns(2)
calls_chart = px.bar(
    series,
    x="bucket",
    y=["calls", "errors"],
    barmode="overlay",
    color_discrete_map={"calls": "#8fb3d9", "errors": "#d62728"},
)
charts[0].plotly_chart(common.style(calls_chart, "Calls and errors", y="calls"), key="calls_chart")
spend_chart = px.bar(series, x="bucket", y="cost_usd")
spend_chart.update_yaxes(tickprefix="$")
charts[1].plotly_chart(common.style(spend_chart, "Spend", y="USD"), key="spend_chart")


def latency_figure(frame: pd.DataFrame) -> go.Figure:
    """p99 dotted and drawn last: where p95 and p99 are equal (buckets of few calls) the solid p95
    shows between its dots, instead of disappearing under a solid p99."""
    figure = go.Figure()
    for name, dash in (("p50", "solid"), ("p95", "solid"), ("p99", "dot")):
        figure.add_scatter(
            x=frame["bucket"], y=frame[f"{name}_ms"], name=name, mode="lines",
            line={"color": common.PERCENTILE_COLORS[name], "width": 2.5 if name == "p95" else 2, "dash": dash},
            hovertemplate=f"{name} %{{y:,.0f}} ms<extra></extra>",
        )  # fmt: skip
    return figure


charts[0].plotly_chart(common.style(latency_figure(series), "Latency", y="ms"), key="latency_chart")
tokens = series.rename(columns={"input_tokens": "input", "output_tokens": "output"})
tokens_chart = px.bar(tokens, x="bucket", y=["input", "output"])
charts[1].plotly_chart(common.style(tokens_chart, "Tokens", y="tokens"), key="tokens_chart")

st.subheader("Breakdown")
for tab, by in zip(st.tabs(["By provider", "By model", "By service"]), ["provider", "model", "service"], strict=True):
    table = common.load(overview.breakdown, f, by)
    with tab:
        left, right = st.columns([1, 2])
        chart = px.bar(
            table,
            x="calls",
            y=by,
            orientation="h",
            text="calls",
            color=by,
            color_discrete_map=common.color_map(table[by]),
        )
        chart.update_traces(texttemplate="%{x:,}")
        chart.update_yaxes(autorange="reversed", title=None)
        chart.update_layout(showlegend=False)
        left.plotly_chart(common.style(chart, f"Calls by {by}", x="calls"), key=f"breakdown_{by}")
        common.table(
            table,
            where=right,
            hide_index=True,
            column_order=[by, "calls", "error_rate", "cost_usd", "unpriced_calls", "tokens", "p50_ms", "p95_ms"],
            column_config=common.columns_for(table, **{by: st.column_config.TextColumn(by, pinned=True)}),
            key=f"breakdown_table_{by}",
        )
