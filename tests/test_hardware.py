"""Hardware classes from /system_stats bodies, and the determinism check's report."""

from __future__ import annotations

from typing import Any

from pytest_zimage_quality.hardware import (
    HardwareProfile,
    class_lines,
    classify,
    determinism_plan,
    determinism_report,
)


def stats(
    gpu: str = "cuda:0 NVIDIA H200 : cudaMallocAsync",
    version: str = "0.18.1",
    torch: str = "2.14.1+cu130",
    python: str = "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
) -> dict[str, Any]:
    """A /system_stats body shaped like ComfyUI 0.18.1's."""
    return {
        "system": {"comfyui_version": version, "pytorch_version": torch, "python_version": python},
        "devices": [{"name": gpu, "type": gpu.split(":")[0], "index": 0}],
    }


MODELS = {"diffusion_models/z_image_turbo_bf16.safetensors": {"size": 123, "sha256": "ab"}}


def test_a_profile_keeps_what_changes_images() -> None:
    profile = HardwareProfile.from_system_stats("http://a:8188", stats(), MODELS)
    assert profile.gpu == "NVIDIA H200"
    assert (profile.pytorch_version, profile.cuda_version) == ("2.14.1", "13.0")
    assert profile.python_version == "3.11.7"
    assert (
        profile.label == "NVIDIA H200 · ComfyUI 0.18.1 · torch 2.14.1 · CUDA 13.0 · Python 3.11.7"
    )
    cpu = HardwareProfile.from_system_stats(
        "http://c", {"system": {"pytorch_version": "2.14.1+cpu"}, "devices": []}
    )
    assert (cpu.gpu, cpu.cuda_version, cpu.comfyui_version) == ("cpu", "", "unknown")
    assert "no accelerator build" in cpu.label
    rocm = HardwareProfile.from_system_stats("http://r", stats(torch="2.5.0+rocm6.2"))
    assert rocm.cuda_version == "rocm6.2"


def test_gpus_of_one_host_form_one_class_whatever_their_index() -> None:
    profiles = [
        HardwareProfile.from_system_stats(f"http://h:{8188 + i}", stats(f"cuda:{i} NVIDIA H200"))
        for i in range(4)
    ]
    (klass,) = classify(profiles)
    assert klass.servers == ("http://h:8188", "http://h:8189", "http://h:8190", "http://h:8191")
    assert klass.id.startswith("hw-")
    assert klass.to_dict()["gpu"] == "NVIDIA H200"


def test_another_gpu_version_or_model_file_is_another_class() -> None:
    base = HardwareProfile.from_system_stats("http://a", stats(), MODELS)
    others = [
        HardwareProfile.from_system_stats("http://b", stats(gpu="cuda:0 NVIDIA GB10"), MODELS),
        HardwareProfile.from_system_stats("http://c", stats(version="0.3.64"), MODELS),
        HardwareProfile.from_system_stats("http://d", stats(torch="2.14.1+cu128"), MODELS),
        HardwareProfile.from_system_stats(
            "http://e", stats(), {next(iter(MODELS)): {"size": 124, "sha256": "cd"}}
        ),
    ]
    classes = classify([base, *others])
    assert len(classes) == 5
    assert [c.servers for c in classes] == [("http://a",), *[(p.url,) for p in others]]
    # the id is stable: the same hardware on another run, another url, the same class
    again = classify([HardwareProfile.from_system_stats("http://z", stats(), MODELS)])
    assert again[0].id == classes[0].id


def test_determinism_plan_and_report() -> None:
    h200 = [HardwareProfile.from_system_stats(f"http://h{i}", stats()) for i in range(3)]
    gb10 = HardwareProfile.from_system_stats("http://g", stats(gpu="cuda:0 NVIDIA GB10"))
    classes = classify([*h200, gb10])
    assert determinism_plan(classes) == {classes[0].id: ["http://h0", "http://h1", "http://h2"]}

    same = determinism_report(
        classes, "p-bf16-s1", {"http://h0": "aa", "http://h1": "aa", "http://h2": "aa"}
    )
    (entry,) = same["classes"]
    assert (entry["bit_identical"], entry["pin_pairs"], entry["distinct_images"]) == (
        True,
        False,
        1,
    )
    assert same["pinned_classes"] == []

    differ = determinism_report(
        classes, "p-bf16-s1", {"http://h0": "aa", "http://h1": "bb", "http://h2": "aa"}
    )
    assert differ["classes"][0]["distinct_images"] == 2
    assert differ["pinned_classes"] == [classes[0].id]

    lost = determinism_report(classes, "p-bf16-s1", {"http://h0": "aa", "http://h1": None})
    assert lost["classes"][0]["checked"] is False
    assert lost["classes"][0]["pin_pairs"] is True  # unchecked is never assumed identical


def test_one_line_per_class_names_what_it_is_and_its_servers() -> None:
    classes = classify(
        HardwareProfile.from_system_stats(url, stats(gpu))
        for url, gpu in (
            ("http://a", "cuda:0 NVIDIA H200"),
            ("http://b", "cuda:1 NVIDIA H200"),
            ("http://c", "cuda:0 NVIDIA GB10"),
        )
    )
    lines = class_lines(classes)
    assert lines == [
        f"hardware class {classes[0].id}: {classes[0].label} — 2 servers: http://a, http://b",
        f"hardware class {classes[1].id}: {classes[1].label} — 1 server: http://c",
    ]
    assert "NVIDIA GB10" in lines[1]
    assert class_lines(classes, with_id=False)[1].startswith("hardware class 2 of 2: NVIDIA GB10")
