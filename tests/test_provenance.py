"""Provenance and lanes from real /system_stats bodies; the determinism check's noise floor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_zimage_quality.hardware import HardwareProfile
from pytest_zimage_quality.noise_floor import RecheckPair, margin_warning, measure_noise_floor
from pytest_zimage_quality.provenance import (
    Lane,
    SuiteFingerprint,
    build_provenance,
    lanes_compatible,
    lanes_from_summary,
    run_lanes_compatible,
    server_commit,
)
from tests.helpers.comfy_mock import recorded_stats


def gpu_stats(
    gpu: str = "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync",
    torch: str = "2.14.1+cu130",
    version: str = "0.18.1",
    **system: str,
) -> dict[str, Any]:
    body = recorded_stats()
    body = {**body, "system": {**body["system"], "pytorch_version": torch}}
    body["system"]["comfyui_version"] = version
    body["system"].update(system)
    body["devices"] = [{**body["devices"][0], "name": gpu, "type": "cuda", "index": 0}]
    return body


def test_a_lane_from_the_recorded_cpu_server() -> None:
    lane = Lane.from_system_stats(recorded_stats())
    assert lane.fields == {
        "gpu": "cpu",
        "comfyui_version": "0.18.1",
        "comfyui_commit": "",  # 0.18.1 does not report its commit
        "pytorch_version": "2.14.1",
        "cuda_version": "13.0",
    }
    assert lane.label == "cpu · ComfyUI 0.18.1 · torch 2.14.1 · CUDA 13.0"
    assert lane.id.startswith("lane-")
    assert len(lane.id) == len("lane-") + 12
    assert Lane.from_system_stats(recorded_stats()).id == lane.id  # stable
    assert Lane.from_dict(lane.to_dict()) == lane
    older = Lane.from_system_stats(recorded_stats("v0.3.64"))
    assert older.comfyui_version == "0.3.64"
    assert older.id != lane.id


def test_the_gpu_index_and_python_do_not_split_a_lane_but_the_commit_does() -> None:
    a = Lane.from_system_stats(gpu_stats("cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"))
    b = Lane.from_system_stats(
        gpu_stats("cuda:3 NVIDIA H100 80GB HBM3 : native", python_version="3.12.1")
    )
    assert a == b
    assert a.gpu == "NVIDIA H100 80GB HBM3"
    committed = gpu_stats(comfyui_commit="4b1444fc0123")
    assert server_commit(committed) == "4b1444fc0123"
    assert Lane.from_system_stats(committed).id != a.id
    assert "(4b1444fc01)" in Lane.from_system_stats(committed).label
    assert server_commit({"system": "nonsense"}) == ""


def test_lanes_compatible_names_every_field_that_differs() -> None:
    h100 = Lane.from_system_stats(gpu_stats())
    assert lanes_compatible(h100, h100) == (True, ())
    h200 = Lane.from_system_stats(gpu_stats("cuda:0 NVIDIA H200", torch="2.15.0+cu131"))
    ok, reasons = lanes_compatible(h100, h200)
    assert not ok
    assert reasons == (
        "GPU: NVIDIA H100 80GB HBM3 (baseline) ≠ NVIDIA H200 (this run)",
        "torch: 2.14.1 (baseline) ≠ 2.15.0 (this run)",
        "CUDA: 13.0 (baseline) ≠ 13.1 (this run)",
    )
    commit = Lane.from_system_stats(gpu_stats(comfyui_commit="abc"))
    assert lanes_compatible(h100, commit)[1] == (
        "ComfyUI commit: unknown (baseline) ≠ abc (this run)",
    )


def test_run_lanes_compare_as_sets() -> None:
    h100 = Lane.from_system_stats(gpu_stats())
    h200 = Lane.from_system_stats(gpu_stats("cuda:0 NVIDIA H200"))
    assert run_lanes_compatible([h100, h200], [h200, h100]) == (True, ())
    ok, reasons = run_lanes_compatible([h100], [h100, h200])
    assert not ok
    assert reasons == (f"only in this run: {h200.label}",)
    assert run_lanes_compatible([], [h100]) == (
        False,
        ("the baseline records no server (no lane to compare)",),
    )


def test_provenance_records_lanes_models_suites_and_scorers() -> None:
    models = {"diffusion_models/z.safetensors": {"modelspec.hash": "f00"}, "vae/ae.sft": None}
    a = HardwareProfile.from_system_stats("http://a:8188", gpu_stats(), models)
    b = HardwareProfile.from_system_stats("http://b:8188", gpu_stats("cuda:0 NVIDIA H200"), models)
    sha = "ab" * 32
    provenance = build_provenance(
        [(a, ""), (a, ""), (b, "")],
        suites=[SuiteFingerprint("quant", "11" * 32, "22" * 32)],
        scorers={
            "clip": {"model": "ViT-B-32", "pretrained": "laion2b", "weights_identity": sha},
            "lpips": {"net": "alex", "weights_identity": "random", "random_weights": True},
        },
        plugin_version="0.1.0",
        runner_python="3.11.7",
    )
    data = provenance.to_dict()
    assert [lane["gpu"] for lane in data["lanes"]] == ["NVIDIA H100 80GB HBM3", "NVIDIA H200"]
    assert data["lane"].startswith("lanes-")  # a pool spanning two lanes
    assert [s["lane"] for s in data["servers"]] == [
        provenance.lanes[0].id,
        provenance.lanes[0].id,
        provenance.lanes[1].id,
    ]
    assert data["model_files"] == [
        {"name": "diffusion_models/z.safetensors", "identity": {"modelspec.hash": "f00"}},
        {"name": "vae/ae.sft", "identity": None},
    ]
    assert data["suites"] == [{"name": "quant", "sha256": "11" * 32, "workflow_sha256": "22" * 32}]
    assert data["scorers"] == [
        {
            "role": "clip",
            "model": "ViT-B-32",
            "pretrained": "laion2b",
            "weights_sha256": sha,
            "random_weights": False,
        },
        {
            "role": "lpips",
            "model": "alex",
            "pretrained": "",
            "weights_sha256": None,
            "random_weights": True,
        },
    ]
    single = build_provenance([(a, "")])
    assert single.lane == single.lanes[0].id
    assert build_provenance([]).lane == ""
    json.dumps(data)  # JSON-ready


def test_lanes_are_rebuilt_from_a_summary_written_before_provenance() -> None:
    body = gpu_stats()
    server = {**body["system"], "url": "http://a", "devices": body["devices"]}
    old = {"environment": {"servers": [server, server]}}
    (lane,) = lanes_from_summary(old)
    assert lane == Lane.from_system_stats(body)
    new = {"provenance": {"lanes": [lane.to_dict()]}}
    assert lanes_from_summary(new) == [lane]
    assert lanes_from_summary({}) == []
    # a record with only the readable GPU name (no devices list) keeps the GPU
    named = {"comfyui_version": "0.18.1", "pytorch_version": "2.14.1+cu130", "gpu_name": "GB10"}
    assert Lane.from_server_record(named).gpu == "GB10"


# -- the determinism check ---------------------------------------------------------------------


def test_bit_identical_regenerations_give_a_floor_of_zero() -> None:
    pairs = [RecheckPair(f"p{i}-bf16-s1", "aa" * 32, "aa" * 32) for i in range(4)]
    floor = measure_noise_floor(pairs)
    assert floor.deterministic
    assert (floor.clip_floor, floor.lpips_max, floor.n_unmeasured) == (0.0, 0.0, 0)
    assert margin_warning(floor, 0.01) is None
    assert floor.to_dict()["pairs"] == []  # only differing pairs are listed


def test_a_differing_pair_sets_the_floor_and_a_small_margin_is_warned() -> None:
    pairs = [
        RecheckPair("a", "aa", "aa"),
        RecheckPair("b", "bb", "cc", lpips=0.03, cached_clipscore=0.31, new_clipscore=0.298),
        RecheckPair("c", "dd", "ee", lpips=0.01, cached_clipscore=0.30, new_clipscore=0.302),
    ]
    floor = measure_noise_floor(pairs)
    assert not floor.deterministic
    assert floor.clip_floor == pytest.approx(0.012)
    assert floor.lpips_max == pytest.approx(0.03)
    assert floor.clip_mean_change == pytest.approx((0 + 0.012 + 0.002) / 3)
    assert margin_warning(floor, 0.02) is None
    warning = margin_warning(floor, 0.01)
    assert warning is not None
    assert "margin δ = 0.01 is not above the measured noise floor 0.0120" in warning
    assert "2 of 3 rechecked images differ" in warning


def test_an_unscored_differing_pair_is_counted_not_invented() -> None:
    floor = measure_noise_floor([RecheckPair("a", "aa", "bb"), RecheckPair("b", "cc", "cc")])
    assert floor.n_unmeasured == 1
    assert floor.clip_floor == 0.0  # what was measured; the warning says it may be higher
    none = measure_noise_floor([])
    assert (none.clip_floor, none.deterministic) == (None, False)
    assert margin_warning(none, 0.01) is None
    partial = measure_noise_floor(
        [RecheckPair("a", "aa", "bb"), RecheckPair("b", "c", "d", 0.1, 0.3, 0.25)]
    )
    message = margin_warning(partial, 0.01)
    assert message is not None
    assert "could not be scored" in message
