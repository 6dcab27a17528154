"""The static plan of a pool run: which server generates which case, in which order.

ComfyUI runs one prompt at a time per process and pays a model load whenever consecutive
prompts need different model files. A run therefore ends earliest when every server finishes
at about the same time *and* few loads are paid: a config is split over several servers when
that shortens the run and kept on one server when the extra loads would cost more.

The planner works on plain values (no pytest, no network): ``Server`` estimates and ``Task``
groups in. For each hardware class it tries McNaughton's wrap-around rule (fill servers one
after the other up to a horizon ``T``, a group that overflows continues on the next server
and pays a load there) with a binary search on ``T`` over a few server and group orders, and
keeps one-server-per-group as a candidate; the shortest estimated finish wins, fewer loads
break ties. A case's reference and candidates (one ``pair``) stay in one hardware class, and
with ``pin_pairs`` on one server.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Plan", "Server", "Task", "finish_time", "lower_bound", "plan"]


@dataclass(frozen=True)
class Server:
    """One ComfyUI process as the planner sees it: its estimated times and hardware class."""

    name: str
    image_seconds: float = 1.0
    load_seconds: float = 0.0
    hardware_class: str = ""
    #: per-group image seconds where a config is faster or slower than ``image_seconds``
    image_seconds_by_group: Mapping[Hashable, float] = field(default_factory=dict)
    #: the group whose models are in memory (continuing with it costs no load)
    loaded: Hashable = None
    #: seconds until the server is free of the work it already has
    busy_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.image_seconds > 0 or self.load_seconds < 0:
            raise ValueError(
                f"server {self.name}: image_seconds must be > 0 and load_seconds >= 0, got "
                f"{self.image_seconds} and {self.load_seconds}"
            )

    def image_time(self, group: Hashable) -> float:
        return float(self.image_seconds_by_group.get(group, self.image_seconds))


@dataclass(frozen=True)
class Task:
    """One image to generate. ``group`` is the model set it needs (consecutive tasks of one
    group on a server share a load); ``pair`` ties a reference to its candidates."""

    key: Hashable
    group: Hashable
    pair: Hashable = None
    reference: bool = False


@dataclass(frozen=True)
class Plan:
    """Per-server ordered queues and what the planner expects of them."""

    queues: Mapping[str, tuple[Task, ...]]
    finish: Mapping[str, float]  # estimated seconds until each server is done
    loads: Mapping[str, int]  # model loads each server is expected to pay

    @property
    def makespan(self) -> float:
        return max(self.finish.values(), default=0.0)


def lower_bound(servers: Sequence[Server], tasks: Sequence[Task]) -> float:
    """No schedule ends sooner: all image time spread over every server, plus one load."""
    if not tasks or not servers:
        return 0.0
    rate = sum(1.0 / s.image_seconds for s in servers)
    return len(tasks) / rate + min(s.load_seconds for s in servers)


def queue_time(server: Server, queue: Iterable[Task], loaded: Hashable = None) -> float:
    """Seconds ``server`` needs for ``queue`` starting with ``loaded`` models in memory."""
    total, current = 0.0, loaded
    for task in queue:
        if task.group != current:
            total += server.load_seconds
            current = task.group
        total += server.image_time(task.group)
    return total


def finish_time(server: Server, queue: Iterable[Task]) -> float:
    """Seconds until ``server`` is done with what it has and then ``queue``."""
    return server.busy_seconds + queue_time(server, queue, server.loaded)


def count_loads(queue: Iterable[Task], loaded: Hashable = None) -> int:
    loads, current = 0, loaded
    for task in queue:
        if task.group != current:
            loads, current = loads + 1, task.group
    return loads


def plan(
    servers: Sequence[Server], tasks: Sequence[Task], *, pin_pairs: bool | Iterable[str] = False
) -> Plan:
    """Assign ``tasks`` (in plan order: reference group first) to ``servers``.

    ``pin_pairs`` keeps each pair on one server: True for every class, or the hardware
    classes whose servers are not bit-identical.
    """
    if not servers:
        raise ValueError("a pool needs at least one server")
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ValueError(f"server names must be unique: {names}")
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    classes: dict[str, list[Server]] = {}
    for server in servers:
        classes.setdefault(server.hardware_class, []).append(server)
    pinned = set(classes) if pin_pairs is True else set(pin_pairs or ())
    queues: dict[str, tuple[Task, ...]] = {}
    for hw, members in split_by_class(classes, tasks).items():
        if hw in pinned:
            queues.update(_plan_pinned(classes[hw], members))
        else:
            queues.update(_plan_split(classes[hw], members))
    by_name = {s.name: s for s in servers}
    return Plan(
        queues=queues,
        finish={n: finish_time(by_name[n], q) for n, q in queues.items()},
        loads={n: count_loads(q, by_name[n].loaded) for n, q in queues.items()},
    )


def pairs_of(tasks: Iterable[Task]) -> dict[Hashable, list[Task]]:
    """Tasks by pair, in first-seen order (a task without a pair is its own pair)."""
    pairs: dict[Hashable, list[Task]] = {}
    for task in tasks:
        pairs.setdefault(("task", task.key) if task.pair is None else task.pair, []).append(task)
    return pairs


def split_by_class(
    classes: Mapping[str, Sequence[Server]], tasks: Sequence[Task]
) -> dict[str, list[Task]]:
    """Whole pairs to hardware classes, in proportion to each class's image rate."""
    rate = {hw: sum(1.0 / s.image_seconds for s in members) for hw, members in classes.items()}
    given = {hw: 0 for hw in classes}
    chosen: dict[Hashable, str] = {}
    for pair, members in pairs_of(tasks).items():
        hw = min(classes, key=lambda c: ((given[c] + len(members)) / rate[c], c))
        given[hw] += len(members)
        chosen[pair] = hw
    out: dict[str, list[Task]] = {hw: [] for hw in classes}
    for task in tasks:
        out[chosen[("task", task.key) if task.pair is None else task.pair]].append(task)
    return out


