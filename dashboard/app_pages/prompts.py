"""Prompts: every prompt version seen (an edited system prompt or template is a new one, tagged or
not) with its traffic, cost, latency, errors and scores; then score means per release/prompt/model."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import common
from llmtrace.analytics import prompts, scores

SCORE_GROUPS = {"release": "release", "prompt": "prompt", "version tag": "prompt_version", "model": "model"}

f = common.current_filter()
st.title("Prompts")
st.caption(
    "A version is a prompt name plus the hashes of its system prompt and message template, taken at every "
    "call (values declared with `llmtrace.prompt(..., variables=...)` masked): editing the text makes a new "
    "version even when nobody bumped the version tag."
)

with st.spinner("Reading prompt versions…"):
    versions = common.load(prompts.prompt_versions, f)
if versions.empty:
    st.info(
        f"No prompt versions in the last {common.fmt_duration(f.duration)} with these filters: pick a longer "
        "range or clear a filter (calls stored before llmtrace recorded prompt hashes have none)."
    )
    st.stop()

score_columns = [c for c in versions.columns if c.startswith("score: ")]
COLUMNS = ["prompt", "version", "tagged", "first_seen", "last_seen", "calls", "errors", "error_rate", "cost_usd",
           "cost_per_call_usd", "p50_ms", "p95_ms", *score_columns, "models", "services"]  # fmt: skip
versions = versions.assign(
    version=[
        f"sys {s[:6] or '—'} · tpl {t[:6] or '—'}"
        for s, t in zip(versions["system_hash"], versions["template_hash"], strict=True)
    ],
    cost_per_call_usd=versions["cost_usd"] / versions["calls"],
    prompt=versions["prompt"].replace("", "(untagged)"),
)
cards = st.columns(4)
cards[0].metric("Prompt versions", common.fmt_int(len(versions)), border=True)
cards[1].metric(
    "Named prompts", common.fmt_int(versions.loc[versions["prompt"] != "(untagged)", "prompt"].nunique()), border=True
)
per_tag = versions[versions["tagged"] != ""].groupby(["prompt", "tagged"]).size()
cards[2].metric(
    "Tags with several versions",
    common.fmt_int(int((per_tag > 1).sum())),
    help="A prompt name and version tag seen with more than one system prompt or message template: an edit "
    "nobody tagged, or calls of different shapes under one tag (e.g. with and without a tool turn)",
    border=True,
)
cards[3].metric("Calls", common.fmt_int(versions["calls"].sum()), border=True)

common.table(
    versions,
    hide_index=True,
    column_order=COLUMNS,
    column_config=common.columns_for(
        versions,
        prompt=st.column_config.TextColumn("prompt", pinned=True),
        version=st.column_config.TextColumn(
            "version", pinned=True, help="First 6 characters of the system prompt and message template hashes"
        ),
        tagged=st.column_config.TextColumn("tagged as", help="llmtrace.prompt(name, version=...) values seen"),
        first_seen=st.column_config.DatetimeColumn("first seen (UTC)", format="MMM DD HH:mm"),
        last_seen=st.column_config.DatetimeColumn("last seen (UTC)", format="MMM DD HH:mm"),
        **{c: st.column_config.NumberColumn(c.removeprefix("score: "), format="%.3f") for c in score_columns},
    ),
    key="prompt_versions_table",
)

labels = dict(zip(versions["key"], versions["prompt"] + " · " + versions["version"], strict=True))
timeline = common.load(prompts.calls_per_version, f, list(versions["key"].head(12)))
if not timeline.empty:
    timeline = timeline.assign(version=timeline["key"].map(labels))
    live = px.bar(  # versions in the table's order, one palette colour each (hashed colours could collide)
        timeline, x="bucket", y="calls", color="version", color_discrete_sequence=common.PALETTE,
        category_orders={"version": [labels[k] for k in versions["key"].head(12)]},
    )  # fmt: skip
    st.plotly_chart(common.style(live, "Calls per prompt version", height=320, y="calls"), key="ver_calls")

if score_columns:
    shown = versions.head(12).assign(label=lambda d: d["prompt"] + " · " + d["version"])
    long = shown.melt(id_vars=["label"], value_vars=score_columns, var_name="score", value_name="mean").dropna()
    long["score"] = long["score"].str.removeprefix("score: ")
    chart = px.bar(long, x="mean", y="label", color="score", barmode="group", orientation="h")
    height = 120 + 30 * len(shown)
    chart.update_yaxes(title=None)  # the labels are the versions; "label" said nothing
    st.plotly_chart(common.style(chart, "Score means per prompt version", height=height, x="mean"), key="ver_scores")

st.subheader("Score means by")
choice = st.radio("Group scores by", list(SCORE_GROUPS), horizontal=True, key="score_group") or "release"
by = SCORE_GROUPS[choice]
means = common.load(scores.score_means, f, by)
if means.empty:
    st.caption(
        "No numeric or boolean scores for these calls: send some with `llmtrace.score(...)` or `llmtrace evaluate`."
    )
else:
    common.table(
        means,
        hide_index=True,
        column_config={
            "mean": st.column_config.NumberColumn("mean", format="%.3f"),
            "min": st.column_config.NumberColumn("min", format="%.3f"),
            "max": st.column_config.NumberColumn("max", format="%.3f"),
        },
        key="score_means_table",
    )
labels = common.load(scores.label_counts, f, by)
if not labels.empty:
    st.caption("Categorical scores (labels): how many times each was given")
    common.table(labels, hide_index=True, key="label_counts_table")
