"""Scale-out: the pool against today's one-config-per-host, on fake ComfyUI servers.

    python benchmarks/scaleout.py                  # fake servers, ~5 min on 2 cores
    python benchmarks/scaleout.py --with-check     # + the cross-server determinism check first
    python benchmarks/scaleout.py --simulate       # the event simulation only (instant)

Default mode: for each cell, H fake ComfyUI servers (``FakeComfyUI``, in this process, on
loopback ports) with the fake's latency model: an image takes ``L x speed`` seconds, a model
load ``M`` whenever a prompt needs other model files than the loaded ones. The plugin's own
parts run the cell: ``servers.connect_servers`` (hardware classes), ``generation.Generation``
(image requests, the online ``pool.Pool``, one ``scheduler.HostRunner`` per server with
queue-ahead depth 2) and the real ``ComfyUIClient`` over HTTP and WebSocket. The pool starts
from its default estimates (it is told nothing) and learns. ``L = SCALE x H`` (default
0.03 s x H), so every cell's bound is about the same few seconds and the client's own work per
image stays well under ``L / H`` on two shared cores; ``M = 4 L``. Wall time runs from the
first submission to the last image fetched.

By default the pool's servers are taken as one bit-identical class (``--zimage-pin-pairs=never``,
what a class the determinism check has cleared gets); ``--with-check`` runs the check first, as
the plugin does on a pool's first run (one reference case on every server: one image and, with
several configs, one extra model load per server).

For H servers x K configs x N cases (N/K per config, config 0 the reference, 3 seeds):

- ``pool``: wall / the lower bound, where the bound is N x L / H' + M (H' = sum of 1/speed,
  i.e. H when the speeds are equal); in brackets wall / the bound that counts the loads some
  server must pay when K > H (``load_aware_bound``); then the mean and max idle fraction over
  servers (the fake's own busy timeline) and the model loads the fakes counted (total / most on
  one server). The next line gives each server's idle:loads:images.
- ``sim``: the same pool in the event simulation below (no client, no servers; each server
  holds two handed-out cases, as the runners' queue-ahead does).
- ``today``: each config pinned to one host (the old ``Engine._assign_hosts`` rule), simulated.

Speeds are 1.0 everywhere (``equal``) or spread evenly over [1.0, 1.5] (``mixed``). Target:
pool <= 1.10. ``--simulate`` prints the event simulation alone: the pool learning speeds, told
them (``told``), with pinned pairs, and today.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_zimage_quality.planner import Server, Task, lower_bound
from pytest_zimage_quality.pool import Pool
from pytest_zimage_quality.suite import Suite, load_suite


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
    depth: int = 2,
) -> Result:
    """The pool driven as the runners drive it: each server holds up to ``depth`` handed-out
    cases (queue-ahead), runs them one at a time, and asks for more as each one finishes."""
    names = [f"s{i}" for i in range(len(speeds))]
    told = speeds if known else [1.0] * len(speeds)
    nominal = [Server(n, latency * f, load) for n, f in zip(names, told, strict=True)]
    pool = Pool(nominal, tasks, pin_pairs=pin)
    speed = dict(zip(names, speeds, strict=True))
    loaded: dict[str, object] = dict.fromkeys(names)
    busy = dict.fromkeys(names, 0.0)
    loads = dict.fromkeys(names, 0)
    held: dict[str, deque[Task]] = {n: deque() for n in names}
    events: list[tuple[float, int, str, Task, float, bool]] = []
    counter = 0

    def run_next(name: str, now: float) -> None:
        nonlocal counter
        task = held[name][0]
        did_load = loaded[name] != task.group
        seconds = latency * speed[name] + (load if did_load else 0.0)
        loaded[name] = task.group
        loads[name] += did_load
        busy[name] += seconds
        counter += 1
        heapq.heappush(events, (now + seconds, counter, name, task, seconds, did_load))

    def refill(name: str, now: float) -> None:
        while len(held[name]) < depth and (task := pool.next_for(name)) is not None:
            held[name].append(task)
            if len(held[name]) == 1:
                run_next(name, now)

    for name in names:
        refill(name, 0.0)
    wall = 0.0
    while events:
        now, _, name, task, seconds, did_load = heapq.heappop(events)
        wall = now
        held[name].popleft()
        assert pool.completed(name, task.key, seconds, did_load)
        if held[name]:
            run_next(name, now)
        for other in [name, *sorted(n for n in names if n != name)]:
            refill(other, now)
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


# -- the real scheduler and client against fake ComfyUI servers ------------------------------
WORKFLOW = Path(__file__).resolve().parent.parent / "example_suite" / "z_image_turbo_t2i_api.json"
SEEDS = 3


@dataclass(frozen=True)
class FakeRunSettings:
    """What ``generation.Generation`` reads of a run's settings (the plugin's defaults)."""

    refresh: bool = False
    timeout: float = 120.0
    queue_depth: int = 2
    pin_pairs: str = "auto"

    def cache_revision(self, suite: Suite) -> str:
        return suite.revision


@dataclass(frozen=True)
class FakeResult:
    wall: float
    bound: float  # the issue's: total image time / H + one load
    attainable: float  # every server loads once and every config at least once
    idle: list[float]
    loads: list[int]  # model loads each fake server counted (the determinism check's included)
    images: list[int]  # images each server made for the pool
    stretch: float = 1.0  # the servers' measured time per image / the nominal L x speed

    @property
    def ratio(self) -> float:
        return self.wall / self.bound

    def cell(self) -> str:
        return (
            f"{self.ratio:5.2f} ({self.wall / self.attainable:4.2f}) x{self.stretch:4.2f} "
            f"idle {100 * sum(self.idle) / len(self.idle):3.0f}%/{100 * max(self.idle):3.0f}% "
            f"loads {sum(self.loads):2d}/{max(self.loads):<2d}"
        )

    def per_server(self) -> str:
        return " ".join(
            f"{100 * i:.0f}%:{n}L:{m}"
            for i, n, m in zip(self.idle, self.loads, self.images, strict=True)
        )


def write_suite(directory: Path, cases: int, configs: int) -> Suite:
    """``configs`` configs, each its own transformer file (a new config costs a model load),
    ``cases / configs / 3`` prompts x 3 seeds, 32-pixel images in 2 steps (cheap to render)."""
    graph = json.loads(WORKFLOW.read_text(encoding="utf-8"))
    graph["13"]["inputs"].update(width=32, height=32)
    graph["3"]["inputs"]["steps"] = 2
    (directory / "workflow_api.json").write_text(json.dumps(graph), encoding="utf-8")
    prompts = cases // configs // SEEDS
    lines = [
        "[suite]",
        'name = "scaleout"',
        'workflow = "workflow_api.json"',
        'prompt_input = { node = "27", input = "text" }',
        'seed_input = { node = "3", input = "seed" }',
        'output_node = "9"',
        'reference = "c0"',
        f"seeds = {list(range(1, SEEDS + 1))}",
    ]
    for config in range(configs):
        lines += [
            f"[configs.c{config}]",
            f'overrides."28".unet_name = "scaleout_c{config}.safetensors"',
        ]
    for prompt in range(prompts):
        lines += ["[[prompts]]", f'key = "p{prompt}"', f'text = "benchmark prompt {prompt}"']
    path = directory / "scaleout.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_suite(path)


def run_fake_cell(
    cases: int,
    speeds: Sequence[float],
    latency: float,
    load: float,
    configs: int,
    work: Path,
    *,
    check: bool = False,
) -> FakeResult:
    """One cell on ``len(speeds)`` in-process fake servers, through the plugin's own pool,
    runners and ComfyUI client (every setting at its default, the determinism check included)."""
    from pytest_zimage_quality._fake.fake import FakeComfyUI
    from pytest_zimage_quality.comfyui import ComfyUIClient
    from pytest_zimage_quality.dispatch import plan_order
    from pytest_zimage_quality.generation import Generation
    from pytest_zimage_quality.servers import config_graphs, connect_servers

    suite = write_suite(work, cases, configs)
    models = FakeComfyUI.models_for_graphs(list(config_graphs([suite]).values()))
    fakes = [
        FakeComfyUI(models=models, image_latency=latency, load_latency=load, speed_factor=speed)
        for speed in speeds
    ]
    for fake in fakes:
        fake.start()
    done = threading.Event()
    finished: list[object] = []
    errors: list[object] = []
    lock = threading.Lock()

    last = [0.0]

    def count(request: object, outcome: object, into: list[object]) -> None:
        with lock:
            into.append(request)
            last[0] = time.monotonic()
            if len(finished) + len(errors) == cases:
                done.set()

    servers: list[Any] = []
    try:
        urls = [str(fake.url) for fake in fakes]
        servers, classes = connect_servers(
            urls, [suite], lambda url: ComfyUIClient(url, timeout=120.0)
        )
        generation = Generation(
            FakeRunSettings(pin_pairs="auto" if check else "never"),
            [suite],
            servers,
            classes,
            cache=None,
            estimates={},
            deliver=lambda r, g: count(r, g, finished),
            fail=lambda r, e: count(r, e, errors),
        )
        requests = sorted(
            (generation.requests.request(case) for case in suite.cases()), key=plan_order([suite])
        )
        assert len(requests) == cases, (len(requests), cases)
        started = time.monotonic()
        generation.start(requests)
        if not done.wait(timeout=600):
            raise RuntimeError(f"the cell did not finish: {len(finished)} of {cases} images")
        if errors:
            raise RuntimeError(f"{len(errors)} cases failed")
        wall = last[0] - started
        report = generation.report()["pool"]["servers"]
        generation.stop(cancel=False)
        by_url = {s["url"]: s for s in report}
        # The bound from the times the servers took (their timelines), not the nominal L and
        # M: on two shared cores the fake's own work can stretch an image past L, and that
        # is the machine's cost, not the schedule's.
        image_times, load_times = [], []
        for fake in fakes:
            intervals = [i for i in fake.timeline if i.start >= started]
            runs = [i.end - i.start for i in intervals if i.kind == "run"]
            loads = [i.end - i.start for i in intervals if i.kind == "load"]
            image_times.append((sum(runs) - sum(loads)) / max(1, len(runs)))
            load_times += loads
        measured_load = min(load_times, default=load)
        bound = cases / sum(1 / t for t in image_times) + measured_load
        return FakeResult(
            wall=wall,
            bound=bound,
            attainable=load_aware_bound(
                cases, [t / latency for t in image_times], latency, measured_load, configs
            ),
            stretch=sum(image_times) / sum(latency * speed for speed in speeds),
            idle=[fake.idle_fraction(started, last[0]) for fake in fakes],
            loads=[int(fake.model_loads) for fake in fakes],
            images=[int(by_url[url]["images"]) for url in urls],
        )
    finally:
        for server in servers:
            server.client.close()
        for fake in fakes:
            fake.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--simulate", action="store_true", help="the event simulation only (no servers, instant)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=0.03,
        help="fake servers: seconds per image = SCALE x H (the same wall per cell at every H)",
    )
    parser.add_argument(
        "--floor",
        type=float,
        default=0.06,
        help="fake servers: at least this many seconds per image (the client's and the fake's "
        "own work per image must stay well below it)",
    )
    parser.add_argument("--latency", type=float, default=1.0, help="L: seconds per image")
    parser.add_argument("--load", type=float, default=4.0, help="M: seconds per model load")
    parser.add_argument("--cases", type=int, nargs="+", default=[72, 288])
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--configs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--with-check",
        action="store_true",
        help="run the cross-server determinism check first, as a pool's first run does",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=["equal", "mixed"], default=["equal", "mixed"]
    )
    args = parser.parse_args(argv)
    if args.simulate:
        return simulate_main(args)
    return fake_main(args)


def fake_main(args: argparse.Namespace) -> int:
    ratio = args.load / args.latency
    print(
        f"fake ComfyUI servers in this process; L = max({args.floor}, {args.scale} x H) s per "
        f"image, M = {ratio:g} L per model load; speeds 1.0 (equal) or 1.0..1.5 (mixed)"
    )
    print(
        "pool cell: wall / bound (wall / the bound that counts max(H, K) loads), idle mean/max, "
        "loads total/most on one server; sim = the event simulation; today = one config per host"
    )
    header = (
        f"{'speeds':6} {'N':>4} {'H':>2} {'K':>2} | {'pool (fake servers)':45} | sim   | "
        "today (one config per host, simulated)"
    )
    print(header)
    print("-" * (len(header) + 8))
    worst = worst_attainable = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            for cases in args.cases:
                for servers in args.servers:
                    for configs in args.configs:
                        speeds = speeds_for(servers, variant == "mixed")
                        latency = max(args.floor, args.scale * servers)
                        load = ratio * latency
                        work = Path(tmp) / f"{variant}-{cases}-{servers}-{configs}"
                        work.mkdir()
                        real = run_fake_cell(
                            cases, speeds, latency, load, configs, work, check=args.with_check
                        )
                        tasks = make_tasks(cases, configs)
                        sim = simulate_pool(tasks, speeds, latency, load)
                        today = simulate_today(tasks, speeds, latency, load)
                        worst = max(worst, real.ratio)
                        worst_attainable = max(worst_attainable, real.wall / real.attainable)
                        print(
                            f"{variant:6} {cases:4d} {servers:2d} {configs:2d} | {real.cell():45} | "
                            f"{sim.ratio:5.2f} | {today.cell()}",
                            flush=True,
                        )
                        print(f"{'':17}  per server idle:loads:images  {real.per_server()}")
    print(
        f"worst wall / bound: {worst:.3f}; worst wall / the bound with max(H, K) loads: "
        f"{worst_attainable:.3f} (target 1.10)"
    )
    return 0


def simulate_main(args: argparse.Namespace) -> int:
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
