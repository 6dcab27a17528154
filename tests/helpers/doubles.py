"""Scorer doubles for end-to-end tests: deterministic, fast, and sensitive to broken images.

Injected through the plugin's own hooks (``pytest_zimage_make_clip_scorer`` /
``pytest_zimage_make_lpips_scorer``) in a pytester conftest, exactly as a user would supply
their own scorers. ``EdgeCLIP`` scores an image lower the more high-frequency energy it has, so
the fake server's "broken" noise renders score far below its smooth scenes, while scenes of
one prompt and seed score alike; ``MeanAbsLPIPS`` is the mean absolute pixel difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pytest_zimage_quality.images import to_uint8_chw
from pytest_zimage_quality.metrics import ScorerSpec
from pytest_zimage_quality.scorers import clip_specs, lpips_spec
from pytest_zimage_quality.suite import Suite

CONFTEST = """
from tests.helpers.doubles import EdgeCLIP, MeanAbsLPIPS

def pytest_zimage_make_clip_scorer(config, settings):
    return EdgeCLIP()

def pytest_zimage_make_lpips_scorer(config, settings):
    return MeanAbsLPIPS()
"""


def _tensor(image: Any) -> torch.Tensor:
    """Like the real scorers: a uint8 (3, H, W) tensor, PNG bytes or a PIL image."""
    return to_uint8_chw(image).to(torch.float32) / 255.0


class EdgeCLIP:
    name = "edge-clip-double"
    higher_is_better = True
    random_weights = False
    weights_identity = "test-double"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(
        self, images: Sequence[Any], texts: Sequence[str], labels: Sequence[str] | None = None
    ) -> list[float]:
        self.calls.append(len(images))
        scores = []
        for image, text in zip(images, texts, strict=True):
            x = _tensor(image)
            edges = (x[:, 1:, :] - x[:, :-1, :]).abs().mean() + (
                x[:, :, 1:] - x[:, :, :-1]
            ).abs().mean()
            base = 0.30 + 0.05 * (int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) / 0xFFFF)
            scores.append(float(base - 0.5 * edges))
        return scores


class MeanAbsLPIPS:
    name = "mean-abs-lpips-double"
    higher_is_better = False
    random_weights = False
    weights_identity = "test-double"

    def distance(
        self,
        images_a: Sequence[Any],
        images_b: Sequence[Any],
        labels: Sequence[tuple[str, str]] | None = None,
    ) -> list[float]:
        return [
            float((_tensor(a) - _tensor(b)).abs().mean())
            for a, b in zip(images_a, images_b, strict=True)
        ]


def double_specs(clip: Any = None, lpips: Any = None) -> list[ScorerSpec]:
    """The doubles as the run's metrics, through the built-in adapters (clipscore, lpips)."""
    return [*clip_specs(clip or EdgeCLIP()), lpips_spec(lpips or MeanAbsLPIPS())]


@dataclass(frozen=True)
class DryRunSettings:
    """What the engine reads of a run's settings (``engine.EngineSettings``), for a dry run."""

    hosts: tuple[Any, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    simulated: bool = True
    refresh: bool = False
    timeout: float = 60.0
    queue_depth: int = 2
    pin_pairs: str = "auto"
    hosts_file: Path | None = None
    comfyui: str | None = None
    gpus: tuple[str, ...] | None = None
    cpu_servers: int = 0
    comfyui_args: tuple[str, ...] = ()
    launch_timeout: float = 60.0
    ray: str | None = None
    ray_servers: int | None = None

    def cache_revision(self, suite: Suite) -> str:
        return suite.revision
