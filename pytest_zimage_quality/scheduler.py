"""Queue-ahead submission: keep a ComfyUI server busy with this run's prompts, in plan order.

One ``HostRunner`` per host owns the order in which its jobs reach the server, independent
of the order pytest runs tests in. Up to ``depth`` of its prompts are on the server at once
(running or queued), so the server starts the next image the moment one finishes while the
client fetches, verifies and hands the finished one to scoring. A slot is freed when the
server reports completion, not when the image has been fetched. Cache hits never take a slot.

No pytest, no torch: the runner is driven through plain callbacks and unit-tested with a
fake client.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .comfyui import FinishedPrompt, GeneratedImage
from .errors import ComfyUIError, ZImageError

if TYPE_CHECKING:
    from .suite import Case, Suite

__all__ = ["HostRunner", "ImageRequest", "SubmissionClient"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRequest:
    """One image to obtain: a case of a suite, its final graph and its cache key.

    The first stage of an image: the client follows it as a prompt, the server finishes it
    (:class:`~.comfyui.FinishedPrompt`), and it reaches scoring as a
    :class:`~.comfyui.GeneratedImage`.
    """

    case: Case
    suite: Suite = field(compare=False, repr=False)
    graph: Mapping[str, Any] = field(compare=False, repr=False)
    graph_hash: str = ""
    cache_key: str = ""
    prompt_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> tuple[str, str]:
        return self.case.key

    @property
    def output_node(self) -> str:
        return self.suite.output_node


class SubmissionClient(Protocol):
    """What a runner needs of a ComfyUI client (comfyui.ComfyUIClient provides it)."""

    @property
    def base_url(self) -> str: ...

    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        output_node: str | None = None,
    ) -> str: ...

    def wait(self, prompt_id: str, *, timeout: float | None = None) -> FinishedPrompt: ...

    def fetch_result(
        self, finished: FinishedPrompt, *, output_node: str | None = None
    ) -> GeneratedImage: ...

    def cancel_all(self) -> None: ...


_STOP = object()


class HostRunner:
    """Feeds one host's jobs to its server, ``depth`` at a time, in enqueue order."""

    def __init__(
        self,
        client: SubmissionClient,
        *,
        depth: int,
        timeout: float,
        deliver: Callable[[ImageRequest, GeneratedImage], None],
        fail: Callable[[ImageRequest, ZImageError], None],
        lookup_cache: Callable[[ImageRequest], GeneratedImage | None],
    ) -> None:
        self.client = client
        self.host = client.base_url
        self.depth = depth
        self.timeout = timeout
        self._deliver = deliver
        self._fail = fail
        self._lookup_cache = lookup_cache
        self._queue: collections.deque[ImageRequest | object] = collections.deque()
        self._known: set[tuple[str, str]] = set()
        self._cond = threading.Condition()
        self._slots = threading.Semaphore(depth)
        self._waiters = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="zimage-wait")
        self._thread = threading.Thread(
            target=self._feed, name=f"zimage-feed[{self.host}]", daemon=True
        )
        self._stopping = threading.Event()
        self._inflight: dict[str, ImageRequest] = {}
        self.submitted = 0
        self.cache_hits = 0

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def enqueue(self, jobs: Iterable[ImageRequest]) -> list[ImageRequest]:
        """Append jobs not seen before, keeping their order; returns those added."""
        added = []
        with self._cond:
            for job in jobs:
                if job.key in self._known:
                    continue
                self._known.add(job.key)
                self._queue.append(job)
                added.append(job)
            self._cond.notify_all()
        return added

    def running_case(self) -> Case | None:
        """The case of the oldest of our prompts still on the server: the one it is running
        (ComfyUI runs its queue in order). The VRAM sampler attributes samples by it."""
        inflight = list(self._inflight.values())
        return inflight[0].case if inflight else None

    def knows(self, key: tuple[str, str]) -> bool:
        with self._cond:
            return key in self._known

    def stop(self, *, cancel: bool) -> list[ImageRequest]:
        """Stop feeding; with ``cancel``, remove our prompts from the server. Returns unsent jobs."""
        self._stopping.set()
        with self._cond:
            unsent = [job for job in self._queue if isinstance(job, ImageRequest)]
            self._queue.clear()
            self._queue.append(_STOP)
            self._cond.notify_all()
        if cancel and (self._inflight or unsent):
            try:
                self.client.cancel_all()
            except ZImageError as exc:  # the server may be gone already: nothing left to cancel
                log.warning("zimage: could not cancel pending prompts on %s: %s", self.host, exc)
        self._slots.release(self.depth)  # free a feeder blocked on a slot so it sees the stop
        self._thread.join(timeout=10)
        self._waiters.shutdown(wait=not cancel, cancel_futures=cancel)
        return unsent

    # -- the feeder thread --------------------------------------------------------------
    def _next(self) -> ImageRequest | None:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            item = self._queue.popleft()
        return item if isinstance(item, ImageRequest) else None

    def _feed(self) -> None:
        while True:
            job = self._next()
            if job is None or self._stopping.is_set():
                return
            try:
                hit = self._lookup_cache(job)
            except Exception as exc:  # a cache that cannot be read must not stop the run
                log.warning("zimage: cache lookup failed for %s: %s", job.case.id, exc)
                hit = None
            if hit is not None:
                self.cache_hits += 1
                self._deliver(job, hit)
                continue
            self._slots.acquire()
            if self._stopping.is_set():
                return
            try:
                prompt_id = self.client.submit(
                    job.graph, prompt_id=job.prompt_id, output_node=job.output_node
                )
            except ZImageError as exc:
                self._slots.release()
                self._fail(job, exc)
                continue
            except Exception as exc:  # never leave a test waiting on a dead feeder
                self._slots.release()
                self._fail(
                    job, ComfyUIError(f"submitting {job.case.id} failed: {exc!r}", host=self.host)
                )
                continue
            self.submitted += 1
            self._inflight[prompt_id] = job
            try:
                self._waiters.submit(self._complete, job, prompt_id)
            except RuntimeError:  # executor shut down by stop()
                return

    def _complete(self, job: ImageRequest, prompt_id: str) -> None:
        try:
            try:
                finished = self.client.wait(prompt_id, timeout=self.timeout)
            finally:  # the server is free for the next prompt while the image is fetched
                self._slots.release()
                self._inflight.pop(prompt_id, None)
            generated = self.client.fetch_result(finished, output_node=job.output_node)
        except ZImageError as exc:
            self._fail(job, exc)
            return
        except Exception as exc:
            self._fail(job, ComfyUIError(f"{job.case.id}: {exc!r}", host=self.host))
            return
        self._deliver(job, generated)
