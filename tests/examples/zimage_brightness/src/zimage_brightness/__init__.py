"""An example scorer plug-in: the mean brightness of each image, in [0, 1].

Registered through the ``pytest_zimage_quality.scorers`` entry point (pyproject.toml): the
plugin calls :func:`make_scorer` with the run's settings and runs the returned metric beside
CLIPScore and LPIPS. A real plug-in builds its model here (on ``settings.device``).
"""

from __future__ import annotations

from typing import Any

from pytest_zimage_quality import REFERENCE_FREE, ScoreBatch, ScorerSpec


def brightness(batch: ScoreBatch) -> list[float]:
    """Mean of each uint8 (3, H, W) image, scaled to [0, 1]."""
    return [float(image.float().mean()) / 255.0 for image in batch.images]


def make_scorer(settings: Any) -> ScorerSpec:
    return ScorerSpec(
        name="brightness",
        label="Brightness",
        kind=REFERENCE_FREE,
        higher_is_better=True,
        score=brightness,
        device="cpu",
        weights_identity="",  # a formula: no weights
        info=lambda: {"name": "mean brightness", "package": "zimage-brightness 0.1.0"},
    )
