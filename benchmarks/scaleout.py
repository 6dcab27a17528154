"""Scale-out: the pool scheduler against today's one-config-per-host, on a simulated clock.

    python benchmarks/scaleout.py                 # L=1 s per image, M=4 s per model load
    python benchmarks/scaleout.py --latency 1.8 --load 6 --cases 72

An event-driven simulation of the fake ComfyUI's latency model: a server takes ``L x speed``
seconds per image and ``M`` seconds whenever the next prompt needs other model files than the
loaded ones (every server starts with none). It runs one prompt at a time; queue-ahead hides
the client's round trips, so they cost nothing here. For H servers x K configs x N cases
(N/K cases per config, config 0 the reference, one pair per (prompt, seed)):

- ``pool``: :class:`pytest_zimage_quality.pool.Pool` plans with the nominal L and M (it is not
  told the speeds), learns each server's times from its completions, and an idle server asks
  again after every completion (stealing when that ends the run sooner);
- ``told``: the same pool told each server's true speed up front (wall / bound only);
- ``pinned``: the pool (learning) with each (prompt, seed) kept on one server;
- ``today``: each config pinned to one host, largest config first to the least-loaded host
  (``engine.Engine._assign_hosts``), each host running its queue in plan order.

Printed per cell: wall / lower bound (the bound is N x L / H' + M, where H' = sum of 1/speed,
i.e. H when the speeds are equal), the mean and max idle fraction over servers (time without a
prompt before the run ended) and the loads (total, and the most on one server). Speeds are 1.0
everywhere, or spread evenly over [1.0, 1.5] in the ``mixed`` variant. Target: pool <= 1.10.
"""

from __future__ import annotations

import argparse
import heapq
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_zimage_quality.planner import Server, Task, lower_bound
from pytest_zimage_quality.pool import Pool


@dataclass(frozen=True)
class Result:
    wall: float
    bound: float
    idle: list[float]
    loads: list[int]

    @property
    def ratio(self) -> float:
        return self.wall / self.bound

    def cell(self) -> str:
        mean_idle = sum(self.idle) / len(self.idle)
        return (
            f"{self.ratio:5.2f} idle {100 * mean_idle:3.0f}%/{100 * max(self.idle):3.0f}% "
            f"loads {sum(self.loads):2d}/{max(self.loads):<2d}"
        )


def make_tasks(cases: int, configs: int) -> list[Task]:
    """``cases`` images over ``configs`` configs; config 0 is the reference of each pair."""
    per_config = cases // configs
    return [
        Task(key=(c, p), group=f"c{c}", pair=p, reference=c == 0)
        for c in range(configs)
        for p in range(per_config)
    ]


def speeds_for(servers: int, mixed: bool) -> list[float]:
    if not mixed or servers == 1:
        return [1.0] * servers
    return [1.0 + 0.5 * i / (servers - 1) for i in range(servers)]


def simulate_pool(
    tasks: Sequence[Task],
    speeds: Sequence[float],
    latency: float,
    load: float,
    *,
    pin: bool = False,
    known: bool = False,
) -> Result:
    names = [f"s{i}" for i in range(len(speeds))]
    told = speeds if known else [1.0] * len(speeds)
    nominal = [Server(n, latency * f, load) for n, f in zip(names, told, strict=True)]
    pool = Pool(nominal, tasks, pin_pairs=pin)
    speed = dict(zip(names, speeds, strict=True))
    loaded: dict[str, object] = dict.fromkeys(names)
    busy = dict.fromkeys(names, 0.0)
    loads = dict.fromkeys(names, 0)
    events: list[tuple[float, int, str, Task, float, bool]] = []
    idle: set[str] = set()
    counter = 0

    def start(name: str, now: float) -> None:
        nonlocal counter
        task = pool.next_for(name)
        if task is None:
            idle.add(name)
            return
        idle.discard(name)
        did_load = loaded[name] != task.group
        seconds = latency * speed[name] + (load if did_load else 0.0)
        loaded[name] = task.group
        loads[name] += did_load
        busy[name] += seconds
        counter += 1
        heapq.heappush(events, (now + seconds, counter, name, task, seconds, did_load))

    for name in names:
        start(name, 0.0)
    wall = 0.0
    while events:
        now, _, name, task, seconds, did_load = heapq.heappop(events)
        wall = now
        assert pool.completed(name, task.key, seconds, did_load)
        start(name, now)
        for other in sorted(idle):
            start(other, now)
    assert pool.unfinished == 0, "the simulation lost cases"
    true_servers = [Server(n, latency * speed[n], load) for n in names]
    return Result(
        wall,
        lower_bound(true_servers, tasks),
        [1 - busy[n] / wall for n in names],
        [loads[n] for n in names],
    )


