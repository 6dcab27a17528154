"""The online pool: hands each server its next case, learns its speed, steals, survives deaths.

The static plan (:mod:`.planner`) is only as good as its estimates. The pool starts from it
and corrects it as results come in:

- every completion updates the server's image and load times (exponentially weighted);
- a server that runs out of work steals the unstarted tail of the server expected to finish
  last, as many cases as make both end together (a whole pair where pairs are pinned);
- a dead server's queued and in-flight cases move to the live servers of its class, each to
  the one that would finish it first. Only if no server of the class is left do its pairs move
  to another class, and then their finished cases are re-run so a pair never mixes hardware
  (``reruns`` says which).

Every case is handed out once, except after a death; a late completion from a dead server is
refused. Thread-safe: runners call it from their own threads. No pytest, no network.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from .planner import Server, Task, count_loads, lower_bound, pairs_of, plan, queue_time

__all__ = ["Pool", "ServerStats"]


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
class _State:
    server: Server
    stats: ServerStats
    queue: deque[Task] = field(default_factory=deque)
    inflight: dict[Hashable, Task] = field(default_factory=dict)
    last_group: Hashable = None  # the group of the last case handed out: what will be loaded
    planned_image_seconds: float = 0.0  # the image estimate the current queue was planned with
    #: (seconds, image-time factor of its group) of the last completions that paid a load
    load_samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=5))
    images_seen: int = 0  # completions without a load: the image time is learnt from these


class Pool:
    """Per-server queues from a plan, corrected online. ``alpha`` weighs the newest sample."""

    def __init__(
        self,
        servers: Sequence[Server],
        tasks: Sequence[Task] = (),
        *,
        pin_pairs: bool | Iterable[str] = False,
        alpha: float = 0.3,
        replan_drift: float = 0.1,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.replan_drift = replan_drift
        self._servers = list(servers)
        classes = {s.hardware_class for s in servers}
        self._pinned = set(classes) if pin_pairs is True else set(pin_pairs or ())
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {
            s.name: _State(
                server=s,
                stats=ServerStats(s.name, s.hardware_class, s.image_seconds, s.load_seconds),
                last_group=s.loaded,
            )
            for s in servers
        }
        self._where: dict[Hashable, str] = {}  # task key -> server it is queued on or runs on
        self._done: dict[Hashable, str] = {}  # task key -> server that finished it
        self._pair_server: dict[Hashable, str] = {}  # pinned pairs: where their first case ran
        self._pair_class: dict[Hashable, str] = {}
        self._tasks: dict[Hashable, Task] = {}
        self._rank: dict[Hashable, int] = {}  # plan order: reference group first, pairs in order
        #: how often the unstarted cases were re-planned with the learnt times
        self.replans = 0
        #: finished cases run again because their whole hardware class died
        self.reruns: list[Hashable] = []
        #: pinned pairs whose cases ended on two servers because one died mid-pair
        self.split_pairs: list[Hashable] = []
        self.plan = plan(servers, tasks, pin_pairs=self._pinned)
        self._bound = lower_bound(servers, tasks)
        for name, queue in self.plan.queues.items():
            self._states[name].planned_image_seconds = self._states[name].server.image_seconds
            for task in queue:
                self._accept(task)
                self._states[name].queue.append(task)
                self._where[task.key] = name
                self._pair_class.setdefault(_pair(task), self._states[name].server.hardware_class)

    # -- what the scheduler calls --------------------------------------------------------------
    def next_for(self, server: str) -> Task | None:
        """The next case for ``server`` (stealing when its queue is empty), or None."""
        with self._lock:
            state = self._states[server]
            if not state.stats.alive:
                return None
            if not state.queue:
                self._replan(state.server.hardware_class)
            if not state.queue:
                self._steal_for(state)
            if not state.queue:
                return None
            task = state.queue.popleft()
            state.inflight[task.key] = task
            state.last_group = task.group
            if state.server.hardware_class in self._pinned:
                self._pair_server.setdefault(_pair(task), server)
            return task

    def completed(self, server: str, key: Hashable, seconds: float, loaded: bool) -> bool:
        """Record that ``server`` finished ``key`` in ``seconds`` (``loaded``: a model load
        was part of them). False when the result must be discarded (a dead server's)."""
        with self._lock:
            state = self._states[server]
            task = state.inflight.pop(key, None)
            if task is None or not state.stats.alive or key in self._done:
                return False
            self._done[key] = server
            self._where.pop(key, None)
            stats = state.stats
            stats.done += 1
            stats.busy_seconds += max(0.0, seconds)
            base = state.server.image_time(task.group) / state.server.image_seconds
            if loaded:
                stats.loads += 1
                state.load_samples.append((seconds, base))
            elif seconds > 0:
                # the first image time replaces the guess outright; later ones are averaged
                weight = 1.0 if state.images_seen == 0 else self.alpha
                state.images_seen += 1
                stats.image_seconds += weight * (seconds / base - stats.image_seconds)
            if state.load_samples and (loaded or seconds > 0):
                # a load is what a loaded completion took beyond its image: judged with the
                # newest image time (the first load is seen before any image time is known)
                loads = [max(0.0, t - stats.image_seconds * b) for t, b in state.load_samples]
                stats.load_seconds = sum(loads) / len(loads)
            if not loaded and seconds > 0:
                drift = abs(stats.image_seconds / state.planned_image_seconds - 1)
                if drift > self.replan_drift:
                    self._replan(state.server.hardware_class)
            return True

    def abandon(self, server: str, key: Hashable) -> None:
        """``key`` failed on ``server`` for a reason of its own (not the server's): it is
        finished as far as the pool goes, and never handed out again."""
        with self._lock:
            self._states[server].inflight.pop(key, None)
            self._done.setdefault(key, server)
            self._where.pop(key, None)

    def server_died(self, server: str) -> list[Task]:
        """Move ``server``'s queued and in-flight cases to live servers; returns them."""
        with self._lock:
            state = self._states[server]
            if not state.stats.alive:
                return []
            state.stats.alive = False
            moved = [*state.inflight.values(), *state.queue]
            state.inflight.clear()
            state.queue.clear()
            hw = state.server.hardware_class
            live = [s for s in self._states.values() if s.stats.alive]
            if not live:
                for task in moved:
                    self._where.pop(task.key, None)
                return moved  # nothing left to run them: the caller fails them
            if not any(s.server.hardware_class == hw for s in live):
                moved = self._rehome_class(moved)
            for members in pairs_of(moved).values():
                if hw in self._pinned and any(k in self._done for k in self._pair_keys(members)):
                    self.split_pairs.append(_pair(members[0]))
                self._pair_server.pop(_pair(members[0]), None)
                self._place(members, live)
            return moved

    def add(self, tasks: Iterable[Task], *, hardware_class: str | None = None) -> None:
        """Cases that arrive after the plan (those already known are ignored): each pair to
        its class, or the class that would finish it first, then as ``_place`` says.
        ``hardware_class``: the class new pairs must use (where their other cases were made,
        e.g. served from the image cache), if it has a live server."""
        with self._lock:
            fresh = list({t.key: t for t in tasks if t.key not in self._tasks}.values())
            for members in pairs_of(fresh).values():
                live = [s for s in self._states.values() if s.stats.alive]
                if not live:
                    raise RuntimeError("no live server left in the pool")
                if any(s.server.hardware_class == hardware_class for s in live):
                    self._pair_class.setdefault(_pair(members[0]), str(hardware_class))
                for task in members:
                    self._accept(task)
                self._place(members, live)

    # -- what reports read ---------------------------------------------------------------------
    def stats(self) -> list[ServerStats]:
        with self._lock:
            return [ServerStats(**vars(s.stats)) for s in self._states.values()]

    def remaining(self, server: str) -> float:
        """Estimated seconds until ``server`` has finished what it holds."""
        with self._lock:
            return self._remaining(self._states[server])

    def server_of(self, key: Hashable) -> str | None:
        """The server that finished ``key`` (or holds it now)."""
        with self._lock:
            return self._done.get(key) or self._where.get(key)

    def pair_class(self, pair: Hashable) -> str | None:
        """The hardware class a pair's cases are made in, once the pool has placed it."""
        with self._lock:
            return self._pair_class.get(pair)

    def is_alive(self, server: str) -> bool:
        with self._lock:
            return self._states[server].stats.alive

    @property
    def lower_bound(self) -> float:
        return self._bound

    @property
    def unfinished(self) -> int:
        with self._lock:
            return len(self._tasks) - len(self._done)

    # -- internals (called with the lock held) -------------------------------------------------
    def _accept(self, task: Task) -> None:
        if task.key in self._tasks:
            raise ValueError(f"task {task.key!r} is already in the pool")
        self._tasks[task.key] = task
        self._rank[task.key] = len(self._rank)

    def _estimate(self, state: _State, *, now: bool = False) -> Server:
        """The server with its learnt times; ``now``: also what it holds and has loaded."""
        s = state.server
        scale = state.stats.image_seconds / s.image_seconds
        by_group = {g: t * scale for g, t in s.image_seconds_by_group.items()}
        est = Server(
            s.name, state.stats.image_seconds, state.stats.load_seconds, s.hardware_class, by_group
        )
        if not now:
            return est
        busy = sum(est.image_time(t.group) for t in state.inflight.values())
        return dataclasses.replace(est, loaded=state.last_group, busy_seconds=busy)

    def _replan(self, hw: str) -> None:
        """Plan the class's unstarted cases afresh with the learnt times; keep the new queues
        only if they end sooner. Pinned classes keep their pairs where they started."""
        members = [
            s for s in self._states.values() if s.stats.alive and s.server.hardware_class == hw
        ]
        for state in members:
            state.planned_image_seconds = state.stats.image_seconds
        if hw in self._pinned:
            return
        pending = sorted((t for s in members for t in s.queue), key=lambda t: self._rank[t.key])
        if not pending:
            return
        fresh = plan([self._estimate(s, now=True) for s in members], pending)
        if fresh.makespan >= max(self._remaining(s) for s in members) * (1 - 1e-3) - 1e-9:
            return
        # a re-plan never adds model loads: learnt times are noisy early on, and a load paid
        # on a guess costs more than the imbalance it was meant to fix
        if sum(fresh.loads.values()) > sum(count_loads(s.queue, s.last_group) for s in members):
            return
        self.replans += 1
        for state in members:
            state.queue = deque(fresh.queues[state.server.name])
            for task in state.queue:
                self._where[task.key] = state.server.name

    def _remaining(self, state: _State, queue: Iterable[Task] | None = None) -> float:
        """Estimated seconds to finish the in-flight cases and ``queue`` (default: its own)."""
        est = self._estimate(state)
        running = sum(est.image_time(t.group) for t in state.inflight.values())
        pending = state.queue if queue is None else queue
        return running + queue_time(est, pending, state.last_group)

    def _finish_with(self, state: _State, tasks: Sequence[Task]) -> float:
        """Estimated seconds until ``state`` is done if ``tasks`` join its queue (``_insert``
        puts each into its group's segment, so a new group costs one load)."""
        est = self._estimate(state)
        present = {t.group for t in state.queue} | {_group_at_end(state)}
        new_groups = {t.group for t in tasks} - present
        images = sum(est.image_time(t.group) for t in tasks)
        return self._remaining(state) + images + len(new_groups) * est.load_seconds

    def _insert(self, state: _State, task: Task) -> None:
        """Into the segment of its group when the queue has one (no extra load), else last."""
        self._where[task.key] = state.server.name
        for index in range(len(state.queue) - 1, -1, -1):
            if state.queue[index].group == task.group:
                state.queue.insert(index + 1, task)
                return
        state.queue.append(task)

    def _place(self, members: list[Task], live: list[_State]) -> None:
        """One pair's unstarted cases: to its class (the one done first for a new pair), to
        its pinned server, to one server where the class is pinned, else each case to the
        server that would finish it first."""
        pair = _pair(members[0])
        hw = self._pair_class.get(pair)
        if hw is None:
            hw = min(
                {s.server.hardware_class for s in live},
                key=lambda c: min(
                    self._finish_with(s, members) for s in live if s.server.hardware_class == c
                ),
            )
            self._pair_class[pair] = hw
        choices = [s for s in live if s.server.hardware_class == hw]
        pinned = self._pair_server.get(pair)
        if pinned is not None and self._states[pinned].stats.alive:
            choices = [self._states[pinned]]
        if hw in self._pinned:
            target = min(choices, key=lambda s: self._finish_with(s, members))
            for task in members:
                self._insert(target, task)
            return
        for task in members:
            self._insert(min(choices, key=lambda s: self._finish_with(s, [task])), task)

    def _pair_keys(self, members: Sequence[Task]) -> list[Hashable]:
        pair = _pair(members[0])
        return [k for k, t in self._tasks.items() if _pair(t) == pair]

    def _steal_for(self, thief: _State) -> None:
        hw = thief.server.hardware_class
        victims = [
            s
            for s in self._states.values()
            if s is not thief and s.stats.alive and s.queue and s.server.hardware_class == hw
        ]
        if not victims:
            return
        victim = max(victims, key=self._remaining)
        if hw in self._pinned:
            chunk = self._pinned_chunk(thief, victim)
        else:
            chunk = self._tail_chunk(thief, victim)
        for task in chunk:
            victim.queue.remove(task)
            self._insert(thief, task)
            if hw in self._pinned:
                self._pair_server[_pair(task)] = thief.server.name
        thief.stats.stolen_in += len(chunk)
        victim.stats.stolen_out += len(chunk)

    def _tail_chunk(self, thief: _State, victim: _State) -> list[Task]:
        """As many of the victim's last group's cases as make both servers end together."""
        group = victim.queue[-1].group
        tail: list[Task] = []
        for task in reversed(victim.queue):
            if task.group != group:
                break
            tail.append(task)
        thief_est, victim_est = self._estimate(thief), self._estimate(victim)
        load = 0.0 if _group_at_end(thief) == group else thief_est.load_seconds
        t_thief, t_victim = thief_est.image_time(group), victim_est.image_time(group)
        r_thief, r_victim = self._remaining(thief), self._remaining(victim)
        best, best_end = 0, r_victim
        ideal = (r_victim - r_thief - load) / (t_victim + t_thief)
        for count in {math.floor(ideal), math.ceil(ideal)}:
            count = max(0, min(len(tail), count))
            end = max(r_victim - count * t_victim, r_thief + load + count * t_thief)
            if count and end < best_end - 1e-9:
                best, best_end = count, end
        return list(reversed(tail[:best]))

    def _pinned_chunk(self, thief: _State, victim: _State) -> list[Task]:
        """The victim's last pairs that have not started, as many as make both end soonest
        (several at once, so the thief's loads are paid once for all of them)."""
        started = {p for p in self._pair_server if self._pair_server[p] == victim.server.name}
        pairs = list(pairs_of(t for t in victim.queue if _pair(t) not in started).values())
        best: list[Task] = []
        best_end = self._remaining(victim)
        taken: list[Task] = []
        for members in reversed(pairs):
            taken = [*members, *taken]
            moving = {t.key for t in taken}
            victim_after = self._remaining(victim, [t for t in victim.queue if t.key not in moving])
            thief_after = self._finish_with(thief, taken)
            end = max(victim_after, thief_after)
            if end < best_end - 1e-9:
                best, best_end = list(taken), end
            elif thief_after > victim_after:
                break
        return best

    def _rehome_class(self, moved: list[Task]) -> list[Task]:
        """The last server of a class died: its pairs leave it whole, finished cases too, and
        their class is chosen afresh by ``_place``."""
        lost_pairs = {_pair(t) for t in moved}
        moving = {t.key for t in moved}
        for key, task in self._tasks.items():
            if _pair(task) in lost_pairs and key in self._done and key not in moving:
                del self._done[key]
                self.reruns.append(key)
                moved.append(task)
        for pair in lost_pairs:
            self._pair_class.pop(pair, None)
            self._pair_server.pop(pair, None)
        return moved


def _pair(task: Task) -> Hashable:
    return ("task", task.key) if task.pair is None else task.pair


def _group_at_end(state: _State) -> Hashable:
    return state.queue[-1].group if state.queue else state.last_group
