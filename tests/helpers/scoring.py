"""Images, a callback recorder and a submit helper for the scoring-worker tests."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import torch

from pytest_zimage_quality.comfyui import GeneratedImage
from pytest_zimage_quality.errors import ZImageError
from pytest_zimage_quality.scheduler import ImageRequest
from pytest_zimage_quality.scoring_worker import Scores, ScoringWorker
from pytest_zimage_quality.suite import Case, Suite

__all__ = ["WAIT", "Recorder", "make_case", "make_image", "submit"]

WAIT = 30.0


def make_image(level: int, *, size: int = 16, flat: bool = False) -> torch.Tensor:
    """A small RGB image: a gradient offset by ``level`` (or one flat colour)."""
    if flat:
        return torch.full((3, size, size), level, dtype=torch.uint8)
    ramp = torch.arange(size * size, dtype=torch.int64).reshape(size, size) * 3 + level
    return (ramp % 256).to(torch.uint8).expand(3, size, size).contiguous()


class Recorder:
    """Collects the worker's callbacks and lets a test wait for a given case."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.scored: dict[str, Scores] = {}
        self.failed: dict[str, ZImageError] = {}

    def on_scored(
        self, request: ImageRequest, generated: GeneratedImage, path: Path, scores: Scores
    ) -> None:
        with self.cond:
            self.scored[request.case.id] = scores
            self.cond.notify_all()

    def on_failed(self, request: ImageRequest, error: ZImageError) -> None:
        with self.cond:
            self.failed[request.case.id] = error
            self.cond.notify_all()

    def wait_for(self, *case_ids: str) -> None:
        with self.cond:
            done = self.cond.wait_for(
                lambda: all(c in self.scored or c in self.failed for c in case_ids), timeout=WAIT
            )
        assert done, f"not finished: {[c for c in case_ids if c not in self.scored]}"


def make_case(suite: Suite, config: str, prompt: str = "cat", seed: int = 1) -> Case:
    return suite.make_case(prompt, config, seed)


def submit(worker: ScoringWorker, tmp_path: Path, case: Case, suite: Suite, png: bytes) -> Path:
    path = tmp_path / f"{case.id.replace('/', '_')}.png"
    path.write_bytes(png)
    generated = GeneratedImage(
        png=png,
        sha256=hashlib.sha256(png).hexdigest(),
        prompt_id=case.id,
        host="test",
        wall_seconds=0.1,
        server_seconds=0.1,
        cached="",
    )
    worker.submit(ImageRequest(case=case, suite=suite, graph={}), generated, path)
    return path
