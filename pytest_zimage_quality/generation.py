"""The generating half of a run: image requests over the pool of servers, one runner each.

Given connected servers and their hardware classes, :class:`Generation` serves what it can
from the image cache (cache hits never become pool tasks), runs the determinism check where
a class has several servers, plans the rest over the pool (:class:`~.pool.Pool`, with pairs
pinned to one server where the check or ``--zimage-pin-pairs`` asks), and starts one
:class:`~.scheduler.HostRunner` per server. Late cases join the running pool. What each server
did is read back for the summary and as the next run's time estimates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .comfyui import GeneratedImage
from .dispatch import Dispatcher, task_of
from .errors import ZImageError
from .image_requests import RequestPlanner
from .planner import Server
from .pool import Pool, ServerStats
from .scheduler import HostRunner, ImageRequest
from .servers import PoolServer, check_determinism

if TYPE_CHECKING:
    from .cache import ImageCache
    from .hardware import HardwareClass
    from .suite import Suite

__all__ = [
    "DEFAULT_ESTIMATE",
    "ESTIMATES_KEY",
    "Generation",
    "GenerationSettings",
    "read_estimates",
    "write_estimates",
]

log = logging.getLogger(__name__)

#: (image seconds, load seconds) a server is assumed to take before it has made an image:
#: the pool learns the real ones from the first completions and re-plans.
DEFAULT_ESTIMATE = (1.0, 3.0)
#: Where the learnt (image, load) seconds per hardware class live in pytest's cache
#: (``.pytest_cache``), so the next run plans with them from its first case.
ESTIMATES_KEY = "zimage/pool-estimates"


class EstimatesCache(Protocol):
    """pytest's ``config.cache``, as far as the estimates go."""

    def get(self, key: str, default: Any) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


def read_estimates(cache: EstimatesCache | None) -> dict[str, tuple[float, float]]:
    """The last runs' (image seconds, load seconds) per hardware class; entries that are not
    two finite numbers (image > 0, load >= 0) are ignored. ``None``: no cache (pytest's
    cacheprovider off), no estimates."""
    stored = {} if cache is None else cache.get(ESTIMATES_KEY, {})
    estimates: dict[str, tuple[float, float]] = {}
    if not isinstance(stored, dict):
        return estimates
    for klass, value in stored.items():
        if not (isinstance(value, list | tuple) and len(value) == 2):
            continue
        try:
            image, load = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            continue
        if math.isfinite(image) and math.isfinite(load) and image > 0 and load >= 0:
            estimates[str(klass)] = (image, load)
    return estimates


def write_estimates(
    cache: EstimatesCache | None, learnt: Mapping[str, tuple[float, float]]
) -> None:
    """Keep this run's learnt times beside those of classes this run did not use."""
    if cache is None or not learnt:
        return
    merged = {k: list(v) for k, v in read_estimates(cache).items()}
    merged.update({k: [round(v[0], 4), round(v[1], 4)] for k, v in learnt.items()})
    cache.set(ESTIMATES_KEY, merged)


class GenerationSettings(Protocol):
    @property
    def refresh(self) -> bool: ...
    @property
    def timeout(self) -> float: ...
    @property
    def queue_depth(self) -> int: ...
    @property
    def pin_pairs(self) -> str: ...
    def cache_revision(self, suite: Suite) -> str: ...


