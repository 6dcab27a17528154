"""What the pool believes of one server: its queue, what it runs, and its learnt times.

Each completion teaches the pool the server's time per image and per model load; the pool's
decisions (re-plans, steals, where a moved case goes) all ask a server's state how long it
needs for what it holds, and for what it would hold with more. No locking here: the pool
calls it with its lock held. No pytest, no network.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from .planner import Server, Task, queue_time

__all__ = ["ServerState", "ServerStats"]


@dataclass
class ServerStats:
    """What one server did and what the pool believes of it."""

    name: str
    hardware_class: str
    image_seconds: float
    load_seconds: float
    done: int = 0
    loads: int = 0
    busy_seconds: float = 0.0
    stolen_in: int = 0
    stolen_out: int = 0
    alive: bool = True


@dataclass
class ServerState:
    """One server of the pool: its queue, what it runs now, and what was learnt of it."""

    server: Server
    stats: ServerStats
    queue: deque[Task] = field(default_factory=deque)
    inflight: dict[Hashable, Task] = field(default_factory=dict)
    last_group: Hashable = None  # the group of the last case handed out: what will be loaded
    planned_image_seconds: float = 0.0  # the image estimate the current queue was planned with
    #: (seconds, image-time factor of its group) of the last completions that paid a load
    load_samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=5))
    images_seen: int = 0  # completions without a load: the image time is learnt from these

    def estimate(self, *, now: bool = False) -> Server:
        """The server with its learnt times; ``now``: also what it holds and has loaded."""
        s = self.server
        scale = self.stats.image_seconds / s.image_seconds
        by_group = {g: t * scale for g, t in s.image_seconds_by_group.items()}
        est = Server(
            s.name, self.stats.image_seconds, self.stats.load_seconds, s.hardware_class, by_group
        )
        if not now:
            return est
        busy = sum(est.image_time(t.group) for t in self.inflight.values())
        return dataclasses.replace(est, loaded=self.last_group, busy_seconds=busy)

    def remaining(self, queue: Iterable[Task] | None = None) -> float:
        """Estimated seconds to finish the in-flight cases and ``queue`` (default: its own)."""
        est = self.estimate()
        running = sum(est.image_time(t.group) for t in self.inflight.values())
        pending = self.queue if queue is None else queue
        return running + queue_time(est, pending, self.last_group)

    def finish_with(self, tasks: Sequence[Task]) -> float:
        """Estimated seconds until done if ``tasks`` join the queue, each in its group's
        segment (the pool inserts them so), so a new group costs one load."""
        est = self.estimate()
        present = {t.group for t in self.queue} | {self.group_at_end()}
        new_groups = {t.group for t in tasks} - present
        images = sum(est.image_time(t.group) for t in tasks)
        return self.remaining() + images + len(new_groups) * est.load_seconds

    def group_at_end(self) -> Hashable:
        """The group loaded once the queue is done."""
        return self.queue[-1].group if self.queue else self.last_group

    def learn(self, task: Task, seconds: float, *, loaded: bool, alpha: float) -> None:
        """Fold one completion into the learnt times. The first image time replaces the
        guess outright (it may be far off) and later ones are averaged with weight ``alpha``;
        a load is what a loaded completion took beyond its image, judged with the newest
        image time (the first load is seen before any image time is known)."""
        stats = self.stats
        base = self.server.image_time(task.group) / self.server.image_seconds
        if loaded:
            self.load_samples.append((seconds, base))
        elif seconds > 0:
            weight = 1.0 if self.images_seen == 0 else alpha
            self.images_seen += 1
            stats.image_seconds += weight * (seconds / base - stats.image_seconds)
        if self.load_samples and (loaded or seconds > 0):
            loads = [max(0.0, t - stats.image_seconds * b) for t, b in self.load_samples]
            stats.load_seconds = sum(loads) / len(loads)
