"""The queue-ahead runner and the pool's dispatcher against scripted servers: order, depth,
model-load reporting, failures, cancel, and a server that dies mid-run (nothing lost, nothing
run twice)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.comfyui import FinishedPrompt, GeneratedImage, ImageRef
from pytest_zimage_quality.dispatch import Dispatcher, task_of
from pytest_zimage_quality.errors import (
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    ZImageError,
)
from pytest_zimage_quality.planner import Server
from pytest_zimage_quality.pool import Pool
from pytest_zimage_quality.scheduler import HostRunner, ImageRequest
from pytest_zimage_quality.suite import load_suite
from tests.helpers import write_small_suite


class ScriptedServer:
    """A one-worker server: runs submitted prompts in order, each taking ``seconds``."""

    def __init__(
        self, seconds: float = 0.01, fail: set[str] | None = None, url: str = "http://scripted"
    ) -> None:
        self.base_url = url
        self.down = False  # refuses connections from now on
        self.seconds = seconds
        self.fail = fail or set()
        self.cond = threading.Condition()
        self.queue: list[str] = []
        self.done: dict[str, str] = {}
        self.submitted: list[str] = []
        self.fetched: list[str] = []
        self.graphs: dict[str, Any] = {}
        self.max_on_server = 0
        self.idle_gaps = 0
        self.stop = False
        self.thread = threading.Thread(target=self.work, daemon=True)
        self.thread.start()

    def work(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stop:
                    self.cond.wait()
                if self.stop:
                    return
                pid = self.queue[0]
            time.sleep(self.seconds)
            with self.cond:
                if self.queue and self.queue[0] == pid:
                    self.queue.pop(0)
                    self.done[pid] = "error" if self.graphs[pid]["case"] in self.fail else "ok"
                    if not self.queue:
                        self.idle_gaps += 1
                self.cond.notify_all()

    # -- the SubmissionClient protocol --
    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        output_node: str | None = None,
    ) -> str:
        assert prompt_id is not None
        if self.down:
            raise ComfyUIUnreachableError("connection refused", host=self.base_url)
        with self.cond:
            self.submitted.append(graph["case"])
            self.graphs[prompt_id] = graph
            self.queue.append(prompt_id)
            self.max_on_server = max(self.max_on_server, len(self.queue))
            self.cond.notify_all()
        return prompt_id

    def wait(self, prompt_id: str, *, timeout: float | None = None) -> FinishedPrompt:
        with self.cond:
            if not self.cond.wait_for(lambda: prompt_id in self.done, timeout=timeout or 30):
                raise AssertionError("scripted wait timed out")
            state = self.done[prompt_id]
        if self.down:
            raise ComfyUIUnreachableError("connection refused", host=self.base_url)
        if state == "error":
            raise GenerationFailedError("boom", node_id="3", node_type="KSampler")
        if state == "cancelled":
            raise GenerationInterruptedError("cancelled")
        ref = ImageRef(f"{prompt_id}.png", "", "output")
        return FinishedPrompt(prompt_id, {"9": (ref,)}, (), 0.01, fully_cached=False)

    def fetch_result(
        self, finished: FinishedPrompt, *, output_node: str | None = None
    ) -> GeneratedImage:
        assert output_node is not None
        (ref,) = finished.outputs[output_node]
        png = f"png:{self.graphs[finished.prompt_id]['case']}".encode()
        self.fetched.append(finished.prompt_id)
        return GeneratedImage(
            png, "sha", finished.prompt_id, self.base_url, 0.1, 0.01, image_ref=ref
        )

    def cancel_all(self) -> None:
        with self.cond:
            for pid in self.queue:
                self.done[pid] = "cancelled"
            self.queue.clear()
            self.cond.notify_all()


@pytest.fixture
def jobs(tmp_path: Path) -> list[ImageRequest]:
    suite = load_suite(write_small_suite(tmp_path))
    return [
        ImageRequest(
            case=case,
            suite=suite,
            graph={"case": case.id},
            graph_hash=case.id,
            cache_key=case.id,
            group=case.config.key,
        )
        for case in suite.cases()
    ]


class ListSource:
    """A work source that hands out its jobs in order to whichever runner asks."""

    def __init__(self, jobs: list[ImageRequest]) -> None:
        self.jobs = list(jobs)
        self.cond = threading.Condition()
        self.completed_loads: list[tuple[str, bool]] = []
        self.abandoned: list[str] = []
        self.died: list[str] = []
        self.stopping = False

    def next_for(self, host: str) -> ImageRequest | None:
        with self.cond:
            self.cond.wait_for(lambda: self.jobs or self.stopping)
            return self.jobs.pop(0) if self.jobs else None

    def completed(self, host: str, job: ImageRequest, seconds: float, loaded: bool) -> bool:
        self.completed_loads.append((job.case.id, loaded))
        return True

    def abandon(self, host: str, job: ImageRequest) -> None:
        self.abandoned.append(job.case.id)

    def server_died(self, host: str, error: ZImageError) -> None:
        self.died.append(host)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class Collector:
    def __init__(self, expected: int = 0) -> None:
        self.lock = threading.Lock()
        self.delivered: dict[str, GeneratedImage] = {}
        self.failed: dict[str, ZImageError] = {}
        self.done = threading.Event()
        self.expected = expected

    def deliver(self, job: ImageRequest, generated: GeneratedImage) -> None:
        with self.lock:
            assert job.case.id not in self.delivered, f"{job.case.id} delivered twice"
            self.delivered[job.case.id] = generated
        self._check()

    def fail(self, job: ImageRequest, error: ZImageError) -> None:
        with self.lock:
            self.failed[job.case.id] = error
        self._check()

    def _check(self) -> None:
        if len(self.delivered) + len(self.failed) >= self.expected:
            self.done.set()


def run(
    server: ScriptedServer, jobs: list[ImageRequest], *, depth: int = 2
) -> tuple[HostRunner, Collector, ListSource]:
    sink = Collector(len(jobs))
    source = ListSource(jobs)
    runner = HostRunner(
        server, depth=depth, timeout=30, source=source, deliver=sink.deliver, fail=sink.fail
    )
    runner.start()
    assert sink.done.wait(30)
    source.stop()
    runner.stop(cancel=False)
    return runner, sink, source


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_submits_in_plan_order_and_never_more_than_depth(
    jobs: list[ImageRequest], depth: int
) -> None:
    server = ScriptedServer()
    runner, sink, _ = run(server, jobs, depth=depth)
    assert server.submitted == [job.case.id for job in jobs]
    assert server.max_on_server <= depth
    assert runner.submitted == len(jobs)
    assert sink.delivered["cat-fp8-s2"].png == b"png:cat-fp8-s2"
    assert sorted(server.fetched) == sorted(job.prompt_id for job in jobs)  # the client's path
    assert not sink.failed
    server.stop = True


def test_with_depth_two_the_server_never_waits_between_images(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer(seconds=0.02)
    run(server, jobs[:12], depth=2)
    # The queue ran dry only once: at the very end.
    assert server.idle_gaps == 1
    server.stop = True


def test_a_model_load_is_reported_when_the_config_changes(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer()
    order = [jobs[0], jobs[1], jobs[9], jobs[10], jobs[2]]  # bf16, bf16, fp8, fp8, bf16
    _, _, source = run(server, order)
    assert [loaded for _, loaded in source.completed_loads] == [True, False, True, False, True]
    server.stop = True


def test_a_failed_generation_fails_only_its_case(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer(fail={"ink-fp8-s2"})
    _, sink, source = run(server, jobs)
    assert list(sink.failed) == ["ink-fp8-s2"]
    assert isinstance(sink.failed["ink-fp8-s2"], GenerationFailedError)
    assert source.abandoned == ["ink-fp8-s2"]
    assert len(sink.delivered) == len(jobs) - 1
    server.stop = True


def test_stop_with_cancel_removes_our_pending_prompts(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer(seconds=0.2)
    sink = Collector(10**6)
    source = ListSource(jobs)
    runner = HostRunner(
        server, depth=2, timeout=30, source=source, deliver=sink.deliver, fail=sink.fail
    )
    runner.start()
    deadline = time.monotonic() + 10
    while len(server.submitted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop()
    on_server = runner.stop(cancel=True)
    assert len(server.submitted) <= 3
    assert 1 <= len(on_server) <= 2
    assert not server.queue
    server.stop = True


def _pool_run(
    servers: list[ScriptedServer], jobs: list[ImageRequest], *, kill: ScriptedServer | None = None
) -> tuple[Dispatcher, Collector, list[HostRunner]]:
    sink = Collector(len(jobs))
    pool = Pool([Server(s.base_url, 0.01, 0.0, "hw") for s in servers], [task_of(j) for j in jobs])
    dispatcher = Dispatcher(pool, jobs, fail=sink.fail)
    runners = [
        HostRunner(s, depth=2, timeout=30, source=dispatcher, deliver=sink.deliver, fail=sink.fail)
        for s in servers
    ]
    for runner in runners:
        runner.start()
    if kill is not None:
        deadline = time.monotonic() + 10
        while len(kill.submitted) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        kill.down = True
    assert sink.done.wait(30)
    dispatcher.stop()
    for runner in runners:
        runner.stop(cancel=False)
    return dispatcher, sink, runners


def test_the_pool_gives_every_server_work_and_each_case_once(jobs: list[ImageRequest]) -> None:
    servers = [ScriptedServer(url=f"http://s{i}") for i in range(4)]
    dispatcher, sink, _ = _pool_run(servers, jobs)
    assert sorted(sink.delivered) == sorted(j.case.id for j in jobs)
    assert not sink.failed
    assert all(s.submitted for s in servers)
    submitted = [case for s in servers for case in s.submitted]
    assert len(submitted) == len(set(submitted)) == len(jobs)
    assert sum(s.done for s in dispatcher.stats()) == len(jobs)
    for server in servers:
        server.stop = True


def test_a_dead_servers_cases_move_to_the_others_none_lost(jobs: list[ImageRequest]) -> None:
    servers = [ScriptedServer(seconds=0.02, url=f"http://s{i}") for i in range(2)]
    dispatcher, sink, runners = _pool_run(servers, jobs, kill=servers[0])
    assert sorted(sink.delivered) == sorted(j.case.id for j in jobs)
    assert not sink.failed
    assert runners[0].dead
    assert dispatcher.moved
    stats = {s.name: s for s in dispatcher.stats()}
    assert not stats["http://s0"].alive
    assert stats["http://s0"].done + stats["http://s1"].done == len(jobs)
    for server in servers:
        server.stop = True


def test_when_every_server_dies_the_cases_fail_with_one_clear_error(
    jobs: list[ImageRequest],
) -> None:
    server = ScriptedServer(seconds=0.02)
    _, sink, _ = _pool_run([server], jobs, kill=server)
    assert sink.failed
    assert len(sink.delivered) + len(sink.failed) == len(jobs)
    error = next(iter(sink.failed.values()))
    assert "every server of the pool is unreachable" in str(error)
    server.stop = True
