"""The fake's fault modes do what they claim, seen from raw HTTP, WebSocket and TCP clients.

How the plugin's client reacts to each is tested elsewhere; here every fault is checked at the
wire. Every blocking call carries a timeout, so a fault that misbehaves fails, never hangs.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from pytest_zimage_quality._fake import tempdirs
from pytest_zimage_quality._fake.hostile import CONTROL_TEXT, OOM_TIPS, deflate_bomb
from pytest_zimage_quality._fake.models import SAMPLING_BYTES_PER_IMAGE, VRAM_BASELINE
from pytest_zimage_quality.testing import FakeComfyUI, RunInfo
from tests.helpers.fake_graphs import decodes, image_of, run, zimage_graph

_MIB = 1 << 20


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    with FakeComfyUI() as server:
        yield server


@pytest.fixture
def http(fake: FakeComfyUI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as client:
        yield client


def _submit(http: httpx.Client, graph: dict[str, Any], **fields: Any) -> str:
    response = http.post("/prompt", json={"prompt": graph, **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["prompt_id"])


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _recv_until_closed(ws: Any) -> tuple[list[Any], ConnectionClosed]:
    """Every message until the server closes the socket (a 10 s silence fails the test)."""
    received: list[Any] = []
    try:
        while True:
            received.append(ws.recv(timeout=10))
    except ConnectionClosed as closed:
        return received, closed


def _ws_types(ws: Any, seconds: float) -> list[str]:
    """Frame types received within ``seconds``."""
    types: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            types.append(json.loads(ws.recv(timeout=left))["type"])
        except TimeoutError:
            break
    return types


# -- connection level -------------------------------------------------------------------------


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_refused_connections_come_back_after_the_downtime(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.refuse_connections(for_seconds=2.0)
    assert fake.faults.mode == "refusing"
    with pytest.raises(httpx.ConnectError):
        http.get("/prompt")
    assert fake.faults.wait_serving(10)
    assert http.get("/prompt").status_code == 200


def test_restart_loses_queue_history_running_prompt_and_sockets(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    done = run(fake, http, zimage_graph(seed=1, size=32))
    file_ref = done["outputs"]["9"]["images"][0]
    with connect(f"{fake.ws_url}?clientId=r1") as ws:
        ws.recv(timeout=10)
        fake.faults.stall_generation(30)
        running = _submit(http, zimage_graph(seed=2, size=32), client_id="r1")
        pending = _submit(http, zimage_graph(seed=3, size=32), client_id="r1")
        _until(lambda: http.get("/queue").json()["queue_running"])
        fake.faults.restart(downtime=60)  # ended below, not by a race with the clock
        with pytest.raises(httpx.ConnectError):
            http.get("/queue")
        _recv_until_closed(ws)
    assert fake.faults.mode == "refusing"
    fake.faults.restore_connections()
    assert http.get("/queue").json() == {"queue_running": [], "queue_pending": []}
    assert http.get("/history").json() == {}
    for prompt_id in (done["prompt"][1], running, pending):
        assert http.get(f"/history/{prompt_id}").json() == {}
    assert http.get("/view", params=file_ref).status_code == 200  # files survive a restart
    _until(lambda: any(r.prompt_id == running for r in fake.runs))
    assert [r.status for r in fake.runs if r.prompt_id == running] == ["lost"]
    assert fake.loaded_models == frozenset()
    assert fake.faults.restarts == 1
    reply = http.post("/prompt", json={"prompt": zimage_graph(seed=4, size=32)}).json()
    assert reply["number"] == 0  # the queue number starts again
    fake.wait_idle(10)
    assert pending not in {r.prompt_id for r in fake.runs}


def test_restart_armed_on_a_matching_prompt(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.restart(when=lambda info: 7 in info.seeds)
    assert run(fake, http, zimage_graph(seed=6, size=32))["status"]["completed"]
    lost = _submit(http, zimage_graph(seed=7, size=32))
    _until(lambda: fake.faults.restarts == 1)
    assert fake.faults.wait_serving(10)
    fake.wait_idle(10)
    assert http.get(f"/history/{lost}").json() == {}
    assert run(fake, http, zimage_graph(seed=7, size=32))["status"]["completed"]  # times=1


def test_silent_server_accepts_and_never_answers(fake: FakeComfyUI) -> None:
    with connect(f"{fake.ws_url}?clientId=s1") as ws:
        ws.recv(timeout=10)
        fake.faults.go_silent()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    with socket.create_connection((fake.host, fake.port), timeout=5) as raw:
        raw.sendall(b"GET /prompt HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(0.3)
        with pytest.raises(TimeoutError):
            raw.recv(1)
    with httpx.Client(base_url=fake.url, timeout=httpx.Timeout(0.3, connect=5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/system_stats")
        fake.faults.restore_connections()
        assert client.get("/system_stats").status_code == 200
    fake.faults.go_silent(for_seconds=0.2)
    assert fake.faults.wait_serving(10)


def test_silent_from_the_start() -> None:
    silent = FakeComfyUI()
    silent.faults.go_silent()
    with silent, socket.create_connection((silent.host, silent.port), timeout=5) as raw:
        raw.sendall(b"GET /system_stats HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(0.3)
        with pytest.raises(TimeoutError):
            raw.recv(1)


# -- HTTP -----------------------------------------------------------------------------------------


def test_http_errors_on_any_route_with_count_and_predicate(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.http_error("*", 500, times=2, when=lambda r: r.route == "/history/{prompt_id}")
    assert [http.get("/history/x").status_code for _ in range(3)] == [500, 500, 200]
    assert http.get("/queue").status_code == 200
    fake.faults.http_error(
        "/prompt", 429, times=None, when=lambda r: r.json["prompt"]["3"]["inputs"]["seed"] == 9
    )
    for _ in range(3):
        refused = http.post("/prompt", json={"prompt": zimage_graph(seed=9, size=32)})
        assert refused.status_code == 429
    assert http.post("/prompt", json={"prompt": zimage_graph(seed=8, size=32)}).status_code == 200
    fake.faults.clear()
    assert http.post("/prompt", json={"prompt": zimage_graph(seed=9, size=32)}).status_code == 200
    fake.wait_idle(10)
    with pytest.raises(ValueError, match="times"):
        fake.faults.http_error("/queue", times=0)


def test_hang_until_release_and_stop_does_not_wait_for_it() -> None:
    fake = FakeComfyUI().start()
    try:
        fake.faults.hang("/queue", times=2)
        answers: list[int] = []

        def ask() -> None:
            with httpx.Client(base_url=fake.url, timeout=10) as client:
                answers.append(client.get("/queue").status_code)

        waiting = threading.Thread(target=ask)
        waiting.start()
        with (
            httpx.Client(base_url=fake.url, timeout=0.3) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.get("/api/queue")
        assert answers == []
        fake.faults.release()
        waiting.join(10)
        assert answers == [200]
        fake.faults.hang("/system_stats")
        waiting = threading.Thread(target=lambda: httpx.get(fake.url + "/system_stats", timeout=5))
        waiting.start()
        _until(lambda: any(r.route == "/system_stats" for r in fake.requests))
    finally:
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 5
        waiting.join(10)


def test_error_body_that_echoes_request_headers(fake: FakeComfyUI, http: httpx.Client) -> None:
    secret = "Bearer s3cr3t-" + "x" * 60
    fake.faults.echo_headers_error("/prompt")
    response = http.post("/prompt", json={}, headers={"Authorization": secret})
    assert response.status_code == 502
    assert f"Authorization: {secret}" in response.text
    assert http.post("/prompt", json={}).status_code == 400  # times=1


def test_control_characters_in_error_text(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.control_characters_error("/system_stats", 503)
    response = http.get("/system_stats")
    assert response.status_code == 503
    assert response.text == CONTROL_TEXT
    assert "\x1b[2J" in response.text
    assert "\x07" in response.text
    assert "\r" in response.text
    fake.faults.fail_next_run(message=CONTROL_TEXT)
    error = run(fake, http, zimage_graph(size=32))["status"]["messages"][-1][1]
    assert error["exception_message"] == CONTROL_TEXT + "\n"


# -- WebSocket -------------------------------------------------------------------------------------


def test_websocket_drop_limited_to_a_matching_prompt(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.drop_websocket(after_frames=1, when=lambda info: "owl" in info.prompt_texts[0])
    with connect(f"{fake.ws_url}?clientId=w1") as ws:
        ws.recv(timeout=10)
        run(fake, http, zimage_graph(text="a cat", size=32), client_id="w1")
        assert "executing" in _ws_types(ws, 0.5)  # not dropped: the cat did not match
        _submit(http, zimage_graph(text="an owl", size=32), client_id="w1")
        _recv_until_closed(ws)


@pytest.mark.slow
def test_hold_queue_sends_status_frames_while_the_prompt_stays_pending(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.hold_queue(status_every=0.05)
    with connect(f"{fake.ws_url}?clientId=h1") as ws:
        ws.recv(timeout=10)
        prompt_id = _submit(http, zimage_graph(size=32), client_id="h1")
        frames = _ws_types(ws, 0.8)
        assert len(frames) >= 5
        assert set(frames) == {"status"}
        assert [item[1] for item in http.get("/queue").json()["queue_pending"]] == [prompt_id]
        fake.faults.release()
        fake.wait_idle(10)
    assert http.get(f"/history/{prompt_id}").json()[prompt_id]["status"]["completed"]


def test_hold_queue_for_seconds_and_only_for_a_matching_prompt(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.hold_queue(when=lambda info: 5 in info.seeds, for_seconds=0.4)
    assert run(fake, http, zimage_graph(seed=4, size=32))["status"]["completed"]
    started = time.monotonic()
    assert run(fake, http, zimage_graph(seed=5, size=32))["status"]["completed"]
    assert time.monotonic() - started >= 0.3


def _raw_ws(fake: FakeComfyUI, client_id: str, *, deflate: bool) -> tuple[socket.socket, bytes]:
    raw = socket.create_connection((fake.host, fake.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    extension = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    raw.sendall(
        f"GET /ws?clientId={client_id} HTTP/1.1\r\nHost: {fake.host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extension}\r\n".encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = raw.recv(65536)
        assert chunk, "handshake cut short"
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return raw, head + b"\r\n\r\n" + rest


def _read_exact(raw: socket.socket, buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        chunk = raw.recv(1 << 20)
        assert chunk, "connection closed mid-frame"
        buffer += chunk
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _next_frame(raw: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    first, second = _read_exact(raw, buffer, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _read_exact(raw, buffer, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _read_exact(raw, buffer, 8))[0]
    return first, _read_exact(raw, buffer, length)


def _inflated_size(payload: bytes, limit: int) -> int:
    inflater = zlib.decompressobj(-15)
    total, pending = 0, payload + b"\x00\x00\xff\xff"
    while pending and total <= limit:
        total += len(inflater.decompress(pending, 64 * _MIB))
        pending = inflater.unconsumed_tail
    return total


@pytest.mark.slow
@pytest.mark.parametrize("inflated", [64 * _MIB, 2 << 30])
def test_websocket_bomb_with_permessage_deflate(
    fake: FakeComfyUI, http: httpx.Client, inflated: int
) -> None:
    fake.faults.websocket_bomb(inflated_size=inflated)
    raw, head = _raw_ws(fake, "b1", deflate=True)
    with raw:
        assert b"permessage-deflate" in head.split(b"\r\n\r\n")[0]
        buffer = bytearray(head.split(b"\r\n\r\n", 1)[1])
        _submit(http, zimage_graph(size=32), client_id="b1")
        while True:
            first, payload = _next_frame(raw, buffer)
            if len(payload) > 4096:
                break
        assert first == 0xC1  # FIN, RSV1 (compressed), text
        assert len(payload) < inflated / 1000
        assert _inflated_size(payload, inflated) == inflated
        raw.settimeout(5)
        assert raw.recv(1) == b""  # the server closed the connection after the bomb
    fake.wait_idle(10)


def test_websocket_bomb_without_compression_is_a_plain_2mb_frame(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.websocket_bomb()
    with connect(f"{fake.ws_url}?clientId=b2", compression=None, max_size=_MIB) as ws:
        ws.recv(timeout=10)
        _submit(http, zimage_graph(size=32), client_id="b2")
        _, closed = _recv_until_closed(ws)
        assert closed.rcvd is None or closed.rcvd.code != 1000
    with connect(f"{fake.ws_url}?clientId=b3", compression=None, max_size=None) as ws:
        ws.recv(timeout=10)
        fake.faults.websocket_bomb()
        _submit(http, zimage_graph(seed=2, size=32), client_id="b3")
        received, _ = _recv_until_closed(ws)
        assert max(len(message) for message in received) > 2 * _MIB
    fake.wait_idle(10)


def test_deflate_bomb_is_built_without_compressing_it_all() -> None:
    started = time.monotonic()
    payload = deflate_bomb(2 << 30)
    assert time.monotonic() - started < 5
    assert 1.5 * _MIB < len(payload) < 2.5 * _MIB


# -- execution errors ------------------------------------------------------------------------------


def test_cuda_out_of_memory_as_comfyui_reports_it(fake: FakeComfyUI, http: httpx.Client) -> None:
    assert run(fake, http, zimage_graph(seed=1, size=32))["status"]["completed"]
    assert fake.loaded_models
    fake.faults.out_of_memory(when=lambda info: 2 in info.seeds)
    entry = run(fake, http, zimage_graph(seed=2, size=32))
    error = entry["status"]["messages"][-1][1]
    assert error["node_type"] == "KSampler"
    assert error["exception_type"] == "torch.OutOfMemoryError"
    message = error["exception_message"]
    assert message.startswith("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has")
    assert message.endswith("\n" + OOM_TIPS)
    assert fake.loaded_models == frozenset()  # ComfyUI unloads all models after an OOM
    assert run(fake, http, zimage_graph(seed=3, size=32))["status"]["completed"]


# -- images -----------------------------------------------------------------------------------------


def test_wrong_size_and_one_pixel_images_for_one_case(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.wrong_image_size(40, 24, when=lambda info: 11 in info.seeds)
    fake.faults.tiny_image(when=lambda info: 12 in info.seeds)
    sizes = {}
    for seed in (10, 11, 12):
        pixels, _ = image_of(http, run(fake, http, zimage_graph(seed=seed, size=64)))
        sizes[seed] = pixels.shape[:2]
    assert sizes == {10: (64, 64), 11: (24, 40), 12: (1, 1)}


def test_pixel_bomb_is_small_valid_and_passes_pillows_error_check(
    fake: FakeComfyUI, http: httpx.Client
) -> None:
    fake.faults.pixel_bomb()
    ref = run(fake, http, zimage_graph(size=32))["outputs"]["9"]["images"][0]
    data = http.get("/view", params=ref).content
    assert len(data) < 64 * 1024
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < 13000**2 < 2 * Image.MAX_IMAGE_PIXELS
    with pytest.warns(Image.DecompressionBombWarning), Image.open(io.BytesIO(data)) as image:
        assert image.size == (13000, 13000)  # header only: the pixels are never decoded here
    small = http.get(
        "/view", params=run(fake, http, zimage_graph(seed=2, size=32))["outputs"]["9"]["images"][0]
    )
    assert decodes(small.content)  # times=1


def test_same_image_for_every_request(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.same_image()
    blobs = []
    for config, seed in (("bf16", 1), ("nvfp4", 2), ("fp8scaled", 3)):
        ref = run(fake, http, zimage_graph(config, seed=seed, size=32))["outputs"]["9"]["images"][0]
        blobs.append(http.get("/view", params=ref).content)
    assert blobs[0] == blobs[1] == blobs[2]
    with Image.open(io.BytesIO(blobs[0])) as image:
        assert not getattr(image, "text", {})  # no prompt metadata to check provenance with


def test_wrong_file_name_lacks_the_cases_prefix(fake: FakeComfyUI, http: httpx.Client) -> None:
    fake.faults.wrong_filename(when=lambda info: "fake/nvfp4" in info.filename_prefixes)
    right = run(fake, http, zimage_graph("bf16", size=32))["outputs"]["9"]["images"][0]
    wrong = run(fake, http, zimage_graph("nvfp4", size=32))["outputs"]["9"]["images"][0]
    assert (right["subfolder"], right["filename"]) == ("fake", "bf16_00001_.png")
    assert wrong["filename"] == "ComfyUI_00001_.png"
    assert "nvfp4" not in str(wrong)
    assert decodes(http.get("/view", params=wrong).content)


# -- /view -------------------------------------------------------------------------------------------


def test_slow_and_trickling_view(fake: FakeComfyUI, http: httpx.Client) -> None:
    ref = run(fake, http, zimage_graph(size=64))["outputs"]["9"]["images"][0]
    good = http.get("/view", params=ref).content
    fake.faults.slow_view(0.5)
    started = time.monotonic()
    assert http.get("/view", params=ref).content == good
    assert time.monotonic() - started >= 0.4
    fake.faults.trickle_view(every=0.1, filename_contains=ref["filename"])
    got = b""
    with http.stream("GET", "/view", params=ref, timeout=2.0) as response:
        assert int(response.headers["Content-Length"]) == len(good)
        for byte in response.iter_raw(1):
            got += byte
            if len(got) == 4:
                break
    assert got == good[:4]
    assert http.get("/view", params=ref).content == good  # times=1


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_huge_view_is_streamed(fake: FakeComfyUI, http: httpx.Client) -> None:
    ref = run(fake, http, zimage_graph(size=32))["outputs"]["9"]["images"][0]
    good = http.get("/view", params=ref).content
    fake.faults.huge_view(256 * _MIB)
    before, peak, total, head = _rss(), 0, 0, b""
    with http.stream("GET", "/view", params=ref) as response:
        assert int(response.headers["Content-Length"]) == 256 * _MIB
        for chunk in response.iter_raw(_MIB):
            head = head or chunk[: len(good)]
            total += len(chunk)
            peak = max(peak, _rss())
    assert total == 256 * _MIB
    assert head == good[: len(head)]
    if sys.platform == "linux":
        assert peak - before < 96 * _MIB  # neither side held the body
    fake.faults.huge_view()
    with http.stream("GET", "/view", params=ref) as response:
        assert int(response.headers["Content-Length"]) == 2 << 30
        next(response.iter_raw(_MIB))  # the client walks away; the server stops writing


# -- what /system_stats reports ----------------------------------------------------------------------


def test_reported_gpu_version_and_torch() -> None:
    name = "cuda:1 NVIDIA GB10 : cudaMallocAsync"
    with (
        FakeComfyUI(device=name, pytorch_version="2.9.0+cu130") as fake,
        httpx.Client(base_url=fake.url, timeout=10) as http,
    ):
        stats = http.get("/system_stats").json()
        assert stats["devices"][0]["name"] == name
        assert stats["devices"][0]["index"] == 1
        assert stats["system"]["pytorch_version"] == "2.9.0+cu130"
        fake.faults.report_system(
            device_name="cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync",
            comfyui_version="0.18.2",
            vram_total=96 << 30,
        )
        stats = http.get("/system_stats").json()
        assert stats["devices"][0]["name"].startswith("cuda:0 NVIDIA H100")
        assert stats["devices"][0]["vram_total"] == 96 << 30
        assert stats["system"]["comfyui_version"] == "0.18.2"
        assert http.get("/api/jobs").status_code == 200  # still speaks 0.18.1
        fake.faults.clear()
        assert http.get("/system_stats").json()["system"]["comfyui_version"] == "0.18.1"


def _vram_used(http: httpx.Client) -> int:
    device = http.get("/system_stats").json()["devices"][0]
    return int(device["vram_total"] - device["vram_free"])


def test_vram_rises_with_the_loaded_models_and_differs_by_file() -> None:
    with (
        FakeComfyUI(device="cuda:0 NVIDIA H200", vram_total=140 << 30) as fake,
        httpx.Client(base_url=fake.url, timeout=10) as http,
    ):
        assert _vram_used(http) == VRAM_BASELINE
        run(fake, http, zimage_graph("bf16", size=32))
        bf16 = _vram_used(http)
        files = ("z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors")
        assert bf16 == VRAM_BASELINE + sum(fake.model_size(f) for f in files)
        assert bf16 == fake.vram_used
        run(fake, http, zimage_graph("nvfp4", size=32))
        nvfp4 = _vram_used(http)
        assert VRAM_BASELINE < nvfp4 < bf16
        fake.faults.stall_generation(0.6)
        _submit(http, zimage_graph("nvfp4", seed=9, size=32))
        _until(lambda: _vram_used(http) == nvfp4 + SAMPLING_BYTES_PER_IMAGE, 10)
        fake.wait_idle(10)
        assert _vram_used(http) == nvfp4
        http.post("/free", json={"unload_models": True})
        fake.wait_idle(10)
        assert _vram_used(http) == VRAM_BASELINE
    sized = FakeComfyUI(model_sizes={"ae.safetensors": 123})
    assert sized.model_size("ae.safetensors") == 123


# -- speed ------------------------------------------------------------------------------------------


def test_speed_factor_multiplies_image_latency() -> None:
    factors = FakeComfyUI.speed_factors(4, spread=1.5, seed=3)
    assert factors == FakeComfyUI.speed_factors(4, spread=1.5, seed=3)
    assert factors[0] == 1.0
    assert max(factors) == 1.5
    assert all(1.0 <= f <= 1.5 for f in factors)
    assert FakeComfyUI.speed_factors(4, seed=4) != factors
    with FakeComfyUI(image_latency=0.1, speed_factor=3.0) as fake:
        assert fake.speed_factor == 3.0
        with httpx.Client(base_url=fake.url, timeout=10) as http:
            prompt_id = run(fake, http, zimage_graph(size=32))["prompt"][1]
        [generate] = [i for i in fake.timeline if i.prompt_id == prompt_id and i.kind == "generate"]
        assert generate.end - generate.start >= 0.25
        with pytest.raises(ValueError, match="speed_factor"):
            fake.speed_factor = 0


# -- temporary directories -------------------------------------------------------------------------


def _dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait(10)
    return child.pid


def test_orphaned_temp_dirs_of_dead_owners_are_removed(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead, alive, foreign, unowned = (tmp_path / f"{tempdirs.PREFIX}{n}" for n in "abcd")
    for directory, owner in ((dead, f"{_dead_pid()} {host}"), (alive, f"{os.getpid()} {host}"),
                             (foreign, f"{_dead_pid()} another-host"), (unowned, None)):  # fmt: skip
        (directory / "output").mkdir(parents=True)
        if owner is not None:
            (directory / tempdirs.OWNER_FILE).write_text(owner)
    assert tempdirs.reap_orphans(tmp_path) == [dead]
    assert not dead.exists()
    assert alive.exists()
    assert foreign.exists()
    assert unowned.exists()


def test_temp_dir_left_by_a_sigkilled_process_is_removed_on_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = (
        "import sys, time; from pytest_zimage_quality.testing import FakeComfyUI; "
        "fake = FakeComfyUI().start(); print(fake.output_dir, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    ) as child:
        try:
            assert child.stdout is not None
            left_behind = Path(child.stdout.readline().strip())
            assert left_behind.parent == tmp_path
            assert left_behind.is_dir()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    assert left_behind.is_dir()  # SIGKILL ran no cleanup
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with FakeComfyUI() as fake:
        assert not left_behind.exists()
        assert fake.output_dir.parent == tmp_path
    assert not fake.output_dir.exists()


def test_run_info_names_the_case(fake: FakeComfyUI, http: httpx.Client) -> None:
    seen: list[RunInfo] = []

    def remember(info: RunInfo) -> bool:
        seen.append(info)
        return False

    fake.faults.fail_runs(remember)
    run(fake, http, zimage_graph("nvfp4", "a heron", seed=31, size=32))
    assert seen[0].filename_prefixes == ("fake/nvfp4",)
    assert seen[0].seeds == (31,)
    assert seen[0].prompt_texts[0] == "a heron"
