"""Compare: a candidate release, prompt version or model against a baseline, per metric, with a
verdict (worse / better / no evidence) from always-valid confidence intervals."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from dashboard import common
from llmtrace.analytics import compare, compare_pick, drift
from llmtrace.analytics.compare_sql import Selector

DIMENSIONS = {
    "release": "Release",
    "prompt_version": "Prompt version",
    "prompt": "Prompt",
    "model": "Model",
    "provider": "Provider",
    "environment": "Environment",
    "service": "Service",
}
VERDICT_COLORS = {"worse": "#f8d0d0", "better": "#d4efd9", "changed": "#fde9c4", "insufficient_data": "#e8e8e8"}
MARKERS = {"worse": "#c0392b", "better": "#27ae60", "changed": "#e67e22", "no_evidence": "#7f8c8d"}
COLUMNS = [
    "metric", "verdict", "baseline", "candidate", "difference", "ci_low", "ci_high", "relative", "baseline_n",
    "candidate_n", "detail",
]  # fmt: skip

f = common.current_filter()
st.title("Compare")
st.caption(
    "Is the candidate worse than the baseline? Both sides are the calls in the sidebar's window and filters. "
    "Each metric's difference (candidate − baseline) has a confidence interval that stays valid however "
    "often you look (mSPRT confidence sequences), so a canary can be watched while its traffic flows; "
    "alpha is split over the metrics. Same as `llmtrace compare --baseline … --candidate …`."
)

# A link may open the page on one comparison: ?by=release&baseline=v2.0.0&candidate=v2.1.0&service=...
linked = st.query_params.get("by")
dimension = st.radio("Compare by", list(DIMENSIONS), format_func=DIMENSIONS.get, horizontal=True, key="cmp_dim",
                     index=list(DIMENSIONS).index(linked) if linked in DIMENSIONS else 0)  # fmt: skip
dimension = dimension or "release"
ALL_SERVICES = "(all services)"
# Releases, prompts and models belong to a service: by default both sides come from one service
# (the one where the newest pair has the most calls), unless the sidebar already narrowed services.
pair = common.load(compare_pick.default_pair, f, dimension)
service: str | None = None
if dimension != "service" and not f.services:
    services = [ALL_SERVICES, *common.load(drift.values_oldest_first, f, "service")]
    wanted = st.query_params.get("service") if dimension == linked else None
    wanted = wanted or (pair.service if pair else None)
    picked_service = st.selectbox("Within service", services, key=f"cmp_service_{dimension}",
                                  index=services.index(wanted) if wanted in services else 0)  # fmt: skip
    service = None if picked_service in (None, ALL_SERVICES) else str(picked_service)
scoped = compare_pick.within(f, service)
values = common.load(drift.values_oldest_first, scoped, dimension)  # oldest first: default older vs newer
if len(values) < 2:
    where = f" in service {service}" if service else ""
    st.info(f"Fewer than two values of {DIMENSIONS[dimension].lower()}{where} in this window: widen the time range"
            f"{' or pick another service' if service else ''}.")  # fmt: skip
    st.stop()


def _default(side: str, fallback: int) -> int:
    """The default pair's value on this side when it is in this service's values, else ``fallback``."""
    if pair is not None and pair.service == service:
        value = pair.baseline if side == "baseline" else pair.candidate
        if value in values:
            return values.index(value)
    return fallback


def _linked_index(param: str, default: int) -> int:
    """The position of the link's value (if this dimension was linked and the value is in the window)."""
    value = st.query_params.get(param)
    if dimension != linked or value is None:
        return default
    if value not in values:
        st.warning(f"{param} {value!r} from the link has no calls in this window; showing {values[default]!r}.")
        return default
    return values.index(value)


left, right, third = st.columns([2, 2, 1])
baseline = left.selectbox("Baseline", values, index=_linked_index("baseline", _default("baseline", len(values) - 2)),
                          key=f"cmp_base_{dimension}")  # fmt: skip
candidate = right.selectbox("Candidate", values,
                            index=_linked_index("candidate", _default("candidate", len(values) - 1)),
                            key=f"cmp_cand_{dimension}")  # fmt: skip
alpha = third.select_slider("Alpha", options=[0.01, 0.05, 0.1], value=0.05, key="cmp_alpha")
if baseline == candidate:
    st.info("Pick two different values to compare.")
    st.stop()
lower_is_better = st.session_state.get("cmp_lower", [])
report = common.load(
    compare.compare,
    Selector(((dimension, str(baseline)),)),
    Selector(((dimension, str(candidate)),)),
    scoped,
    alpha=float(alpha),
    lower_is_better=tuple(lower_is_better),
)

calls = report.get("error_rate")  # its counts are the calls of each side
if service:
    scope = f"service **{service}**"
elif f.services:
    scope = f"service{'s' if len(f.services) > 1 else ''} **{', '.join(f.services)}** (sidebar)"
else:
    scope = "**all services**"
