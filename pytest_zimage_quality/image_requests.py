"""From a case to the image request the pool schedules: its graph, model group and cache keys.

An image is only reusable on the hardware that made it, so its cache key names the lane of
the hardware class that makes it (GPU, ComfyUI version and commit, torch, CUDA: see
:class:`~.provenance.Lane`) and the identity of the model files it loads, never a host. A
miss whose graph was cached on another lane is noted (:mod:`.lane_index`): the run says it
made the image again. A pool may hold several classes: a case is looked up in the class its
pair (the same prompt and seed) already uses, else in each class in order, and the first hit
binds the pair to that class, so a reference and its candidates never mix hardware. Cache
hits never become pool tasks. A case the determinism recheck (``--zimage-refresh``,
``--zimage-recheck N``) asks for again is made again; what the cache held is kept to compare.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .cache import ImageCache, cache_key
from .comfyui import GeneratedImage
from .dispatch import pair_of
from .lane_index import LaneIndex
from .scheduler import ImageRequest
from .workflow import graph_hash, model_files

if TYPE_CHECKING:
    from .hardware import HardwareClass
    from .provenance import Lane
    from .servers import PoolServer
    from .suite import Case, Suite

__all__ = ["SERVER_SUBFOLDER", "RequestPlanner"]

log = logging.getLogger(__name__)

#: Every output file of this plugin on a server lives under this subfolder of output/.
SERVER_SUBFOLDER = "zimage-quality"


class RequestPlanner:
    """Builds each case's request and finds it in the image cache."""

    def __init__(
        self,
        suites: Sequence[Suite],
        servers: Sequence[PoolServer],
        classes: Sequence[HardwareClass],
        *,
        cache: ImageCache | None,
        revision: Callable[[Suite], str],
        regenerate: Callable[[ImageRequest], bool] = lambda request: False,
    ) -> None:
        self._suites = {suite.name: suite for suite in suites}
        self._classes = list(classes)
        self._class_of_url = {server.url: server.hardware_class for server in servers}
        self._models_of_class: dict[str, Mapping[str, object]] = {}
        self._lanes: dict[str, Lane] = {}
        for server in reversed(servers):  # the first server of a class speaks for it
            self._models_of_class[server.hardware_class] = server.model_ids
            self._lanes[server.hardware_class] = server.lane
        self._cache = cache
        self._lane_index = LaneIndex(cache.root) if cache is not None else None
        self._revision = revision
        self._regenerate = regenerate
        #: case key -> what the cache held for a case made again (the determinism recheck)
        self.recheck_cached: dict[tuple[str, str], Any] = {}
        self._keys: dict[tuple[str, str], dict[str, str]] = {}  # case key -> class -> cache key
        self._lane_free: dict[tuple[str, str], str] = {}  # case key -> key without the lane
        #: notes on cached images from another lane that this run made again
        self.regenerated_other_lane: list[str] = []
        self.on_note: Callable[[str], None] = lambda note: None
        self._pair_class: dict[tuple[str, str, int], str] = {}  # pairs bound by a cache hit
        #: where the pool placed a pair (set by the engine once the pool exists)
        self.placed: Callable[[ImageRequest], str | None] = lambda request: None

    def request(self, case: Case) -> ImageRequest:
        suite = self._suites[case.suite]
        base = suite.graph_for(case)
        ghash = graph_hash(base, ignore=[suite.prefix_input])
        prefix = f"{SERVER_SUBFOLDER}/{_safe(suite.name)}/{case.id}-{ghash[:10]}"
        graph = suite.graph_for(case, prefix=prefix)
        files = sorted(f"{folder}/{name}" for folder, name in model_files(graph))
        keys = {}
        for klass in self._classes:
            ids = self._models_of_class.get(klass.id, {})
            keys[klass.id] = cache_key(
                graph_hash=ghash,
                models={f: ids.get(f) for f in files},
                server=self._lanes[klass.id].fields,
                revision=self._revision(suite),
            )
        self._keys[case.key] = keys
        if self._classes:
            ids = self._models_of_class.get(self._classes[0].id, {})
            self._lane_free[case.key] = cache_key(
                graph_hash=ghash,
                models={f: ids.get(f) for f in files},
                server={},
                revision=self._revision(suite),
            )
        first = next(iter(keys.values()), "")
        return ImageRequest(
            case=case,
            suite=suite,
            graph=graph,
            graph_hash=ghash,
            cache_key=first,
            group=tuple(files),
        )

    def bind(self, request: ImageRequest, hardware_class: str) -> None:
        """Keep ``request``'s pair in ``hardware_class``: one of its images was made there
        outside the pool (the determinism check's case)."""
        self._pair_class.setdefault(pair_of(request), hardware_class)

    def pinned_class(self, request: ImageRequest) -> str | None:
        """The class a cache hit bound the request's pair to, if any."""
        return self._pair_class.get(pair_of(request))

    def split_cached(
        self, requests: Sequence[ImageRequest]
    ) -> tuple[list[tuple[ImageRequest, GeneratedImage]], list[ImageRequest]]:
        """(request, cached image) of each hit, and the requests still to generate."""
        hits, misses = [], []
        for request in requests:
            hit = self._lookup(request)
            if hit is None:
                misses.append(request)
            else:
                hits.append((request, hit))
        return hits, misses

    def cache_key_for(self, request: ImageRequest, host: str) -> str | None:
        """The key an image of ``request`` made on ``host`` is stored under."""
        klass = self._class_of_url.get(host)
        return self._keys.get(request.key, {}).get(klass) if klass else None

    def stored(self, request: ImageRequest, host: str) -> None:
        """An image of ``request`` made on ``host`` was cached: remember its lane."""
        klass = self._class_of_url.get(host)
        if self._lane_index is not None and klass and request.key in self._lane_free:
            self._lane_index.record(self._lane_free[request.key], self._lanes[klass])

    def _other_lane_note(self, request: ImageRequest, klass: str | None) -> None:
        """Say that a cached image from another lane is being made again on this one."""
        free_key = self._lane_free.get(request.key)
        if self._lane_index is None or free_key is None:
            return
        lane = self._lanes[klass or self._classes[0].id]
        other = self._lane_index.other_lane(free_key, lane)
        if other is not None and not any(other.id == known.id for known in self._lanes.values()):
            note = (
                f"{request.case.id}: the cached image was made on another lane ({other.label}); "
                f"regenerated on this run's lane ({lane.label})"
            )
            self.regenerated_other_lane.append(note)
            self.on_note(note)

    def _lookup(self, request: ImageRequest) -> GeneratedImage | None:
        if self._cache is None:
            return None
        pair = pair_of(request)
        bound = self._pair_class.get(pair) or self.placed(request)
        keys = self._keys[request.key]
        for klass in [bound] if bound else list(keys):
            try:
                hit = self._cache.get(keys[klass]) if klass in keys else None
            except OSError as exc:  # a cache that cannot be read must not stop the run
                log.warning("zimage: cache lookup failed for %s: %s", request.case.id, exc)
                return None
            if hit is not None and self._regenerate(request):
                # the recheck: make it again, keep what the cache held to compare
                self.recheck_cached[request.key] = hit
                return None
            if hit is not None:
                self._pair_class[pair] = klass
                meta = hit.meta
                return GeneratedImage(
                    png=hit.png,
                    sha256=hit.sha256,
                    prompt_id=str(meta.get("prompt_id", "")),
                    host=str(meta.get("host", "")),
                    wall_seconds=_float(meta.get("wall_seconds")),
                    server_seconds=_float(meta.get("server_seconds")),
                    cached="plugin",
                )
        self._other_lane_note(request, bound)
        return None


def _safe(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text, flags=re.UNICODE).strip("._") or "suite"


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