def load_aware_bound(
    cases: int, speeds: Sequence[float], latency: float, load: float, configs: int
) -> float:
    """The bound when every server loads once and each config at least once: the K - H extra
    loads (K > H) fall on the slowest servers, where they cost the fewest images."""
    rates = sorted((1 / (latency * s) for s in speeds), reverse=True)
    loads = [1] * len(rates)
    for extra in range(max(0, configs - len(rates))):
        loads[-1 - extra % len(rates)] += 1
    return (cases + load * sum(n * r for n, r in zip(loads, rates, strict=True))) / sum(rates)


def simulate_today(
    tasks: Sequence[Task], speeds: Sequence[float], latency: float, load: float
) -> Result:
    """Each config to one host: the engine's ``_assign_hosts`` rule."""
    groups: dict[object, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.group, []).append(task)
    assigned = [0] * len(speeds)
    finish = [0.0] * len(speeds)
    loads = [0] * len(speeds)
    for members in sorted(groups.values(), key=lambda g: -len(g)):
        host = min(range(len(speeds)), key=lambda i: assigned[i])
        assigned[host] += len(members)
        finish[host] += load + len(members) * latency * speeds[host]
        loads[host] += 1
    wall = max(finish)
    bound = lower_bound(
        [Server(f"s{i}", latency * s, load) for i, s in enumerate(speeds)], list(tasks)
    )
    return Result(wall, bound, [1 - f / wall for f in finish], loads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="L: seconds per image")
    parser.add_argument("--load", type=float, default=4.0, help="M: seconds per model load")
    parser.add_argument("--cases", type=int, nargs="+", default=[72, 288])
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--configs", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    print(f"L = {args.latency} s per image, M = {args.load} s per model load")
    print("cell: wall / bound, idle mean/max over servers, loads total/most on one server")
    width = len(Result(1, 1, [0], [0]).cell())
    header = (
        f"{'speeds':6} {'N':>4} {'H':>2} {'K':>2} | {'pool (learns speeds)':{width}} | told  | "
        f"{'pinned pairs':{width}} | today (one config per host)"
    )
    print(header)
    print("-" * (len(header) + 6))
    worst = worst_known = 0.0
    over: list[tuple[str, float, float]] = []
    for mixed in (False, True):
        for cases in args.cases:
            for servers in args.servers:
                for configs in args.configs:
                    tasks = make_tasks(cases, configs)
                    speeds = speeds_for(servers, mixed)
                    pool = simulate_pool(tasks, speeds, args.latency, args.load)
                    known = simulate_pool(tasks, speeds, args.latency, args.load, known=True)
                    pinned = simulate_pool(tasks, speeds, args.latency, args.load, pin=True)
                    today = simulate_today(tasks, speeds, args.latency, args.load)
                    worst = max(worst, pool.ratio)
                    if pool.ratio > 1.10:
                        loads_bound = load_aware_bound(
                            len(tasks), speeds, args.latency, args.load, configs
                        )
                        cell = f"{'mixed' if mixed else 'equal'} N={cases} H={servers} K={configs}"
                        over.append((cell, pool.ratio, pool.bound / loads_bound))
                    worst_known = max(worst_known, known.ratio)
                    print(
                        f"{'mixed' if mixed else 'equal':6} {cases:4d} {servers:2d} {configs:2d} | "
                        f"{pool.cell()} | {known.ratio:5.2f} | {pinned.cell()} | {today.cell()}"
                    )
    print(f"worst pool wall / bound: learning {worst:.3f}, told {worst_known:.3f} (target 1.10)")
    for cell, ratio, attainable in over:
        print(
            f"  over 1.10: {cell}: {ratio:.3f} x the bound, {ratio * attainable:.3f} x the "
            "bound that counts max(H, K) loads (it differs where some server must load twice)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
