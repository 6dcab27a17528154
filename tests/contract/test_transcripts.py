"""FakeComfyUI against the real recordings in ``tests/transcripts/``.

Each test replays a recorded scenario on a fresh fake (empty model folders, as the recorded
servers had) and compares what comes back with what the real server sent: WebSocket frame
sequences, reply bodies and status codes. Ids, timestamps, tracebacks and PreviewImage's
random file-name letters are normalised; so is the order of output nodes, which ComfyUI takes
from a set (it differs between runs of the real server too).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pytest_zimage_quality.testing import FakeComfyUI

from .comfy_protocol import Socket, Target, tags, target_at

RECORDINGS = Path(__file__).resolve().parents[1] / "transcripts"
PLACEHOLDERS = {
    "diffusion_models": ["z_image_turbo_bf16.safetensors"],
    "text_encoders": ["qwen_3_4b.safetensors"],
    "vae": ["ae.safetensors"],
}
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
_TEMP = re.compile(r"ComfyUI_temp_[a-z]{5}_")
_TIMES = {"timestamp", "create_time", "execution_start_time", "execution_end_time", "t_rel_ms"}


def load(version: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / version / name).read_text(encoding="utf-8"))
    return data


def norm(value: Any) -> Any:
    """Replace ids, times, tracebacks and random temp names with placeholders."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _TIMES and isinstance(item, (int, float)):
                out[key] = "<time>"
            elif key == "traceback":
                out[key] = "<traceback>"
            else:
                out[_ID.sub("<id>", key)] = norm(item)
        return out
    if isinstance(value, list):
        return [norm(item) for item in value]
    if isinstance(value, str):
        return _TEMP.sub("ComfyUI_temp_<xxxxx>_", _ID.sub("<id>", value))
    return value


def norm_history(entry: dict[str, Any]) -> dict[str, Any]:
    """``norm`` plus sorting the lists ComfyUI builds from sets (outputs, executed nodes)."""
    entry = norm(entry)
    _number, prompt_id, graph, extra, outputs = entry["prompt"]
    entry["prompt"] = ["<number>", prompt_id, graph, extra, sorted(outputs)]
    for _event, data in entry["status"]["messages"]:
        for key in ("executed", "current_outputs"):
            if key in data:
                data[key] = sorted(data[key])
    return entry


def unordered_outputs(sequence: list[str]) -> list[str]:
    """Output nodes run in set order: ``executed(5)``/``executed(6)`` become ``executed(*)``."""
    return [re.sub(r"executed\(\d+\)", "executed(*)", s) for s in sequence]


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    with FakeComfyUI(models={}, pixel_latency=1.0) as server:
        yield server


@pytest.fixture
def target(fake: FakeComfyUI) -> Iterator[Target]:
    with target_at(fake.url) as t:
        t.fake = fake
        yield t


def replay(target: Target, request: dict[str, Any]) -> httpx.Response:
    """Send a recorded request as it was sent."""
    kwargs: dict[str, Any] = {"params": request.get("query")}
    if "json" in request:
        kwargs["json"] = request["json"]
    if "raw_body" in request:
        kwargs["content"] = request["raw_body"].encode()
    if "headers" in request:
        kwargs["headers"] = request["headers"]
    return target.http.request(request["method"], request["path"], **kwargs)


