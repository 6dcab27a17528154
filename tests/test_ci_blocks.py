"""summary.json's CI blocks (provenance, vram) and the lane index beside the image cache."""

from __future__ import annotations

from pathlib import Path

from pytest_zimage_quality.lane_index import LaneIndex
from pytest_zimage_quality.metrics import PromptInfo
from pytest_zimage_quality.provenance import Lane
from pytest_zimage_quality.recheck import Regenerated, choose_recheck, score_pairs
from pytest_zimage_quality.summary.ci import provenance_block, suite_fingerprint, vram_block
from pytest_zimage_quality.vram import ConfigVram

GIB = 1024**3


def _stats(torch: str = "2.8.0+cu128", commit: str = "") -> dict[str, object]:
    system: dict[str, object] = {
        "comfyui_version": "0.18.1",
        "python_version": "3.12.3 (main)",
        "pytorch_version": torch,
        "os": "posix",
    }
    if commit:
        system["comfyui_commit"] = commit
    return {
        "system": system,
        "devices": [{"name": "cuda:0 NVIDIA H200 : cudaMallocAsync", "type": "cuda"}],
    }


def test_provenance_block_names_the_lane_models_suites_and_scorers() -> None:
    block = provenance_block(
        [("http://a:8188", _stats(commit="abc123")), ("http://b:8188", _stats())],
        models={"http://a:8188": {"diffusion_models/x.safetensors": {"sha256": "f" * 64}}},
        suites=[suite_fingerprint("study", "1" * 64, {"1": {"class_type": "KSampler"}})],
        scorers={"clip": {"model": "ViT-B-32", "weights_identity": "a" * 64}},
        plugin_version="9.9",
        runner_python="3.11.7",
        regenerated=["cat-bf16-1: made on another lane"],
    )
    assert len(block["lanes"]) == 2  # the commit is part of the lane
    assert block["lane_ids"] == [lane["id"] for lane in block["lanes"]]
    assert block["lanes"][0]["comfyui_commit"] == "abc123"
    assert block["lanes"][0]["cuda_version"] == "12.8"
    assert block["lanes"][0]["pytorch_version"] == "2.8.0"
    assert block["lane"].startswith("lanes-")  # a pool over two lanes
    assert block["model_files"] == [
        {"name": "diffusion_models/x.safetensors", "identity": {"sha256": "f" * 64}}
    ]
    assert block["suites"][0]["workflow_sha256"] != block["suites"][0]["sha256"]
    assert block["scorers"][0]["weights_sha256"] == "a" * 64
    assert block["regenerated_other_lane"] == ["cat-bf16-1: made on another lane"]


def test_provenance_block_reads_a_summary_server_record() -> None:
    record = {
        "url": "http://a",
        "comfyui_version": "0.18.1",
        "pytorch_version": "2.8.0+cpu",
        "gpu_name": "cpu",
        "devices": [],
    }
    block = provenance_block(
        [("http://a", record)],
        models={},
        suites=[],
        scorers={},
        plugin_version="",
        runner_python="",
    )
    assert block["lanes"][0]["gpu"] == "cpu"
    assert block["lane"] == block["lane_ids"][0]


def test_lane_index_says_when_another_lane_cached_the_graph(tmp_path: Path) -> None:
    here = Lane.from_system_stats(_stats())
    there = Lane.from_system_stats(_stats(torch="2.9.0+cu130"))
    index = LaneIndex(tmp_path)
    assert index.other_lane("k" * 64, here) is None
    index.record("k" * 64, there)
    other = index.other_lane("k" * 64, here)
    assert other is not None
    assert other.id == there.id
    assert index.other_lane("k" * 64, there) is None
    (tmp_path / "lanes" / "kk" / f"{'k' * 64}.json").write_text("{not json", encoding="utf-8")
    assert index.other_lane("k" * 64, here) is None


def test_vram_block_compares_each_config_with_its_suites_reference() -> None:
    def peak(name: str, gib: float) -> ConfigVram:
        return ConfigVram(name, 4, int(gib * GIB), None, 80 * GIB, "cuda")

    block = vram_block(
        {"bf16": peak("bf16", 20), "nvfp4": peak("nvfp4", 11)},
        {"bf16": "bf16", "nvfp4": "bf16", "fp8": "bf16"},
    )
    assert block is not None
    assert block["bf16"]["ratio_vs_reference"] == 1.0
    assert block["nvfp4"]["change_vs_reference_bytes"] == -9 * GIB
    assert abs(block["nvfp4"]["ratio_vs_reference"] - 0.55) < 1e-9
    assert "fp8" not in block  # no samples: nothing invented
    assert vram_block({}, {"bf16": "bf16"}) is None


def test_recheck_choice_is_deterministic_and_order_free() -> None:
    ids = [f"p{i}-bf16-{s}" for i in range(10) for s in (1, 2)]
    chosen = choose_recheck(ids, 3)
    assert len(chosen) == 3
    assert choose_recheck(reversed(ids), 3) == chosen
    assert chosen <= choose_recheck(ids, 5)
    assert choose_recheck(ids, 0) == set()
    assert choose_recheck(ids, 100) == set(ids)


def test_differing_pairs_are_scored_identical_ones_are_not() -> None:
    import io

    from PIL import Image

    from tests.helpers.doubles import double_specs

    def png(value: int) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (16, 16), (value, value, value)).save(out, format="PNG")
        return out.getvalue()

    prompt = PromptInfo("cat", "a cat")
    same = Regenerated("a", prompt, png(10), "s" * 64, b"", "s" * 64, 0.3)
    differs = Regenerated("b", prompt, png(10), "x" * 64, png(200), "y" * 64, 0.3)
    pairs = score_pairs([same, differs], double_specs())
    assert pairs[0].identical
    assert pairs[0].lpips is None
    assert not pairs[1].identical
    assert pairs[1].lpips is not None
    assert pairs[1].lpips > 0
    assert pairs[1].cached_clipscore is not None
    assert pairs[1].clip_change is not None