class Generation:
    """Requests in, images out through ``deliver``; failures through ``fail``."""

    def __init__(
        self,
        settings: GenerationSettings,
        suites: Sequence[Suite],
        servers: Sequence[PoolServer],
        classes: Sequence[HardwareClass],
        *,
        cache: ImageCache | None,
        estimates: Mapping[str, tuple[float, float]],
        deliver: Callable[[ImageRequest, GeneratedImage], None],
        fail: Callable[[ImageRequest, ZImageError], None],
    ) -> None:
        self.settings = settings
        self.servers = list(servers)
        self.classes = list(classes)
        self.estimates = dict(estimates)
        self._deliver_image = deliver
        self._fail_request = fail
        self._started: float | None = None  # monotonic time of start()
        self._last_result: float | None = None  # ... and of the last image or failure
        self.recheck_ids: set[str] = set()
        self.requests = RequestPlanner(
            suites,
            servers,
            classes,
            cache=cache,
            revision=settings.cache_revision,
            regenerate=lambda r: settings.refresh or r.case.id in self.recheck_ids,
        )
        self.determinism: dict[str, Any] | None = None
        self.dispatch: Dispatcher | None = None
        #: server url -> the model group the determinism check left loaded on it
        self._loaded: dict[str, Hashable] = {}
        self.runners: list[HostRunner] = []

    def start(self, requests: Sequence[ImageRequest]) -> None:
        """Plan ``requests`` (in plan order) over the pool and start every runner."""
        self._started = time.monotonic()
        hits, misses = self.requests.split_cached(requests)
        misses = self._check_determinism(misses)
        free = [r for r in misses if self.requests.pinned_class(r) is None]
        pool = Pool(
            [self._pool_server(server) for server in self.servers],
            [task_of(r) for r in free],
            pin_pairs=self._pinned_classes(),
        )
        self.dispatch = Dispatcher(pool, free, fail=self._fail)
        self.requests.placed = self.dispatch.pair_class
        self._add_bound([r for r in misses if self.requests.pinned_class(r) is not None])
        self.runners = [
            HostRunner(
                server.client,
                depth=self.settings.queue_depth,
                timeout=self.settings.timeout,
                source=self.dispatch,
                deliver=self._deliver,
                fail=self._fail,
                loaded=self._loaded.get(server.url),
            )
            for server in self.servers
        ]
        for runner in self.runners:
            runner.start()
        for request, hit in hits:
            self._deliver(request, hit)

    def add(self, requests: Sequence[ImageRequest]) -> None:
        """Late cases: cache hits delivered, the rest added to the running pool."""
        assert self.dispatch is not None, "start() first"
        hits, misses = self.requests.split_cached(requests)
        self.dispatch.add([r for r in misses if self.requests.pinned_class(r) is None])
        self._add_bound([r for r in misses if self.requests.pinned_class(r) is not None])
        for request, hit in hits:
            self._deliver(request, hit)

    def stop(self, *, cancel: bool) -> list[ImageRequest]:
        """Stop every runner; with ``cancel`` remove our prompts from the servers. Returns the
        requests that were on a server (their tests learn the run stopped)."""
        if self.dispatch is not None:
            self.dispatch.stop()
        stopped = []
        for runner in self.runners:
            try:
                stopped += runner.stop(cancel=cancel)
            except Exception as exc:  # one server's trouble must not keep the others running
                _log_stop_failure(runner.host, exc)
        return stopped

    # -- what reports read --------------------------------------------------------------
    def pool_stats(self) -> list[ServerStats]:
        """What each server did (done, loads, busy seconds, stolen in/out, alive)."""
        return [] if self.dispatch is None else self.dispatch.stats()

    def class_estimates(self) -> dict[str, tuple[float, float]]:
        """(image seconds, load seconds) per hardware class as learnt in this run: the next
        run's ``estimates``."""
        by_class: dict[str, list[ServerStats]] = {}
        for stats in self.pool_stats():
            if stats.done:
                by_class.setdefault(stats.hardware_class, []).append(stats)
        return {
            klass: (
                sum(s.image_seconds for s in members) / len(members),
                sum(s.load_seconds for s in members) / len(members),
            )
            for klass, members in by_class.items()
        }

    @property
    def wall_seconds(self) -> float | None:
        """From start() to the last image or failure: the pool's share of the run's wall."""
        if self._started is None or self._last_result is None:
            return None
        return max(0.0, self._last_result - self._started)

    def report(self) -> dict[str, Any]:
        """summary.json's ``hardware_classes``, ``determinism`` and ``pool`` blocks (plain
        JSON: xdist workers ship it to the controller inside their environment)."""
        wall = self.wall_seconds
        moved = [] if self.dispatch is None else list(self.dispatch.moved)
        pool = None if self.dispatch is None else self.dispatch.pool
        servers = []
        for stats in self.pool_stats():
            busy = stats.busy_seconds
            servers.append(
                {
                    "url": stats.name,
                    "hardware_class": stats.hardware_class,
                    "images": stats.done,
                    "loads": stats.loads,
                    "busy_seconds": round(busy, 3),
                    "idle_fraction": (round(max(0.0, 1.0 - busy / wall), 4) if wall else None),
                    "image_seconds": round(stats.image_seconds, 4),
                    "load_seconds": round(stats.load_seconds, 4),
                    "stolen_in": stats.stolen_in,
                    "stolen_out": stats.stolen_out,
                    "moved_out": sum(1 for _, host in moved if host == stats.name),
                    "alive": stats.alive,
                }
            )
        return {
            "hardware_classes": [c.to_dict() for c in self.classes],
            "determinism": self.determinism,
            "pool": {
                "wall_seconds": None if wall is None else round(wall, 3),
                "servers": servers,
                "moved": [{"case": case, "from": host} for case, host in moved],
                "reruns": [] if pool is None else [_case_id(key) for key in pool.reruns],
                "replans": 0 if pool is None else pool.replans,
                "estimates": {
                    klass: {"image_seconds": round(image, 4), "load_seconds": round(load, 4)}
                    for klass, (image, load) in self.class_estimates().items()
                },
            },
        }

    # -- internals ----------------------------------------------------------------------
    def _deliver(self, request: ImageRequest, image: GeneratedImage) -> None:
        self._last_result = time.monotonic()
        self._deliver_image(request, image)

    def _fail(self, request: ImageRequest, error: ZImageError) -> None:
        self._last_result = time.monotonic()
        self._fail_request(request, error)

    def _pool_server(self, server: PoolServer) -> Server:
        image, load = self.estimates.get(server.hardware_class, DEFAULT_ESTIMATE)
        loaded = self._loaded.get(server.url)
        return Server(server.url, image, load, server.hardware_class, loaded=loaded)

    def _pinned_classes(self) -> list[str]:
        """``always``: every class; ``never``: none; ``auto``: those the check did not clear."""
        mode = self.settings.pin_pairs
        if mode == "always":
            return [c.id for c in self.classes]
        if mode == "never" or self.determinism is None:
            return []
        return list(self.determinism["pinned_classes"])

    def _check_determinism(self, misses: list[ImageRequest]) -> list[ImageRequest]:
        """Where a class has several servers, one reference case on each; its first image
        is the case's own. Returns the cases still to generate."""
        references = [r for r in misses if r.case.is_reference]
        if self.settings.pin_pairs != "auto" or not references:
            return misses
        if not any(len(c.servers) > 1 for c in self.classes):
            return misses
        request = references[0]
        self.determinism, images = check_determinism(
            self.servers, self.classes, request, timeout=self.settings.timeout
        )
        if not images:
            return misses
        # what the check left loaded: the plan continues with it where that saves a load
        self._loaded = dict.fromkeys(images, request.group)
        url, image = next(iter(images.items()))
        # the case's image comes from that server: its candidates stay in that server's class
        self.requests.bind(request, next(s.hardware_class for s in self.servers if s.url == url))
        self._deliver(request, image)
        return [r for r in misses if r is not request]

    def _add_bound(self, requests: Sequence[ImageRequest]) -> None:
        """Cases whose pair already has images of one class (from the cache) stay in it."""
        assert self.dispatch is not None
        by_class: dict[str, list[ImageRequest]] = {}
        for request in requests:
            by_class.setdefault(str(self.requests.pinned_class(request)), []).append(request)
        for hardware_class, members in by_class.items():
            self.dispatch.add(members, hardware_class=hardware_class)


def _case_id(key: object) -> str:
    """A pool key ((suite, case id)) as the case id results.jsonl uses."""
    return str(key[1]) if isinstance(key, tuple) and len(key) == 2 else str(key)


def _log_stop_failure(host: str, exc: Exception) -> None:
    log.warning("zimage: stopping the runner of %s: %s", host, exc)
