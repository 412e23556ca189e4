"""The chi-square survival function behind categorical drift p-values, against known values."""

from __future__ import annotations

import math

import pytest

from llmtrace.analytics.chi2 import chi2_sf, gamma_q


@pytest.mark.parametrize(
    ("statistic", "dof", "p"),
    [
        (3.841458820694124, 1, 0.05),  # textbook critical values
        (6.634896601021214, 1, 0.01),
        (5.991464547107979, 2, 0.05),
        (11.070497693516351, 5, 0.05),
        (18.307038053275146, 10, 0.05),
        (10.0, 3, 0.01856613546304325),  # scipy.stats.chi2.sf
        (20.0, 10, 0.02925268807696113),
        (150.0, 100, 0.0009039320423539),  # by numerical integration of the density
    ],
)
def test_chi2_sf_matches_published_values(statistic: float, dof: int, p: float) -> None:
    assert chi2_sf(statistic, dof) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 12.0, 40.0])
def test_one_degree_of_freedom_equals_the_normal_tail_identity(x: float) -> None:
    assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-10)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 12.0, 40.0, 700.0])
def test_two_and_four_degrees_of_freedom_equal_their_closed_forms(x: float) -> None:
    assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-10)
    assert chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-10)


def test_a_zero_statistic_has_p_value_one_and_a_huge_one_underflows_to_zero() -> None:
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(1e6, 3) == 0.0


def test_undefined_inputs_give_nan_and_bad_gamma_arguments_raise() -> None:
    assert math.isnan(chi2_sf(float("nan"), 2))
    assert math.isnan(chi2_sf(5.0, 0))
    with pytest.raises(ValueError, match="a > 0"):
        gamma_q(0, 1.0)
