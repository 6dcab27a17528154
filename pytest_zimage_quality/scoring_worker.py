"""The scoring stage: decode, then every registered metric, overlapped with generation.

Finished images arrive from the host runners in any order; the worker drains what is ready
into a batch (so a warm-cache rerun scores in large batches, a live run one image at a time as
they come), decodes in a thread pool, runs the reference-free metrics (CLIPScore...) on the
batch, then pairs each candidate with its reference image for the reference-based ones
(LPIPS...). A candidate whose reference is not scored yet is parked until it is; if the
reference fails, so do its candidates.

Metrics are :class:`~pytest_zimage_quality.metrics.ScorerSpec` s, built-in or registered by
the user, all run the same way. A ``background`` metric (OCR, PSNR, SSIM: CPU-bound) runs on
a second thread beside this one, on CPU copies of the images, so the device scorers never
wait for it; a case is finished once both threads are done with it, in the order the scoring
thread handed it over (a reference before its candidates).

The specs are built by the caller on the main thread (model construction touches
process-wide warning filters, which must not change under a running test) while the server
generates the first images, and handed over with ``provide``; images that arrive earlier wait.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comfyui import GeneratedImage
from .errors import ImageDecodeError, ScorerError, ZImageError
from .metrics import PromptInfo, ScoreBatch, ScorerSpec, ScorerSpecError, read_result
from .scheduler import ImageRequest

__all__ = ["Scores", "ScoringWorker", "prompt_info"]

log = logging.getLogger(__name__)


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


def prompt_info(request: ImageRequest) -> PromptInfo:
    return PromptInfo.of(request.case.prompt)


@dataclass
class _Item:
    job: ImageRequest
    generated: GeneratedImage
    image_path: Path
    tensor: Any = None
    blank: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.job.case.suite}/{self.job.case.id}"


@dataclass
class _Ready:
    """A scored item on its way to the background metrics, with its reference if any."""

    item: _Item
    reference: Any = None
    reference_key: str = ""


_STOP = object()


class ScoringWorker:
    """One thread that owns the device scorers, one beside it for the background metrics."""

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
        self._lane: queue.Queue[_Ready | object] = queue.Queue()
        self._pool = ThreadPoolExecutor(
            max_workers=decode_threads, thread_name_prefix="zimage-decode"
        )
        self._thread = threading.Thread(target=self._run, name="zimage-score", daemon=True)
        self._lane_thread = threading.Thread(
            target=self._run_lane, name="zimage-score-cpu", daemon=True
        )
        self._ref_tensors: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._ref_paths: dict[tuple[str, str], Path] = {}
        self._ref_failed: dict[tuple[str, str], ZImageError] = {}
        self._parked: dict[tuple[str, str], list[_Item]] = collections.defaultdict(list)
        self._ref_cache_size = 64
        self.specs: tuple[ScorerSpec, ...] = ()
        self.device: str | None = None
        self.load_error: ZImageError | None = None
        self._provided = threading.Event()
        self.scored = 0
        self.batches: list[int] = []
        #: Batch sizes the background lane scored (for tests and the benchmark).
        self.lane_batches: list[int] = []

    @property
    def _front(self) -> list[ScorerSpec]:
        return [spec for spec in self.specs if not spec.background]

    @property
    def _back(self) -> list[ScorerSpec]:
        return [spec for spec in self.specs if spec.background]

    # -- producer side (any thread) -----------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._lane_thread.start()

    def provide(self, specs: Sequence[ScorerSpec]) -> None:
        """Hand over the built metrics; scoring starts. Images move once to the device of
        the first device metric, where the device metrics read them."""
        self.specs = tuple(specs)
        self.device = next((spec.device for spec in self._front if spec.device), None)
        self._provided.set()

    def provide_error(self, error: ZImageError) -> None:
        """The scorers could not be built: every case fails with ``error``."""
        self.load_error = error
        self._provided.set()

    def submit(self, job: ImageRequest, generated: GeneratedImage, image_path: Path) -> None:
        self._inbox.put(_Item(job, generated, image_path))

    def reference_failed(self, key: tuple[str, str], error: ZImageError) -> None:
        self._inbox.put(("ref-failed", key, error))

    def stop(self, *, drop_pending: bool = False) -> None:
        """Finish what is queued, or with ``drop_pending`` (Ctrl-C, SIGTERM, ``-x``) fail it
        at once: an interrupted run must end within seconds, not behind a scoring backlog."""
        if not self._provided.is_set():
            self.provide_error(ScorerError("the run stopped before the scorers were ready"))
        grace = 60.0
        if drop_pending:
            grace = 5.0
            stopped = ZImageError("the run stopped before this case was scored")
            for entry in _take_all(self._inbox):
                if isinstance(entry, _Item):
                    self._on_failed(entry.job, stopped)
            for ready in _take_all(self._lane):
                if isinstance(ready, _Ready):
                    self._on_failed(ready.item.job, stopped)
        self._inbox.put(_STOP)
        self._thread.join(timeout=grace)
        self._lane.put(_STOP)
        self._lane_thread.join(timeout=grace)
        self._pool.shutdown(wait=not drop_pending, cancel_futures=drop_pending)

    # -- the scoring thread -------------------------------------------------------------
    def _run(self) -> None:
        self._provided.wait()
        while True:
            batch = self._drain(self._inbox)
            if batch is None:
                return
            try:
                self._process(batch)
            except Exception as exc:  # keep the thread alive; fail what this batch held
                log.exception("zimage: scoring batch failed")
                for entry in batch:
                    if isinstance(entry, _Item):
                        self._fail(
                            entry.job, ScorerError(f"scoring {entry.job.case.id} failed: {exc!r}")
                        )

    def _drain(self, inbox: queue.Queue[Any]) -> list[Any] | None:
        """What is waiting, up to a batch (blocking for the first); None once stopped."""
        first = inbox.get()
        if first is _STOP:
            return None
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                nxt = inbox.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                inbox.put(_STOP)
                break
            batch.append(nxt)
        return batch

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
        for spec in self._front:
            if not spec.reference_based:
                good = self._score_free(spec, good, fail=self._fail)
        if not good:
            return
        for item in good:
            item.blank = bool(self._is_blank(item.tensor))
        references = [item for item in good if item.job.case.is_reference]
        candidates = [item for item in good if not item.job.case.is_reference]
        ready = [_Ready(item) for item in references]
        for item in references:
            self._remember_reference(item)
        pairs: list[_Ready] = []
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
                pairs.append(_Ready(item, ref_tensor, "/".join(ref_key)))
        for ref in references:
            for parked in self._parked.pop(ref.job.key, []):
                pairs.append(_Ready(parked, ref.tensor, ref.label))
        for spec in self._front:
            if spec.reference_based:
                pairs = self._score_paired(spec, pairs, fail=self._fail)
        self.scored += len(good)
        for entry in [*ready, *pairs]:
            if self._back:
                self._lane.put(entry)
            else:
                self._finish(entry.item)

    # -- running one metric -------------------------------------------------------------
    def _score_free(
        self,
        spec: ScorerSpec,
        items: list[_Item],
        *,
        fail: Callable[[ImageRequest, ZImageError], None],
        cpu: bool = False,
    ) -> list[_Item]:
        """Score the items ``spec`` applies to; those it fails on are failed and dropped."""
        infos = [prompt_info(item.job) for item in items]
        chosen = [(item, info) for item, info in zip(items, infos, strict=True) if spec.wants(info)]
        failed: set[int] = set()
        for start in range(0, len(chosen), self.batch_size):
            chunk = chosen[start : start + self.batch_size]
            batch = ScoreBatch(
                images=[self._image(item, cpu) for item, _ in chunk],
                prompts=[info for _, info in chunk],
                keys=[item.label for item, _ in chunk],
            )
            kept = self._apply_or_one_by_one(spec, batch, [item for item, _ in chunk], fail)
            failed.update(id(item) for item, _ in chunk if id(item) not in kept)
        return [item for item in items if id(item) not in failed]

    def _score_paired(
        self,
        spec: ScorerSpec,
        pairs: list[_Ready],
        *,
        fail: Callable[[ImageRequest, ZImageError], None],
        cpu: bool = False,
    ) -> list[_Ready]:
        """Score the candidate/reference pairs ``spec`` applies to; failures are dropped."""
        chosen = [
            pair
            for pair in pairs
            if pair.reference is not None and spec.wants(prompt_info(pair.item.job))
        ]
        failed: set[int] = set()
        for start in range(0, len(chosen), self.batch_size):
            chunk = chosen[start : start + self.batch_size]
            batch = ScoreBatch(
                images=[self._image(pair.item, cpu) for pair in chunk],
                prompts=[prompt_info(pair.item.job) for pair in chunk],
                keys=[pair.item.label for pair in chunk],
                references=[_on_cpu(pair.reference) if cpu else pair.reference for pair in chunk],
                reference_keys=[pair.reference_key for pair in chunk],
            )
            kept = self._apply_or_one_by_one(spec, batch, [pair.item for pair in chunk], fail)
            failed.update(id(pair) for pair in chunk if id(pair.item) not in kept)
        return [pair for pair in pairs if id(pair) not in failed]

    def _apply_or_one_by_one(
        self,
        spec: ScorerSpec,
        batch: ScoreBatch,
        items: list[_Item],
        fail: Callable[[ImageRequest, ZImageError], None],
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

    def _apply(
        self,
        spec: ScorerSpec,
        batch: ScoreBatch,
        items: list[_Item],
        fail: Callable[[ImageRequest, ZImageError], None],
    ) -> bool:
        """Run ``spec`` on one batch and store its values; False (items failed) on error."""
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

    def _image(self, item: _Item, cpu: bool) -> Any:
        return _on_cpu(item.tensor) if cpu else item.tensor

    # -- the background lane ------------------------------------------------------------
    def _run_lane(self) -> None:
        while True:
            batch = self._drain(self._lane)
            if batch is None:
                return
            self.lane_batches.append(len(batch))
            try:
                self._process_lane(batch)
            except Exception as exc:  # keep the lane alive; fail what this batch held
                log.exception("zimage: background scoring failed")
                for entry in batch:
                    self._on_failed(
                        entry.item.job,
                        ScorerError(f"scoring {entry.item.job.case.id} failed: {exc!r}"),
                    )

    def _process_lane(self, batch: list[_Ready]) -> None:
        # The lane never touches the scoring thread's state: a failure here fails the case
        # itself only (a reference's candidates are already on their way).
        entries = batch
        for spec in self._back:
            if spec.reference_based:
                entries = self._score_paired(spec, entries, fail=self._on_failed, cpu=True)
            else:
                kept = {
                    id(item)
                    for item in self._score_free(
                        spec, [e.item for e in entries], fail=self._on_failed, cpu=True
                    )
                }
                entries = [e for e in entries if id(e.item) in kept]
        for entry in entries:
            self._finish(entry.item)

    # -- images -------------------------------------------------------------------------
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
        """Move a decoded image to the device scorers' device once; they all use it there."""
        move = getattr(tensor, "to", None)
        if self.device is None or move is None:
            return tensor
        try:
            return move(self.device)
        except (TypeError, RuntimeError):  # a scorer double with a non-torch device
            return tensor

    def _finish(self, item: _Item) -> None:
        _, height, width = tuple(item.tensor.shape)[-3:]
        self._on_scored(
            item.job,
            item.generated,
            item.image_path,
            Scores(
                metrics=dict(item.metrics),
                details=dict(item.details),
                blank=item.blank,
                width=int(width),
                height=int(height),
            ),
        )


def _take_all(inbox: queue.Queue[Any]) -> list[Any]:
    """Empty ``inbox`` without blocking (what the scoring threads have not picked up yet)."""
    taken: list[Any] = []
    while True:
        try:
            taken.append(inbox.get_nowait())
        except queue.Empty:
            return taken


def _on_cpu(tensor: Any) -> Any:
    move = getattr(tensor, "cpu", None)
    return move() if callable(move) else tensor
