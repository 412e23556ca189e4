"""Sessions & users: who used the app, what it cost, how it went; select one to see its traces in order."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import sessions

KINDS = {"Sessions": "session", "Users": "user"}
LIMIT = 500

f = common.current_filter()
st.title("Sessions & users")

choice = st.radio("List", list(KINDS), horizontal=True, key="people_kind") or "Sessions"
kind = KINDS[choice]
with st.spinner(f"Reading {choice.lower()}…"):
    rows = common.load(sessions.listing, f, kind, LIMIT)
if rows.empty:
    st.info(
        f"No {choice.lower()} in the last {common.fmt_duration(f.duration)} with these filters. Calls get a user "
        "and session from `llmtrace.trace(name, user_id=..., session_id=...)` or `llmtrace.attributes(...)`."
    )
    st.stop()

score_columns = [c for c in rows.columns if c.startswith("score: ")]
other = "users" if kind == "session" else "sessions"
overall = common.load(sessions.totals, f)
cards = st.columns(5)
cards[0].metric("Sessions", common.fmt_int(overall["sessions"]), border=True)
cards[1].metric("Users", common.fmt_int(overall["users"]), border=True)
cards[2].metric("Traces", common.fmt_int(overall["traces"]), help="Traces with a session or user", border=True)
cards[3].metric("Spend", common.fmt_usd(overall["cost_usd"]), border=True)
cards[4].metric("Calls with errors", common.fmt_int(overall["errors"]), border=True)
shown = f"the {len(rows):,} most recently active" if len(rows) == LIMIT else f"{len(rows):,}"
st.caption(
    f"{choice}: {shown}, most recent first. Select a row to see its traces in order "
    "(until then: the one with the most traces among the 20 most recent)."
)
table = common.table(
    rows,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    column_order=[kind, other, "last_seen", "traces", "calls", "errors", "cost_usd", "tokens", *score_columns],
    column_config=common.columns_for(
        rows,
        **{
            kind: st.column_config.TextColumn(kind, pinned=True),
            "last_seen": st.column_config.DatetimeColumn("last seen (UTC)", format="MMM DD HH:mm:ss"),
            **{c: st.column_config.NumberColumn(c.removeprefix("score: "), format="%.3f") for c in score_columns},
        },
    ),
    key=f"{kind}_table",
    height=320,
)

selected = table.selection.rows if table is not None and hasattr(table, "selection") else []
if selected and selected[0] < len(rows):
    chosen = str(rows[kind].iloc[selected[0]])
else:  # nothing selected yet: the busiest of the most recent few, so the drill-down shows a sequence
    chosen = str(rows[kind].iloc[int(rows["traces"].head(20).to_numpy().argmax())])
st.subheader(f"Traces of {kind} `{chosen}`")
traces = common.load(sessions.traces_of, f, kind, chosen)
if traces.empty:
    st.info(f"No traces of {kind} {chosen} in this window.")
    st.stop()
steps = traces.assign(
    start=traces["start"].astype(str).str[:19],  # hover text; plotly would drop the nanoseconds noisily
    step=[f"#{i}" for i in range(1, len(traces) + 1)],
    outcome=["failed" if e else "ok" for e in traces["errors"]],
)
bars = px.bar(
    steps, x="step", y="duration_ms", color="outcome", hover_data=["start", "calls", "tokens", "models"],
    color_discrete_map={"ok": common.PALETTE[0], "failed": "#d62728"}, category_orders={"step": list(steps["step"])},
)  # fmt: skip
bars.update_xaxes(type="category")
st.plotly_chart(common.style(bars, f"Each trace of the {kind}, in order", height=260, y="ms"), key="people_steps")
linked = common.with_trace_links(traces.assign(step=range(1, len(traces) + 1)))
common.table(
    linked,
    hide_index=True,
    column_order=[
        "step",
        "trace_id",
        "start",
        "duration_ms",
        "calls",
        "errors",
        "cost_usd",
        "tokens",
        "models",
        "prompts",
        "user" if kind == "session" else "session",
    ],
    column_config=common.columns_for(
        linked,
        trace_id=common.trace_link_column(),
        start=st.column_config.DatetimeColumn("start (UTC)", format="MMM DD HH:mm:ss"),
        step=st.column_config.NumberColumn("#", format="%d", help="Order within the " + kind),
    ),
    key="people_traces_table",
)
