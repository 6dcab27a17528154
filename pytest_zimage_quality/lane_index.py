"""Which lane made the cached image of a graph: so a run on another lane says it regenerated it.

The image cache's key includes the lane (GPU, ComfyUI version and commit, torch, CUDA), so a
reference image cached on another lane is never found, never paired with a new candidate:
it is generated again. This index lets the run *say* so. Beside the cache it keeps, per
lane-free key (the cache key without the server part), the lane that last stored an image
for it: ``<cache root>/lanes/<k[:2]>/<k>.json``. A miss whose lane-free key names another
lane is a regeneration across lanes.

Written atomically like the cache's own files; an unreadable entry is treated as absent.
"""

from __future__ import annotations

import json
from pathlib import Path

from .cache import write_atomic
from .provenance import Lane

__all__ = ["LaneIndex"]


class LaneIndex:
    """``record`` after a generation, ``other_lane`` before one."""

    def __init__(self, cache_root: Path) -> None:
        self.root = Path(cache_root) / "lanes"

    def _path(self, lane_free_key: str) -> Path:
        return self.root / lane_free_key[:2] / f"{lane_free_key}.json"

    def record(self, lane_free_key: str, lane: Lane) -> None:
        body = json.dumps(lane.to_dict(), sort_keys=True).encode("utf-8")
        write_atomic(self._path(lane_free_key), body)

    def other_lane(self, lane_free_key: str, lane: Lane) -> Lane | None:
        """The lane an image of this graph was cached on, when it is not ``lane``."""
        try:
            data = json.loads(self._path(lane_free_key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        stored = Lane.from_dict(data)
        return None if stored.id == lane.id else stored