st.markdown(
    f"Comparing {DIMENSIONS[dimension].lower()} **{candidate}** (candidate) with **{baseline}** (baseline) in {scope}, "
    f"calls from {f.start:%Y-%m-%d %H:%M} to {f.end:%Y-%m-%d %H:%M} UTC"
    f": {calls.candidate_n:,} against {calls.baseline_n:,} calls."
)
counts = {v: len(report.with_verdict(v)) for v in ("worse", "better", "changed", "no_evidence")}
cards = st.columns(4)
cards[0].metric("Worse", counts["worse"], border=True)
cards[1].metric("Better", counts["better"], border=True)
cards[2].metric("Changed", counts["changed"], border=True)
cards[3].metric("No evidence", counts["no_evidence"], border=True)
if counts["worse"]:
    names = ", ".join(r.metric for r in report.with_verdict("worse"))
    st.error(f"**{candidate}** is worse than **{baseline}** on {names}.")
elif counts["better"] or counts["changed"]:
    st.success(f"**{candidate}** is not worse than **{baseline}** on any metric.")
else:
    st.info("No evidence of a difference yet on any metric.")


def _relative_chart(results: list[compare.MetricComparison]) -> go.Figure:
    """Each metric's change relative to the baseline, with its interval (clipped at ±100%)."""
    rows = [r for r in results if r.relative is not None and r.baseline and r.ci_low is not None]
    figure = go.Figure()
    for r in rows:
        scale = abs(r.baseline or 1.0)
        low, high = (_clip(v / scale) for v in (r.ci_low or 0.0, r.ci_high or 0.0))
        figure.add_trace(
            go.Scatter(
                x=[r.relative], y=[r.metric], mode="markers", marker={"color": MARKERS.get(r.verdict, "#7f8c8d"),
                "size": 10}, name=r.verdict, showlegend=False,
                error_x={"type": "data", "symmetric": False, "array": [high - (r.relative or 0.0)],
                         "arrayminus": [(r.relative or 0.0) - low]},
                hovertemplate=f"{r.metric}: %{{x:+.1%}} ({r.verdict})<extra></extra>",
            )
        )  # fmt: skip
    figure.add_vline(x=0, line_dash="dot", line_color="#999")
    figure.update_xaxes(tickformat="+.0%")
    return common.style(figure, "Change vs baseline, with its interval", height=60 + 32 * max(len(rows), 1))


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value)) if math.isfinite(value) else math.copysign(1.0, value)


st.plotly_chart(_relative_chart(report.results), key="cmp_chart")

st.subheader("Metrics")
table = report.to_frame()[COLUMNS]
styled = common.color_rows(table, "verdict", VERDICT_COLORS)
common.table(
    styled,
    hide_index=True,
    key="cmp_table",
    column_config={
        "baseline": st.column_config.NumberColumn(str(baseline), format="%.4g"),
        "candidate": st.column_config.NumberColumn(str(candidate), format="%.4g"),
        "difference": st.column_config.NumberColumn("difference", format="%+.4g"),
        "ci_low": st.column_config.NumberColumn("interval low", format="%+.4g"),
        "ci_high": st.column_config.NumberColumn("interval high", format="%+.4g"),
        "relative": st.column_config.NumberColumn("relative", format="percent"),
        "baseline_n": st.column_config.NumberColumn("n baseline", format=common.COUNT),
        "candidate_n": st.column_config.NumberColumn("n candidate", format=common.COUNT),
    },
)
st.caption(
    f"Alpha {report.alpha:g} over {len(report.results)} metrics ({report.alpha_per_metric:.2g} each). "
    "Rates are shares of calls; latency and TTFT in ms; cost in USD per call; scores are means per name "
    "(higher is better unless listed below). The finish-reason mix is compared within each provider's own words."
)
score_names = sorted(r.metric.split(":", 1)[1] for r in report.results if r.kind == "score")
if score_names:
    st.multiselect("Scores where lower is better", score_names, key="cmp_lower")

st.subheader("At each look")
st.caption(
    "The same comparison on growing windows from the start of the sidebar's range, as a canary is judged "
    "while its traffic flows: the interval narrows as calls accumulate, and a verdict read at any look is "
    "as trustworthy as one read at the end."
)
metrics = [r.metric for r in report.results]
picked = st.selectbox("Metric", metrics, key="cmp_look_metric") or metrics[0]
history = common.load(
    compare.looks,
    Selector(((dimension, str(baseline)),)),
    Selector(((dimension, str(candidate)),)),
    scoped,
    picked,
    alpha=float(alpha),
    lower_is_better=tuple(lower_is_better),
)
judged = history.dropna(subset=["difference"])
if judged.empty:
    st.caption("Too few calls at every look.")
else:
    looks_chart = go.Figure()
    looks_chart.add_trace(
        go.Scatter(x=judged["end"], y=judged["ci_high"], mode="lines", line={"width": 0}, showlegend=False)
    )
    looks_chart.add_trace(
        go.Scatter(x=judged["end"], y=judged["ci_low"], mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor="rgba(127,140,141,0.25)", name="interval")
    )  # fmt: skip
    looks_chart.add_trace(
        go.Scatter(x=judged["end"], y=judged["difference"], mode="lines+markers", name="difference",
                   marker={"color": [MARKERS.get(v, "#7f8c8d") for v in judged["verdict"]], "size": 9},
                   line={"color": "#34495e"}, text=judged["verdict"],
                   hovertemplate="%{x}: %{y:+.4g} (%{text})<extra></extra>")
    )  # fmt: skip
    looks_chart.add_hline(y=0, line_dash="dot", line_color="#999")
    st.plotly_chart(common.style(looks_chart, f"{picked}: candidate − baseline at each look"), key="cmp_looks")
