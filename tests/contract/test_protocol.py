"""Protocol checks that hold for a real ComfyUI and for FakeComfyUI alike.

Each check states a behaviour the protocol README documents and the plugin's client relies
on. Graphs are model-free and use a random EmptyImage colour, so results never depend on what
an earlier test left in the server's node cache.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from .comfy_protocol import (
    Socket,
    Target,
    expected_run_tags,
    model_free_graph,
    png_info,
    slow_graph,
    tags,
    unique_color,
)

EXECUTION_ORDER = ["1", "6", "2", "3", "4", "5"]  # ComfyUI's own order for model_free_graph


def _cached(frames: list[dict[str, Any]]) -> list[str]:
    return next(f["data"]["nodes"] for f in frames if f.get("type") == "execution_cached")


def _after_cached(frames: list[dict[str, Any]]) -> list[str]:
    names = tags(frames)
    return names[names.index("execution_cached") + 1 :]


# -- idle endpoints ---------------------------------------------------------------------------


def test_system_stats_shape_also_under_api_prefix(comfy: Target) -> None:
    plain = comfy.http.get("/system_stats")
    prefixed = comfy.http.get("/api/system_stats")
    assert plain.status_code == prefixed.status_code == 200
    assert plain.headers["content-type"] == "application/json; charset=utf-8"
    body = plain.json()
    assert set(body) == {"system", "devices"}
    assert {"os", "ram_total", "ram_free", "comfyui_version", "python_version", "argv"} <= set(
        body["system"]
    )
    device = body["devices"][0]
    assert {"name", "type", "index", "vram_total", "vram_free"} <= set(device)
    assert prefixed.json()["system"]["comfyui_version"] == body["system"]["comfyui_version"]


def test_idle_lookups_status_codes_and_empty_bodies(comfy: Target) -> None:
    folders = comfy.http.get("/models").json()
    assert {"diffusion_models", "text_encoders", "vae", "checkpoints"} <= set(folders)
    assert isinstance(comfy.http.get("/models/diffusion_models").json(), list)
    for folder in ("clip", "unet", "no_such_folder"):
        response = comfy.http.get(f"/models/{folder}")
        assert (response.status_code, response.content) == (404, b"")
    assert isinstance(comfy.http.get("/embeddings").json(), list)
    assert set(comfy.http.get("/prompt").json()["exec_info"]) == {"queue_remaining"}
    assert set(comfy.http.get("/queue").json()) == {"queue_running", "queue_pending"}
    assert comfy.http.get("/history/does-not-exist").json() == {}
    assert comfy.http.get("/object_info/NoSuchNode").json() == {}
    assert comfy.http.get("/api/object_info/NoSuchNode").json() == {}


def test_object_info_specs_of_the_zimage_nodes(comfy: Target) -> None:
    sampler = comfy.http.get("/object_info/KSampler").json()["KSampler"]
    seed = sampler["input"]["required"]["seed"]
    assert seed[0] == "INT"
    assert seed[1]["min"] == 0
    assert "res_multistep" in sampler["input"]["required"]["sampler_name"][0]
    assert sampler["output"] == ["LATENT"]
    assert sampler["output_node"] is False
    unet = comfy.http.get("/object_info/UNETLoader").json()["UNETLoader"]
    files = unet["input"]["required"]["unet_name"][0]
    assert files == comfy.http.get("/models/diffusion_models").json()
    vae = comfy.http.get("/object_info/VAELoader").json()["VAELoader"]
    assert "pixel_space" in vae["input"]["required"]["vae_name"][0]
    save = comfy.http.get("/object_info/SaveImage").json()["SaveImage"]
    assert save["output_node"] is True
    assert save["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def test_features_match_the_websocket_feature_flags_reply(comfy: Target) -> None:
    features = comfy.http.get("/features").json()
    assert features["supports_preview_metadata"] is True
    socket = comfy.socket(uuid.uuid4().hex, feature_flags=True)
    reply = socket.recv(timeout=10)
    assert reply == {"type": "feature_flags", "data": features}


def test_websocket_greeting_invents_a_sid_without_client_id(comfy: Target) -> None:
    socket = comfy.socket()
    assert socket.greeting["type"] == "status"
    assert set(socket.greeting["data"]) == {"status", "sid"}
    assert len(socket.sid) == 32
    assert int(socket.sid, 16) >= 0
    named = comfy.socket("my-client")
    assert named.sid == "my-client"


# -- a run --------------------------------------------------------------------------------------


def test_run_message_order_history_and_outputs(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    socket = comfy.socket(client_id)
    other = comfy.socket(uuid.uuid4().hex)
    graph = model_free_graph(unique_color(), "zq_contract/run")
    extra = {"extra_pnginfo": {"workflow": {"note": "api-only test"}}}
    response = comfy.submit(graph, client_id=client_id, extra_data=extra)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"prompt_id", "number", "node_errors"}
    assert body["node_errors"] == {}
    prompt_id = body["prompt_id"]

    frames = socket.until_done(prompt_id)
    names = tags(frames)
    assert names[:4] == ["status", "status", "execution_start", "execution_cached"]
    cached = _cached(frames)
    assert set(cached) <= {"2"}  # only the VAELoader can come from an earlier run's cache
    expected = expected_run_tags(
        EXECUTION_ORDER,
        cached,
        outputs={"5", "6"},
        ui_nodes={"5", "6"},
        progress={"4": 2 if comfy.modern else 5},  # 0.18 throttles to first and last tick
    )
    assert names[4:] == expected
    start = frames[2]["data"]
    assert start["prompt_id"] == prompt_id
    assert isinstance(start["timestamp"], int)
    executing = next(f for f in frames if tags([f]) == ["executing(1)"])
    assert executing["data"] == {"node": "1", "display_node": "1", "prompt_id": prompt_id}
    progress = [f["data"] for f in frames if f.get("type") == "progress"]
    assert progress[0] == {"value": 1, "max": 5, "prompt_id": prompt_id, "node": "4"}
    assert progress[-1]["value"] == 5
    state = frames[-4]["data"]  # the progress_state after the last node
    assert state["nodes"]["5"]["state"] == "finished"
    assert set(state["nodes"]["5"]) == {
        "value", "max", "state", "node_id", "prompt_id",
        "display_node_id", "parent_node_id", "real_node_id",
    }  # fmt: skip

    # a socket of another client sees only the broadcast status frames
    other_frames = other.until(lambda f: f.get("type") == "status" and _remaining(f) == 0)
    assert {f["type"] for f in other_frames} == {"status"}

    history = comfy.history(prompt_id)[prompt_id]
    assert set(history) == {"prompt", "outputs", "status", "meta"}
    number, hist_id, hist_graph, extra_data, outputs = history["prompt"]
    assert (number, hist_id, hist_graph) == (body["number"], prompt_id, graph)
    assert extra_data["client_id"] == client_id
    assert extra_data["extra_pnginfo"] == extra["extra_pnginfo"]
    assert sorted(outputs) == ["5", "6"]
    assert history["status"]["status_str"] == "success"
    assert history["status"]["completed"]
    assert [m[0] for m in history["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    executed = {
        f["data"]["node"]: f["data"]["output"] for f in frames if f.get("type") == "executed"
    }
    assert history["outputs"] == executed
    saved = history["outputs"]["5"]["images"][0]
    assert saved["subfolder"] == "zq_contract"
    assert saved["type"] == "output"
    assert saved["filename"].startswith("run_")
    assert saved["filename"].endswith("_.png")
    preview = history["outputs"]["6"]["images"][0]
    assert preview["type"] == "temp"
    assert preview["filename"].startswith("ComfyUI_temp_")
    assert history["meta"]["5"] == {
        "node_id": "5", "display_node": "5", "parent_node": None, "real_node_id": "5",
    }  # fmt: skip

    view = comfy.view(saved)
    assert view.status_code == 200
    assert view.headers["content-type"] == "image/png"
    assert view.headers["content-disposition"] == f'filename="{saved["filename"]}"'
    info = png_info(view.content)
    assert info["size"] == (64, 64)
    assert info["mode"] == "RGB"
    assert set(info["text"]) == {"prompt", "workflow"}
    assert json.loads(info["text"]["prompt"]) == graph
    assert json.loads(info["text"]["workflow"]) == extra["extra_pnginfo"]["workflow"]
    color = graph["1"]["inputs"]["color"]
    assert png_info(comfy.view(preview).content)["size"] == (64, 64)
    pixel = Image.open(io.BytesIO(view.content)).convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)
    want = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    # the real pixel_space round trip and tiled-decode averaging may truncate by one
    assert all(abs(got - exp) <= 1 for got, exp in zip(pixel, want, strict=True)), (pixel, want)


def _remaining(frame: dict[str, Any]) -> int:
    return int(frame["data"]["status"]["exec_info"]["queue_remaining"])


def test_identical_resubmission_is_replayed_from_cache(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    socket = comfy.socket(client_id)
    graph = model_free_graph(unique_color(), "zq_contract/cache")
    first = comfy.queue_ok(graph, client_id=client_id)
    first_frames = socket.until_done(first)
    first_outputs = comfy.history(first)[first]["outputs"]

    chosen = str(uuid.uuid4())
    response = comfy.submit(graph, client_id=client_id, prompt_id=chosen)
    assert response.json()["prompt_id"] == chosen
    frames = socket.until_done(chosen)
    assert sorted(_cached(frames)) == sorted(graph)
    names = tags(frames)
    assert not [n for n in names if n.startswith("executing(") and n != "executing(None)"]
    tail = _after_cached(frames)
    assert {tail[0], tail[2]} == {"executed(5)", "executed(6)"}  # output order is a set order
    assert tail[1] == tail[3] == "progress_state"
    assert tail[4:] == ["execution_success", "status", "executing(None)"]
    replayed = {
        f["data"]["node"]: f["data"]["output"] for f in frames if f.get("type") == "executed"
    }
    assert replayed == first_outputs  # the ORIGINAL filenames
    history = comfy.history(chosen)[chosen]
    assert history["outputs"] == first_outputs
    assert len([f for f in first_frames if f.get("type") == "executed"]) == 2


def test_free_memory_drops_the_node_cache(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    socket = comfy.socket(client_id)
    graph = model_free_graph(unique_color(), "zq_contract/free")
    first = comfy.queue_ok(graph, client_id=client_id)
    socket.until_done(first)
    saved = comfy.history(first)[first]["outputs"]["5"]["images"][0]["filename"]

    free = comfy.http.post("/free", json={"free_memory": True})
    assert (free.status_code, free.content) == (200, b"")
    # The worker applies /free between jobs; a job posted in the same instant may still run
    # first (from cache), so the second resubmission at the latest must execute again.
    for _ in range(2):
        again = comfy.queue_ok(graph, client_id=client_id)
        frames = socket.until_done(again)
        if _cached(frames) == []:
            break
    else:
        pytest.fail("the cache survived POST /free {free_memory: true}")
    assert "executing(4)" in tags(frames)
    new = comfy.history(again)[again]["outputs"]["5"]["images"][0]["filename"]
    assert new != saved  # a new file was written

    empty = comfy.http.post("/free", content=b"")
    assert empty.status_code == 500


# -- validation -----------------------------------------------------------------------------------


def _errors(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "node_errors"}
    return body


def test_validation_error_shapes(comfy: Target) -> None:
    image: dict[str, Any] = {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
    }
    save: dict[str, Any] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "x"},
    }

    body = _errors(comfy.http.post("/prompt", json={"client_id": "abc"}))
    assert body == {
        "error": {"type": "no_prompt", "message": "No prompt provided",
                  "details": "No prompt provided", "extra_info": {}},
        "node_errors": {},
    }  # fmt: skip

    body = _errors(comfy.submit({"1": image}))
    assert body["error"]["type"] == "prompt_no_outputs"
    assert body["node_errors"] == {}

    body = _errors(comfy.submit({"1": {"class_type": "NoSuchNode", "inputs": {}}, "2": save}))
    assert body["error"]["type"] in ("missing_node_type", "invalid_prompt")
    assert body["error"]["details"] == "Node ID '#1'"
    if comfy.modern:
        assert body["error"]["extra_info"] == {
            "node_id": "1", "class_type": "NoSuchNode", "node_title": "NoSuchNode",
        }  # fmt: skip

    bad_width = {**image, "inputs": {**image["inputs"], "width": 0}}
    body = _errors(comfy.submit({"1": bad_width, "2": save}))
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    error = body["node_errors"]["1"]
    assert error["class_type"] == "EmptyImage"
    assert error["dependent_outputs"] == ["2"]
    assert error["errors"][0] == {
        "type": "value_smaller_than_min",
        "message": "Value 0 smaller than min of 1",
        "details": "width",
        "extra_info": {
            "input_name": "width",
            "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "received_value": 0,
        },
    }

    missing = {
        "1": image,
        "2": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0]}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["4", 0]}},
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    body = _errors(comfy.submit(missing))
    assert body["error"]["details"] == ""  # only the output's own errors are summarised
    assert body["node_errors"] == {
        "2": {
            "errors": [{"type": "required_input_missing", "message": "Required input is missing",
                        "details": "vae", "extra_info": {"input_name": "vae"}}],
            "dependent_outputs": ["5"],
            "class_type": "VAEDecode",
        }
    }  # fmt: skip

    body = _errors(comfy.submit({"2": {**save, "inputs": {**save["inputs"], "images": ["99", 0]}}}))
    reason = body["node_errors"]["2"]["errors"][0]
    assert reason["type"] == "exception_during_validation"
    assert reason["details"] == "'99'"
    assert reason["extra_info"]["exception_type"] == "KeyError"

    body = _errors(
        comfy.submit(
            {"1": image, "2": {**save, "inputs": {**save["inputs"], "images": ["1", 0, 5]}}}
        )
    )
    reason = body["node_errors"]["2"]["errors"][0]
    assert reason["type"] == "bad_linked_input"
    assert reason["extra_info"]["received_value"] == [
        "1",
        0,
        5,
    ]

    mismatch = {
        "1": image,
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "2": {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0], "vae": ["4", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    reason = _errors(comfy.submit(mismatch))["node_errors"]["2"]["errors"][0]
    assert reason["type"] == "return_type_mismatch"
    assert reason["details"] == "samples, received_type(IMAGE) mismatch input_type(LATENT)"

    text_width = {**image, "inputs": {**image["inputs"], "width": "abc"}}
    reason = _errors(comfy.submit({"1": text_width, "2": save}))["node_errors"]["1"]["errors"][0]
    assert reason["type"] == "invalid_input_type"
    assert reason["details"] == "width, abc, invalid literal for int() with base 10: 'abc'"


def test_missing_model_file_is_value_not_in_list(comfy: Target) -> None:
    files = comfy.http.get("/models/diffusion_models").json()
    graph: dict[str, Any] = {
        "1": {"class_type": "UNETLoader",
              "inputs": {"unet_name": "no_such_model_nvfp4.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "ModelSamplingAuraFlow", "inputs": {"model": ["1", 0], "shift": 3.0}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}},
    }  # fmt: skip
    response = comfy.submit(graph)
    # the loader is not reachable from the output: neither validated nor run
    assert response.status_code == 200
    assert response.json()["node_errors"] == {}
    graph["7"] = {"class_type": "KSampler", "inputs": {
        "model": ["2", 0], "seed": 1, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
        "scheduler": "simple", "positive": ["8", 0], "negative": ["8", 0], "latent_image": ["3", 0],
        "denoise": 1.0}}  # fmt: skip
    graph["8"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["9", 0]}}
    graph["9"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["10", 0]}}
    graph["10"] = {"class_type": "CLIPLoader",
                   "inputs": {"clip_name": "missing_te.safetensors", "type": "lumina2"}}  # fmt: skip
    graph["5"]["inputs"]["samples"] = ["7", 0]
    body = _errors(comfy.submit(graph))
    unet = body["node_errors"]["1"]["errors"][0]
    assert unet["type"] == "value_not_in_list"
    assert unet["details"] == f"unet_name: 'no_such_model_nvfp4.safetensors' not in {files}"
    assert unet["extra_info"] == {
        "input_name": "unet_name", "input_config": [files, {}],
        "received_value": "no_such_model_nvfp4.safetensors",
    }  # fmt: skip
    assert body["node_errors"]["10"]["errors"][0]["extra_info"]["input_name"] == "clip_name"
    assert body["node_errors"]["1"]["dependent_outputs"] == ["6"]


def test_one_good_output_is_queued_with_partial_node_errors(comfy: Target) -> None:
    graph: dict[str, Any] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": unique_color()}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }  # fmt: skip
    response = comfy.submit(graph)
    assert response.status_code == 200
    body = response.json()
    assert list(body["node_errors"]) == ["3"]
    assert body["node_errors"]["3"]["dependent_outputs"] == ["4"]
    entry = comfy.wait_history(body["prompt_id"])
    assert entry["prompt"][4] == ["2"]
    assert list(entry["outputs"]) == ["2"]


def test_every_post_takes_a_number_even_when_it_fails(comfy: Target) -> None:
    good = model_free_graph(unique_color(), "zq_contract/number", size=8, preview=False)
    first = comfy.submit(good).json()["number"]
    assert comfy.submit({"1": {"class_type": "NoSuchNode", "inputs": {}}}).status_code == 400
    second = comfy.submit(
        {**good, "1": {**good["1"], "inputs": {**good["1"]["inputs"], "color": unique_color()}}}
    ).json()["number"]
    assert second == first + 2
    explicit = comfy.submit(model_free_graph(unique_color(), "x", size=8), number=7).json()
    assert explicit["number"] == 7.0
    comfy.wait_idle()


def test_non_json_body_is_a_plain_500_and_origin_mismatch_403(comfy: Target) -> None:
    response = comfy.http.post(
        "/prompt", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("500 Internal Server Error")
    graph: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        }
    }
    response = comfy.http.post(
        "/prompt", json={"prompt": graph}, headers={"Origin": "http://evil.example:8188"}
    )
    assert (response.status_code, response.content) == (403, b"")


# -- /view ------------------------------------------------------------------------------------------


def test_view_path_checks(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    socket = comfy.socket(client_id)
    prompt_id = comfy.queue_ok(
        model_free_graph(unique_color(), "zq_contract/view"), client_id=client_id
    )
    socket.until_done(prompt_id)
    saved = comfy.history(prompt_id)[prompt_id]["outputs"]["5"]["images"][0]
    name = saved["filename"]
    cases = [
        ({"filename": name, "subfolder": "zq_contract", "type": "output"}, 200),
        ({"filename": f"{name} [output]", "subfolder": "zq_contract"}, 200),
        ({"filename": name, "subfolder": "zq_contract"}, 200),  # type defaults to output
        ({"filename": "nope.png", "type": "output"}, 404),
        ({"filename": name, "type": "output"}, 404),  # subfolder left out
        ({"filename": "../comfyui.db", "type": "output"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "passwd", "subfolder": "../../../../etc", "type": "output"}, 403),
        ({"filename": name, "subfolder": "zq_contract", "type": "bogus"}, 400),
        ({}, 404),
    ]
    for params, status in cases:
        response = comfy.http.get("/view", params=params)
        assert response.status_code == status, params
        if status != 200:
            assert response.content == b""
    rgb = comfy.http.get("/view", params={**saved, "channel": "rgb"})
    assert rgb.headers["content-type"] == "image/png"
    assert png_info(rgb.content)["text"] == {}
    webp = comfy.http.get("/view", params={**saved, "preview": "webp;50"})
    assert webp.headers["content-type"] == "image/webp"


# -- interrupt, queue, history ---------------------------------------------------------------------


def _start_slow(comfy: Target, client_id: str) -> tuple[str, Socket]:
    socket = comfy.socket(client_id)
    prompt_id = comfy.queue_ok(slow_graph(unique_color()), client_id=client_id)
    socket.until(lambda f: f.get("type") == "progress" and f["data"]["node"] == "4")
    return prompt_id, socket


def test_interrupt_idle_wrong_id_and_running(comfy: Target) -> None:
    idle = comfy.http.post("/interrupt")
    assert (idle.status_code, idle.content) == (200, b"")
    client_id = uuid.uuid4().hex
    prompt_id, socket = _start_slow(comfy, client_id)
    assert comfy.history(prompt_id) == {}  # not finished: {} with 200
    running = comfy.http.get("/queue").json()["queue_running"]
    assert [item[1] for item in running] == [prompt_id]
    assert len(running[0]) == 5

    wrong = comfy.http.post("/interrupt", json={"prompt_id": "00000000-not-running"})
    assert (wrong.status_code, wrong.content) == (200, b"")
    right = comfy.http.post("/interrupt", json={"prompt_id": prompt_id})
    assert right.status_code == 200
    frames = socket.until_done(prompt_id)
    names = tags(frames)
    assert names[-3:] == ["execution_interrupted", "status", "executing(None)"]
    interrupted = frames[-3]["data"]
    assert interrupted["node_id"] == "4"
    assert interrupted["node_type"] == "VAEDecodeTiled"
    assert sorted(interrupted["executed"]) in (["1", "2", "3"], ["1", "3"])
    entry = comfy.history(prompt_id)[prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert entry["outputs"] == {}


def test_queue_numbers_delete_and_clear(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    running_id, socket = _start_slow(comfy, client_id)
    second = comfy.submit(slow_graph(unique_color()), client_id=client_id).json()
    front = comfy.submit(slow_graph(unique_color()), client_id=client_id, front=True).json()
    explicit = comfy.submit(slow_graph(unique_color()), client_id=client_id, number=1000.5).json()
    assert front["number"] == -(second["number"] + 1)
    assert explicit["number"] == 1000.5
    queue = comfy.http.get("/queue").json()
    pending = sorted(queue["queue_pending"], key=lambda item: item[0])
    assert [item[1] for item in pending] == [
        front["prompt_id"], second["prompt_id"], explicit["prompt_id"],
    ]  # fmt: skip
    assert comfy.http.get("/prompt").json()["exec_info"]["queue_remaining"] == 4

    deleted = comfy.http.post("/queue", json={"delete": [second["prompt_id"]]})
    assert (deleted.status_code, deleted.content) == (200, b"")
    pending_ids = [item[1] for item in comfy.http.get("/queue").json()["queue_pending"]]
    assert sorted(pending_ids) == sorted([front["prompt_id"], explicit["prompt_id"]])
    comfy.http.post("/queue", json={"clear": True})
    queue = comfy.http.get("/queue").json()
    assert queue["queue_pending"] == []
    assert [i[1] for i in queue["queue_running"]] == [running_id]

    comfy.http.post("/interrupt")
    frames = socket.until_done(running_id)
    remaining = [_remaining(f) for f in frames if f.get("type") == "status"]
    assert remaining[-5:] == [2, 3, 4, 3, 1, 0][-5:]  # puts, delete, clear, done
    for prompt_id in (second["prompt_id"], front["prompt_id"], explicit["prompt_id"]):
        assert comfy.history(prompt_id) == {}


def test_reconnect_with_same_client_id_moves_delivery(comfy: Target) -> None:
    client_id = uuid.uuid4().hex
    prompt_id, first = _start_slow(comfy, client_id)
    second = comfy.socket(client_id)
    assert second.greeting["data"] == {
        "status": {"exec_info": {"queue_remaining": 1}}, "sid": client_id,
    }  # fmt: skip
    resumed = second.recv(timeout=10)
    assert resumed == {"type": "executing", "data": {"node": "4"}}
    comfy.http.post("/interrupt", json={"prompt_id": prompt_id})
    frames = second.until_done(prompt_id)
    assert "execution_interrupted" in tags(frames)
    # The old socket stays open but gets nothing more, not even broadcast status frames:
    # what it still reads was sent before the reconnect (0.3.64 sends ~1000 frames/s).
    late = tags(first.drain(0.3))
    assert not {"status", "execution_interrupted", "executing(None)"} & set(late), late


def test_job_without_client_id_gets_only_broadcast_frames(comfy: Target) -> None:
    socket = comfy.socket()
    prompt_id = comfy.queue_ok(model_free_graph(unique_color(), "zq_contract/anon", preview=False))
    entry = comfy.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "success"
    frames = socket.until(lambda f: f.get("type") == "status" and _remaining(f) == 0)
    kinds = {f.get("type") for f in frames}
    assert kinds <= {"status", "progress", "progress_state"}
    assert "progress_state" in kinds
    assert socket.silent(0.2)  # no executing(null) for a job without client_id


def test_api_jobs_view(comfy: Target) -> None:
    if not comfy.modern:
        pytest.skip("/api/jobs is new in 0.18")
    prompt_id = comfy.queue_ok(model_free_graph(unique_color(), "zq_contract/jobs", size=8))
    comfy.wait_history(prompt_id)
    listing = comfy.http.get("/api/jobs", params={"limit": 1})
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) == {"jobs", "pagination"}
    assert set(body["pagination"]) == {"offset", "limit", "total", "has_more"}
    assert body["pagination"]["limit"] == 1
    assert len(body["jobs"]) == 1
    job = comfy.http.get(f"/api/jobs/{prompt_id}").json()
    assert job["id"] == prompt_id
    assert job["status"] == "completed"
    assert {"outputs", "execution_status", "workflow", "preview_output"} <= set(job)
    assert job["preview_output"]["nodeId"] == "5"
    missing = comfy.http.get("/api/jobs/does-not-exist")
    assert (missing.status_code, missing.json()) == (404, {"error": "Job not found"})
    bogus = comfy.http.get("/api/jobs", params={"status": "bogus"})
    assert bogus.status_code == 400
    assert bogus.json()["error"].startswith("Invalid status value(s): bogus.")


def test_history_paging_and_delete(comfy: Target) -> None:
    ids = []
    for _ in range(2):
        ids.append(comfy.queue_ok(model_free_graph(unique_color(), "zq_contract/hist", size=8)))
        comfy.wait_history(ids[-1])
    newest = comfy.http.get("/history", params={"max_items": 2}).json()
    assert list(newest) == ids  # the newest N, oldest first
    deleted = comfy.http.post("/history", json={"delete": [ids[0]]})
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert comfy.history(ids[0]) == {}
    assert ids[1] in comfy.http.get("/history").json()


def test_upload_image_dedupes_and_renames(comfy: Target) -> None:
    name = f"zq_{uuid.uuid4().hex[:8]}.png"
    data = b"\x89PNG fake bytes " + uuid.uuid4().bytes
    up = comfy.http.post("/upload/image", files={"image": (name, data, "image/png")})
    assert up.status_code == 200
    assert up.json() == {"name": name, "subfolder": "", "type": "input"}
    again = comfy.http.post("/upload/image", files={"image": (name, data, "image/png")})
    assert again.json()["name"] == name
    other = comfy.http.post("/upload/image", files={"image": (name, data + b"!", "image/png")})
    assert other.json()["name"] == name.replace(".png", " (1).png")
    escape = comfy.http.post(
        "/upload/image", files={"image": (name, data, "image/png")}, data={"subfolder": "../.."}
    )
    assert escape.status_code == 400