def _groups(tasks: Sequence[Task]) -> dict[Hashable, list[Task]]:
    groups: dict[Hashable, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.group, []).append(task)
    return groups


def _wrap(
    servers: Sequence[Server], groups: Sequence[tuple[Hashable, list[Task]]], horizon: float
) -> dict[str, list[Task]] | None:
    """Fill servers in order up to ``horizon``; None when the groups do not fit."""
    out: dict[str, list[Task]] = {s.name: [] for s in servers}
    used = {s.name: s.busy_seconds for s in servers}
    index = 0
    for group, members in groups:
        rest = list(members)
        while rest:
            if index >= len(servers):
                return None
            server = servers[index]
            queue = out[server.name]
            current = queue[-1].group if queue else server.loaded
            load = 0.0 if current == group else server.load_seconds
            room = math.floor((horizon - used[server.name] - load) / server.image_time(group))
            if room <= 0:
                index += 1
                continue
            take, rest = rest[:room], rest[room:]
            queue.extend(take)
            used[server.name] += load + len(take) * server.image_time(group)
    return out


def _plan_split(servers: Sequence[Server], tasks: Sequence[Task]) -> dict[str, tuple[Task, ...]]:
    if not tasks:
        return {s.name: () for s in servers}
    groups = list(_groups(tasks).items())
    group_orders = [groups, sorted(groups, key=lambda g: -len(g[1]))]
    fastest = sorted(servers, key=lambda s: s.image_seconds)
    # fast and slow alternating: a split group then spans one of each, and loads stay at one
    alternating = [s for pair in zip(fastest, reversed(fastest), strict=True) for s in pair]
    # Servers listed together are usually alike (one host's GPUs): with no speeds learnt yet,
    # a group split over servers far apart in the list hedges against a slow host holding all
    # of one group (the pool then rebalances within the group, which costs no load).
    spread = [s for column in range(len(groups)) for s in servers[column :: len(groups)]]
    server_orders = [spread, list(servers), fastest, fastest[::-1], alternating[: len(servers)]]
    best = _whole_groups(servers, groups)
    best_cost = _cost(servers, best)
    hi = max(s.busy_seconds for s in servers) + sum(queue_time(servers[0], g) for _, g in groups)
    hi += 1.0
    orders = [(g, s) for g in group_orders for s in server_orders]
    if any(s.loaded is not None for s in servers):
        # continuing what is loaded: servers in the order of their loaded group
        rank = {group: i for i, (group, _) in enumerate(groups)}
        by_loaded = sorted(servers, key=lambda s: (rank.get(s.loaded, len(rank)), s.image_seconds))
        orders.insert(0, (groups, by_loaded))
    for group_order, server_order in orders:
        found = _shortest_wrap(server_order, group_order, max(hi, best_cost[0]))
        if found is not None and _cost(servers, found) < best_cost:
            best, best_cost = found, _cost(servers, found)
    loaded = {s.name: s.loaded for s in servers}
    return {
        name: tuple(_reference_first(queue, tasks, loaded[name])) for name, queue in best.items()
    }


