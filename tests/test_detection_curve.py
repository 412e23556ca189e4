"""The trade-off benchmark moves real detector constants, and puts them back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import detection_curve as curve

from llmtrace.analytics import anomalies_scan as scan


@pytest.mark.parametrize("variant", list(curve.VARIANTS))
def test_every_variant_replaces_attributes_the_detector_has(variant: str) -> None:
    """A renamed constant would make a variant a silent copy of the shipped detector."""
    for name in curve.VARIANTS[variant]:
        module, attr = curve.target(name)
        assert hasattr(module, attr), name


def test_replaced_constants_are_restored_even_when_detect_fails() -> None:
    before = scan.VOLUME_MIN_SCORE
    with pytest.raises(RuntimeError), curve.replaced(VOLUME_MIN_SCORE=before - 2):
        assert before - 2 == scan.VOLUME_MIN_SCORE
        raise RuntimeError("detect failed")
    assert before == scan.VOLUME_MIN_SCORE
