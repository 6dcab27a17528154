"""The queue-ahead runner against a scripted client: order, depth, cache hits, failures, cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.comfyui import FinishedPrompt, GeneratedImage, ImageRef
from pytest_zimage_quality.errors import (
    GenerationFailedError,
    GenerationInterruptedError,
    ZImageError,
)
from pytest_zimage_quality.scheduler import HostRunner, ImageRequest
from pytest_zimage_quality.suite import load_suite
from tests.helpers import write_small_suite


class ScriptedServer:
    """A one-worker server: runs submitted prompts in order, each taking ``seconds``."""

    def __init__(self, seconds: float = 0.01, fail: set[str] | None = None) -> None:
        self.base_url = "http://scripted"
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
            case=case, suite=suite, graph={"case": case.id}, graph_hash=case.id, cache_key=case.id
        )
        for case in suite.cases()
    ]


class Collector:
    def __init__(self) -> None:
        self.delivered: dict[str, GeneratedImage] = {}
        self.failed: dict[str, ZImageError] = {}
        self.done = threading.Event()
        self.expected = 0

    def deliver(self, job: ImageRequest, generated: GeneratedImage) -> None:
        self.delivered[job.case.id] = generated
        self._check()

    def fail(self, job: ImageRequest, error: ZImageError) -> None:
        self.failed[job.case.id] = error
        self._check()

    def _check(self) -> None:
        if len(self.delivered) + len(self.failed) >= self.expected:
            self.done.set()


def run(
    server: ScriptedServer,
    jobs: list[ImageRequest],
    *,
    depth: int = 2,
    cached: frozenset[str] = frozenset(),
) -> tuple[HostRunner, Collector]:
    sink = Collector()
    sink.expected = len(jobs)

    def lookup(job: ImageRequest) -> GeneratedImage | None:
        if job.case.id in cached:
            return GeneratedImage(b"cached", "0", "", "", None, None, "plugin")
        return None

    runner = HostRunner(
        server, depth=depth, timeout=30, deliver=sink.deliver, fail=sink.fail, lookup_cache=lookup
    )
    runner.enqueue(jobs)
    runner.start()
    assert sink.done.wait(30)
    runner.stop(cancel=False)
    return runner, sink


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_submits_in_plan_order_and_never_more_than_depth(
    jobs: list[ImageRequest], depth: int
) -> None:
    server = ScriptedServer()
    runner, sink = run(server, jobs, depth=depth)
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


def test_cache_hits_are_delivered_without_submission(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer()
    cached = frozenset(job.case.id for job in jobs if job.case.is_reference)
    runner, sink = run(server, jobs, cached=cached)
    assert runner.cache_hits == 9
    assert set(server.submitted) == {job.case.id for job in jobs} - cached
    assert sink.delivered["cat-bf16-s1"].cached == "plugin"
    server.stop = True


def test_a_failed_generation_fails_only_its_case(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer(fail={"ink-fp8-s2"})
    _, sink = run(server, jobs)
    assert list(sink.failed) == ["ink-fp8-s2"]
    assert isinstance(sink.failed["ink-fp8-s2"], GenerationFailedError)
    assert len(sink.delivered) == len(jobs) - 1
    server.stop = True


def test_enqueue_skips_known_jobs(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer()
    runner = HostRunner(
        server,
        depth=2,
        timeout=5,
        deliver=lambda j, g: None,
        fail=lambda j, e: None,
        lookup_cache=lambda j: None,
    )
    assert len(runner.enqueue(jobs[:3])) == 3
    assert runner.enqueue(jobs[:5]) == jobs[3:5]
    assert runner.knows(jobs[0].key)
    server.stop = True


def test_stop_with_cancel_removes_our_pending_prompts(jobs: list[ImageRequest]) -> None:
    server = ScriptedServer(seconds=0.2)
    sink = Collector()
    sink.expected = 10**6
    runner = HostRunner(
        server,
        depth=2,
        timeout=30,
        deliver=sink.deliver,
        fail=sink.fail,
        lookup_cache=lambda j: None,
    )
    runner.enqueue(jobs)
    runner.start()
    deadline = time.monotonic() + 10
    while len(server.submitted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    unsent = runner.stop(cancel=True)
    assert len(server.submitted) <= 3
    assert len(unsent) >= len(jobs) - 3
    assert not server.queue
    server.stop = True
