"""FakeComfyUI's own features: rendering, simulated time, counters, faults, fixtures.

The protocol itself (shapes, status codes, frame order) is checked in ``tests/contract``,
against the fake and against a real ComfyUI; this module covers what only the fake has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from pytest_zimage_quality._fake import executor as executor_module
from pytest_zimage_quality._fake.files import FileStore
from pytest_zimage_quality.testing import (
    DEFAULT_MODELS,
    FakeComfyUI,
    FakeComfyUIError,
    RunInfo,
    default_level,
    models_for_graphs,
)
from tests.helpers.fake_graphs import CONFIGS, decodes, image_of, run, zimage_graph


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    with FakeComfyUI() as server:
        yield server


@pytest.fixture
def http(fake: FakeComfyUI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=30) as client:
        yield client


# -- lifecycle and helpers ----------------------------------------------------------------------


def test_lifecycle_url_and_request_log() -> None:
    fake = FakeComfyUI()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.url
    with fake, httpx.Client(base_url=fake.url) as http:
        assert fake.url == f"http://127.0.0.1:{fake.port}"
        assert fake.ws_url == f"ws://127.0.0.1:{fake.port}/ws"
        with pytest.raises(RuntimeError, match="already started"):
            fake.start()
        http.post("/api/free", json={"free_memory": True})
        http.get("/history/abc", params={"max_items": 1})
        first, second = fake.requests
        assert (first.method, first.path, first.route, first.json) == (
            "POST", "/api/free", "/free", {"free_memory": True},
        )  # fmt: skip
        assert (second.route, second.query) == ("/history/{prompt_id}", {"max_items": "1"})
        fake.clear_requests()
        assert fake.requests == []
    assert not fake.is_running
    fake.stop()  # idempotent


def test_models_for_graphs_maps_loader_inputs_to_folders() -> None:
    graphs = [zimage_graph(config) for config in CONFIGS]
    graphs.append({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd.ckpt"}},
                   "2": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}}})  # fmt: skip
    assert models_for_graphs(graphs) == {
        "checkpoints": ["sd.ckpt"],
        "diffusion_models": sorted(
            {"z_image_turbo_bf16.safetensors", "z_image_turbo_fp8_e4m3fn.safetensors",
             "z_image_turbo_nvfp4.safetensors"}
        ),
        "text_encoders": ["qwen_3_4b.safetensors", "qwen_3_4b_fp8_mixed.safetensors"],
        "vae": ["ae.safetensors"],
    }  # fmt: skip
    assert FakeComfyUI.models_for_graphs(graphs[:1])["vae"] == ["ae.safetensors"]
    assert {k: sorted(v) for k, v in DEFAULT_MODELS.items()} == {
        k: v for k, v in models_for_graphs(graphs[:4]).items()
    }


def test_default_levels_follow_file_names() -> None:
    assert default_level("diffusion_models", "z_image_turbo_bf16.safetensors") == 0.0
    assert default_level("diffusion_models", "z_image_turbo_fp8_e4m3fn.safetensors") == 0.15
    assert default_level("diffusion_models", "z_image_turbo_nvfp4.safetensors") == 0.3
    assert default_level("text_encoders", "qwen_3_4b_fp8_mixed.safetensors") == 0.05


def test_system_stats_device_and_model_folders() -> None:
    name = "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
    models = {"diffusion_models": ["x.safetensors"]}
    with FakeComfyUI(device=name, models=models) as fake, httpx.Client(base_url=fake.url) as http:
        stats = http.get("/system_stats").json()
        device = stats["devices"][0]
        assert (device["name"], device["type"], device["index"]) == (name, "cuda", 0)
        assert device["vram_total"] == 80 * 1024**3
        assert "--cpu" not in stats["system"]["argv"]
        assert http.get("/models/diffusion_models").json() == ["x.safetensors"]
        fake.add_model_file("diffusion_models", "y.safetensors")
        spec = http.get("/object_info/UNETLoader").json()["UNETLoader"]
        assert spec["input"]["required"]["unet_name"][0] == ["x.safetensors", "y.safetensors"]
        fake.remove_model_file("diffusion_models", "x.safetensors")
        assert fake.models["diffusion_models"] == ["y.safetensors"]


def test_view_metadata_identity_changes_when_a_file_is_replaced(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    params = {"filename": "z_image_turbo_nvfp4.safetensors"}
    before = http.get("/view_metadata/diffusion_models", params=params)
    assert before.status_code == 200
    assert before.json()["fake_comfyui.revision"] == "0"
    assert fake.replace_model_file("z_image_turbo_nvfp4.safetensors") == 1
    after = http.get("/view_metadata/diffusion_models", params=params).json()
    assert after["fake_comfyui.sha256"] != before.json()["fake_comfyui.sha256"]
    for folder, query in [
        ("vae", params),
        ("diffusion_models", {"filename": "missing.safetensors"}),
        ("diffusion_models", {"filename": "model.ckpt"}),
        ("diffusion_models", {}),
    ]:
        assert http.get(f"/view_metadata/{folder}", params=query).status_code == 404
    with pytest.raises(KeyError):
        fake.replace_model_file("missing.safetensors")


# -- rendering ---------------------------------------------------------------------------------------


def test_images_are_deterministic_sized_and_carry_the_graph(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    graph = zimage_graph(size=96)
    graph["13"]["inputs"].update(width=160, height=96)
    entry = run(fake, http, graph, extra_data={"extra_pnginfo": {"workflow": {"id": "w"}}})
    pixels, text = image_of(http, entry)
    assert pixels.shape == (96, 160, 3)
    assert json.loads(text["prompt"]) == graph
    assert json.loads(text["workflow"]) == {"id": "w"}
    with FakeComfyUI(disable_metadata=True) as other, httpx.Client(base_url=other.url) as client:
        again = run(other, client, graph)
        other_pixels, other_text = image_of(client, again)
    assert other_text == {}
    assert np.array_equal(pixels, other_pixels)  # same prompt, seed and files: same image


def test_drift_grows_with_quantization_level(fake: FakeComfyUI, http: httpx.Client) -> None:
    for text in ("photorealistic portrait of a woman", "anime style illustration, kimono"):
        images = {c: image_of(http, run(fake, http, zimage_graph(c, text)))[0] for c in CONFIGS}
        distance = {c: float(np.abs(images[c] - images["bf16"]).mean()) for c in CONFIGS}
        assert distance["bf16"] == 0.0
        assert 0.0 < distance["fp8scaled"] < distance["nvfp4"] < distance["nvfp4_fp8e"]
        other_seed = image_of(http, run(fake, http, zimage_graph("bf16", text, seed=7)))[0]
        assert float(np.abs(other_seed - images["bf16"]).mean()) > distance["fp8scaled"]
    levels = [fake.quantization_level(f) for f in CONFIGS["nvfp4_fp8e"]]
    assert levels == [0.3, 0.05]


def test_broken_model_renders_off_prompt_images() -> None:
    nvfp4 = "z_image_turbo_nvfp4.safetensors"
    with FakeComfyUI(broken_models=[nvfp4]) as fake, httpx.Client(base_url=fake.url) as http:
        reference = image_of(http, run(fake, http, zimage_graph("bf16")))[0]
        broken = image_of(http, run(fake, http, zimage_graph("nvfp4")))[0]
        fine = image_of(http, run(fake, http, zimage_graph("fp8scaled")))[0]
        assert np.abs(broken - reference).mean() > 2 * np.abs(fine - reference).mean()
        fake.set_broken(nvfp4, broken=False)
        repaired = image_of(http, run(fake, http, zimage_graph("nvfp4", seed=43)))[0]
        assert repaired.shape == reference.shape
    with (
        FakeComfyUI(broken_models=[nvfp4], broken_style="noise") as fake,
        httpx.Client(base_url=fake.url) as http,
    ):
        noisy = image_of(http, run(fake, http, zimage_graph("nvfp4")))[0]
        assert np.abs(np.diff(noisy, axis=1)).mean() > 5 * np.abs(np.diff(reference, axis=1)).mean()


def test_save_counter_per_prefix_and_subfolder(fake: FakeComfyUI, http: httpx.Client) -> None:
    names = []
    for seed in (1, 2):
        graph = zimage_graph(seed=seed, size=32)
        graph["9"]["inputs"]["filename_prefix"] = "case/a"
        names.append(run(fake, http, graph)["outputs"]["9"]["images"][0])
    assert [n["filename"] for n in names] == ["a_00001_.png", "a_00002_.png"]
    assert {n["subfolder"] for n in names} == {"case"}
    assert fake.read_file("a_00002_.png", "case").startswith(b"\x89PNG")
    assert (fake.output_dir / "output" / "case" / "a_00001_.png").is_file()


def test_file_store_refuses_a_prefix_escaping_the_output_dir(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(ValueError, match="outside the output folder"):
        store.save("output", "../../escape", [b"png"])


# -- simulated time and counters ----------------------------------------------------------------------


def test_model_loads_generations_and_cache(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.load_latency = 0.05
    run(fake, http, zimage_graph("bf16", seed=1))
    run(fake, http, zimage_graph("bf16", seed=2))  # same files: no load
    run(fake, http, zimage_graph("fp8scaled", seed=1))
    graph = zimage_graph("bf16", seed=1)
    run(fake, http, graph)
    assert (fake.model_loads, fake.generations, fake.cached_runs) == (3, 4, 0)
    run(fake, http, graph)  # identical resubmission: served from cache
    assert (fake.generations, fake.cached_runs) == (4, 1)
    assert fake.runs[-1].fully_cached
    assert fake.runs[-1].images_generated == 0
    assert fake.loaded_models == frozenset(CONFIGS["bf16"]) | {"ae.safetensors"}
    http.post("/free", json={"unload_models": True})
    fake.wait_idle()
    assert fake.model_unloads == 1
    assert fake.loaded_models == frozenset()
    run(fake, http, zimage_graph("bf16", seed=3))
    assert fake.model_loads == 4
    loads = [i for i in fake.timeline if i.kind == "load"]
    assert len(loads) == 4
    assert all(i.end - i.start >= 0.05 for i in loads)


def test_image_latency_and_idle_fraction(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.image_latency = 0.1
    start = fake.timeline[-1].end if fake.timeline else 0.0
    ids = [
        http.post("/prompt", json={"prompt": zimage_graph(seed=s, size=32)}).json()["prompt_id"]
        for s in (1, 2, 3)
    ]
    fake.wait_idle(30)
    runs = [i for i in fake.timeline if i.kind == "run" and i.start >= start]
    assert [i.prompt_id for i in runs] == ids
    # image_latency is the whole run's time: the fake's own rendering is taken out of the sleep
    assert all(i.end - i.start >= 0.09 for i in runs)
    assert sum(i.end - i.start for i in runs) == pytest.approx(0.3, abs=0.15)
    window = (runs[0].start, runs[-1].end)
    assert fake.busy_time(*window) == pytest.approx(sum(i.end - i.start for i in runs))
    assert 0.0 <= fake.idle_fraction(*window) < 0.5  # queued back to back
    assert fake.idle_fraction(window[1], window[1] + 10) == 1.0


def test_interrupt_lands_at_a_sampler_tick(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.image_latency = 30.0
    with connect(f"{fake.ws_url}?clientId=c1") as ws:
        prompt_id = http.post("/prompt", json={"prompt": zimage_graph(), "client_id": "c1"}).json()[
            "prompt_id"
        ]
        while json.loads(ws.recv(timeout=10)).get("data", {}).get("node") != "3":
            pass  # until executing(3): the KSampler started
        http.post("/interrupt", json={"prompt_id": prompt_id})
        fake.wait_idle(10)  # far less than the 30 s the image would take
    record = fake.runs[-1]
    assert record.status == "interrupted"
    assert record.images_generated == 0
    assert fake.generations == 0
    assert [i.kind for i in fake.timeline if i.prompt_id == prompt_id] == [
        "load",
        "generate",
        "run",
    ]


# -- faults ----------------------------------------------------------------------------------------------


def test_http_error_and_stall_faults(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.http_error("/prompt", 503, times=2, body="busy")
    graph = zimage_graph(size=32)
    statuses = [http.post("/api/prompt", json={"prompt": graph}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert http.post("/prompt", json={}).json()["error"]["type"] == "no_prompt"
    fake.faults.http_error("*", 500, method="GET")
    assert http.get("/queue").status_code == 500
    assert http.get("/queue").status_code == 200
    fake.faults.stall("/system_stats", 5.0)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/system_stats", timeout=0.2)
    assert http.get("/system_stats").status_code == 200
    fake.wait_idle()


def test_refuse_and_restore_connections(fake: FakeComfyUI) -> None:
    with httpx.Client(base_url=fake.url, timeout=5) as client:
        assert client.get("/prompt").status_code == 200
        fake.faults.refuse_connections()
        assert fake.faults.refusing
        with pytest.raises(httpx.ConnectError):
            client.get("/prompt")
        fake.faults.restore_connections()
        assert client.get("/prompt").status_code == 200
        fake.faults.refuse_connections()
        fake.faults.clear()  # also listens again
        assert client.get("/prompt").status_code == 200
    early = FakeComfyUI()
    early.faults.refuse_connections()  # armed before start: refuses from the first connection
    with early, httpx.Client(base_url=early.url, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            client.get("/prompt")
        early.faults.restore_connections()
        assert client.get("/prompt").status_code == 200


def _drain(ws: Any, received: list[str]) -> None:
    while True:
        received.append(json.loads(ws.recv(timeout=10))["type"])


def test_drop_websocket_after_k_frames(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.drop_websocket(after_frames=3)
    received: list[str] = []
    with connect(f"{fake.ws_url}?clientId=d1") as ws:
        ws.recv(timeout=10)  # greeting
        http.post("/prompt", json={"prompt": zimage_graph(size=32), "client_id": "d1"})
        with pytest.raises(ConnectionClosed):
            _drain(ws, received)
    # the queue's status frames, then 3 frames of the run (counted from execution_start)
    assert received == ["status", "status", "execution_start", "execution_cached", "progress_state"]
    fake.wait_idle()
    assert fake.runs[-1].status == "success"  # the run itself goes on


def test_execution_error_faults(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.fail_next_run(node_type="VAEDecode", exception_type="torch.OutOfMemoryError",
                              message="CUDA out of memory")  # fmt: skip
    entry = run(fake, http, zimage_graph(seed=5, size=32), client_id="e1")
    event, error = entry["status"]["messages"][-1]
    assert event == "execution_error"
    assert entry["status"]["status_str"] == "error"
    assert (error["node_id"], error["node_type"]) == ("8", "VAEDecode")
    assert (error["exception_type"], error["exception_message"]) == (
        "torch.OutOfMemoryError", "CUDA out of memory\n",
    )  # fmt: skip
    assert "3" in error["executed"]
    assert error["current_inputs"]
    assert run(fake, http, zimage_graph(seed=6, size=32))["status"]["status_str"] == "success"

    seen: list[RunInfo] = []

    def remember(info: RunInfo) -> bool:
        seen.append(info)
        return True

    fake.faults.fail_runs(
        remember, prompt_contains="fox", model_file="z_image_turbo_nvfp4.safetensors"
    )
    failed = run(fake, http, zimage_graph("nvfp4", "a red fox", seed=7, size=32))
    assert failed["status"]["messages"][-1][1]["node_type"] == "KSampler"
    assert run(fake, http, zimage_graph("bf16", "a red fox", seed=7, size=32))["status"][
        "completed"
    ]
    assert run(fake, http, zimage_graph("nvfp4", "a cat", seed=7, size=32))["status"]["completed"]
    again = run(fake, http, zimage_graph("nvfp4", "the fox", seed=8, size=32))
    assert again["status"]["status_str"] == "error"  # times=None: keeps failing
    assert seen[0].prompt_texts == ("a red fox",)
    fake.faults.clear()
    assert run(fake, http, zimage_graph("nvfp4", "the fox", seed=9, size=32))["status"]["completed"]


def test_corrupt_view_faults(fake: FakeComfyUI, http: httpx.Client) -> None:
    entry = run(fake, http, zimage_graph(size=64))
    ref = entry["outputs"]["9"]["images"][0]
    good = http.get("/view", params=ref).content
    fake.faults.corrupt_view("truncate")
    fake.faults.corrupt_view("garbage", filename_contains="bf16")
    truncated = http.get("/view", params=ref)
    garbage = http.get("/view", params=ref)
    assert truncated.status_code == garbage.status_code == 200
    assert truncated.content == good[: len(good) // 2]
    assert len(garbage.content) >= len(good)
    assert not garbage.content.startswith(b"\x89PNG")
    assert not decodes(truncated.content)
    assert not decodes(garbage.content)
    assert decodes(good)
    assert http.get("/view", params=ref).content == good
    with pytest.raises(ValueError, match="mode"):
        fake.faults.corrupt_view("zeros")  # type: ignore[arg-type]


def test_fake_bugs_are_reraised_in_the_test_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> Any:
        raise ZeroDivisionError("bug in a node")

    monkeypatch.setattr(executor_module, "run_node", broken)
    fake = FakeComfyUI().start()
    try:
        with httpx.Client(base_url=fake.url) as http:
            entry = run(fake, http, zimage_graph(size=32))
        assert entry["status"]["messages"][-1][1]["exception_type"] == "ZeroDivisionError"
        assert isinstance(fake.errors[0], ZeroDivisionError)
    finally:
        with pytest.raises(FakeComfyUIError, match="bug in a node") as info:
            fake.stop()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    fake.check_errors()  # reported once


def test_handler_errors_give_500_and_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(*_args: Any) -> Any:
        raise RuntimeError("lookup exploded")

    monkeypatch.setattr(FileStore, "lookup", lookup)
    with FakeComfyUI() as fake, httpx.Client(base_url=fake.url) as http:
        assert http.get("/view", params={"filename": "x.png"}).status_code == 500
        assert http.post("/prompt", content=b"{no").status_code == 500  # as the real server
        with pytest.raises(FakeComfyUIError, match="lookup exploded"):
            fake.check_errors()


def test_closing_the_old_socket_after_a_reconnect_silences_the_new_one(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    # ComfyUI pops the sid when any socket of that sid closes: reconnect first, then close
    # the old one, and the new registration is gone too (keep one socket per client_id).
    with connect(f"{fake.ws_url}?clientId=q") as old, connect(f"{fake.ws_url}?clientId=q") as new:
        old.recv(timeout=10)
        new.recv(timeout=10)
        assert fake.connected_clients == ["q"]
        old.close()
        closed = threading.Event()
        for _ in range(1000):  # up to 10 s on a loaded machine
            if not fake.connected_clients:
                closed.set()
                break
            closed.wait(0.01)
        assert closed.is_set()
        run(fake, http, zimage_graph(size=32), client_id="q")
        with pytest.raises(TimeoutError):
            new.recv(timeout=0.2)


# -- packaging -----------------------------------------------------------------------------------------


def test_importing_testing_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, pytest_zimage_quality.testing as t; "
        "print(sorted(m for m in ('torch', 'httpx', 'aiohttp', 'websockets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fixtures_via_pytester(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_fresh(zimage_fake_comfyui):
            stats = httpx.get(zimage_fake_comfyui.url + "/system_stats").json()
            assert stats["system"]["comfyui_version"] == "0.18.1"
            assert zimage_fake_comfyui.generations == 0

        def test_factory(zimage_fake_comfyui_factory):
            old = zimage_fake_comfyui_factory(version="0.3.64", models={})
            new = zimage_fake_comfyui_factory(image_latency=0.01)
            assert old.port != new.port
            assert httpx.get(old.url + "/models/vae").json() == []
            assert new.image_latency == 0.01
        """
    )
    # the plugin proper is left out: this checks the fixtures alone
    result = pytester.runpytest(
        "-p", "pytest_zimage_quality.testing", "-p", "no:zimage_quality", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
