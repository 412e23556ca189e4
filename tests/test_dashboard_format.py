"""How the dashboard writes numbers: small costs stay visible, changes stay readable."""

from __future__ import annotations

from datetime import timedelta

from dashboard import common


def test_small_costs_keep_two_significant_digits_instead_of_rounding_to_zero() -> None:
    assert common.fmt_usd(0.0000213) == "$0.000021"
    assert common.fmt_usd(0.25) == "$0.2500"
    assert common.fmt_usd(1234.5) == "$1,234.50"


def test_a_missing_cost_is_a_dash_not_zero_dollars() -> None:
    assert common.fmt_usd(float("nan")) == "—"


def test_change_is_undefined_without_a_previous_value() -> None:
    assert common.change(10, 0) is None
    assert common.change(10, float("nan")) is None


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
