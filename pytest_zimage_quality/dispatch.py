"""The pool seen by the runners: image requests in, each server's next one out.

:class:`~.pool.Pool` schedules plain tasks; this module ties them to the run's
:class:`~.scheduler.ImageRequest` objects. ``Dispatcher.next_for`` blocks a server's runner
while the pool has nothing for it and asks again whenever something changes (a case
finished, cases were added, a server died), because stealing and re-planning only reach
servers that ask. Cases of a dead server move to the others; when no server is left, they
fail with one clear error. Also here: the order a run's cases are planned in, and the
pool task of a request. No pytest, no network.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING

from .errors import ComfyUIUnreachableError, ZImageError
from .planner import Task
from .pool import Pool, ServerStats
from .scheduler import ImageRequest

if TYPE_CHECKING:
    from .suite import Suite

__all__ = ["Dispatcher", "pair_of", "plan_order", "task_of"]


def pair_of(request: ImageRequest) -> tuple[str, str, int]:
    """A reference and its candidates: (suite, prompt, seed). They stay in one hardware class."""
    case = request.case
    return (case.suite, case.prompt.key, case.seed)


def task_of(request: ImageRequest) -> Task:
    return Task(
        key=request.key,
        group=request.group,
        pair=pair_of(request),
        reference=request.case.is_reference,
    )


def plan_order(suites: Sequence[Suite]) -> Callable[[ImageRequest], tuple[int, ...]]:
    """Suite, then reference config first, then configs in suite order; prompts; seeds."""
    names = [suite.name for suite in suites]
    by_name = {suite.name: suite for suite in suites}

    def order(request: ImageRequest) -> tuple[int, ...]:
        case = request.case
        suite = by_name[case.suite]
        configs = [suite.reference, *[c.key for c in suite.candidate_configs]]
        prompts = [p.key for p in suite.prompts]
        seeds = list(suite.seeds)
        return (
            names.index(suite.name),
            configs.index(case.config.key),
            prompts.index(case.prompt.key),
            seeds.index(case.seed) if case.seed in seeds else len(seeds),
            case.seed,
        )

    return order


class Dispatcher:
    """The runners' :class:`~.scheduler.WorkSource` over one pool. ``fail`` is called for
    cases no live server is left to make."""

    def __init__(
        self,
        pool: Pool,
        requests: Iterable[ImageRequest],
        *,
        fail: Callable[[ImageRequest, ZImageError], None],
    ) -> None:
        self.pool = pool
        self._fail = fail
        self._cond = threading.Condition()
        self._requests: dict[Hashable, ImageRequest] = {r.key: r for r in requests}
        self._stopping = False
        self.moved: list[tuple[str, str]] = []  # (case id, dead server) of each moved case

    def add(self, requests: Sequence[ImageRequest], *, hardware_class: str | None = None) -> None:
        """Cases that arrive after the plan; ``hardware_class`` where their pair must stay."""
        with self._cond:
            fresh = [r for r in requests if r.key not in self._requests]
            for request in fresh:
                self._requests[request.key] = request
            try:
                self.pool.add([task_of(r) for r in fresh], hardware_class=hardware_class)
            except RuntimeError:  # no live server left
                for request in fresh:
                    self._fail(request, _no_server_left())
            self._cond.notify_all()

    def pair_class(self, request: ImageRequest) -> str | None:
        return self.pool.pair_class(pair_of(request))

    def stop(self) -> None:
        """Wake every waiting runner; from now on ``next_for`` answers None."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # -- the WorkSource protocol --------------------------------------------------------
    def next_for(self, host: str) -> ImageRequest | None:
        with self._cond:
            while not self._stopping and self.pool.is_alive(host):
                task = self.pool.next_for(host)
                if task is not None:
                    return self._requests[task.key]
                self._cond.wait()
            return None

    def completed(self, host: str, job: ImageRequest, seconds: float, loaded: bool) -> bool:
        with self._cond:
            kept = self.pool.completed(host, job.key, seconds=seconds, loaded=loaded)
            self._cond.notify_all()
            return kept

    def abandon(self, host: str, job: ImageRequest) -> None:
        with self._cond:
            self.pool.abandon(host, job.key)
            self._cond.notify_all()

    def server_died(self, host: str, error: ZImageError) -> None:
        with self._cond:
            moved = self.pool.server_died(host)
            alive = any(s.alive for s in self.pool.stats())
            for task in moved:
                request = self._requests[task.key]
                self.moved.append((request.case.id, host))
                # a fresh prompt id: the dead server may still know the old one
                fresh = dataclasses.replace(request, prompt_id=str(uuid.uuid4()))
                self._requests[task.key] = fresh
                if not alive:
                    self._fail(request, _no_server_left(error))
            self._cond.notify_all()

    # -- what reports read ----------------------------------------------------------------
    def stats(self) -> list[ServerStats]:
        return self.pool.stats()

    def server_of(self, request: ImageRequest) -> str | None:
        return self.pool.server_of(request.key)


def _no_server_left(cause: ZImageError | None = None) -> ZImageError:
    detail = f" (the last one: {cause.message})" if cause is not None else ""
    return ComfyUIUnreachableError(
        f"every server of the pool is unreachable; this case was not generated{detail}",
        hint="check that the ComfyUI servers are running and reachable, then run again",
    )
