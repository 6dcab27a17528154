"""The scoring worker's side of pairing: the reference images candidates are compared with,
and the candidates waiting for theirs.

A scored reference's pixels are kept for its candidates, the most recent ones first, within
a count and a byte budget; an older one is read again from its stored file when a late
candidate needs it. A candidate scored before its reference is parked without its pixels
(they are decoded again when the reference arrives), with the time it started waiting: a
reference that is neither scored nor reported failed within ``wait`` seconds fails its
candidates (:meth:`ReferenceImages.expired`) instead of leaving their tests waiting.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ZImageError
from .metric_calls import Item

__all__ = ["ReferenceImages", "reference_wait"]

Key = tuple[str, str]


def reference_wait(timeout: float) -> float:
    """How long a scored candidate waits for its reference's scores: twice
    ``--zimage-timeout`` (the reference's own generation is bounded by it), at least 10 s."""
    return max(10.0, 2.0 * timeout)


class ReferenceImages:
    """Reference pixels by case key, the references that failed, and the parked candidates."""

    def __init__(
        self,
        *,
        reread: Callable[[Key, Path], Any],
        memory_budget: int | None,
        wait: float | None,
        max_images: int = 64,
    ) -> None:
        self._reread = reread
        self.memory_budget = memory_budget
        #: seconds a parked candidate waits for its reference (None: no deadline)
        self.wait = wait
        self.max_images = max_images
        self._tensors: collections.OrderedDict[Key, Any] = collections.OrderedDict()
        self._bytes = 0
        self._paths: dict[Key, Path] = {}
        self.failed: dict[Key, ZImageError] = {}
        self._parked: dict[Key, list[Item]] = collections.defaultdict(list)
        self._since: dict[int, float] = {}

    @property
    def any_parked(self) -> bool:
        return bool(self._since)

    def held(self) -> dict[str, int]:
        """What is held now (tests check that it stays bounded)."""
        return {
            "reference_images": len(self._tensors),
            "reference_bytes": self._bytes,
            "parked": sum(len(items) for items in self._parked.values()),
            "parked_decoded": sum(
                item.tensor is not None for items in self._parked.values() for item in items
            ),
        }

    # -- scored references ----------------------------------------------------------------
    def remember(self, item: Item) -> None:
        self._paths[item.job.key] = item.image_path
        self._keep(item.job.key, item.tensor)

    def tensor(self, key: Key) -> Any:
        """The reference's pixels; None if it is not scored yet. Raises OSError or
        ZImageError if its stored file cannot be read again."""
        if key in self._tensors:
            self._tensors.move_to_end(key)
            return self._tensors[key]
        path = self._paths.get(key)
        if path is None:
            return None
        tensor = self._reread(key, path)
        self._keep(key, tensor)
        return tensor

    def _keep(self, key: Key, tensor: Any) -> None:
        self._bytes -= _nbytes(self._tensors.pop(key, None))
        self._tensors[key] = tensor
        self._bytes += _nbytes(tensor)
        limit = self.memory_budget
        while len(self._tensors) > 1 and (
            len(self._tensors) > self.max_images or (limit is not None and self._bytes > limit)
        ):
            _, dropped = self._tensors.popitem(last=False)
            self._bytes -= _nbytes(dropped)

    # -- parked candidates ----------------------------------------------------------------
    def park(self, key: Key, item: Item, *, keep_pixels: bool = False) -> None:
        """Let ``item`` wait for its reference (its pixels dropped unless ``keep_pixels``)."""
        if not keep_pixels:
            item.tensor = None
        self._parked[key].append(item)
        self._since[id(item)] = time.monotonic()

    def unpark(self, key: Key) -> list[Item]:
        items = self._parked.pop(key, [])
        for item in items:
            self._since.pop(id(item), None)
        return items

    def expired(self) -> list[Item]:
        """Take out the candidates that have waited longer than ``wait``."""
        if self.wait is None or not self._since:
            return []
        now = time.monotonic()
        out: list[Item] = []
        for key in list(self._parked):
            waiting = self._parked[key]
            late = [item for item in waiting if now - self._since[id(item)] > self.wait]
            for item in late:
                waiting.remove(item)
                self._since.pop(id(item), None)
            out.extend(late)
            if not waiting:
                del self._parked[key]
        return out


def _nbytes(tensor: Any) -> int:
    if tensor is None:
        return 0
    try:
        return int(tensor.numel()) * int(tensor.element_size())
    except (AttributeError, TypeError):  # a scorer double's image
        return 0
