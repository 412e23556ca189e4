"""How the dashboard writes numbers: small costs stay visible, changes stay readable."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

from dashboard import common


def test_small_costs_keep_two_significant_digits_instead_of_rounding_to_zero() -> None:
    assert common.fmt_usd(0.0000213) == "$0.000021"
    assert common.fmt_usd(0.25) == "$0.2500"
    assert common.fmt_usd(1234.5) == "$1,234.50"


def test_a_missing_cost_is_a_dash_not_zero_dollars() -> None:
    assert common.fmt_usd(float("nan")) == "—"


def test_change_is_undefined_without_a_previous_value() -> None:
    assert common.change(10, float("nan")) is None
    assert common.change(0, 0) is None


def test_change_against_an_almost_empty_previous_window_says_new_not_a_huge_multiple() -> None:
    assert common.change(10, 0) == "new"
    assert common.change(117_148, 1) == "new"
    assert common.change(500.0, 0.2, previous_calls=3) == "new"
    assert common.change(500, 400, previous_calls=1000) == "+25.0%"


def test_every_name_keeps_one_colour_whatever_else_a_chart_shows() -> None:
    alone = common.color_map(["gpt-4o"])
    together = common.color_map(["claude-haiku-4-5", "gpt-4o", "gpt-4o-mini"])
    assert alone["gpt-4o"] == together["gpt-4o"] == common.color_for("gpt-4o")
    assert common.color_for("") == common.NO_VALUE_COLOR


def _lab(color: str) -> tuple[float, float, float]:
    """CIELAB of a ``#rrggbb`` colour (D65), to measure how far apart two colours look."""
    linear = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in
              (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))]  # fmt: skip
    r, g, b = linear
    xyz = ((r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047, r * 0.2126 + g * 0.7152 + b * 0.0722,
           (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883)  # fmt: skip
    fx, fy, fz = (v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def demo_names() -> dict[str, list[str]]:
    """Every model, service, provider, environment and release the demo (history and canary) shows."""
    from llmtrace.demo import canary, scenarios

    arms = canary.DEMO.arms
    models = {*scenarios.MODELS, canary.DEMO.model, *(a.model for a in arms if a.model)}
    return {
        "model": sorted(models),
        "service": sorted({s.name for s in scenarios.SERVICES} | {canary.DEMO.service}),
        "provider": sorted({m.provider for m in scenarios.MODELS.values()}),
        "environment": [e for e, _ in scenarios.ENVIRONMENTS],
        "release": sorted({*scenarios.RELEASES, *(a.release for a in arms)}),
    }


def test_the_demo_models_services_and_providers_get_distinct_colours() -> None:
    for kind, names in demo_names().items():
        assert len({common.color_for(n) for n in names}) == len(names), (kind, names)


def test_the_demo_names_of_one_kind_get_colours_the_eye_tells_apart() -> None:
    """Distinct hex codes are not enough: claude-sonnet-4-6 and gemini-2.5-pro were two oranges."""
    for kind, names in demo_names().items():
        for a, b in itertools.combinations(names, 2):
            la, lb = _lab(common.color_for(a)), _lab(common.color_for(b))
            assert math.dist(la, lb) >= 20, (kind, a, b, common.color_for(a), common.color_for(b))


def test_change_is_a_percentage_up_to_tenfold_then_a_multiple() -> None:
    assert common.change(110, 100) == "+10.0%"
    assert common.change(90, 100) == "-10.0%"
    assert common.change(2500, 100) == "+25×"


def test_latency_switches_from_milliseconds_to_seconds() -> None:
    assert common.fmt_ms(950) == "950 ms"
    assert common.fmt_ms(1500) == "1.50 s"


def test_window_lengths_read_naturally() -> None:
    assert common.fmt_duration(timedelta(days=7)) == "7 days"
    assert common.fmt_duration(timedelta(hours=1)) == "1 hour"


class _Recorder:
    def __init__(self) -> None:
        self.kwargs: dict[str, object] = {}

    def dataframe(self, data: object, **kwargs: object) -> None:
        self.kwargs = kwargs


def test_tables_show_missing_values_as_a_dash_not_none() -> None:
    assert common._HAS_PLACEHOLDER  # the installed Streamlit supports it: the dash must reach the browser
    where = _Recorder()
    common.table([], where=where, hide_index=True)
    assert where.kwargs == {"hide_index": True, "placeholder": "—"}
    common.table([], where=where, placeholder="NULL")  # the SQL console shows NULL as NULL
    assert where.kwargs == {"placeholder": "NULL"}


def test_a_column_of_small_costs_gets_enough_decimals_and_large_ones_only_cents() -> None:
    assert common.money_format([0.000028, 0.0024]) == "$%.6f"
    assert common.money_format([22.0, 1234.5]) == "$%.2f"
    assert common.money_format([0.59, 0.012]) == "$%.3f"
    assert common.money_format([None, float("nan")]) == "$%.2f"


def test_counts_in_tables_have_thousands_separators() -> None:
    """The Overview's provider table showed 9310002 tokens; a count reads 9,310,002."""
    for name in ("calls", "errors", "unpriced_calls", "input_tokens", "output_tokens", "tokens"):
        assert common.SUMMARY_COLUMNS[name]["type_config"]["format"] == "localized", name


def test_the_legend_sits_below_the_axis_labels_not_over_them() -> None:
    """A legend placed at a fraction of the plot (y=-0.2) covered rotated model names on the x axis;
    anchored to the figure's bottom edge, plotly reserves room for both."""
    import plotly.graph_objects as go

    legend = common.style(go.Figure(go.Bar(x=["gpt-4o-mini"], y=[1])), "t").layout.legend
    assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")


def test_the_chart_toolbar_keeps_only_buttons_that_fit_beside_a_half_width_title() -> None:
    """The full plotly toolbar (9 buttons) covered "Calls by provider" in the Overview's half-width chart."""
    import plotly.graph_objects as go

    removed = set(common.style(go.Figure(go.Bar(x=["a"], y=[1])), "t").layout.modebar.remove)
    assert {"zoomin", "zoomout", "autoscale", "lasso2d", "select2d"} <= removed
