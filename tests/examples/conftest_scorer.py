"""The same kind of metric registered from a conftest.py, through the plugin's hook."""

from __future__ import annotations

from typing import Any

from pytest_zimage_quality import REFERENCE_BASED, ScoreBatch, ScorerSpec


def _mean_abs_difference(batch: ScoreBatch) -> list[float]:
    """Mean absolute pixel difference from the reference image, in [0, 1]."""
    return [
        float((image.float() - reference.float()).abs().mean()) / 255.0
        for image, reference in zip(batch.images, batch.references, strict=True)
    ]


def pytest_zimage_register_scorers(config: Any, settings: Any, suites: Any) -> ScorerSpec:
    return ScorerSpec(
        name="pixel_diff",
        label="Pixel diff",
        kind=REFERENCE_BASED,
        higher_is_better=False,
        score=_mean_abs_difference,
    )
