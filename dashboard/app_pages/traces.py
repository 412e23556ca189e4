"""Traces: find a trace, see its spans as a waterfall and each LLM call's messages."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common
from llmtrace import semconv
from llmtrace.analytics import scores, traces
from llmtrace.dashboard_check import SPAN_ERROR_ICON

ROLE_AVATARS = {"system": ":material/settings:", "tool": ":material/build:"}
ERROR_STATUSES = ("Error", "STATUS_CODE_ERROR")
LIST_COLUMNS = ["start", "trace", "services", "models", "calls", "errors", "duration_ms", "tokens", "cost_usd",
                "scores"]  # fmt: skip

f = common.current_filter()
st.title("Traces")

controls = st.columns([1, 2, 1])
status = controls[0].radio("Status", traces.STATUSES, horizontal=True, key="trace_status")
text = controls[1].text_input("Text in prompts or completions", key="trace_text", placeholder="e.g. refund")
limit = int(controls[2].number_input("Show", min_value=10, max_value=2000, value=200, step=50, key="trace_limit"))

with st.spinner("Finding traces…"):
    found = common.load(traces.list_traces, f, status=status, text=text.strip(), limit=limit)
    scored = common.load(scores.per_trace, found["trace_id"].astype(str).tolist()) if not found.empty else None
    if scored is not None and not scored.empty:
        found = found.merge(scored, on="trace_id", how="left")
st.caption(f"{len(found):,} traces (newest first). Select a row to open it.")
shown = found.assign(trace=[str(t)[:12] + "…" for t in found.get("trace_id", [])])  # full id stays in `found`
table = common.table(
    shown,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    column_order=LIST_COLUMNS,
    column_config={
        **common.columns_for(found),
        "start": st.column_config.DatetimeColumn("start (UTC)", format="MMM DD HH:mm:ss", pinned=True),
        "trace": st.column_config.TextColumn("trace", width="medium", pinned=True, help="First 12 of 32 characters"),
        "duration_ms": st.column_config.NumberColumn("duration", format="%.0f ms"),
    },
    key="trace_table",
    height=300,
)


def chosen_trace() -> str | None:
    """Row selection, else the trace id box, else ?trace= in the URL, else the newest trace."""
    rows = table.selection.rows if table is not None and hasattr(table, "selection") else []
    if rows and rows[0] < len(found):
        return str(found["trace_id"].iloc[rows[0]])
    typed = str(st.session_state.get("trace_id_input", "")).strip()
    if typed:
        return typed
    linked = st.query_params.get("trace")
    if linked:
        return str(linked)
    return None if found.empty else str(found["trace_id"].iloc[0])


st.text_input("Open trace by id", key="trace_id_input", placeholder="32 hex characters")
trace_id = chosen_trace()
if trace_id is None:
    st.info("No traces match these filters.")
    st.stop()

with st.spinner("Reading the trace…"):
    spans = common.load(traces.trace_spans, trace_id)
st.subheader(f"Trace `{trace_id}`")
if spans.empty:
    st.warning(f"No spans found for trace {trace_id}: it may be older than the retention window.")
    st.stop()


def waterfall(tree: pd.DataFrame) -> go.Figure:
    labels = [
        f"{i + 1:>2}. {'   ' * int(d)}{n}" for i, (d, n) in enumerate(zip(tree["depth"], tree["name"], strict=True))
    ]
    # Failed spans red; LLM calls in their model's colour (as on every other page); other spans grey.
    colors = [
        "#d62728" if s in ERROR_STATUSES else (common.color_for(m) if llm else common.NO_VALUE_COLOR)
        for s, llm, m in zip(tree["status"], tree["is_llm"], tree["model"].fillna(""), strict=True)
    ]
    hover = [
        f"{n}<br>{svc}<br>{common.fmt_ms(d)}" + (f"<br>{m}" if m else "")
        for n, svc, d, m in zip(
            tree["name"], tree["service"], tree["duration_ms"], tree["model"].fillna(""), strict=True
        )
    ]
    figure = go.Figure(
        go.Bar(
            y=labels,
            x=tree["duration_ms"].clip(lower=0.5),
            base=tree["offset_ms"],
            orientation="h",
            marker_color=colors,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(ticksuffix=" ms", rangemode="tozero")
    height = max(180, 80 + 28 * len(tree))
    return common.style(figure, "Waterfall", height=height, x="time since the trace started (ms)")


llm = spans[spans["is_llm"].astype(bool)]
head = st.columns(5)
head[0].metric("Spans", f"{len(spans)} ({len(llm)} LLM)")
head[1].metric("Duration", common.fmt_ms((spans["offset_ms"] + spans["duration_ms"]).max()))
head[2].metric("Tokens", common.fmt_int(llm["input_tokens"].sum() + llm["output_tokens"].sum()))
priced = llm["cost_usd"].notna()
head[3].metric(
    "Cost",
    common.fmt_usd(llm.loc[priced, "cost_usd"].sum()) if priced.any() else "n/a",
    help=f"{int((~priced).sum())} LLM calls without a known price",
)
head[4].metric("Errors", int(spans["status"].isin(ERROR_STATUSES).sum()))
st.plotly_chart(waterfall(spans), key="waterfall")
given = common.load(scores.trace_scores, trace_id)
if not given.empty:
    st.markdown("**Scores**")
    span_names = spans.set_index("span_id")["name"]
    common.table(
        given.assign(on=["whole trace" if not s else span_names.get(s, s) for s in given["span_id"]]),
        hide_index=True,
        column_order=["name", "value", "label", "on", "source", "comment", "time"],
        column_config={"time": st.column_config.DatetimeColumn("time (UTC)", format="MMM DD HH:mm:ss")},
        key="trace_scores_table",
    )


def render_part(part: dict[str, Any]) -> None:
    kind = part.get("type")
    if kind == "text":
        st.markdown(str(part.get("content", "")))
    elif kind == "reasoning":
        st.caption(str(part.get("content", "")))
    elif kind == "tool_call":
        st.markdown(f"**Tool call** `{part.get('name', '?')}` (id `{part.get('id', '')}`)")
        st.code(_pretty(part.get("arguments")), language="json")
    elif kind == "tool_call_response":
        st.markdown(f"**Tool result** (id `{part.get('id', '')}`)")
        st.code(_pretty(part.get("response")), language="json")
    else:
        st.code(_pretty(part), language="json")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False)


def render_messages(title: str, items: list[dict[str, Any]]) -> None:
    if not items:
        return
    st.markdown(f"**{title}**")
    for message in items:
        role = str(message.get("role", "?"))
        with st.chat_message(role, avatar=ROLE_AVATARS.get(role)):
            for part in message.get("parts") or []:
                render_part(part if isinstance(part, dict) else {"type": "text", "content": part})


def render_llm_span(span: pd.Series) -> None:
    if not common.is_missing(span["cost_usd"]):
        cost = common.fmt_usd(span["cost_usd"])
    else:  # a model without a price, or a call that reported no usage (nothing to price)
        cost = "no price for this model" if span["cost_status"] == "unpriced" else "no usage reported"
    ttft = f"TTFT {common.fmt_ms(span['ttft_ms'])}" if span["stream"] else "not streamed"
    facts = [
        f"**{span['response_model'] or span['model'] or '?'}** ({span['provider']})",
        f"{int(span['input_tokens']):,} in → {int(span['output_tokens']):,} out tokens",
        cost,
        common.fmt_ms(span["duration_ms"]),
        ttft,
    ]
    if span["finish_reason"]:
        facts.append(f"finish `{span['finish_reason']}`")
    if span["prompt"]:
        facts.append(f"prompt `{span['prompt']}` v{span['prompt_version']}")
    attributes = span["attributes"] or {}
    hashes = [attributes.get(k, "")[:6] for k in (semconv.PROMPT_SYSTEM_HASH, semconv.PROMPT_TEMPLATE_HASH)]
    if any(hashes):  # the automatic prompt version, as the Prompts page lists it
        facts.append(f"version `sys {hashes[0] or '—'} · tpl {hashes[1] or '—'}`")
    st.markdown(" · ".join(facts))
    system = traces.messages(attributes, semconv.SYSTEM_INSTRUCTIONS)
    if system:
        render_messages("System", [{"role": "system", "parts": system}])
    render_messages("Input", traces.messages(attributes, semconv.INPUT_MESSAGES))
    output = traces.messages(attributes, semconv.OUTPUT_MESSAGES)
    render_messages("Output", output)
    if not output and not traces.messages(attributes, semconv.INPUT_MESSAGES):
        st.caption("No content captured for this call (content capture off or not recorded).")


def render_error(span: pd.Series) -> None:
    if span["status"] not in ERROR_STATUSES:
        return
    reason = span["error_type"] or span["status_message"] or "error"
    # Its own icon: a failed call is what the trace recorded, not a failure of this page.
    st.error(f"{reason}: {span['status_message']}" if span["status_message"] else reason, icon=SPAN_ERROR_ICON)


def render_span_scores(span_id: str) -> None:
    if given.empty:  # an empty result over HTTP has no columns at all
        return
    own = given[given["span_id"] == span_id]
    if not own.empty:
        shown = [
            f"**{n}** {lab or f'{v:g}'}" for n, v, lab in zip(own["name"], own["value"], own["label"], strict=True)
        ]
        st.markdown("Scores: " + " · ".join(shown))


for _, span in spans.iterrows():
    failed = span["status"] in ERROR_STATUSES
    title = f"{'· ' * int(span['depth'])}{span['name']} — {span['service']} — {common.fmt_ms(span['duration_ms'])}"
    icon = SPAN_ERROR_ICON if failed else (":material/smart_toy:" if span["is_llm"] else ":material/schedule:")
    with st.expander(title, expanded=bool(span["is_llm"]) and len(llm) <= 3, icon=icon):
        render_error(span)
        render_span_scores(span["span_id"])
        if span["is_llm"]:
            render_llm_span(span)
        else:
            st.json(dict(span["attributes"] or {}), expanded=False)
