"""The scoring stage: decode, CLIPScore and LPIPS on one device thread, overlapped with generation.

Finished images arrive from the host runners in any order; the worker drains what is ready
into a batch (so a warm-cache rerun scores in large batches, a live run one image at a time as
they come), decodes in a thread pool, scores CLIP for the batch, then pairs each candidate with
its reference image for LPIPS. A candidate whose reference is not scored yet is parked until
it is; if the reference fails, so do its candidates.

The scorers are built by the caller on the main thread (model construction touches
process-wide warning filters, which must not change under a running test) while the server
generates the first images, and handed over with ``provide``; images that arrive earlier wait.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .comfyui import GeneratedImage
from .errors import ImageDecodeError, ScorerError, ZImageError
from .scheduler import ImageRequest

__all__ = ["ClipScorerLike", "LpipsScorerLike", "Scores", "ScoringWorker"]

log = logging.getLogger(__name__)


class ClipScorerLike(Protocol):
    def score(
        self, images: Sequence[Any], texts: Sequence[str], labels: Sequence[str] | None = None
    ) -> list[float]: ...


class LpipsScorerLike(Protocol):
    def distance(
        self,
        images_a: Sequence[Any],
        images_b: Sequence[Any],
        labels: Sequence[tuple[str, str]] | None = None,
    ) -> list[float]: ...


@dataclass(frozen=True)
class Scores:
    """What scoring measured for one image."""

    clipscore: float
    lpips: float | None
    blank: bool
    width: int
    height: int


@dataclass
class _Item:
    job: ImageRequest
    generated: GeneratedImage
    image_path: Path
    tensor: Any = None
    clipscore: float | None = None
    blank: bool = False


_STOP = object()


class ScoringWorker:
    """One thread that owns the scorer models and scores images as they arrive."""

    def __init__(
        self,
        *,
        decode: Callable[[bytes, str], Any],
        is_blank: Callable[[Any], bool],
        on_scored: Callable[[ImageRequest, GeneratedImage, Path, Scores], None],
        on_failed: Callable[[ImageRequest, ZImageError], None],
        batch_size: int = 16,
        decode_threads: int = 4,
    ) -> None:
        self._decode = decode
        self._is_blank = is_blank
        self._on_scored = on_scored
        self._on_failed = on_failed
        self.batch_size = batch_size
        self._inbox: queue.Queue[_Item | tuple[str, tuple[str, str], ZImageError] | object] = (
            queue.Queue()
        )
        self._pool = ThreadPoolExecutor(
            max_workers=decode_threads, thread_name_prefix="zimage-decode"
        )
        self._thread = threading.Thread(target=self._run, name="zimage-score", daemon=True)
        self._ref_tensors: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._ref_paths: dict[tuple[str, str], Path] = {}
        self._ref_failed: dict[tuple[str, str], ZImageError] = {}
        self._parked: dict[tuple[str, str], list[_Item]] = collections.defaultdict(list)
        self._ref_cache_size = 64
        self.load_error: ZImageError | None = None
        self._provided = threading.Event()
        self.scored = 0
        self.batches: list[int] = []

    # -- producer side (any thread) -----------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def provide(self, clip: ClipScorerLike, lpips: LpipsScorerLike) -> None:
        """Hand over the built scorers; scoring starts."""
        self.clip, self.lpips = clip, lpips
        self._provided.set()

    def provide_error(self, error: ZImageError) -> None:
        """The scorers could not be built: every case fails with ``error``."""
        self.load_error = error
        self._provided.set()

    def submit(self, job: ImageRequest, generated: GeneratedImage, image_path: Path) -> None:
        self._inbox.put(_Item(job, generated, image_path))

    def reference_failed(self, key: tuple[str, str], error: ZImageError) -> None:
        self._inbox.put(("ref-failed", key, error))

    def stop(self) -> None:
        if not self._provided.is_set():
            self.provide_error(ScorerError("the run stopped before the scorers were ready"))
        self._inbox.put(_STOP)
        self._thread.join(timeout=60)
        self._pool.shutdown(wait=True)

    # -- the scoring thread -------------------------------------------------------------
    def _run(self) -> None:
        self._provided.wait()
        while True:
            first = self._inbox.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    nxt = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._inbox.put(_STOP)
                    break
                batch.append(nxt)
            try:
                self._process(batch)
            except Exception as exc:  # keep the thread alive; fail what this batch held
                log.exception("zimage: scoring batch failed")
                for entry in batch:
                    if isinstance(entry, _Item):
                        self._fail(
                            entry.job, ScorerError(f"scoring {entry.job.case.id} failed: {exc!r}")
                        )

    def _fail(self, job: ImageRequest, error: ZImageError) -> None:
        self._on_failed(job, error)
        if job.case.is_reference:
            self._mark_ref_failed(job.key, error)

    def _mark_ref_failed(self, key: tuple[str, str], error: ZImageError) -> None:
        self._ref_failed[key] = error
        for parked in self._parked.pop(key, []):
            self._on_failed(
                parked.job,
                ZImageError(
                    f"no reference image for {parked.job.case.id}: the reference case "
                    f"{parked.job.case.reference_id} failed: {error.message}",
                    hint=error.hint,
                ),
            )

    def _process(self, batch: list[Any]) -> None:
        items: list[_Item] = []
        for entry in batch:
            if isinstance(entry, tuple):
                _, key, error = entry
                self._mark_ref_failed(key, error)
            else:
                items.append(entry)
        if not items:
            return
        if self.load_error is not None:
            for item in items:
                self._fail(item.job, self.load_error)
            return
        self.batches.append(len(items))
        decoded = list(self._pool.map(self._decode_item, items))
        good = [item for item, error in zip(items, decoded, strict=True) if error is None]
        for item, error in zip(items, decoded, strict=True):
            if error is not None:
                self._fail(item.job, error)
        if not good:
            return
        scores = self.clip.score(
            [item.tensor for item in good],
            [item.job.case.prompt.text for item in good],
            labels=[item.job.case.prompt.key for item in good],
        )
        for item, score in zip(good, scores, strict=True):
            item.clipscore = float(score)
            item.blank = bool(self._is_blank(item.tensor))
        references = [item for item in good if item.job.case.is_reference]
        candidates = [item for item in good if not item.job.case.is_reference]
        for item in references:
            self._finish(item, None)
            self._remember_reference(item)
        ready: list[tuple[_Item, Any, Path]] = []
        for item in candidates:
            ref_key = (item.job.case.suite, item.job.case.reference_id)
            self._parked[ref_key].append(item)
            if ref_key in self._ref_failed:
                self._mark_ref_failed(ref_key, self._ref_failed[ref_key])
                continue
            try:
                ref_tensor = self._reference_tensor(ref_key)
            except (OSError, ZImageError) as exc:
                self._mark_ref_failed(
                    ref_key, ImageDecodeError(f"cannot reread the reference image: {exc}")
                )
                continue
            if ref_tensor is not None:  # else it stays parked until its reference is scored
                self._parked[ref_key].remove(item)
                ready.append((item, ref_tensor, self._ref_paths[ref_key]))
        for ref in references:
            for parked in self._parked.pop(ref.job.key, []):
                ready.append((parked, ref.tensor, ref.image_path))
        self._score_pairs(ready)
        self.scored += len(good)

    def _decode_item(self, item: _Item) -> ZImageError | None:
        try:
            item.tensor = self._to_device(
                self._decode(item.generated.png, f"{item.job.case.id} ({item.image_path.name})")
            )
        except ZImageError as exc:
            return exc
        except Exception as exc:
            return ImageDecodeError(f"{item.job.case.id}: cannot decode the image: {exc}")
        return None

    def _remember_reference(self, item: _Item) -> None:
        self._ref_tensors[item.job.key] = item.tensor
        self._ref_tensors.move_to_end(item.job.key)
        self._ref_paths[item.job.key] = item.image_path
        while len(self._ref_tensors) > self._ref_cache_size:
            self._ref_tensors.popitem(last=False)

    def _reference_tensor(self, key: tuple[str, str]) -> Any:
        if key in self._ref_tensors:
            self._ref_tensors.move_to_end(key)
            return self._ref_tensors[key]
        path = self._ref_paths.get(key)
        if path is None:
            return None  # not scored yet: the caller parks the candidate
        tensor = self._to_device(self._decode(path.read_bytes(), f"{key[1]} ({path.name})"))
        self._ref_tensors[key] = tensor
        return tensor

    def _to_device(self, tensor: Any) -> Any:
        """Move a decoded image to the scorers' device once; both scorers then use it there."""
        device = getattr(getattr(self, "clip", None), "device", None)
        move = getattr(tensor, "to", None)
        if device is None or move is None:
            return tensor
        try:
            return move(device)
        except (TypeError, RuntimeError):  # a scorer double with a non-torch device
            return tensor

    def _score_pairs(self, ready: list[tuple[_Item, Any, Path]]) -> None:
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            try:
                distances = self.lpips.distance(
                    [item.tensor for item, _, _ in chunk],
                    [ref for _, ref, _ in chunk],
                    labels=[(str(item.image_path), str(path)) for item, _, path in chunk],
                )
            except ZImageError as exc:
                for item, _, _ in chunk:
                    self._fail(item.job, exc)
                continue
            for (item, _, _), distance in zip(chunk, distances, strict=True):
                self._finish(item, float(distance))

    def _finish(self, item: _Item, lpips: float | None) -> None:
        assert item.clipscore is not None
        _, height, width = tuple(item.tensor.shape)[-3:]
        self._on_scored(
            item.job,
            item.generated,
            item.image_path,
            Scores(
                clipscore=item.clipscore,
                lpips=lpips,
                blank=item.blank,
                width=int(width),
                height=int(height),
            ),
        )
