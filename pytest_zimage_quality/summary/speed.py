"""A config's speed in the summary: median seconds per image and the speedup over the reference.

The median, through ``stats.speedup`` (the run's one definition), so the one image that paid
for loading a config's models does not dominate. Only images a server actually ran count.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from .. import stats
from ..records import CaseRecord
from .model import Speed

__all__ = ["TimingSource", "config_speed", "timed"]

TimingSource = Literal["server", "wall"]


def timed(records: Sequence[CaseRecord]) -> tuple[list[float], TimingSource | None]:
    """Generation seconds of the images the server actually ran, and where they came from.

    Server-cache replays take ~0 s and say nothing about speed, so they are left out; images
    from the plugin's own cache keep the timing recorded when they were generated.
    """
    ran = [r for r in records if r.cached != "server"]
    server = [r.server_seconds for r in ran if r.server_seconds is not None]
    if server:
        return server, "server"
    wall = [r.wall_seconds for r in ran if r.wall_seconds is not None]
    return (wall, "wall") if wall else ([], None)


def config_speed(
    records: Sequence[CaseRecord], reference: Sequence[CaseRecord], is_ref: bool
) -> Speed:
    """Median seconds per image, and ``stats.speedup`` (the run's one definition) vs the reference."""
    seconds, source = timed(records)
    if not seconds:
        return Speed(median_seconds=None, n=0, source=None, speedup=None)
    ref_seconds = seconds if is_ref else timed(reference)[0]
    try:
        speedup: float | None = stats.speedup(ref_seconds, seconds) if ref_seconds else None
    except ValueError:  # a zero time: no ratio to show
        speedup = None
    return Speed(
        median_seconds=statistics.median(seconds), n=len(seconds), source=source, speedup=speedup
    )
