"""Running one metric over the scoring worker's images: calls sized to a memory budget, and
one bad image failing only its own case.

The scoring worker (:mod:`.scoring_worker`) decides what is scored when and pairs
candidates with references; this module turns "score these images with that metric" into
scorer calls. Each call holds at most ``batch_size`` images and, by the metric's working
memory per pixel (:func:`~pytest_zimage_quality.scorers.working_bytes_per_pixel`), at most
``memory_budget`` bytes of activations, so the scorers' peak memory depends on the batch
and the budget, never on how many images are waiting. A call that raises is repeated image
by image, so a wrong-size or 1x1 image fails its case and no other.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comfyui import GeneratedImage
from .errors import ScorerError, ZImageError
from .metrics import PromptInfo, ScoreBatch, ScorerSpec, ScorerSpecError, read_result
from .scheduler import ImageRequest
from .scorers import working_bytes_per_pixel

__all__ = ["Item", "MetricCalls", "Pair", "Scores", "prompt_info"]

log = logging.getLogger(__name__)

Fail = Callable[[ImageRequest, ZImageError], None]


def prompt_info(request: ImageRequest) -> PromptInfo:
    return PromptInfo.of(request.case.prompt)


@dataclass(frozen=True)
class Scores:
    """What scoring measured for one image: every metric that applied, by name."""

    metrics: Mapping[str, float]
    blank: bool
    width: int
    height: int
    #: Per-metric text about this image (what OCR read), where a scorer gave one.
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def clipscore(self) -> float | None:
        return self.metrics.get("clipscore")

    @property
    def lpips(self) -> float | None:
        return self.metrics.get("lpips")


@dataclass
class Item:
    """One image in the scoring pipeline: decoded (``tensor``) only while it is being scored."""

    job: ImageRequest
    generated: GeneratedImage
    image_path: Path
    tensor: Any = None
    width: int = 0
    height: int = 0
    blank: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.job.case.suite}/{self.job.case.id}"

    @property
    def pixels(self) -> int:
        return max(1, self.width * self.height)


@dataclass
class Pair:
    """A scored item on its way to the reference-based and background metrics, with its
    reference image if it is a candidate."""

    item: Item
    reference: Any = None
    reference_key: str = ""


class MetricCalls:
    """Scores lists of items (or pairs) with one metric at a time, in budget-sized calls."""

    def __init__(self, *, batch_size: int, memory_budget: int | None) -> None:
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self._cost: dict[str, int] = {}
        #: set when the run stops (Ctrl-C, SIGTERM): no further call starts
        self.abort = threading.Event()
        #: (metric name, images) of the recent calls (for tests and the benchmark)
        self.calls: collections.deque[tuple[str, int]] = collections.deque(maxlen=256)

    def chunks(self, spec: ScorerSpec, pixels: Sequence[int]) -> Iterator[slice]:
        """Consecutive slices of ``pixels`` (one entry per image or pair), each at most
        ``batch_size`` long and within the memory budget (one image if one alone exceeds it)."""
        if spec.name not in self._cost:
            self._cost[spec.name] = working_bytes_per_pixel(spec)
        per_pixel = self._cost[spec.name]
        start = 0
        while start < len(pixels):
            stop, used = start, 0
            while stop < len(pixels) and stop - start < self.batch_size:
                need = pixels[stop] * per_pixel
                over = self.memory_budget is not None and used + need > self.memory_budget
                if stop > start and over:
                    break
                used += need
                stop += 1
            yield slice(start, stop)
            start = stop

    def score_free(
        self, spec: ScorerSpec, items: list[Item], *, fail: Fail, cpu: bool = False
    ) -> list[Item]:
        """Score the items ``spec`` applies to; those it fails on are failed and dropped."""
        chosen = [(item, prompt_info(item.job)) for item in items]
        chosen = [(item, info) for item, info in chosen if spec.wants(info)]
        failed: set[int] = set()
        for part in self.chunks(spec, [item.pixels for item, _ in chosen]):
            chunk = chosen[part]
            batch = ScoreBatch(
                images=[_on(item.tensor, cpu) for item, _ in chunk],
                prompts=[info for _, info in chunk],
                keys=[item.label for item, _ in chunk],
            )
            kept = self._apply_or_one_by_one(spec, batch, [item for item, _ in chunk], fail)
            failed.update(id(item) for item, _ in chunk if id(item) not in kept)
        return [item for item in items if id(item) not in failed]

    def score_paired(
        self, spec: ScorerSpec, pairs: list[Pair], *, fail: Fail, cpu: bool = False
    ) -> list[Pair]:
        """Score the candidate/reference pairs ``spec`` applies to; failures are dropped."""
        chosen = [
            pair
            for pair in pairs
            if pair.reference is not None and spec.wants(prompt_info(pair.item.job))
        ]
        failed: set[int] = set()
        for part in self.chunks(spec, [pair.item.pixels for pair in chosen]):
            chunk = chosen[part]
            batch = ScoreBatch(
                images=[_on(pair.item.tensor, cpu) for pair in chunk],
                prompts=[prompt_info(pair.item.job) for pair in chunk],
                keys=[pair.item.label for pair in chunk],
                references=[_on(pair.reference, cpu) for pair in chunk],
                reference_keys=[pair.reference_key for pair in chunk],
            )
            kept = self._apply_or_one_by_one(spec, batch, [pair.item for pair in chunk], fail)
            failed.update(id(pair) for pair in chunk if id(pair.item) not in kept)
        return [pair for pair in pairs if id(pair) not in failed]

    def score_background(
        self, specs: Sequence[ScorerSpec], pairs: list[Pair], *, fail: Fail
    ) -> list[Pair]:
        """The background lane's metrics (CPU copies), in order; returns the pairs left."""
        for spec in specs:
            if spec.reference_based:
                pairs = self.score_paired(spec, pairs, fail=fail, cpu=True)
            else:
                items = self.score_free(spec, [pair.item for pair in pairs], fail=fail, cpu=True)
                kept = {id(item) for item in items}
                pairs = [pair for pair in pairs if id(pair.item) in kept]
        return pairs

    def _apply_or_one_by_one(
        self, spec: ScorerSpec, batch: ScoreBatch, items: list[Item], fail: Fail
    ) -> set[int]:
        """Score a batch; if it fails, score its images one at a time, so that one bad image
        (a wrong size, 1x1) fails only its own case. Returns the ids of the items scored."""
        if len(items) > 1 and self._apply(spec, batch, items, lambda job, error: None):
            return {id(item) for item in items}
        kept: set[int] = set()
        for i, item in enumerate(items):
            one = dataclasses.replace(
                batch,
                images=batch.images[i : i + 1],
                prompts=batch.prompts[i : i + 1],
                keys=batch.keys[i : i + 1],
                references=batch.references[i : i + 1],
                reference_keys=batch.reference_keys[i : i + 1],
            )
            if self._apply(spec, one, [item], fail):
                kept.add(id(item))
        return kept

    def _apply(self, spec: ScorerSpec, batch: ScoreBatch, items: list[Item], fail: Fail) -> bool:
        """Run ``spec`` on one batch and store its values; False (items failed) on error."""
        if self.abort.is_set():
            stopped = ZImageError("the run stopped before this case was scored")
            for item in items:
                fail(item.job, stopped)
            return False
        self.calls.append((spec.name, len(items)))
        try:
            values, details = read_result(spec, spec.score(batch), len(items))
        except ZImageError as exc:
            error = exc
        except ScorerSpecError as exc:
            error = ScorerError(str(exc), hint=f"fix the scorer {spec.name!r} (docs/scorers.md)")
        except Exception as exc:
            log.debug("zimage: scorer %s failed", spec.name, exc_info=True)
            error = ScorerError(
                f"the {spec.label} scorer ({spec.name}) failed on {', '.join(batch.keys)}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"a bug or a bad input in the scorer {spec.name!r}",
            )
        else:
            for item, value, detail in zip(items, values, details, strict=True):
                item.metrics[spec.name] = value
                if detail:
                    item.details[spec.name] = detail
            return True
        for item in items:
            fail(item.job, error)
        return False


def _on(tensor: Any, cpu: bool) -> Any:
    """``tensor`` itself, or with ``cpu`` its CPU copy (the background lane's)."""
    move = getattr(tensor, "cpu", None) if cpu else None
    return move() if callable(move) else tensor
