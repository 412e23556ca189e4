"""Rows of the same counts are scanned once (``distinct_rows``): the same answer as ``np.unique`` over
whole rows, including rows that differ in one cell, hold NaN, or whose weighted sums collide."""

from __future__ import annotations

import numpy as np
import pytest

from llmtrace.analytics import anomalies_scan
from llmtrace.analytics.anomalies_scan import distinct_rows


def _as_unique(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique``'s answer in first-seen order: each row's first equal row."""
    _, first, inverse = np.unique(
        np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel(),
        return_index=True,
        return_inverse=True,
    )
    return np.sort(first), first[inverse.ravel()]


def _check(a: np.ndarray) -> None:
    first, inverse = distinct_rows(a)
    expected_first, expected_of = _as_unique(a)
    assert first.tolist() == expected_first.tolist()
    assert first[inverse].tolist() == expected_of.tolist()


def test_quiet_rows_repeats_one_cell_apart_and_nan() -> None:
    rng = np.random.default_rng(3)
    a = np.zeros((300, 500))
    a[:, -40:] = rng.poisson(0.4, (300, 40))  # long runs of zeros, as quiet series
    a[100:150] = a[:50]  # a service with one model is also its service x model
    a[150:160] = a[:10]
    a[155, 7] = 1.0  # one cell apart from its twin
    a[200, 3] = a[201, 3] = np.nan  # same NaN: one row
    a[201, 499] = a[200, 499]
    _check(a)


def test_rows_whose_sums_collide_are_told_apart_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row's sum made equal: only the byte comparison separates them."""
    monkeypatch.setattr(anomalies_scan.np, "einsum", lambda spec, a, w: np.zeros(a.shape[0]))
    rng = np.random.default_rng(4)
    a = rng.poisson(1.0, (60, 30)).astype(float)
    a[30:45] = a[:15]
    _check(a)


def test_no_rows_and_one_row() -> None:
    _check(np.zeros((1, 5)))
    first, inverse = distinct_rows(np.zeros((0, 5)))
    assert first.size == 0 and inverse.size == 0
