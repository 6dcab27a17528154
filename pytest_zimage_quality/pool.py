"""The online pool: hands each server its next case, learns its speed, steals, survives deaths.

The static plan (:mod:`.planner`) is only as good as its estimates. The pool starts from it
and corrects it as results come in:

- every completion updates the server's image and load times (exponentially weighted); a
  server of the same hardware class not timed yet takes its timed peers' mean, not the
  default guess;
- a server that runs out of work steals the unstarted tail of the server expected to finish
  last, as many cases as make both end together (a whole pair where pairs are pinned), and
  pays a model load for it only when that gains more than one of the victim's images;
- a dead server's queued and in-flight cases move to the live servers of its class, each to
  the one that would finish it first. Only if no server of the class is left do its pairs move
  to another class, and then their finished cases are re-run so a pair never mixes hardware
  (``reruns`` says which).

Every case is handed out once, except after a death; a late completion from a dead server is
refused. Thread-safe: runners call it from their own threads. No pytest, no network.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable, Iterable, Sequence

from .planner import Server, Task, count_loads, lower_bound, pairs_of, plan
from .pool_state import ServerState, ServerStats

__all__ = ["Pool", "ServerStats"]


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
        self._states: dict[str, ServerState] = {
            s.name: ServerState(
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
            if loaded:
                stats.loads += 1
            state.learn(task, seconds, loaded=loaded, alpha=self.alpha)
            self._share_times(state.server.hardware_class)
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
            return self._states[server].remaining()

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

    def _share_times(self, hw: str) -> None:
        """A server of the class not timed yet takes the mean of its timed peers: the same
        hardware is a far better guess than the default the plan started from, which would
        otherwise make it look several times slower (or faster) than it is, and a re-plan
        would strip (or flood) its queue until its own first image is timed."""
        members = [
            s for s in self._states.values() if s.stats.alive and s.server.hardware_class == hw
        ]
        timed = [s.stats.image_seconds for s in members if s.images_seen]
        loads = [s.stats.load_seconds for s in members if s.load_samples]
        for state in members:
            if timed and not state.images_seen:
                state.stats.image_seconds = sum(timed) / len(timed)
            if loads and not state.load_samples:
                state.stats.load_seconds = sum(loads) / len(loads)

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
        fresh = plan([s.estimate(now=True) for s in members], pending)
        if fresh.makespan >= max(s.remaining() for s in members) * (1 - 1e-3) - 1e-9:
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

    def _insert(self, state: ServerState, task: Task) -> None:
        """Into the segment of its group when the queue has one (no extra load), else last."""
        self._where[task.key] = state.server.name
        for index in range(len(state.queue) - 1, -1, -1):
            if state.queue[index].group == task.group:
                state.queue.insert(index + 1, task)
                return
        state.queue.append(task)

    def _place(self, members: list[Task], live: list[ServerState]) -> None:
        """One pair's unstarted cases: to its class (the one done first for a new pair), to
        its pinned server, to one server where the class is pinned, else each case to the
        server that would finish it first."""
        pair = _pair(members[0])
        hw = self._pair_class.get(pair)
        if hw is None:
            hw = min(
                {s.server.hardware_class for s in live},
                key=lambda c: min(
                    s.finish_with(members) for s in live if s.server.hardware_class == c
                ),
            )
            self._pair_class[pair] = hw
        choices = [s for s in live if s.server.hardware_class == hw]
        pinned = self._pair_server.get(pair)
        if pinned is not None and self._states[pinned].stats.alive:
            choices = [self._states[pinned]]
        if hw in self._pinned:
            target = min(choices, key=lambda s: s.finish_with(members))
            for task in members:
                self._insert(target, task)
            return
        for task in members:
            self._insert(min(choices, key=lambda s: s.finish_with([task])), task)

    def _pair_keys(self, members: Sequence[Task]) -> list[Hashable]:
        pair = _pair(members[0])
        return [k for k, t in self._tasks.items() if _pair(t) == pair]

    def _steal_for(self, thief: ServerState) -> None:
        hw = thief.server.hardware_class
        victims = [
            s
            for s in self._states.values()
            if s is not thief and s.stats.alive and s.queue and s.server.hardware_class == hw
        ]
        if not victims:
            return
        victim = max(victims, key=lambda s: s.remaining())
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

    def _tail_chunk(self, thief: ServerState, victim: ServerState) -> list[Task]:
        """As many of the victim's last group's cases as make both servers end together."""
        group = victim.queue[-1].group
        tail: list[Task] = []
        for task in reversed(victim.queue):
            if task.group != group:
                break
            tail.append(task)
        thief_est, victim_est = thief.estimate(), victim.estimate()
        load = 0.0 if thief.group_at_end() == group else thief_est.load_seconds
        t_thief, t_victim = thief_est.image_time(group), victim_est.image_time(group)
        r_thief, r_victim = thief.remaining(), victim.remaining()
        # a steal that pays a load must gain at least one of the victim's images: the learnt
        # times are noisy, and a load paid on noise costs more than it saves
        best, best_end = 0, r_victim - (t_victim if load else 0.0)
        ideal = (r_victim - r_thief - load) / (t_victim + t_thief)
        for count in {math.floor(ideal), math.ceil(ideal)}:
            count = max(0, min(len(tail), count))
            end = max(r_victim - count * t_victim, r_thief + load + count * t_thief)
            if count and end < best_end - 1e-9:
                best, best_end = count, end
        return list(reversed(tail[:best]))

    def _pinned_chunk(self, thief: ServerState, victim: ServerState) -> list[Task]:
        """The victim's last pairs that have not started, as many as make both end soonest
        (several at once, so the thief's loads are paid once for all of them)."""
        started = {p for p in self._pair_server if self._pair_server[p] == victim.server.name}
        pairs = list(pairs_of(t for t in victim.queue if _pair(t) not in started).values())
        best: list[Task] = []
        best_end = victim.remaining()
        taken: list[Task] = []
        for members in reversed(pairs):
            taken = [*members, *taken]
            moving = {t.key for t in taken}
            victim_after = victim.remaining([t for t in victim.queue if t.key not in moving])
            thief_after = thief.finish_with(taken)
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