def body_of(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def recorded_body(step: dict[str, Any]) -> Any:
    response = step["response"]
    return response["json"] if "json" in response else response.get("body_text", "")


def sequence(socket: Socket, frames: list[dict[str, Any]]) -> list[str]:
    return ["status", *tags(frames)] if socket.greeting else tags(frames)


# -- 01 / 02 / 03: idle state, node specs, handshake ------------------------------------------


def test_01_idle_replies_match(target: Target) -> None:
    for step in load("v0.18.1", "01_system_and_idle_state.json")["steps"]:
        response = replay(target, step["request"])
        recorded = step["response"]
        assert response.status_code == recorded["status"], step["request"]
        assert response.headers.get("content-type") == recorded["headers"].get("content-type")
        if step["request"]["path"].endswith("system_stats"):
            got, want = response.json(), recorded["json"]
            assert set(got["system"]) == set(want["system"])
            assert set(got["devices"][0]) == set(want["devices"][0])
            for key in ("os", "comfyui_version", "required_frontend_version", "embedded_python"):
                assert got["system"][key] == want["system"][key]
            assert (got["devices"][0]["name"], got["devices"][0]["index"]) == ("cpu", None)
        else:
            assert body_of(response) == recorded_body(step)


def test_02_object_info_matches_recorded_specs(target: Target) -> None:
    for step in load("v0.18.1", "02_object_info.json")["steps"]:
        path = step["request"]["path"]
        if path == "/object_info":
            summary = step["response"]["json"]["__summary__"]["contains"]
            served = target.http.get(path).json()
            supported = {name for name in summary if name in served}
            assert {"UNETLoader", "CLIPLoader", "VAELoader", "KSampler", "SaveImage"} <= supported
            continue
        assert target.http.get(path).json() == step["response"]["json"], path


def test_03_handshake(target: Target) -> None:
    connections = load("v0.18.1", "03_ws_handshake.json")["connections"]
    anonymous = target.socket()
    assert norm(anonymous.greeting) == norm(connections[0]["received"][0]["json"])
    client_id = connections[1]["url"].split("clientId=")[1]
    named = target.socket(client_id, feature_flags=True)
    assert named.greeting == connections[1]["received"][0]["json"]
    assert named.recv(timeout=10) == connections[1]["received"][1]["json"]


# -- 04 / 05 / 11: a run, its cached resubmission, /free ---------------------------------------


def _run_04(target: Target) -> tuple[dict[str, Any], list[str], str]:
    recording = load("v0.18.1", "04_run_success.json")
    client_id = recording["client_id"]
    socket = target.socket(client_id)
    other_id = recording["other_client_socket"]["url"].split("clientId=")[1]
    other = target.socket(other_id)
    response = replay(target, recording["steps"][0]["request"])
    prompt_id = response.json()["prompt_id"]
    frames = socket.until_done(prompt_id)
    other_frames = other.until(
        lambda f: f["data"]["status"]["exec_info"]["queue_remaining"] == 0, timeout=10
    )
    assert sequence(other, other_frames) == recording["other_client_socket"]["ws_type_sequence"]
    return recording, sequence(socket, frames), prompt_id


def test_04_run_sequence_history_and_views(target: Target) -> None:
    recording, seq, prompt_id = _run_04(target)
    assert seq == recording["ws_type_sequence"]
    steps = recording["steps"]
    history = target.history(prompt_id)[prompt_id]
    recorded_history = next(iter(steps[1]["response"]["json"].values()))
    assert norm_history(history) == norm_history(recorded_history)

    temp_name = history["outputs"]["6"]["images"][0]["filename"]
    for step in steps[2:]:
        request = dict(step["request"])
        if request["path"] != "/view":
            continue
        query = dict(request.get("query") or {})
        if "filename" in query and query["filename"].startswith("ComfyUI_temp_"):
            query["filename"] = temp_name
        request["query"] = query
        response = replay(target, request)
        recorded = step["response"]
        assert response.status_code == recorded["status"], query
        assert response.headers.get("content-type") == recorded["headers"].get("content-type")
        assert norm(response.headers.get("content-disposition")) == norm(
            recorded["headers"].get("content-disposition")
        )
        png = recorded.get("body_binary", {}).get("png")
        if png:
            with Image.open(io.BytesIO(response.content)) as image:
                assert image.size == (png["width"], png["height"])
                assert sorted(getattr(image, "text", {})) == sorted(png["text_chunk_keys"])


def test_05_cached_resubmission(target: Target) -> None:
    recording = load("v0.18.1", "05_run_cached_resubmit.json")
    _run_04(target)
    socket = target.socket(recording["client_id"])
    response = replay(target, recording["steps"][0]["request"])
    assert response.json()["prompt_id"] == recording["prompt_id_sent"]
    frames = socket.until_done(recording["prompt_id_sent"])
    want = unordered_outputs(recording["ws_type_sequence"])
    assert unordered_outputs(sequence(socket, frames)) == want
    cached = next(f for f in frames if f["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3", "4", "5", "6"]
    history = target.history(recording["prompt_id_sent"])
    recorded_history = recording["steps"][1]["response"]["json"]
    assert norm_history(next(iter(history.values()))) == norm_history(
        next(iter(recorded_history.values()))
    )


def test_11_free_then_rerun(target: Target, fake: FakeComfyUI) -> None:
    recording = load("v0.18.1", "11_free.json")
    _run_04(target)
    for step in recording["steps"][:4]:
        response = replay(target, step["request"])
        assert response.status_code == step["response"]["status"]
        assert response.text == recorded_body(step)
    fake.wait_idle()
    run = load("v0.18.1", "04_run_success.json")
    socket = target.socket(run["client_id"])
    prompt_id = replay(target, run["steps"][0]["request"]).json()["prompt_id"]
    frames = socket.until_done(prompt_id)
    assert sequence(socket, frames) == recording["rerun_after_free"]["ws_type_sequence"]


# -- 06: binary preview frames ---------------------------------------------------------------------


def test_06_binary_preview_frames(target: Target) -> None:
    for run in load("v0.18.1", "06_ws_binary_preview_frames.json")["runs"]:
        socket = target.socket(run["client_id"], feature_flags=bool(run["ws_sent"]))
        response = replay(target, run["post"]["request"])
        frames = socket.until_done(response.json()["prompt_id"])
        assert sequence(socket, frames) == run["ws_type_sequence"]
        for frame in frames:
            if frame.get("kind") != "binary":
                continue
            raw: bytes = frame["raw"]
            if frame["event_type"] == 1:
                assert int.from_bytes(raw[4:8], "big") == 2  # PNG
                image_bytes = raw[8:]
            else:
                length = int.from_bytes(raw[4:8], "big")
                meta = json.loads(raw[8 : 8 + length])
                assert set(meta) == {
                    "node_id", "prompt_id", "display_node_id", "parent_node_id",
                    "real_node_id", "image_type",
                }  # fmt: skip
                assert meta["image_type"] == "image/png"
                image_bytes = raw[8 + length :]
            with Image.open(io.BytesIO(image_bytes)) as image:
                assert image.size == (32, 16)


# -- 07: validation errors ------------------------------------------------------------------------------


def test_07_validation_bodies(target: Target, fake: FakeComfyUI) -> None:
    for case in load("v0.18.1", "07_prompt_validation_errors.json")["cases"]:
        if case["case"] == "models_listing_after_placeholders":
            for folder, files in PLACEHOLDERS.items():
                for name in files:
                    fake.add_model_file(folder, name)
        response = replay(target, case["request"])
        recorded = case["response"]
        assert response.status_code == recorded["status"], case["case"]
        got, want = norm(body_of(response)), norm(recorded.get("json", recorded.get("body_text")))
        if isinstance(want, dict) and "number" in want:
            got["number"] = want["number"] = "<number>"
        assert got == want, case["case"]


def test_07_legacy_0_3_64_error_types() -> None:
    cases = {c["case"]: c for c in load("v0.3.64", "07_prompt_validation_errors.json")["cases"]}
    with FakeComfyUI(models={}, version="0.3.64") as fake, target_at(fake.url) as target:
        for name in ("unknown_class_type", "missing_class_type_key", "missing_required_input"):
            response = replay(target, cases[name]["request"])
            assert response.status_code == 400
            assert response.json() == cases[name]["response"]["json"], name
        stats = target.http.get("/system_stats").json()["system"]
        assert (stats["os"], stats["comfyui_version"]) == ("posix", "0.3.64")
        features = load("v0.3.64", "01_system_and_idle_state.json")["steps"][2]["response"]
        assert target.http.get("/features").json() == features["json"]
        assert target.http.get("/api/jobs").status_code == 404


# -- 08 / 09 / 10: runtime error, interrupt, queue -------------------------------------------------------


def test_08_runtime_error(target: Target, fake: FakeComfyUI) -> None:
    recording = load("v0.18.1", "08_run_runtime_error.json")
    for folder, files in PLACEHOLDERS.items():
        fake.add_model_file(folder, files[0])
    recorded_error = next(
        m["json"]["data"]
        for m in recording["ws_messages"]
        if m["json"]["type"] == "execution_error"
    )
    fake.faults.fail_next_run(
        node_type=recorded_error["node_type"],
        exception_type=recorded_error["exception_type"],
        message=recorded_error["exception_message"].removesuffix("\n"),
    )
    socket = target.socket(recording["client_id"])
    post = next(s for s in recording["steps"] if s["request"]["method"] == "POST")
    prompt_id = replay(target, post["request"]).json()["prompt_id"]
    frames = socket.until_done(prompt_id)
    assert sequence(socket, frames) == recording["ws_type_sequence"]
    error = next(f["data"] for f in frames if f["type"] == "execution_error")
    assert set(error) == set(recorded_error)
    for key in ("node_id", "node_type", "executed", "exception_message", "exception_type"):
        assert error[key] == recorded_error[key], key
    assert error["current_inputs"] == recorded_error["current_inputs"]
    assert sorted(error["current_outputs"]) == sorted(recorded_error["current_outputs"])
    history = target.history(prompt_id)[prompt_id]
    recorded_history = next(
        next(iter(s["response"]["json"].values()))
        for s in recording["steps"]
        if s["request"]["path"].startswith("/history/")
    )
    assert norm_history(history) == norm_history(recorded_history)


def test_09_interrupt(target: Target) -> None:
    recording = load("v0.18.1", "09_interrupt.json")
    steps = recording["steps"]
    assert replay(target, steps[0]["request"]).status_code == 200  # idle interrupt: no effect
    socket = target.socket(recording["client_id"])
    prompt_id = replay(target, steps[1]["request"]).json()["prompt_id"]
    socket.until(lambda f: f.get("type") == "progress")
    queue = target.http.get("/queue").json()
    assert (
        norm(queue)["queue_running"][0][:3]
        == norm(steps[2]["response"]["json"])["queue_running"][0][:3]
        or queue["queue_running"][0][1] == prompt_id
    )
    for step in steps[3:5]:
        request = dict(step["request"])
        if request.get("json", {}).get("prompt_id") == recording["prompt_id"]:
            request["json"] = {"prompt_id": prompt_id}
        assert replay(target, request).status_code == 200
    frames = socket.until_done(prompt_id)
    seq = sequence(socket, socket.frames)
    assert seq[-3:] == ["execution_interrupted", "status", "executing(None)"]
    counted = {re.sub(r"^progress\(\d+\)$", "progress", t) for t in seq}
    assert counted == set(recording["ws_type_sequence_counts"])
    interrupted = next(f["data"] for f in frames if f["type"] == "execution_interrupted")
    recorded = next(
        m["json"]["data"]
        for m in recording["ws_messages_abridged"]
        if m.get("json", {}).get("type") == "execution_interrupted"
    )
    assert set(interrupted) == set(recorded)
    assert (interrupted["node_id"], interrupted["node_type"]) == ("4", "VAEDecodeTiled")
    assert sorted(interrupted["executed"]) == sorted(recorded["executed"])
    history = target.history(prompt_id)[prompt_id]
    recorded_history = next(iter(steps[5]["response"]["json"].values()))
    assert norm_history(history) == norm_history(recorded_history)


def test_10_queue_operations(target: Target) -> None:
    recording = load("v0.18.1", "10_queue_operations.json")
    steps = recording["steps"]
    socket = target.socket(recording["client_id"])
    replies = [replay(target, steps[0]["request"]).json()]
    socket.until(lambda f: f.get("type") == "execution_start")  # running, as when recorded
    replies += [replay(target, step["request"]).json() for step in steps[1:4]]
    first = replies[0]["number"]
    recorded = [step["response"]["json"]["number"] for step in steps[:4]]
    assert [r["number"] for r in replies] == [
        first, first + 1, -(first + 2), 1000.5,
    ]  # fmt: skip
    assert recorded[2] == -(recorded[0] + 2)
    queue = target.http.get("/queue").json()
    assert [item[0] for item in queue["queue_pending"]] == [-(first + 2), first + 1, 1000.5]
    assert [len(item) for item in queue["queue_pending"]] == [5, 5, 5]
    ids = [r["prompt_id"] for r in replies]
    assert target.http.post("/queue", json={"delete": [ids[1]]}).content == b""
    assert target.http.post("/queue", json={"clear": True}).content == b""
    assert target.http.get("/queue").json()["queue_pending"] == []
    target.http.post("/interrupt")
    frames = socket.until_done(ids[0])
    remaining = [
        f["data"]["status"]["exec_info"]["queue_remaining"]
        for f in socket.frames
        if f["type"] == "status"
    ]
    recorded_remaining = [
        m["json"]["data"]["status"]["exec_info"]["queue_remaining"]
        for m in recording["ws_messages_abridged"]
        if m.get("json", {}).get("type") == "status"
    ]
    assert [0, *remaining] == recorded_remaining
    assert tags(frames)[-3:] == ["execution_interrupted", "status", "executing(None)"]


# -- 13 / 14 / 15: history and jobs, reconnect, client-less job -----------------------------------


def test_13_history_paging_and_jobs(target: Target) -> None:
    recording = load("v0.18.1", "13_history_ops.json")
    graph = load("v0.18.1", "04_run_success.json")["steps"][0]["request"]["json"]["prompt"]
    ids = []
    for color in (1, 2, 3):
        graph["1"]["inputs"]["color"] = color
        ids.append(target.queue_ok(graph))
        target.wait_history(ids[-1])
    assert list(target.http.get("/history", params={"max_items": "2"}).json()) == ids[1:]
    assert (
        list(target.http.get("/history", params={"max_items": "1", "offset": "0"}).json())
        == ids[:1]
    )
    by_path = {
        (s["request"]["path"], json.dumps(s["request"].get("query"))): s for s in recording["steps"]
    }
    jobs = target.http.get("/api/jobs", params={"limit": "2"}).json()
    recorded_jobs = by_path[("/api/jobs", json.dumps({"limit": "2"}))]["response"]["json"]
    assert set(jobs) == set(recorded_jobs)
    assert jobs["pagination"] == {"offset": 0, "limit": 2, "total": 3, "has_more": True}
    assert set(jobs["jobs"][0]) == set(recorded_jobs["jobs"][0])
    assert jobs["jobs"][0]["preview_output"]["nodeId"] == "5"
    job = target.http.get(f"/api/jobs/{ids[0]}").json()
    recorded_job = next(
        s["response"]["json"]
        for s in recording["steps"]
        if s["request"]["path"].startswith("/api/jobs/2")
    )
    assert set(job) == set(recorded_job)
    assert set(job["workflow"]) == set(recorded_job["workflow"])
    for step in recording["steps"]:
        if step["response"]["status"] in (400, 404):
            response = replay(target, step["request"])
            assert (response.status_code, response.json()) == (
                step["response"]["status"],
                step["response"]["json"],
            )
    assert target.http.post("/history", json={"clear": True}).content == b""
    assert target.http.get("/history").json() == {}


def test_14_reconnect_greeting_and_silence(target: Target) -> None:
    recording = load("v0.18.1", "14_ws_reconnect_same_client_id.json")
    client_id = recording["client_id"]
    first = target.socket(client_id)
    prompt_id = replay(target, recording["steps"][0]["request"]).json()["prompt_id"]
    first.until(lambda f: f.get("type") == "progress")
    second = target.socket(client_id)
    recorded_second = [m["json"] for m in recording["second_socket"]["ws_messages_abridged"]]
    assert second.greeting == recorded_second[0]
    assert second.recv(timeout=10) == recorded_second[1]
    second.until(lambda f: f.get("type") == "progress")
    target.http.post("/interrupt")
    second.until_done(prompt_id)
    seen = {re.sub(r"^progress\(\d+\)$", "progress", t) for t in tags(second.frames)}
    assert {"status", *seen} == set(recording["second_socket"]["ws_type_sequence_counts"])
    assert first.silent(0.3)


def test_15_job_without_client_id(target: Target) -> None:
    recording = load("v0.18.1", "15_prompt_without_client_id.json")
    request = recording["steps"][0]["request"]
    warm = json.loads(json.dumps(request["json"]["prompt"]))
    warm["1"]["inputs"]["color"] = 1
    del warm["6"]  # the recorded previous prompt had no PreviewImage "6" either
    target.wait_history(target.queue_ok(warm))  # leaves the VAELoader cached, as when recorded
    socket = target.socket()
    prompt_id = replay(target, request).json()["prompt_id"]
    target.wait_history(prompt_id)
    frames = socket.until(
        lambda f: f["type"] == "status" and f["data"]["status"]["exec_info"]["queue_remaining"] == 0
    )
    assert sequence(socket, frames) == recording["ws_type_sequence"]
    recorded_history = recording["steps"][1]["response"]["json"]
    history = target.history(prompt_id)
    assert norm_history(history[prompt_id]) == norm_history(next(iter(recorded_history.values())))


def test_normaliser_keeps_what_matters() -> None:
    entry = {
        "a": str(uuid.uuid4()),
        "timestamp": 5,
        "images": [{"filename": "ComfyUI_temp_abcde_00001_.png"}],
    }
    assert norm(entry) == {
        "a": "<id>",
        "timestamp": "<time>",
        "images": [{"filename": "ComfyUI_temp_<xxxxx>_00001_.png"}],
    }
