"""Queue-ahead submission: keep each ComfyUI server of the pool busy with this run's prompts.

One ``HostRunner`` per server. Up to ``depth`` of its prompts are on the server at once
(running or queued), so the server starts the next image the moment one finishes while the
client fetches, verifies and hands the finished one to scoring. A slot is freed when the
server reports completion, not when the image has been fetched; the runner then asks its
:class:`WorkSource` (the pool, :mod:`.dispatch`) for the server's next case, so the order and
the split of the work belong to the pool, not to the order pytest runs tests in.

A server that cannot be reached any more is reported dead: its cases go to the others and
its late results are discarded. No pytest, no torch: the runner is driven through plain
callbacks and unit-tested with a fake client.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .comfyui import FinishedPrompt, GeneratedImage
from .errors import ComfyUIError, ComfyUIUnreachableError, ZImageError

if TYPE_CHECKING:
    from .suite import Case, Suite

__all__ = ["HostRunner", "ImageRequest", "SubmissionClient", "WorkSource"]

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
    #: the model files the graph loads: consecutive images of one group share a model load
    group: Hashable = field(default=None, compare=False)
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


class WorkSource(Protocol):
    """Where a runner gets its server's cases and reports what became of them."""

    def next_for(self, host: str) -> ImageRequest | None:
        """The host's next case; blocks while there is none yet. None: stop feeding."""

    def completed(self, host: str, job: ImageRequest, seconds: float, loaded: bool) -> bool:
        """``job`` finished on ``host`` in ``seconds`` of server time (``loaded``: a model load
        was part of them). False: discard the result (the host was declared dead)."""

    def abandon(self, host: str, job: ImageRequest) -> None:
        """``job`` failed on ``host`` for a reason of its own; it is not handed out again."""

    def server_died(self, host: str, error: ZImageError) -> None:
        """``host`` cannot be reached: its unfinished cases go elsewhere."""


class HostRunner:
    """Feeds one server the cases its work source hands it, ``depth`` at a time."""

    def __init__(
        self,
        client: SubmissionClient,
        *,
        depth: int,
        timeout: float,
        source: WorkSource,
        deliver: Callable[[ImageRequest, GeneratedImage], None],
        fail: Callable[[ImageRequest, ZImageError], None],
        loaded: Hashable = None,
    ) -> None:
        """``loaded``: the model group the server holds already (None: unknown)."""
        self.client = client
        self.host = client.base_url
        self.depth = depth
        self.timeout = timeout
        self._source = source
        self._deliver = deliver
        self._fail = fail
        self._slots = threading.Semaphore(depth)
        self._waiters = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="zimage-wait")
        self._thread = threading.Thread(
            target=self._feed, name=f"zimage-feed[{self.host}]", daemon=True
        )
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[str, ImageRequest] = {}
        self._loaded: dict[str, bool] = {}  # prompt id -> its models differ from the previous
        # the group whose models the server holds (a fresh object: nothing known yet)
        self._last_group: Hashable = object() if loaded is None else loaded
        self._last_finish = 0.0
        self.dead = False
        self.submitted = 0

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, *, cancel: bool) -> list[ImageRequest]:
        """Stop feeding; with ``cancel``, remove our prompts from the server. Returns the
        prompts that were on the server (their tests learn the run stopped)."""
        self._stopping.set()
        with self._lock:
            inflight = list(self._inflight.values())
        if cancel and inflight and not self.dead:
            try:
                self.client.cancel_all()
            except ZImageError as exc:  # the server may be gone already: nothing left to cancel
                log.warning("zimage: could not cancel pending prompts on %s: %s", self.host, exc)
        self._slots.release(self.depth)  # free a feeder blocked on a slot so it sees the stop
        self._thread.join(timeout=10)
        self._waiters.shutdown(wait=not cancel, cancel_futures=cancel)
        return inflight if cancel else []

    def running_case(self) -> Case | None:
        """The case of the oldest of our prompts still on the server: the one it is running
        (ComfyUI runs its queue in order). The VRAM sampler attributes samples by it."""
        with self._lock:
            inflight = list(self._inflight.values())
        return inflight[0].case if inflight else None

    # -- the feeder thread --------------------------------------------------------------
    def _feed(self) -> None:
        while True:
            self._slots.acquire()
            if self._stopping.is_set() or self.dead:
                return
            job = self._source.next_for(self.host)
            if job is None or self._stopping.is_set():
                return
            try:
                prompt_id = self.client.submit(
                    job.graph, prompt_id=job.prompt_id, output_node=job.output_node
                )
            except ComfyUIUnreachableError as exc:
                self._slots.release()
                self._died(exc)
                return
            except Exception as exc:  # never leave a test waiting on a dead feeder
                self._slots.release()
                self._failed(job, exc)
                continue
            with self._lock:
                self.submitted += 1
                self._inflight[prompt_id] = job
                self._loaded[prompt_id] = job.group != self._last_group
                self._last_group = job.group
                submitted_at = time.monotonic()
            try:
                self._waiters.submit(self._complete, job, prompt_id, submitted_at)
            except RuntimeError:  # executor shut down by stop()
                return

    def _complete(self, job: ImageRequest, prompt_id: str, submitted_at: float) -> None:
        try:
            try:
                finished = self.client.wait(prompt_id, timeout=self.timeout)
            finally:  # the server is free for the next prompt while the image is fetched
                with self._lock:
                    self._inflight.pop(prompt_id, None)
                    loaded = self._loaded.pop(prompt_id, True)
                    now = time.monotonic()
                    started = max(submitted_at, self._last_finish)
                    self._last_finish = now
                self._slots.release()
            seconds = finished.server_seconds
            if seconds is None:  # no execution times from the server: its turn on our clock
                seconds = now - started
        except ComfyUIUnreachableError as exc:
            self._died(exc)
            return
        except Exception as exc:
            self._failed(job, exc)
            return
        if not self._source.completed(self.host, job, seconds, loaded):
            return  # this server was declared dead: the case runs elsewhere
        try:
            generated = self.client.fetch_result(finished, output_node=job.output_node)
        except Exception as exc:  # finished but not fetched: the case fails, never re-run
            error = exc if isinstance(exc, ZImageError) else None
            self._fail(job, error or ComfyUIError(f"{job.case.id}: {exc!r}", host=self.host))
            if isinstance(exc, ComfyUIUnreachableError):
                self._died(exc)
            return
        self._deliver(job, generated)

    def _failed(self, job: ImageRequest, exc: Exception) -> None:
        if self.dead:
            return  # its case was moved when the server was declared dead
        error = exc if isinstance(exc, ZImageError) else None
        if error is None:
            error = ComfyUIError(f"{job.case.id}: {exc!r}", host=self.host)
        self._source.abandon(self.host, job)
        self._fail(job, error)

    def _died(self, error: ZImageError) -> None:
        with self._lock:
            if self.dead:
                return
            self.dead = True
        log.warning("zimage: %s is unreachable; its cases move to the other servers", self.host)
        self._source.server_died(self.host, error)
