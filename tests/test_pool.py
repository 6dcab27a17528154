"""The pool planner and the online pool: literal schedules, learning, stealing, deaths, and
the property that every case is handed out exactly once."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_zimage_quality.planner import Server, Task, finish_time, lower_bound, plan
from pytest_zimage_quality.pool import Pool


def tasks_for(configs: dict[str, int]) -> list[Task]:
    """``count`` cases per config; the first config is the reference of pair i."""
    first = next(iter(configs))
    return [
        Task(key=f"{config}-{i}", group=config, pair=i, reference=config == first)
        for config, count in configs.items()
        for i in range(count)
    ]


def servers(n: int, image: float = 1.0, load: float = 0.0, hw: str = "") -> list[Server]:
    return [Server(f"s{i}", image, load, hw) for i in range(n)]


def assigned(queues: dict[str, tuple[Task, ...]] | object) -> Counter[Hashable]:
    assert isinstance(queues, dict)
    return Counter(t.key for q in queues.values() for t in q)


def finish_next(pool: Pool, server: str, seconds: float, *, loaded: bool) -> None:
    """Hand ``server`` its next case and report it finished in ``seconds``."""
    task = pool.next_for(server)
    assert task is not None
    assert pool.completed(server, task.key, seconds, loaded=loaded)


# -- the static plan ---------------------------------------------------------------------------
def test_lower_bound_is_image_time_over_servers_plus_one_load() -> None:
    assert lower_bound(servers(4, image=2.0, load=5.0), tasks_for({"bf16": 36, "fp8": 36})) == 41.0
    # speeds differ: the image rate adds up (1/1 + 1/2 = 1.5 images per second)
    mixed = [Server("a", 1.0, 3.0), Server("b", 2.0, 3.0)]
    assert lower_bound(mixed, tasks_for({"bf16": 6})) == pytest.approx(6 / 1.5 + 3.0)


def test_two_configs_over_four_servers_meet_the_bound() -> None:
    pool = servers(4, image=2.0, load=5.0)
    tasks = tasks_for({"bf16": 36, "fp8": 36})
    result = plan(pool, tasks)
    assert result.makespan == pytest.approx(41.0)  # 18 images + 1 load each
    assert dict(result.loads) == {"s0": 1, "s1": 1, "s2": 1, "s3": 1}
    assert all(len(q) == 18 for q in result.queues.values())


def test_more_servers_than_configs_every_server_gets_work() -> None:
    result = plan(servers(8, image=1.0, load=4.0), tasks_for({"bf16": 36, "nvfp4": 36}))
    assert all(result.queues[f"s{i}"] for i in range(8))
    assert result.makespan == pytest.approx(72 / 8 + 4)


def test_a_config_stays_whole_when_a_split_costs_more_loads() -> None:
    # 10 + 2 images, load 10: splitting the big config costs a second load on the other server
    result = plan(servers(2, image=1.0, load=10.0), tasks_for({"a": 10, "b": 2}))
    assert sum(result.loads.values()) == 2
    assert result.makespan == pytest.approx(20.0)
    assert sorted(len(q) for q in result.queues.values()) == [2, 10]


def test_a_config_is_split_when_that_ends_sooner() -> None:
    # the same work with cheap loads: the big config is shared, the run ends at 8 not 11
    result = plan(servers(2, image=1.0, load=1.0), tasks_for({"a": 10, "b": 2}))
    assert result.makespan == pytest.approx(8.0)
    assert sum(result.loads.values()) == 3


def test_faster_servers_get_more_images() -> None:
    result = plan([Server("fast", 1.0, 2.0), Server("slow", 2.0, 2.0)], tasks_for({"a": 30}))
    assert (len(result.queues["fast"]), len(result.queues["slow"])) == (20, 10)
    assert result.makespan == pytest.approx(22.0)


def test_without_known_speeds_a_split_config_spans_servers_far_apart_in_the_list() -> None:
    # servers listed together are usually one host's GPUs: if that host is slow, a config on
    # two neighbours would be slow as a whole; far apart, the pool rebalances it without a load
    queues = plan(servers(4, load=4.0), tasks_for({"bf16": 8, "fp8": 8})).queues
    groups = {name: {t.group for t in queue} for name, queue in queues.items()}
    assert groups == {"s0": {"bf16"}, "s1": {"fp8"}, "s2": {"bf16"}, "s3": {"fp8"}}


def test_each_queue_starts_with_the_reference_config() -> None:
    result = plan(servers(2, load=1.0), tasks_for({"bf16": 4, "fp8": 4, "nvfp4": 4}))
    for queue in result.queues.values():
        groups = [str(t.group) for t in queue]
        assert groups == sorted(groups, key=["bf16", "fp8", "nvfp4"].index)


def test_a_loaded_config_is_continued_without_a_load() -> None:
    warm = Server("warm", 1.0, 10.0, loaded="fp8", busy_seconds=3.0)
    result = plan([warm], tasks_for({"bf16": 2, "fp8": 2}))
    assert [t.group for t in result.queues["warm"]] == ["fp8", "fp8", "bf16", "bf16"]
    assert result.loads["warm"] == 1
    assert result.makespan == pytest.approx(3.0 + 4 + 10)
    assert finish_time(warm, result.queues["warm"]) == result.makespan


def test_pairs_stay_within_one_hardware_class() -> None:
    pool = [*servers(2, hw="h100"), Server("g0", 1.0, 0.0, "gb10")]
    tasks = tasks_for({"bf16": 12, "fp8": 12, "nvfp4": 12})
    result = plan(pool, tasks)
    klass = {s.name: s.hardware_class for s in pool}
    where: dict[Hashable, set[str]] = {}
    for name, queue in result.queues.items():
        for task in queue:
            where.setdefault(task.pair, set()).add(klass[name])
    assert all(len(classes) == 1 for classes in where.values())
    per_class = Counter(c for classes in where.values() for c in classes)
    assert per_class == {"h100": 8, "gb10": 4}  # in proportion to each class's image rate


def test_pinned_pairs_stay_on_one_server() -> None:
    result = plan(servers(3, load=1.0), tasks_for({"bf16": 9, "fp8": 9}), pin_pairs=True)
    owner: dict[Hashable, set[str]] = {}
    for name, queue in result.queues.items():
        assert [str(t.group) for t in queue] == sorted(str(t.group) for t in queue)  # 1 load each
        for task in queue:
            owner.setdefault(task.pair, set()).add(name)
    assert all(len(names) == 1 for names in owner.values())
    assert all(len(q) == 6 for q in result.queues.values())


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        plan([], tasks_for({"a": 1}))
    with pytest.raises(ValueError, match="unique"):
        plan([Server("a"), Server("a")], [])
    with pytest.raises(ValueError, match="image_seconds"):
        Server("a", image_seconds=0)


@settings(max_examples=60, deadline=None)
@given(
    speeds=st.lists(st.floats(0.5, 3.0), min_size=1, max_size=6),
    load=st.floats(0.0, 20.0),
    counts=st.lists(st.integers(0, 20), min_size=1, max_size=4),
    classes=st.integers(1, 2),
    pin=st.booleans(),
)
def test_every_case_is_planned_exactly_once(
    speeds: list[float], load: float, counts: list[int], classes: int, pin: bool
) -> None:
    pool = [Server(f"s{i}", t, load, f"hw{i % classes}") for i, t in enumerate(speeds)]
    tasks = tasks_for({f"c{i}": n for i, n in enumerate(counts)})
    result = plan(pool, tasks, pin_pairs=pin)
    assert assigned(dict(result.queues)) == Counter(t.key for t in tasks)
    assert result.makespan >= lower_bound(pool, tasks) - 1e-9


# -- the online pool ---------------------------------------------------------------------------
def drain(
    pool: Pool, speed: dict[str, float], load: float = 0.0, die: dict[str, int] | None = None
):
    """Run the pool on a simulated clock; ``die``: server -> completions after which it dies.
    Returns {task key: server that finished it}."""
    die = dict(die or {})
    loaded: dict[str, Hashable] = {}
    done: dict[Hashable, str] = {}
    events: list[tuple[float, int, str, Task, float, bool]] = []
    count = 0
    idle: set[str] = set()

    def start(name: str, now: float) -> None:
        nonlocal count
        task = pool.next_for(name)
        if task is None:
            idle.add(name)
            return
        idle.discard(name)
        did_load = loaded.get(name) != task.group
        loaded[name] = task.group
        seconds = speed[name] + (load if did_load else 0.0)
        count += 1
        heapq.heappush(events, (now + seconds, count, name, task, seconds, did_load))

    for name in speed:
        start(name, 0.0)
    while events:
        now, _, name, task, seconds, did_load = heapq.heappop(events)
        if name in die and die[name] <= 0:
            continue  # died with this case in flight
        if pool.completed(name, task.key, seconds, did_load):
            assert task.key not in done, f"{task.key} ran twice"
            done[task.key] = name
        if name in die:
            die[name] -= 1
            if die[name] <= 0:
                pool.server_died(name)
                idle.discard(name)
                for other in sorted(idle):
                    start(other, now)
                continue
        start(name, now)
        for other in sorted(idle):
            start(other, now)
    return done


def test_the_pool_learns_image_and_load_times() -> None:
    pool = Pool([Server("a", 1.0, 4.0)], tasks_for({"x": 3}), alpha=0.5)
    first = pool.next_for("a")
    assert first is not None
    assert pool.completed("a", first.key, 9.0, loaded=True)  # 1 s image + 8 s load
    second = pool.next_for("a")
    assert second is not None
    assert pool.completed("a", second.key, 3.0, loaded=False)
    (stats,) = pool.stats()
    # the first image time replaces the guess (it may be far off: 1 s guessed, 3 s real) and
    # the load is re-judged with it: 9 s with a load = 3 s image + 6 s load
    assert stats.image_seconds == pytest.approx(3.0)
    assert stats.load_seconds == pytest.approx(6.0)
    assert (stats.done, stats.loads) == (2, 1)
    assert pool.remaining("a") == pytest.approx(3.0)
    third = pool.next_for("a")
    assert third is not None
    assert pool.completed("a", third.key, 2.0, loaded=False)
    (stats,) = pool.stats()
    assert stats.image_seconds == pytest.approx(2.5)  # later images averaged: 3 + 0.5 * (2 - 3)
    assert stats.load_seconds == pytest.approx(6.5)  # 9 - 2.5


def test_an_idle_server_steals_from_the_one_behind() -> None:
    pool = Pool(servers(2), tasks_for({"x": 10}))  # planned 5 + 5
    done = drain(pool, {"s0": 1.0, "s1": 3.0})
    assert len(done) == 10
    by_server = Counter(done.values())
    assert by_server["s0"] > 5
    (fast, slow) = pool.stats()
    assert fast.stolen_in > 0 or pool.replans > 0
    assert slow.done == by_server["s1"]


def test_a_steal_pays_a_load_only_for_more_than_one_image_of_gain() -> None:
    # s0 ends its one A case with s1's three B cases untouched: taking one B would end the run
    # at 2.5 s instead of 3 s (1.5 s load + 1 s image), half an image saved on learnt times
    # that are noisy early on; a load is paid for no less than one whole image
    tasks = [Task(key="A0", group="A", pair=0), *(Task(f"B{i}", "B", pair=i) for i in range(3))]
    pool = Pool([Server("s0", 1.0, 1.5, loaded="A"), Server("s1", 1.0, 1.5, loaded="B")], tasks)
    assert [t.key for t in pool.plan.queues["s0"]] == ["A0"]
    finish_next(pool, "s0", 1.0, loaded=False)
    assert pool.next_for("s0") is None
    assert pool.remaining("s1") == pytest.approx(3.0)
    # with a fourth B, moving one saves a whole image (3.5 s instead of 4 s): the plan does it
    tasks.append(Task("B3", "B", pair=3))
    pool = Pool([Server("s0", 1.0, 1.5, loaded="A"), Server("s1", 1.0, 1.5, loaded="B")], tasks)
    handed = [pool.next_for("s0") for _ in range(2)]
    assert [t.group for t in handed if t is not None] == ["A", "B"]


def test_a_server_not_timed_yet_takes_its_class_peers_times() -> None:
    # default guesses (1 s per image, 3 s per load) against servers 5 times faster: once s0 is
    # timed, s1 is taken to be as fast as its peer, not 5 times slower, and the re-plan that
    # the learnt time sets off leaves it its share instead of stripping its queue
    pool = Pool(servers(2, image=1.0, load=3.0), tasks_for({"x": 20}))
    finish_next(pool, "s0", 1.0, loaded=True)
    finish_next(pool, "s0", 0.2, loaded=False)
    s0, s1 = pool.stats()
    assert (s1.image_seconds, s1.load_seconds) == pytest.approx((0.2, 0.8))
    assert (s0.image_seconds, s0.load_seconds) == pytest.approx((0.2, 0.8))
    assert pool.remaining("s1") == pytest.approx(pool.remaining("s0"), abs=0.2)
    # its own first image replaces the borrowed time
    finish_next(pool, "s1", 1.1, loaded=True)
    finish_next(pool, "s1", 0.3, loaded=False)
    assert pool.stats()[1].image_seconds == pytest.approx(0.3)


def test_a_dead_servers_cases_run_elsewhere_once() -> None:
    pool = Pool(servers(3, load=2.0), tasks_for({"bf16": 12, "fp8": 12}))
    done = drain(pool, {"s0": 1.0, "s1": 1.0, "s2": 1.0}, load=2.0, die={"s1": 2})
    assert set(done) == {t.key for t in tasks_for({"bf16": 12, "fp8": 12})}
    assert Counter(done.values())["s1"] == 2  # then it died: its queue ran on s0 and s2
    assert pool.unfinished == 0


def test_a_late_result_from_a_dead_server_is_refused() -> None:
    pool = Pool(servers(2), tasks_for({"x": 4}))
    task = pool.next_for("s0")
    assert task is not None
    moved = pool.server_died("s0")
    assert task in moved
    assert not pool.completed("s0", task.key, 1.0, False)
    assert pool.next_for("s0") is None
    assert pool.server_of(task.key) == "s1"
    assert pool.server_died("s0") == []


def test_the_last_server_of_a_class_dying_reruns_its_pairs_elsewhere() -> None:
    pool = Pool(
        [Server("h", 1.0, 0.0, "h100"), Server("g", 1.0, 0.0, "gb10")],
        tasks_for({"bf16": 2, "fp8": 2}),
    )
    task = pool.next_for("g")
    assert task is not None
    assert task.reference
    assert pool.completed("g", task.key, 1.0, True)
    pool.server_died("g")
    assert pool.reruns == [task.key]  # its reference runs again beside its candidate
    left = []
    while (nxt := pool.next_for("h")) is not None:
        left.append(nxt)
        pool.completed("h", nxt.key, 1.0, False)
    assert task in left
    assert len(left) == 4
    assert pool.unfinished == 0


def test_no_server_left_returns_the_cases_to_the_caller() -> None:
    pool = Pool(servers(1), tasks_for({"x": 3}))
    assert len(pool.server_died("s0")) == 3
    with pytest.raises(RuntimeError, match="no live server"):
        pool.add([Task("late", "x")])


def test_cases_added_later_join_their_pairs_class() -> None:
    pool = Pool(
        [Server("h", 1.0, 0.0, "h100"), Server("g", 1.0, 0.0, "gb10")], tasks_for({"bf16": 2})
    )
    pair0 = pool.server_of("bf16-0")
    pool.add([Task("fp8-0", "fp8", pair=0), Task("fp8-0", "fp8", pair=0)])  # a duplicate too
    assert pool.server_of("fp8-0") == pair0
    assert pool.unfinished == 3
    with pytest.raises(ValueError, match="alpha"):
        Pool(servers(1), alpha=0)


def test_pinned_pairs_never_leave_the_server_that_started_them() -> None:
    pool = Pool(servers(2, load=1.0), tasks_for({"bf16": 6, "fp8": 6}), pin_pairs=True)
    done = drain(pool, {"s0": 1.0, "s1": 2.5}, load=1.0)
    owner: dict[Hashable, set[str]] = {}
    for key, name in done.items():
        owner.setdefault(int(str(key).rsplit("-", 1)[1]), set()).add(name)
    assert all(len(names) == 1 for names in owner.values())
    assert len(done) == 12


@settings(max_examples=40, deadline=None)
@given(
    speeds=st.lists(st.floats(0.5, 3.0), min_size=2, max_size=5),
    load=st.floats(0.0, 5.0),
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    pin=st.booleans(),
    deaths=st.lists(st.integers(0, 6), max_size=2),
)
def test_every_case_finishes_exactly_once_through_steals_and_deaths(
    speeds: list[float], load: float, counts: list[int], pin: bool, deaths: list[int]
) -> None:
    nominal = servers(len(speeds), load=load)
    tasks = tasks_for({f"c{i}": n for i, n in enumerate(counts)})
    pool = Pool(nominal, tasks, pin_pairs=pin)
    speed = {s.name: t for s, t in zip(nominal, speeds, strict=True)}
    die = {f"s{i}": after + 1 for i, after in enumerate(deaths[: len(speeds) - 1])}
    done = drain(pool, speed, load=load, die=die)
    assert set(done) == {t.key for t in tasks}  # and drain asserts none ran twice
    assert pool.unfinished == 0