def _shortest_wrap(
    servers: Sequence[Server], groups: Sequence[tuple[Hashable, list[Task]]], top: float
) -> dict[str, list[Task]] | None:
    """Binary search for the shortest horizon at which the wrap-around fits everything."""
    lo, found = 0.0, None
    while top - lo > 1e-4 * max(1.0, top):
        mid = (lo + top) / 2
        attempt = _wrap(servers, groups, mid)
        if attempt is None:
            lo = mid
        else:
            top, found = mid, attempt
    return found if found is not None else _wrap(servers, groups, top)


def _whole_groups(
    servers: Sequence[Server], groups: Sequence[tuple[Hashable, list[Task]]]
) -> dict[str, list[Task]]:
    """Each group on one server (fewest loads): largest group first to the earliest finisher."""
    out: dict[str, list[Task]] = {s.name: [] for s in servers}
    for _, members in sorted(groups, key=lambda g: -len(g[1])):
        server = min(servers, key=lambda s: finish_time(s, [*out[s.name], *members]))
        out[server.name].extend(members)
    return out


def _cost(servers: Sequence[Server], queues: Mapping[str, Sequence[Task]]) -> tuple[float, int]:
    finish = max(finish_time(s, queues[s.name]) for s in servers)
    return (round(finish, 9), sum(count_loads(queues[s.name], s.loaded) for s in servers))


def _reference_first(
    queue: Sequence[Task], order: Sequence[Task], loaded: Hashable = None
) -> list[Task]:
    """A server's groups in plan order (what is loaded first, then the reference group),
    tasks in plan order."""
    rank = {t.key: i for i, t in enumerate(order)}
    first: dict[Hashable, int] = {}
    for task in queue:
        first[task.group] = min(first.get(task.group, rank[task.key]), rank[task.key])
    ref_groups = {t.group for t in queue if t.reference}
    return sorted(
        queue,
        key=lambda t: (t.group != loaded, t.group not in ref_groups, first[t.group], rank[t.key]),
    )


def _plan_pinned(servers: Sequence[Server], tasks: Sequence[Task]) -> dict[str, tuple[Task, ...]]:
    """Whole pairs to servers (earliest estimated finish first), each queue grouped by config."""
    out: dict[str, list[Task]] = {s.name: [] for s in servers}
    pairs = sorted(pairs_of(tasks).values(), key=len, reverse=True)
    for members in pairs:
        server = min(
            servers, key=lambda s: queue_time(s, _reference_first(out[s.name] + members, tasks))
        )
        out[server.name].extend(members)
    return {name: tuple(_reference_first(queue, tasks)) for name, queue in out.items()}
