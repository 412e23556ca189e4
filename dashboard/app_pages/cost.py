"""Cost: where the money goes, per day, the priciest calls, and what could not be priced."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import cost

TOKENS = ["input_tokens", "output_tokens"]

f = common.current_filter()
st.title("Cost")

with st.spinner("Adding up spend…"):
    totals = common.load(cost.totals, f).iloc[0]
if not totals["calls"]:
    common.no_calls(
        f"No LLM calls in the last {common.fmt_duration(f.duration)} with these filters: "
        "pick a longer time range or clear a filter in the sidebar."
    )
priced = int(totals["priced_calls"])
cards = st.columns(5)
cards[0].metric("Spend", common.fmt_usd(totals["cost_usd"]) if priced else "n/a", border=True)
cards[1].metric(
    "Projected per month",
    common.fmt_usd(totals["projected_month_usd"]) if priced else "n/a",
    help="Spend in this window scaled to 30 days (priced calls only).",
    border=True,
)
cards[2].metric("Priced calls", common.fmt_int(priced), border=True)
cards[3].metric(
    "Unpriced calls",
    common.fmt_int(totals["unpriced_calls"]),
    help="Calls to models without a known price: counted here, never added to spend as $0.",
    border=True,
)
cards[4].metric(
    "Cost per priced call",
    common.fmt_usd(totals["cost_per_call_usd"]) if priced else "n/a",
    border=True,
)

st.subheader("Spend per day")
split = st.radio("Split by", list(cost.SOURCE_DIMENSIONS), horizontal=True, key="cost_day_split") or "model"
per_day = common.load(cost.spend_per_day, f, split)
chart = px.bar(per_day, x="day", y="cost_usd", color=split, color_discrete_map=common.color_map(per_day[split]))
chart.update_yaxes(tickprefix="$")
chart.update_traces(hovertemplate="%{x|%b %d}: $%{y:,.4f}")
st.plotly_chart(common.style(chart, f"Spend per UTC day by {split}", height=340, y="USD"), key="spend_per_day")

st.subheader("Spend by")
dimension = st.radio("Dimension", cost.DIMENSIONS, horizontal=True, key="cost_dimension") or "model"
by = common.load(cost.spend_by, f, dimension)
left, right = st.columns([1, 2])
shares = by.head(12).dropna(subset=["cost_usd"])
pie = px.pie(
    shares, names=dimension, values="cost_usd", hole=0.5, color=dimension,
    color_discrete_map=common.color_map(shares[dimension]),
)  # fmt: skip
pie.update_traces(textposition="inside", textinfo="percent")
left.plotly_chart(common.style(pie, f"Share of spend by {dimension}"), key="spend_share")
common.table(
    by,
    where=right,
    hide_index=True,
    column_order=[dimension, "cost_usd", "share", "calls", "unpriced_calls", "cost_per_call_usd", *TOKENS],
    column_config=common.columns_for(by, **{dimension: st.column_config.TextColumn(dimension, pinned=True)}),
    key="spend_by_table",
)

st.subheader("Most expensive calls")
expensive = common.with_trace_links(common.load(cost.most_expensive_calls, f))
common.table(
    expensive,
    hide_index=True,
    column_config=common.columns_for(expensive, trace_id=common.trace_link_column()),
    key="expensive_table",
)

st.subheader("Unpriced calls")
without_cost = common.load(cost.unpriced, f)
if without_cost.empty:  # over HTTP an empty result has no columns at all
    unpriced, no_usage = without_cost, 0
else:
    unpriced = without_cost[without_cost["reason"] == "no price"].drop(columns="reason")
    no_usage = int(without_cost.loc[without_cost["reason"] == "failed", "unpriced_calls"].sum())
if unpriced.empty:
    st.caption("Every call that reported token usage in this window has a price.")
else:
    st.caption(
        f"These models have no known price, so their {common.fmt_int(unpriced['unpriced_calls'].sum())} calls "
        "are left out of spend rather than counted as $0. Give a model a price in the app with "
        "`llmtrace.set_price(provider, model, input_per_mtok=…, output_per_mtok=…)`; calls made after that are priced. "
        "To re-price the calls already stored (and the rollups) too, give the same price in a prices file to "
        "`llmtrace server --prices-file` or `llmtrace migrate --prices-file`."
    )
    common.table(unpriced, hide_index=True, column_config=common.SUMMARY_COLUMNS, key="unpriced_table")
if no_usage:
    st.caption(
        f"Not counted as unpriced: {common.fmt_int(no_usage)} failed calls that reported no token usage "
        "(nothing to price)."
    )
