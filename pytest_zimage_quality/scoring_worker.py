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
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .comfyui import GeneratedImage
from .errors import ImageDecodeError, ScorerError, ZImageError
from .heap import release_freed_memory
from .metric_calls import Item, MetricCalls, Pair, Scores, prompt_info
from .metrics import ScorerSpec
from .reference_images import ReferenceImages
from .scheduler import ImageRequest
from .settings import default

__all__ = ["Scores", "ScoringWorker", "prompt_info"]

log = logging.getLogger(__name__)

#: The default memory budget of one scorer call, in bytes (``--zimage-score-memory``).
DEFAULT_MEMORY_BUDGET = int(default("score_memory")) * 2**20
#: How many recent batch sizes the worker keeps for tests and benchmarks.
_HISTORY = 256


_STOP = object()


class ScoringWorker:
    """One thread that owns the device scorers, one beside it for the background metrics.

    What it holds at any time is bounded by the batch size, the memory budget and the
    queue depth, never by the suite: waiting images are paths (decoded when their batch is
    scored), a parked candidate keeps no pixels, the reference images kept for pairing are
    at most ``memory_budget`` bytes, and the background lane takes at most two batches.
    """

    def __init__(
        self,
        *,
        decode: Callable[[bytes, str], Any],
        is_blank: Callable[[Any], bool],
        on_scored: Callable[[ImageRequest, GeneratedImage, Path, Scores], None],
        on_failed: Callable[[ImageRequest, ZImageError], None],
        batch_size: int = 16,
        decode_threads: int = 4,
        memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
        reference_wait: float | None = None,
    ) -> None:
        self._decode = decode
        self._is_blank = is_blank
        self._on_scored = on_scored
        self._on_failed = on_failed
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        #: seconds a candidate waits for its reference to be scored before it fails
        self.reference_wait = reference_wait
        self.calls = MetricCalls(batch_size=batch_size, memory_budget=memory_budget)
        self._inbox: queue.Queue[Item | tuple[str, tuple[str, str], ZImageError] | object] = (
            queue.Queue()
        )
        self._lane: queue.Queue[Pair | object] = queue.Queue(maxsize=2 * batch_size)
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=decode_threads, thread_name_prefix="zimage-decode"
        )
        self._thread = threading.Thread(target=self._run, name="zimage-score", daemon=True)
        self._lane_thread = threading.Thread(
            target=self._run_lane, name="zimage-score-cpu", daemon=True
        )
        self.references = ReferenceImages(
            reread=self._reread, memory_budget=memory_budget, wait=reference_wait
        )
        self.specs: tuple[ScorerSpec, ...] = ()
        self.device: str | None = None
        self.load_error: ZImageError | None = None
        self._provided = threading.Event()
        self.scored = 0
        #: Recent batch sizes the scoring thread and the background lane took.
        self.batches: collections.deque[int] = collections.deque(maxlen=_HISTORY)
        self.lane_batches: collections.deque[int] = collections.deque(maxlen=_HISTORY)

    @property
    def _front(self) -> list[ScorerSpec]:
        return [spec for spec in self.specs if not spec.background]

    @property
    def _back(self) -> list[ScorerSpec]:
        return [spec for spec in self.specs if spec.background]

    @property
    def held(self) -> dict[str, int]:
        """How much the worker holds now (tests check it stays bounded)."""
        return {**self.references.held(), "lane": self._lane.qsize()}

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
        """Score the image stored at ``image_path`` (read from there: what waits holds no
        pixels)."""
        self._inbox.put(Item(job, generated, image_path))

    def reference_failed(self, key: tuple[str, str], error: ZImageError) -> None:
        self._inbox.put(("ref-failed", key, error))

    def stop(self, *, drop_pending: bool = False) -> None:
        """Finish what is queued, or with ``drop_pending`` (Ctrl-C, SIGTERM, ``-x``) fail it
        at once: an interrupted run must end within seconds, not behind a scoring backlog.
        Then no scorer call starts any more, and both threads get 5 s in all to finish the
        call they are in (one call is bounded by the memory budget)."""
        if not self._provided.is_set():
            self.provide_error(ScorerError("the run stopped before the scorers were ready"))
        grace = 60.0
        if drop_pending:
            grace = 5.0
            self._stopping.set()
            self.calls.abort.set()
            self._drop_queued()
        deadline = time.monotonic() + grace
        self._inbox.put(_STOP)
        self._thread.join(timeout=grace)
        if drop_pending:
            self._drop_queued()
        self._stopping.set()
        self._put_lane_stop()
        self._lane_thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._pool.shutdown(wait=not drop_pending, cancel_futures=drop_pending)

    def _drop_queued(self) -> None:
        stopped = ZImageError("the run stopped before this case was scored")
        for entry in _take_all(self._inbox):
            if isinstance(entry, Item):
                self._on_failed(entry.job, stopped)
        for ready in _take_all(self._lane):
            if isinstance(ready, Pair):
                self._on_failed(ready.item.job, stopped)

    def _put_lane_stop(self) -> None:
        while True:
            try:
                self._lane.put(_STOP, timeout=0.1)
                return
            except queue.Full:
                if not self._lane_thread.is_alive():
                    return

    def _to_lane(self, entry: Pair) -> None:
        """Hand ``entry`` to the background lane, waiting while it is two batches behind
        (its pixels must not pile up); once stopping, fail it instead of waiting."""
        while True:
            try:
                self._lane.put(entry, timeout=0.1)
                return
            except queue.Full:
                if self._stopping.is_set():
                    self._on_failed(
                        entry.item.job, ZImageError("the run stopped before this case was scored")
                    )
                    return

    # -- the scoring thread -------------------------------------------------------------
    def _run(self) -> None:
        self._provided.wait()
        while True:
            # With candidates parked, wake at least every second to check their deadline.
            batch = self._drain(self._inbox, timeout=1.0 if self.references.any_parked else None)
            if batch is None:
                return
            self._expire_parked()
            if not batch:
                continue
            try:
                self._process(batch)
            except Exception as exc:  # keep the thread alive; fail what this batch held
                log.exception("zimage: scoring batch failed")
                for entry in batch:
                    if isinstance(entry, Item):
                        self._fail(
                            entry.job, ScorerError(f"scoring {entry.job.case.id} failed: {exc!r}")
                        )
            release_freed_memory()

    def _drain(self, inbox: queue.Queue[Any], *, timeout: float | None = None) -> list[Any] | None:
        """What is waiting, up to a batch (blocking for the first at most ``timeout``
        seconds: then an empty batch); None once stopped."""
        try:
            first = inbox.get(timeout=timeout)
        except queue.Empty:
            return []
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
        self.references.failed[key] = error
        for parked in self.references.unpark(key):
            self._on_failed(
                parked.job,
                ZImageError(
                    f"no reference image for {parked.job.case.id}: the reference case "
                    f"{parked.job.case.reference_id} failed: {error.message}",
                    hint=error.hint,
                ),
            )

    def _expire_parked(self) -> None:
        """Fail the candidates whose reference was neither scored nor reported failed in
        time (a reference lost between the server and the scorers)."""
        for item in self.references.expired():
            self._on_failed(
                item.job,
                ZImageError(
                    f"no reference image for {item.job.case.id}: its reference case "
                    f"{item.job.case.reference_id} was neither scored nor reported failed "
                    f"within {self.reference_wait:.0f} s",
                    hint="the reference image was lost between the server and the scorers; "
                    "the deadline is twice --zimage-timeout (docs/reliability.md)",
                ),
            )

    def _process(self, batch: list[Any]) -> None:
        items: list[Item] = []
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
                good = self.calls.score_free(spec, good, fail=self._fail)
        if not good:
            return
        for item in good:
            item.blank = bool(self._is_blank(item.tensor))
        references = [item for item in good if item.job.case.is_reference]
        candidates = [item for item in good if not item.job.case.is_reference]
        ready = [Pair(item) for item in references]
        for item in references:
            self.references.remember(item)
        pairs: list[Pair] = []
        for item in candidates:
            ref_key = (item.job.case.suite, item.job.case.reference_id)
            if ref_key in self.references.failed:
                self.references.park(ref_key, item, keep_pixels=True)
                self._mark_ref_failed(ref_key, self.references.failed[ref_key])
                continue
            try:
                ref_tensor = self.references.tensor(ref_key)
            except (OSError, ZImageError) as exc:
                self.references.park(ref_key, item, keep_pixels=True)
                self._mark_ref_failed(
                    ref_key, ImageDecodeError(f"cannot reread the reference image: {exc}")
                )
                continue
            if ref_tensor is None:  # parked until its reference is scored
                self.references.park(ref_key, item)
            else:
                pairs.append(Pair(item, ref_tensor, "/".join(ref_key)))
        for ref in references:
            for parked in self.references.unpark(ref.job.key):
                error = self._decode_item(parked)
                if error is not None:
                    self._on_failed(parked.job, error)
                else:
                    pairs.append(Pair(parked, ref.tensor, ref.label))
        for spec in self._front:
            if spec.reference_based:
                pairs = self.calls.score_paired(spec, pairs, fail=self._fail)
        self.scored += len(good)
        for entry in [*ready, *pairs]:
            if self._back:
                self._to_lane(entry)
            else:
                self._finish(entry.item)

    # -- the background lane ------------------------------------------------------------
    def _run_lane(self) -> None:
        while True:
            batch = self._drain(self._lane, timeout=None)
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
            release_freed_memory()

    def _process_lane(self, batch: list[Pair]) -> None:
        # The lane never touches the scoring thread's state: a failure here fails the case
        # itself only (a reference's candidates are already on their way).
        for entry in self.calls.score_background(self._back, batch, fail=self._on_failed):
            self._finish(entry.item)

    # -- images -------------------------------------------------------------------------
    def _decode_item(self, item: Item) -> ZImageError | None:
        """Read and decode the stored image onto the scorers' device."""
        name = f"{item.job.case.id} ({item.image_path.name})"
        try:
            data = item.image_path.read_bytes()
        except OSError as exc:
            return ImageDecodeError(f"{name}: cannot read the stored image: {exc}")
        try:
            item.tensor = self._to_device(self._decode(data, name))
        except ZImageError as exc:
            return exc
        except Exception as exc:
            return ImageDecodeError(f"{item.job.case.id}: cannot decode the image: {exc}")
        item.height, item.width = (int(n) for n in tuple(item.tensor.shape)[-2:])
        return None

    def _reread(self, key: tuple[str, str], path: Path) -> Any:
        return self._to_device(self._decode(path.read_bytes(), f"{key[1]} ({path.name})"))

    def _to_device(self, tensor: Any) -> Any:
        """Move a decoded image to the device scorers' device once; they all use it there."""
        move = getattr(tensor, "to", None)
        if self.device is None or move is None:
            return tensor
        try:
            return move(self.device)
        except (TypeError, RuntimeError):  # a scorer double with a non-torch device
            return tensor

    def _finish(self, item: Item) -> None:
        item.tensor = None  # scored: its pixels are not needed any more
        self._on_scored(
            item.job,
            item.generated,
            item.image_path,
            Scores(
                metrics=dict(item.metrics),
                details=dict(item.details),
                blank=item.blank,
                width=item.width,
                height=item.height,
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
