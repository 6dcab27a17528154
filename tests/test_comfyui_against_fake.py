"""ComfyUIClient end to end against the protocol-faithful FakeComfyUI (real HTTP + WebSocket).

Each test arms one of the fake's faults and checks what the client makes of it: the error
class and message a user would read, and what the server saw (request log, runs, queue).
"""

from __future__ import annotations

import gc
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.comfyui import ComfyUIClient, Progress
from pytest_zimage_quality.errors import (
    ComfyUIHTTPError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ImageDecodeError,
    ModelFilesMissingError,
    WorkflowRejectedError,
)
from pytest_zimage_quality.testing import FakeComfyUI

WORKFLOW = Path(__file__).resolve().parent.parent / "example_suite" / "z_image_turbo_t2i_api.json"
OUTPUT = "9"


def graph(seed: int = 42, *, unet: str | None = None, size: int = 64) -> dict[str, Any]:
    """The example Z-Image graph, small, with a seed (and optionally another transformer)."""
    g: dict[str, Any] = json.loads(WORKFLOW.read_text("utf-8"))
    g["13"]["inputs"]["width"] = g["13"]["inputs"]["height"] = size
    g["3"]["inputs"]["seed"] = seed
    g[OUTPUT]["inputs"]["filename_prefix"] = f"zq_test/s{seed}"
    if unet is not None:
        g["28"]["inputs"]["unet_name"] = unet
    return g


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a leaked socket fails the test that leaked it."""
    yield
    gc.collect()


@pytest.fixture
def make_fake() -> Iterator[Callable[..., FakeComfyUI]]:
    made: list[FakeComfyUI] = []

    def make(**options: Any) -> FakeComfyUI:
        fake = FakeComfyUI(**options).start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()


@pytest.fixture
def fake(make_fake: Callable[..., FakeComfyUI]) -> FakeComfyUI:
    return make_fake()


@pytest.fixture
def make_client() -> Iterator[Callable[..., ComfyUIClient]]:
    made: list[ComfyUIClient] = []

    def make(url: str, **options: Any) -> ComfyUIClient:
        settings: dict[str, Any] = {
            "backoff": 0.01,
            "poll_interval": 0.02,
            "confirm_interval": 2.0,
            "timeout": 30.0,
        }
        settings.update(options)
        client = ComfyUIClient(url, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]) -> ComfyUIClient:
    c = make_client(fake.url)
    c.connect()
    assert c.uses_websocket
    return c


def posts(fake: FakeComfyUI) -> list[Any]:
    return [json.loads(r.body) for r in fake.requests if (r.method, r.path) == ("POST", "/prompt")]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------


def test_generation_with_progress(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    seen: list[Progress] = []
    client.add_progress_listener(seen.append)
    generation = client.generate(graph(), output_node=OUTPUT)
    ref = generation.image_ref
    assert ref is not None
    assert generation.png.startswith(b"\x89PNG")
    assert generation.png == fake.read_file(ref.filename, ref.subfolder, ref.type)
    assert generation.sha256 == hashlib.sha256(generation.png).hexdigest()
    assert ref.subfolder == "zq_test"
    assert generation.cached == ""
    assert generation.server_seconds is not None
    assert generation.wall_seconds is not None
    assert generation.wall_seconds > 0
    assert fake.generations == 1
    (body,) = posts(fake)
    assert body["prompt_id"] == generation.prompt_id
    assert body["client_id"] == client.client_id
    assert client.client_id in fake.connected_clients
    assert client.flush_progress()
    ksampler = [p for p in seen if p.class_type == "KSampler"]
    assert ksampler
    assert ksampler[-1].value == ksampler[-1].max


def test_server_info(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    info = client.connect()
    assert info.comfyui_version == fake.version
    assert info.gpu_name == "cpu"
    assert info.url == fake.url


def test_cache_replay_is_reported(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    first = client.generate(graph(), output_node=OUTPUT)
    again = client.generate(graph(), output_node=OUTPUT)
    assert again.cached == "server"
    assert again.image_ref == first.image_ref
    assert client.wait(again.prompt_id).fully_cached
    assert fake.generations == 1


def test_validation_error_in_the_servers_words(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    bad = graph()
    bad["13"]["inputs"]["width"] = 0
    with pytest.raises(WorkflowRejectedError) as info:
        client.generate(bad, output_node=OUTPUT)
    assert "node 13 (EmptySD3LatentImage) input width" in str(info.value)
    assert fake.url in str(info.value)
    unknown = graph()
    unknown["50"] = {"class_type": "NoSuchNode", "inputs": {}}
    unknown[OUTPUT]["inputs"]["images"] = ["50", 0]
    with pytest.raises(WorkflowRejectedError) as info:
        client.submit(unknown, output_node=OUTPUT)
    assert "NoSuchNode" in str(info.value)
    assert fake.generations == 0


def test_missing_model_file(
    make_fake: Callable[..., FakeComfyUI], make_client: Callable[..., ComfyUIClient]
) -> None:
    fake = make_fake(
        models={
            "diffusion_models": ["z_image_turbo_bf16.safetensors"],
            "text_encoders": ["qwen_3_4b.safetensors"],
            "vae": ["ae.safetensors"],
        }
    )
    client = make_client(fake.url)
    nvfp4 = graph(unet="z_image_turbo_nvfp4.safetensors")
    with pytest.raises(ModelFilesMissingError) as info:
        client.check_graphs({"bf16": graph(), "nvfp4": nvfp4})
    assert [(m["config"], m["file"], m["folder"]) for m in info.value.missing] == [
        ("nvfp4", "z_image_turbo_nvfp4.safetensors", "diffusion_models")
    ]
    assert "copy it into models/diffusion_models/" in str(info.value)
    with pytest.raises(WorkflowRejectedError) as rejected:
        client.submit(nvfp4, output_node=OUTPUT)
    assert "models/diffusion_models" in rejected.value.hint
    fake.add_model_file("diffusion_models", "z_image_turbo_nvfp4.safetensors")
    client.check_graphs({"nvfp4": nvfp4})  # live scan: no restart needed


def test_execution_error(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.fail_next_run(
        node_type="KSampler", exception_type="torch.OutOfMemoryError", message="CUDA out of memory"
    )
    with pytest.raises(GenerationFailedError) as info:
        client.generate(graph(), output_node=OUTPUT)
    error = info.value
    assert (error.node_id, error.node_type, error.exception_type) == (
        "3",
        "KSampler",
        "torch.OutOfMemoryError",
    )
    assert "CUDA out of memory" in str(error)
    assert client.generate(graph(), output_node=OUTPUT).png  # the next run is fine


def test_cancel_all_stops_only_our_prompts(
    fake: FakeComfyUI, client: ComfyUIClient, make_client: Callable[..., ComfyUIClient]
) -> None:
    fake.faults.stall_generation(30)
    ours = [client.submit(graph(seed), output_node=OUTPUT) for seed in (1, 2)]
    other = make_client(fake.url)
    theirs = other.submit(graph(3), output_node=OUTPUT)
    wait_until(lambda: ours[0] in client.queue()[0], "our first prompt to run")
    outcomes: dict[str, BaseException] = {}

    def wait(pid: str) -> None:
        try:
            client.wait(pid)
        except GenerationInterruptedError as exc:
            outcomes[pid] = exc

    waiters = [threading.Thread(target=wait, args=(pid,)) for pid in ours]
    for thread in waiters:
        thread.start()
    client.cancel_all()
    for thread in waiters:
        thread.join(10)
    assert sorted(outcomes) == sorted(ours)
    assert other.result(theirs).png  # the other client's prompt ran
    running, pending = client.queue()
    assert running == pending == []
    assert [run.prompt_id for run in fake.runs if run.prompt_id in ours] == [ours[0]]


def test_timeout_interrupts_our_running_prompt(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.stall_generation(30)
    pid = client.submit(graph(), output_node=OUTPUT)
    with pytest.raises(GenerationTimeoutError) as info:
        client.wait(pid, timeout=0.5)
    assert f"prompt {pid} did not finish within 0.5 s on {fake.url}" in str(info.value)
    fake.wait_idle(10)  # the interrupt landed: the server is free again
    assert client.queue() == ([], [])
    assert fake.generations == 0


def test_dropped_websocket_is_reconnected(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.drop_websocket(after_frames=2)
    generation = client.generate(graph(), output_node=OUTPUT)
    assert generation.png

    def sockets() -> list[Any]:
        return [r for r in fake.requests if r.path == "/ws"]

    wait_until(lambda: len(sockets()) == 2 and client.uses_websocket, "the reconnect")
    assert all(r.query.get("clientId") == client.client_id for r in sockets())
    assert client.generate(graph(2), output_node=OUTPUT).png  # and the new socket works
    assert len(sockets()) == 2


@pytest.mark.parametrize("mode", ["truncate", "garbage"])
def test_corrupt_png(fake: FakeComfyUI, client: ComfyUIClient, mode: str) -> None:
    fake.faults.corrupt_view(mode, times=4)  # type: ignore[arg-type]
    with pytest.raises(ImageDecodeError) as info:
        client.generate(graph(), output_node=OUTPUT)
    assert "(subfolder 'zq_test', type 'output')" in str(info.value)
    assert fake.url in str(info.value)


@pytest.mark.parametrize("mode", ["truncate", "garbage"])
def test_one_corrupt_download_is_fetched_again(
    fake: FakeComfyUI, client: ComfyUIClient, mode: str
) -> None:
    fake.faults.corrupt_view(mode, times=1)  # type: ignore[arg-type]
    image = client.generate(graph(), output_node=OUTPUT)
    assert image.png.startswith(b"\x89PNG")
    assert len([r for r in fake.requests if r.path == "/view"]) == 2


def test_connection_refused(fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]) -> None:
    client = make_client(fake.url, retries=1, outage=0.3)
    client.connect()
    fake.faults.refuse_connections()  # the host goes down while we use it
    with pytest.raises(ComfyUIUnreachableError) as info:
        client.queue()  # waited out for the outage budget, then refused
    assert f"ComfyUI at {fake.url} has refused connections for longer than" in str(info.value)
    assert "the server went away during the run" in str(info.value)
    assert "--listen" not in str(info.value)
    fake.faults.restore_connections()
    assert client.queue() == ([], [])
    assert client.generate(graph(), output_node=OUTPUT).png


def test_nothing_listening(make_client: Callable[..., ComfyUIClient]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = make_client(url, retries=2)
    with pytest.raises(ComfyUIUnreachableError) as info:
        client.connect()
    assert f"cannot connect to ComfyUI at {url}" in str(info.value)
    assert "hint:" in str(info.value)


def test_polling_without_websocket(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, use_websocket=False)
    generation = client.generate(graph(), output_node=OUTPUT)
    assert generation.png
    assert client.wait(generation.prompt_id).source == "history"
    assert not [r for r in fake.requests if r.path == "/ws"]


def test_5xx_retries_and_errors(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.http_error("/view", 503, times=2)
    fake.faults.http_error("/prompt", 503, times=1)
    assert client.generate(graph(), output_node=OUTPUT).png
    assert len(posts(fake)) == 2  # the 503 was not handled: sent again, queued once
    assert len(fake.runs) == 1
    fake.faults.http_error("/prompt", 500, body="Server got itself in trouble")
    with pytest.raises(ComfyUIHTTPError) as info:
        client.submit(graph(7), output_node=OUTPUT)
    assert info.value.status == 500
    assert "Server got itself in trouble" in str(info.value)
    assert len(posts(fake)) == 3


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_slow_submit_is_not_sent_twice(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, http_timeout=1.0)
    client.connect()
    fake.faults.stall("/prompt", 1.2)  # longer than the client waits for the reply
    pid = client.submit(graph(), output_node=OUTPUT)
    assert client.result(pid).png
    assert len(posts(fake)) == 1
    assert [run.prompt_id for run in fake.runs] == [pid]


def test_parallel_results(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.image_latency = 0.02
    pids = [client.submit(graph(seed), output_node=OUTPUT) for seed in range(4)]
    results: dict[str, bytes] = {}

    def collect(pid: str) -> None:
        results[pid] = client.result(pid).png

    threads = [threading.Thread(target=collect, args=(pid,)) for pid in reversed(pids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == sorted(pids)
    assert len(set(results.values())) == 4  # four seeds, four images
    assert fake.generations == 4
